import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { cp, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { afterEach, describe, expect, it } from "vitest";
import { bundleOptions } from "../../scripts/bundle.js";
import { eventually, serviceEnv, startTwins } from "../harness/world.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CLI = `${ROOT}src/cli.ts`;

function run(env: Record<string, string>, args: string[] = ["serve"], entry: string[] = ["--import", "tsx", CLI]) {
  const child = spawn(process.execPath, [...entry, ...args], { env: { PATH: process.env.PATH ?? "", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  return { child, out: () => stdout, err: () => stderr };
}

let closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of closers) await c();
  closers = [];
});

describe("nomad-gha-dispatcher CLI", () => {
  it("exits 2 with one clear line per configuration problem", async () => {
    const p = run({ PORT: "x", NOMAD_ADDR: "nope" });
    const [code] = (await once(p.child, "exit")) as [number];
    expect(code).toBe(2);
    const lines = p.err().trim().split("\n");
    expect(lines.every((l) => l.startsWith("config error: "))).toBe(true);
    expect(lines.length).toBeGreaterThanOrEqual(5);
  });

  it("serves, and on SIGTERM finishes the webhook in flight before exiting 0", async () => {
    const twins = await startTwins();
    closers.push(() => Promise.all([twins.github.close(), twins.vault.close(), twins.nomad.close()]));
    const port = 20000 + Math.floor(Math.random() * 20000);
    const secret = randomBytes(20).toString("hex");
    const p = run({ ...serviceEnv(twins, secret, {}), PORT: String(port), METRICS_PORT: "off", LOG_LEVEL: "info" });
    closers.push(async () => p.child.kill("SIGKILL"));
    await eventually(() => p.out().includes("listening for GitHub webhooks"), "service listening", 20_000);
    twins.github.addWebhook({ url: `http://127.0.0.1:${port}/webhook`, secret });

    // Slow GitHub: the queued webhook is still being handled when SIGTERM arrives.
    let inFlight = false;
    twins.github.faults.intercept = (req) => {
      if (!req.path.includes("generate-jitconfig")) return undefined;
      inFlight = true;
      return { delayMs: 1500 };
    };
    const queued = twins.github.queueJob({ repo: "octo-org/app", labels: ["self-hosted", "nomad"] });
    await eventually(() => inFlight, "webhook handling reached GitHub", 10_000);
    p.child.kill("SIGTERM");
    const job = await queued;
    const [code] = (await once(p.child, "exit")) as [number];
    expect(code).toBe(0);
    const delivery = twins.github.deliveries().find((d) => d.action === "queued");
    expect(delivery?.status_code).toBe(200);
    expect(twins.nomad.jobs().some((j) => j.ParentID === "github-runner" && j.Meta?.github_job_id === String(job.id))).toBe(true);
  });

  it("the bundle the image ships serves on its own: finds the runner job, dispatches, stops cleanly", async () => {
    // Laid out as the image's /app: dist/ and jobs/ only, no node_modules anywhere above it.
    const app = await mkdtemp(join(tmpdir(), "ngd-image-"));
    closers.push(() => rm(app, { recursive: true, force: true }));
    const bundle = join(app, "dist", "nomad-gha-dispatcher.mjs");
    await build(bundleOptions(CLI, bundle));
    await cp(`${ROOT}jobs`, join(app, "jobs"), { recursive: true });
    const twins = await startTwins();
    closers.push(() => Promise.all([twins.github.close(), twins.vault.close(), twins.nomad.close()]));
    const port = 20000 + Math.floor(Math.random() * 20000);
    const secret = randomBytes(20).toString("hex");
    const p = run({ ...serviceEnv(twins, secret, {}), PORT: String(port), METRICS_PORT: "off", LOG_LEVEL: "info" }, ["serve"], [bundle]);
    closers.push(async () => p.child.kill("SIGKILL"));
    await eventually(() => p.out().includes("listening for GitHub webhooks"), "bundled service listening", 20_000);
    twins.github.addWebhook({ url: `http://127.0.0.1:${port}/webhook`, secret });
    const job = await twins.github.queueJob({ repo: "octo-org/app", labels: ["self-hosted", "nomad"] });
    await eventually(() => twins.github.jobs().find((j) => j.id === job.id)?.status === "completed", "job ran on the bundled service's runner", 20_000);
    await eventually(() => twins.vault.kvKeys().length === 0, "secret deleted");
    p.child.kill("SIGTERM");
    const [code] = (await once(p.child, "exit")) as [number];
    expect(code).toBe(0);
    expect(p.err()).toBe("");
  });
});
