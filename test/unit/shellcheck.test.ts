import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

/**
 * The shell scripts are tested as shell: the runner job's task scripts (`jobs/runner/*.sh`), the
 * runner image stand-in the twins run them against (`test/twins/runner-image/`) and `.ci/run`
 * pass shellcheck at severity "style", with the optional checks `.shellcheckrc` enables. A file
 * that must differ says so in a `# shellcheck disable=SCxxxx # reason` next to the line.
 * (The tests in test/twins/ run these scripts for real; this is the static half.)
 */

const root = fileURLToPath(new URL("../../", import.meta.url));

function filesUnder(dir: string, keep: (path: string) => boolean): string[] {
  return readdirSync(join(root, dir), { recursive: true, encoding: "utf8" })
    .map((name) => join(dir, name))
    .filter((path) => statSync(join(root, path)).isFile() && keep(path))
    .sort();
}

/** Every file of the runner image stand-in is shell (scripts with a bash shebang, or sourced). */
const scripts = [".ci/run", ...filesUnder("jobs", (path) => path.endsWith(".sh")), ...filesUnder("test/twins/runner-image", () => true)];

const version = spawnSync("shellcheck", ["--version"], { encoding: "utf8" });
const installed = !version.error && version.status === 0;

describe("shell scripts", () => {
  it("are the ones this test means to check", () => {
    // A moved folder must not leave this test checking nothing.
    for (const expected of [
      "jobs/runner/configure-runner.sh",
      "jobs/runner/run-runner.sh",
      "test/twins/runner-image/config.sh",
      "test/twins/runner-image/run.sh",
      "test/twins/runner-image/run-helper.sh.template",
      "test/twins/runner-image/bin/Runner.Listener",
      "test/twins/runner-image/bin/runner-lib.sh",
    ]) {
      expect(scripts).toContain(expected);
    }
    // shellcheck needs to know each file is bash: a shebang, or a directive in a sourced file.
    for (const path of scripts) {
      const head = readFileSync(join(root, path), "utf8").split("\n", 1)[0];
      expect(head, path).toMatch(/^#!\/(usr\/bin\/env |bin\/)bash$|^# shellcheck shell=bash$/);
    }
  });

  if (!installed) {
    console.warn("shellcheck is not installed: the shell scripts are not checked (apt-get install shellcheck)");
    it.skip("pass shellcheck: SKIPPED, shellcheck is not installed (apt-get install shellcheck)", () => {});
    return;
  }

  // One shellcheck process for all files; findings are reported per file.
  const run = spawnSync("shellcheck", ["--severity=style", "--format=gcc", "--external-sources", ...scripts], {
    cwd: root,
    encoding: "utf8",
  });
  const findings = new Map<string, string[]>();
  for (const line of run.stdout.split("\n").filter(Boolean)) {
    const file = line.slice(0, line.indexOf(":")); // as given: relative to the root
    findings.set(file, [...(findings.get(file) ?? []), line]);
  }

  it.each(scripts)("%s passes shellcheck", (path) => {
    expect(findings.get(path) ?? []).toEqual([]);
  });

  it("ran shellcheck to the end", () => {
    // Exit 1 is "findings" (reported above); anything else is shellcheck failing to run.
    expect(run.stderr).toBe("");
    expect([0, 1]).toContain(run.status);
    expect(run.status === 0).toBe([...findings.values()].flat().length === 0);
  });
});
