// The runner image stand-in's config.sh (registration-token runners) and GitHub's runner version
// rules, run as the image's user against a started GitHub twin.

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { GitHubTwin } from "./github.js";
import { LATEST_RUNNER_VERSION, versionVerdict } from "./github-releases.js";
import { CAN_DROP_TO_RUNNER, container, gitHub, NEEDS_ROOT, RUN_JIT_FILES, rest } from "./runner-image-harness.js";

/** 2026-12-01: v2.336.0 (2026-07-20) has been out for more than 30 days. */
const DECEMBER = Date.parse("2026-12-01T00:00:00Z");

async function token(twin: GitHubTwin, pat: string, kind: "registration" | "remove"): Promise<string> {
  return String((await rest(twin, pat, `/repos/octo-org/app/actions/runners/${kind}-token`))["token"]);
}

function configure(twin: GitHubTwin, registrationToken: string, name: string, extra = "--ephemeral --disableupdate --replace"): string {
  return `./config.sh --unattended --url ${twin.webUrl}/octo-org/app --token ${registrationToken} --name ${name} --labels gpu,linux --no-default-labels --work _work ${extra}`;
}

describe("runner versions as GitHub enforces them", () => {
  it("refuses a runner with updates disabled once a newer release is more than 30 days old, updates one with updates enabled", () => {
    expect(versionVerdict("2.335.1", true, Date.parse("2026-08-01T00:00:00Z"))).toEqual({ kind: "current" });
    expect(versionVerdict("2.335.1", true, Date.parse("2026-08-25T00:00:00Z"))).toEqual({
      kind: "refuse",
      message: "Runner version v2.335.1 is deprecated and cannot receive messages.",
    });
    expect(versionVerdict("2.335.1", false, Date.parse("2026-08-01T00:00:00Z"))).toEqual({ kind: "update", target: "2.336.0" });
    expect(versionVerdict(LATEST_RUNNER_VERSION, true, DECEMBER)).toEqual({ kind: "current" });
    // Newer than any release the twin knows: current, not refused.
    expect(versionVerdict("2.399.0", true, DECEMBER)).toEqual({ kind: "current" });
  });
});

describe.skipIf(!CAN_DROP_TO_RUNNER)(`config.sh of the runner image stand-in (${CAN_DROP_TO_RUNNER ? "root: runs" : NEEDS_ROOT})`, () => {
  it("registers with a registration token through GitHub's runner-admin calls, runs a job with run.sh, and config.sh remove deletes a registration", async () => {
    const { twin, pat } = await gitHub();
    const registration = await token(twin, pat, "registration");
    const box = await container(LATEST_RUNNER_VERSION);
    const config = box.run(configure(twin, registration, "classic-1"));
    expect((await config.exited).code, config.output()).toBe(0);
    expect(config.output()).toContain("√ Connected to GitHub");
    expect(config.output()).toContain("√ Runner successfully added");
    expect(config.output()).toContain("√ Settings Saved.");
    expect(twin.runners()).toMatchObject([{ name: "classic-1", labels: ["gpu", "linux"], ephemeral: true, status: "offline", registration: "token" }]);
    const settings = JSON.parse(await readFile(join(box.workdir, ".runner"), "utf8")) as Record<string, unknown>;
    expect(settings).toMatchObject({
      agentName: "classic-1",
      disableUpdate: true,
      ephemeral: true,
      gitHubUrl: `${twin.webUrl}/octo-org/app`,
      workFolder: "_work",
    });
    // The URL is a GHES one: the runner derived {host}/api/v3 and authenticated with RemoteAuth.
    const calls = twin.runnerRequests.map((r) => `${r.method} ${r.url} ${r.headers["authorization"]}`);
    expect(calls).toEqual([
      `POST /api/v3/actions/runner-registration RemoteAuth ${registration}`,
      `GET /api/v3/repos/octo-org/app/actions/runner-groups RemoteAuth ${registration}`,
      `GET /api/v3/repos/octo-org/app/actions/runners?name=classic-1 RemoteAuth ${registration}`,
      `POST /api/v3/actions/runners/register RemoteAuth ${registration}`,
    ]);
    expect(JSON.parse(twin.runnerRequests[0]!.body)).toEqual({ url: `${twin.webUrl}/octo-org/app`, runner_event: "register" });

    const run = box.run("exec ./run.sh");
    await run.printed("Listening for Jobs");
    const job = await twin.queueJob({ repo: "octo-org/app", labels: ["gpu"] });
    expect((await run.exited).code, run.output()).toBe(0);
    expect(twin.jobs()).toMatchObject([{ id: job.id, conclusion: "success", runner_name: "classic-1" }]);
    expect(twin.runners()).toEqual([]);

    // A second registration of the same name, removed again before it ran.
    const again = await container(LATEST_RUNNER_VERSION);
    expect((await again.run(configure(twin, registration, "classic-2", "--ephemeral")).exited).code).toBe(0);
    const remove = again.run(`./config.sh remove --token ${await token(twin, pat, "remove")}`);
    expect((await remove.exited).code, remove.output()).toBe(0);
    expect(remove.output()).toContain("√ Runner removed successfully");
    expect(remove.output()).toContain("√ Removed .runner");
    expect(twin.runners()).toEqual([]);
  });

  it("replaces a runner of the same name only with --replace", async () => {
    const { twin, pat } = await gitHub();
    const registration = await token(twin, pat, "registration");
    expect((await (await container(LATEST_RUNNER_VERSION)).run(configure(twin, registration, "dup")).exited).code).toBe(0);
    const [first] = twin.runners();
    const refused = (await container(LATEST_RUNNER_VERSION)).run(configure(twin, registration, "dup", "--ephemeral"));
    expect((await refused.exited).code).toBe(1);
    expect(refused.output()).toContain("A runner exists with the same name dup.");
    const replaced = (await container(LATEST_RUNNER_VERSION)).run(configure(twin, registration, "dup", "--replace"));
    expect((await replaced.exited).code, replaced.output()).toBe(0);
    expect(replaced.output()).toContain("√ Successfully replaced the runner");
    expect(twin.runners().map((r) => r.id)).not.toContain(first!.id);
  });

  it("fails like the real config.sh on a bad registration token: 404 from runner-registration, exit 1", async () => {
    const { twin } = await gitHub();
    const box = await container(LATEST_RUNNER_VERSION);
    const config = box.run(configure(twin, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "nope"));
    expect((await config.exited).code).toBe(1);
    expect(config.output()).toContain(`Http response code: NotFound from 'POST ${twin.webUrl}/api/v3/actions/runner-registration' (Request Id: `);
    expect(config.output()).toMatch(/\(Request Id: [0-9A-F]{4}:[0-9A-F]{6}:/);
    expect(config.output()).toContain("Response status code does not indicate success: 404 (Not Found).");
    expect(twin.runners()).toEqual([]);
  });

  it("refuses a stale runner with --disableupdate: 'An error occurred', listener exit 1 (run.sh 0), or 7 when asked", async () => {
    const { twin, pat } = await gitHub({ clock: () => DECEMBER });
    const registration = await token(twin, pat, "registration");
    const job = await twin.queueJob({ repo: "octo-org/app", labels: ["gpu"] });
    const stale = await container("2.329.0");
    expect((await stale.run(configure(twin, registration, "stale-1")).exited).code).toBe(0);
    const run = stale.run("exec ./run.sh");
    expect((await run.exited).code, run.output()).toBe(0);
    expect(run.output()).toContain("An error occurred: Runner version v2.329.0 is deprecated and cannot receive messages.");
    expect(run.output()).toContain("Runner listener exit with terminated error, stop the service, no retry needed.");

    const strict = await container("2.329.0");
    expect((await strict.run(configure(twin, registration, "stale-2")).exited).code).toBe(0);
    const run7 = strict.run("exec ./run.sh", { env: { ACTIONS_RUNNER_RETURN_VERSION_DEPRECATED_EXIT_CODE: "1" } });
    expect((await run7.exited).code, run7.output()).toBe(7);
    expect(run7.output()).toContain("Runner listener exit with deprecated version exit code: 7.");

    expect(twin.jobs()).toMatchObject([{ id: job.id, status: "queued" }]);
    expect(twin.runnerUpdates).toBe(0);
    // Below GitHub's minimum for registering at all.
    const ancient = (await container("2.328.0")).run(configure(twin, registration, "ancient"));
    expect((await ancient.exited).code).toBe(1);
    expect(ancient.output()).toContain("Runner version v2.328.0 is deprecated and cannot be registered");
  });

  it("self-updates a stale runner with updates enabled (counted), restarts through run.sh and runs the job", async () => {
    const { twin, pat } = await gitHub({ clock: () => DECEMBER, runnerUpdateDelayMs: 200 });
    const created = await rest(twin, pat, "/repos/octo-org/app/actions/runners/generate-jitconfig", { name: "old-1", runner_group_id: 1, labels: ["gpu"] });
    const box = await container("2.330.0");
    const runner = box.run(RUN_JIT_FILES, { env: { JITCONFIG: String(created["encoded_jit_config"]) } });
    await runner.printed(`Current runner version: '${LATEST_RUNNER_VERSION}'`);
    expect(twin.runnerUpdates).toBe(1);
    const job = await twin.queueJob({ repo: "octo-org/app", labels: ["gpu"] });
    expect((await runner.exited).code, runner.output()).toBe(0);
    expect(twin.jobs()).toMatchObject([{ id: job.id, conclusion: "success", runner_name: "old-1" }]);
    for (const line of [
      `Downloading ${LATEST_RUNNER_VERSION} runner`,
      "Runner listener exit because of updating",
      "Update finished successfully.",
      "Restarting runner...",
    ]) {
      expect(runner.output()).toContain(line);
    }
    const version = box.run("./bin/Runner.Listener --version");
    expect((await version.exited).code).toBe(0);
    expect(version.output().trim()).toBe(LATEST_RUNNER_VERSION);
  });
});
