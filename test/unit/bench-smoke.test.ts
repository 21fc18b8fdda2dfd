// `npm run bench` itself, smoke-tested: the quickest scenario end to end (build, service in its
// own process, twins, one burst in token mode), in about ten seconds.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../../", import.meta.url));

describe("bench (BENCH_QUICK=1)", () => {
  it("runs a burst scenario and prints its one line", async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", "test/bench/index.ts"], {
      cwd: root,
      env: { ...process.env, BENCH_QUICK: "1", BENCH_SCENARIOS: "3", BENCH_BURST_MODES: "token" },
      timeout: 60_000,
    });
    const line = stdout.split("\n").find((l) => l.startsWith("[3] burst token"));
    expect(line, stdout).toMatch(/20\/20 jobs .* 403s 0 dup 0 lost 0 \(ok\)/);
  }, 60_000);
});
