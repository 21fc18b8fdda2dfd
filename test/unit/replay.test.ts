import { describe, expect, it } from "vitest";
import { isTransient } from "../../src/core/errors.js";
import type { ServePolicy } from "../../src/core/event-decision.js";
import type { WorkflowJob } from "../../src/core/job-event.js";
import { JobEventHandler } from "../../src/intake/event-handler.js";
import { provisionRunner } from "../../src/provisioning/provision.js";
import { Reconciler } from "../../src/reconciling/reconciler.js";
import { addRunnerJob, type FakeDeps, fakeDeps, PREFIX, runnerClass } from "../fakes/deps.js";
import { fakeProvisioner } from "../fakes/provisioner.js";
import { reconcilerOptions } from "../fakes/reconciler-options.js";
import { workflowJob } from "../harness/fixtures.js";

// Issue 13 (4): a replayed `queued` delivery of a job whose runner job Nomad no longer remembers
// issues no credential and dispatches nothing; GitHub is asked only when Nomad cannot tell.

const RETENTION = 600_000;
const runner = `${PREFIX}-42`;
/** Queued long before RUNNER_RETENTION: any runner job it had may have been purged. */
const oldJob = workflowJob({ id: 42, createdAt: new Date(Date.now() - 2 * RETENTION).toISOString() });
/** Queued just now: a runner job it had would still be in Nomad. */
const youngJob = workflowJob({ id: 42 });

function deps(): FakeDeps {
  return fakeDeps({ retentionMs: RETENTION });
}

/** Nothing was spent on the job: no credential, no Vault write, no dispatch. */
function expectNothingIssued(d: FakeDeps): void {
  expect(d.github.faults.count("createJitRunner") + d.github.faults.count("registrationToken")).toBe(0);
  expect(d.vault.faults.calls).toEqual([]);
  expect(d.nomad.faults.count("dispatch")).toBe(0);
  expect(d.nomad.children).toEqual([]);
}

describe("provisionRunner and replayed deliveries", () => {
  it("provisions a young job without asking GitHub about it", async () => {
    const d = deps();
    expect(await provisionRunner(d, youngJob, runner)).toMatchObject({ status: "dispatched" });
    expect(d.github.faults.count("jobStatus")).toBe(0);
  });

  it.each(["completed", "in_progress", "waiting"] as const)(
    "refuses an old job GitHub says is %s: no credential, no Vault write, no dispatch",
    async (status) => {
      const d = deps();
      d.github.jobStatuses.set(42, status);
      expect(await provisionRunner(d, oldJob, runner)).toEqual({ status: "not-queued", jobStatus: status });
      expect(d.github.faults.count("jobStatus")).toBe(1);
      expectNothingIssued(d);
    },
  );

  it("refuses an old job GitHub does not know or hides from us (404)", async () => {
    const d = deps();
    expect(await provisionRunner(d, oldJob, runner)).toEqual({ status: "not-queued", jobStatus: "not-found" });
    expectNothingIssued(d);
  });

  it("provisions an old job GitHub says is still queued", async () => {
    const d = deps();
    d.github.queue(oldJob);
    expect(await provisionRunner(d, oldJob, runner)).toMatchObject({ status: "dispatched" });
    expect(d.github.faults.count("jobStatus")).toBe(1);
    expect(d.vault.secrets.has(runner)).toBe(true);
  });

  it("does not ask GitHub about an old job the caller just saw queued there (the reconciler's plan)", async () => {
    const d = deps();
    expect(await provisionRunner(d, oldJob, runner, { seenQueued: true })).toMatchObject({ status: "dispatched" });
    expect(d.github.faults.count("jobStatus")).toBe(0);
  });

  it("answers a repeat of an old job from Nomad while its runner job is there, without asking GitHub", async () => {
    const d = deps();
    const existing = addRunnerJob(d, 42, "acme/app", { Status: "dead" });
    expect(await provisionRunner(d, oldJob, runner)).toEqual({ status: "duplicate", nomadJobId: existing });
    expect(d.github.faults.calls).toEqual([]);
  });

  it("fails closed when GitHub cannot be asked: nothing issued, and the error is one to retry", async () => {
    const d = deps();
    d.github.queue(oldJob);
    d.github.faults.transient("jobStatus", d.settings.retry.retries + 1);
    const failure = await provisionRunner(d, oldJob, runner).catch((err: unknown) => err);
    expect(isTransient(failure)).toBe(true);
    expectNothingIssued(d);
  });
});

const policy: ServePolicy = { classes: [runnerClass()], allowedOwners: [], allowedRepos: [] };
const queuedEvent = (job: WorkflowJob) => ({ action: "queued" as const, job });

describe("a replayed queued delivery, end to end on the fakes", () => {
  it("is answered 'ignored' with GitHub's status, and counted once", async () => {
    const d = deps();
    d.github.jobStatuses.set(42, "completed");
    const refused: string[] = [];
    const { provisioner } = fakeProvisioner(d, undefined, { notQueued: (status) => refused.push(status) });
    const handler = new JobEventHandler(d, policy, provisioner);
    expect(await handler.handle(queuedEvent(oldJob))).toEqual({ outcome: "ignored", reason: "replayed delivery: the job is completed at GitHub" });
    expect(refused).toEqual(["completed"]);
    expectNothingIssued(d);
  });

  it("a job that really is queued is not lost when GitHub could not be asked: the reconciler's pass provisions it without asking again", async () => {
    const d = deps();
    d.github.queue(oldJob);
    d.github.faults.transient("jobStatus", d.settings.retry.retries + 1);
    const { provisioner, backlog } = fakeProvisioner(d);
    const handler = new JobEventHandler(d, policy, provisioner);
    // The delivery fails (the HTTP layer answers 503) and the backlog is asked for a pass.
    await expect(handler.handle(queuedEvent(oldJob))).rejects.toThrow(/jobStatus: 503/);
    expect(backlog.passes).toBe(1);
    expectNothingIssued(d);

    const reconciler = new Reconciler(d, policy, reconcilerOptions({ retentionMs: RETENTION }), provisioner);
    const asked = d.github.faults.count("jobStatus");
    expect((await reconciler.runOnce()).errors).toEqual([]);
    await provisioner.queue.close(1_000);
    expect(d.nomad.children.map((c) => c.Meta.runner_name)).toEqual([runner]);
    expect(d.github.faults.count("jobStatus")).toBe(asked);
  });
});
