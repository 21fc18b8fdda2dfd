// Repairs the chaos suite (test/chaos) showed were missing, each in isolation.
import { describe, expect, it } from "vitest";
import { jobFromRest } from "../../src/github/client.js";
import { provisionRunner } from "../../src/provisioning/provision.js";
import { startTestWorld } from "../harness/test-world.js";
import { eventually } from "../harness/world.js";
import type { TwinJob } from "../twins/github.js";

const labels = ["self-hosted", "nomad"];

describe("reconciler repairs", () => {
  it("deregisters an orphan runner registration that has no runner job and no credential", async () => {
    // What a provisioning leaves when it loses a race: its dispatch finds the job's runner job
    // already there (and already served), so the registration it created is never used.
    const w = await startTestWorld({ env: { RECONCILE_INTERVAL: "1", RECONCILE_GRACE: "1", ALLOWED_REPOS: "octo-org/app" } });
    const auth = w.config.github.auth;
    if (auth.kind !== "token") throw new Error("expected a PAT");
    const res = await fetch(`${w.github.url}/repos/octo-org/app/actions/runners/generate-jitconfig`, {
      method: "POST",
      headers: { authorization: `Bearer ${auth.token}`, "content-type": "application/json", accept: "application/vnd.github+json" },
      body: JSON.stringify({ name: "nomad-gha-31000000001", runner_group_id: 1, labels, work_folder: "_work" }),
    });
    expect(res.status).toBe(201);
    expect(w.github.runners().map((r) => r.name)).toEqual(["nomad-gha-31000000001"]);
    await eventually(() => w.github.runners().length === 0, "orphan registration removed", 10_000);
  });

  it("leaves a runner alone that another replica provisioned again after this pass saw its predecessor die", async () => {
    // No Nomad capacity: runner jobs stay pending, so nothing races the reconciler but the test.
    const w = await startTestWorld({ nomadSlots: 0, env: { RECONCILE_INTERVAL: "3600", ALLOWED_REPOS: "octo-org/app" } });
    const deps = w.service.deps;
    await w.service.reconciler.idle();
    const queued = await w.github.queueJob({ repo: "octo-org/app", labels });
    const name = `nomad-gha-${queued.id}`;
    const first = w.nomad.jobs().find((j) => j.ParentID === "github-runner")!;
    // Its runner job is stopped (gone for good); the job is still queued.
    await deps.nomad.stopJob(first.ID, { purge: false });

    // While this replica's pass observes (it has listed Nomad already), another replica cleans up
    // after that runner job and provisions the job again: new registration, credential, runner job.
    let other: Promise<unknown> | undefined;
    w.github.faults.intercept = ({ method, path }) => {
      if (other || method !== "GET" || path !== "/repos/octo-org/app/actions/runners") return undefined;
      other = (async () => {
        const target = { owner: "octo-org", repo: "app" };
        const registered = await deps.github.findRunner(target, name);
        if (registered) await deps.github.deleteRunner(target, registered.id);
        await deps.vault.deleteRunnerSecret(name);
        await deps.nomad.stopJob(first.ID, { purge: true });
        const job = jobFromRest(target, restOf(w.github.jobs().find((j) => j.id === queued.id)!));
        return provisionRunner(deps, job, name);
      })();
      return { delayMs: 1_000 };
    };
    const report = await w.service.reconciler.runOnce();
    expect(await other).toMatchObject({ status: "dispatched" });
    expect(report.errors).toEqual([]);
    // The new registration and credential are the new runner job's: untouched.
    const second = w.nomad.jobs().find((j) => j.ParentID === "github-runner" && j.Status !== "dead")!;
    expect(second.ID).not.toBe(first.ID);
    expect(w.github.runners().map((r) => r.name)).toEqual([name]);
    expect(w.vault.kvKeys().some((k) => k.endsWith(name))).toBe(true);
  });

  it("keeps a reconcile pass going through a sporadic GitHub failure while listing", async () => {
    const w = await startTestWorld({ env: { RECONCILE_INTERVAL: "3600", ALLOWED_REPOS: "octo-org/app" } });
    await w.service.reconciler.idle();
    const job = await w.github.queueJob({ repo: "octo-org/app", labels, deliver: false });
    let failed = 0;
    w.github.faults.intercept = ({ method, path }) => {
      if (method === "GET" && path === "/repos/octo-org/app/actions/runs" && failed === 0) {
        failed += 1;
        return { status: 502, headers: { "content-type": "application/json" }, body: JSON.stringify({ message: "Server Error" }) };
      }
      return undefined;
    };
    const report = await w.service.reconciler.runOnce();
    expect(failed).toBe(1);
    expect(report.errors).toEqual([]);
    expect(report.queued).toBe(1);
    await eventually(() => w.github.jobs().find((j) => j.id === job.id)?.status === "completed", "job served");
  });
});

/** The REST fields jobFromRest reads, from the twin's snapshot. */
function restOf(job: TwinJob) {
  return {
    id: job.id,
    run_id: job.run_id,
    status: job.status,
    conclusion: job.conclusion,
    labels: job.labels,
    runner_name: job.runner_name,
    created_at: job.created_at,
  };
}
