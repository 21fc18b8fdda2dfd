// The runner image stand-in run as the image's user against a started GitHub twin, the way the
// runner job's tasks run it: JIT config files then run.sh, run.sh --jitconfig, stopping, root.

import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { LATEST_RUNNER_VERSION } from "./github-releases.js";
import { actionsRunnerImage } from "./runner-image.js";
import { CAN_DROP_TO_RUNNER, container, gitHub, NEEDS_ROOT, RUN_JIT_FILES, rest } from "./runner-image-harness.js";

async function jitConfig(twin: Parameters<typeof rest>[0], pat: string, name: string): Promise<string> {
  const created = await rest(twin, pat, "/repos/octo-org/app/actions/runners/generate-jitconfig", {
    name,
    runner_group_id: 1,
    labels: ["self-hosted", "linux", "gpu"],
  });
  return String(created["encoded_jit_config"]);
}

describe("runner image stand-in: the image", () => {
  it("describes the official image: user 1001, /home/runner, its ENV lines", () => {
    const image = actionsRunnerImage("2.336.0");
    expect({ uid: image.uid, gid: image.gid, workdir: image.workdir }).toEqual({ uid: 1001, gid: 1001, workdir: "/home/runner" });
    expect(image.env).toMatchObject({ RUNNER_MANUALLY_TRAP_SIG: "1", ACTIONS_RUNNER_PRINT_LOG_TO_STDOUT: "1", ImageOS: "ubuntu24", HOME: "/home/runner" });
    expect(() => actionsRunnerImage("latest")).toThrow(/2\.336\.0/);
  });
});

describe.skipIf(!CAN_DROP_TO_RUNNER)(`runner image stand-in as uid 1001 (${CAN_DROP_TO_RUNNER ? "root: runs" : NEEDS_ROOT})`, () => {
  it("lays out /home/runner like the image: 777 and runner-owned, files runner:docker, scripts executable", async () => {
    const box = await container("2.336.0");
    const home = await stat(box.workdir);
    expect({ mode: home.mode & 0o777, uid: home.uid, gid: home.gid }).toEqual({ mode: 0o777, uid: 1001, gid: 1001 });
    for (const file of ["config.sh", "run.sh", "run-helper.sh.template", "bin/Runner.Listener"]) {
      const s = await stat(join(box.workdir, file));
      expect({ file, mode: s.mode & 0o777, uid: s.uid, gid: s.gid }).toEqual({ file, mode: 0o755, uid: 1001, gid: 123 });
    }
    const version = box.run("./config.sh --version && ./bin/Runner.Listener --version");
    expect((await version.exited).code).toBe(0);
    expect(version.output()).toBe("2.336.0\n2.336.0\n");
  });

  it("runs a JIT runner from its decoded files: run.sh takes a queued job, GitHub gets its webhooks, the runner exits 0", async () => {
    const { twin, pat, hooks } = await gitHub();
    const box = await container(LATEST_RUNNER_VERSION);
    const runner = box.run(RUN_JIT_FILES, { env: { JITCONFIG: await jitConfig(twin, pat, "jit-1") } });
    await runner.printed("Listening for Jobs");
    expect(twin.runners()).toMatchObject([{ name: "jit-1", status: "online", busy: false }]);
    const job = await twin.queueJob({ repo: "octo-org/app", labels: ["self-hosted", "gpu"] });
    const exit = await runner.exited;
    expect(exit, runner.output()).toEqual({ code: 0, signal: null });
    await twin.deliveriesSettled();
    expect(twin.jobs()).toMatchObject([{ id: job.id, status: "completed", conclusion: "success", runner_name: "jit-1" }]);
    expect(hooks.received.filter((h) => h.jobId === job.id).map((h) => h.action)).toEqual(["queued", "in_progress", "completed"]);
    // Ephemeral: GitHub deregistered it; the runner removed its local config (Runner.cs run-once).
    expect(twin.runners()).toEqual([]);
    expect(runner.output()).toContain("Running job: build");
    expect(runner.output()).toContain("Job build completed with result: Succeeded");
    expect(runner.output()).toContain("√ Removed .runner");
    await expect(stat(join(box.workdir, ".runner"))).rejects.toThrow(/ENOENT/);
    // Written as the image's user.
    expect((await stat(join(box.workdir, "_work"))).uid).toBe(1001);
    expect(twin.runnerProcesses).toMatchObject([{ name: "jit-1", jobId: job.id, ok: true }]);
    expect(twin.runnerProcesses[0]?.endedAt).toBeDefined();
    expect(twin.runnerUpdates).toBe(0);
    // The listener's traffic is the runner surface's, not the REST API's.
    const paths = twin.runnerRequests.map((r) => `${r.method} ${r.url.split("?")[0]}`);
    expect(paths).toEqual(
      expect.arrayContaining([
        "POST /_services/broker/session",
        "GET /_services/broker/message",
        "POST /_services/pipelines/acquirejob",
        "POST /_services/pipelines/completejob",
        "DELETE /_services/broker/session",
      ]),
    );
    expect(twin.requests.some((r) => r.url.startsWith("/_services"))).toBe(false);
  });

  it("runs with ./run.sh --jitconfig <encoded> as well", async () => {
    const { twin, pat } = await gitHub();
    const box = await container(LATEST_RUNNER_VERSION);
    const runner = box.run('exec ./run.sh --jitconfig "$JITCONFIG"', { env: { JITCONFIG: await jitConfig(twin, pat, "jit-2") } });
    await runner.printed("Listening for Jobs");
    const job = await twin.queueJob({ repo: "octo-org/app", labels: ["gpu"] });
    expect((await runner.exited).code, runner.output()).toBe(0);
    expect(twin.jobs()).toMatchObject([{ id: job.id, conclusion: "success", runner_name: "jit-2" }]);
  });

  it("stops promptly on SIGTERM to run.sh while idle: session deleted, registration kept offline", async () => {
    const { twin, pat } = await gitHub();
    const box = await container(LATEST_RUNNER_VERSION);
    const runner = box.run(RUN_JIT_FILES, { env: { JITCONFIG: await jitConfig(twin, pat, "idle-1") } });
    await runner.printed("Listening for Jobs");
    const sent = Date.now();
    runner.child.kill("SIGTERM");
    const exit = await runner.exited;
    expect(Date.now() - sent).toBeLessThan(3000);
    // run.sh's wait was interrupted by the trapped TERM: it exits 128 + 15 after the helper ended.
    expect(exit, runner.output()).toEqual({ code: 143, signal: null });
    expect(runner.output()).toContain("Exiting...");
    expect(runner.output()).toContain("Runner listener exit with 0 return code");
    expect(twin.runners()).toMatchObject([{ name: "idle-1", status: "offline", busy: false }]);
    expect(twin.runnerProcesses[0]).toMatchObject({ name: "idle-1", jobId: undefined, ok: true });
    expect(twin.runnerProcesses[0]?.endedAt).toBeDefined();
  });

  it("stops on SIGINT to its process group and fails the job it was running", async () => {
    const { twin, pat, hooks } = await gitHub({ jobDurationMs: 30_000 });
    const box = await container(LATEST_RUNNER_VERSION);
    const runner = box.run(RUN_JIT_FILES, { env: { JITCONFIG: await jitConfig(twin, pat, "busy-1") } });
    await runner.printed("Listening for Jobs");
    const job = await twin.queueJob({ repo: "octo-org/app", labels: ["gpu"] });
    await runner.printed("Running job: build");
    process.kill(-runner.child.pid!, "SIGINT");
    expect((await runner.exited).code, runner.output()).toBe(130);
    await twin.deliveriesSettled();
    expect(twin.jobs()).toMatchObject([{ id: job.id, status: "completed", conclusion: "failure" }]);
    expect(hooks.received.filter((h) => h.jobId === job.id).map((h) => h.action)).toEqual(["queued", "in_progress", "completed"]);
    expect(runner.output()).toContain("Exiting...");
  });

  it("stops the job it runs when GitHub cancels it (JobCancellation), then exits 0", async () => {
    const { twin, pat, hooks } = await gitHub({ jobDurationMs: 30_000 });
    const box = await container(LATEST_RUNNER_VERSION);
    const runner = box.run(RUN_JIT_FILES, { env: { JITCONFIG: await jitConfig(twin, pat, "cancel-1") } });
    await runner.printed("Listening for Jobs");
    const job = await twin.queueJob({ repo: "octo-org/app", labels: ["gpu"] });
    await runner.printed("Running job: build");
    await twin.cancelJob(job.id);
    expect((await runner.exited).code, runner.output()).toBe(0);
    expect(runner.output()).toContain("Job build completed with result: Canceled");
    await twin.deliveriesSettled();
    expect(twin.jobs()).toMatchObject([{ id: job.id, status: "completed", conclusion: "cancelled" }]);
    expect(hooks.received.filter((h) => h.jobId === job.id).map((h) => h.action)).toEqual(["queued", "in_progress", "completed"]);
    expect(twin.runners()).toEqual([]);
  });

  it("exits 0 and cleans up its config when its registration is deleted while it waits", async () => {
    const { twin, pat } = await gitHub();
    const box = await container(LATEST_RUNNER_VERSION);
    const runner = box.run(RUN_JIT_FILES, { env: { JITCONFIG: await jitConfig(twin, pat, "gone-1") } });
    await runner.printed("Listening for Jobs");
    const [registered] = twin.runners();
    const res = await fetch(`${twin.url}/repos/octo-org/app/actions/runners/${registered!.id}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${pat}` },
    });
    expect(res.status).toBe(204);
    expect((await runner.exited).code, runner.output()).toBe(0);
    expect(runner.output()).toContain("The runner no longer exists on the server. Cleaning up local configuration.");
    await expect(readFile(join(box.workdir, ".runner"))).rejects.toThrow(/ENOENT/);
  });

  it("refuses to run as root, with the real messages", async () => {
    await gitHub();
    const box = await container(LATEST_RUNNER_VERSION);
    const config = box.run("./config.sh --unattended --url http://127.0.0.1:1/octo-org/app --token T", { asUser: false });
    expect(await config.exited).toEqual({ code: 1, signal: null });
    expect(config.output()).toBe("Must not run with sudo\n");
    const run = box.run("./run.sh", { asUser: false });
    expect(await run.exited).toEqual({ code: 1, signal: null });
    expect(run.output()).toContain("Must not run interactively with sudo");
    const allowed = box.run("./config.sh --version", { asUser: false, env: { RUNNER_ALLOW_RUNASROOT: "1" } });
    expect((await allowed.exited).code).toBe(0);
  });
});
