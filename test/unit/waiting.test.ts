import { describe, expect, it } from "vitest";
import { DependencyError } from "../../src/core/errors.js";
import { summarizeWaiting, type WaitingJob, waitReasonOf } from "../../src/core/waiting.js";
import type { Logger } from "../../src/log.js";
import { WaitingRoom } from "../../src/provisioning/waiting-room.js";
import { addRunnerJob, fakeDeps, PREFIX } from "../fakes/deps.js";
import { fakeProvisioner } from "../fakes/provisioner.js";
import { workflowJob } from "../harness/fixtures.js";

// Issue 16 (4): an operator sees which jobs wait for a runner and why, so nothing looks lost.

const NOW = Date.parse("2026-12-02T12:00:00Z");
const job = workflowJob({ id: 42, owner: "acme", repo: "app" });
const runner = `${PREFIX}-42`;

function recordingLog(): { log: Pick<Logger, "info">; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const info = (obj: Record<string, unknown>, msg: string) => lines.push({ ...obj, msg });
  return { log: { info } as unknown as Pick<Logger, "info">, lines };
}

describe("waitReasonOf", () => {
  it("names the system whose failure the job waits on, also when wrapped; anything else is 'error'", () => {
    expect(waitReasonOf(new DependencyError("vault", "sealed", 503, true))).toBe("vault");
    expect(waitReasonOf(new Error("retries exhausted", { cause: new DependencyError("nomad", "down", undefined, true) }))).toBe("nomad");
    expect(waitReasonOf(new DependencyError("github", "403", 403, false))).toBe("github");
    expect(waitReasonOf(new TypeError("x is undefined"))).toBe("error");
    expect(waitReasonOf("a string")).toBe("error");
  });
});

describe("summarizeWaiting", () => {
  const entry = (jobId: number, queuedAgoS: number, reason: WaitingJob["reason"], sinceAgoS = queuedAgoS): WaitingJob => ({
    runnerName: `r-${jobId}`,
    jobId,
    repo: "acme/app",
    queuedAt: new Date(NOW - queuedAgoS * 1000).toISOString(),
    reason,
    since: NOW - sinceAgoS * 1000,
  });

  it("counts by reason and lists the longest-waiting first, up to the limit", () => {
    const summary = summarizeWaiting([entry(1, 10, "vault"), entry(2, 300, "max-runners", 20), entry(3, 60, "vault")], NOW, 2);
    expect(summary.count).toBe(3);
    expect(summary.byReason).toEqual({ vault: 2, "max-runners": 1 });
    expect(summary.jobs).toEqual([
      { job: 2, repo: "acme/app", runner: "r-2", reason: "max-runners", waitingSeconds: 300, reasonSeconds: 20 },
      { job: 3, repo: "acme/app", runner: "r-3", reason: "vault", waitingSeconds: 60, reasonSeconds: 60 },
    ]);
  });

  it("is empty when nothing waits", () => {
    expect(summarizeWaiting([], NOW)).toEqual({ count: 0, byReason: {}, jobs: [] });
  });
});

describe("WaitingRoom", () => {
  it("logs one line when a job starts waiting and one when its reason changes, not one per report", () => {
    const { log, lines } = recordingLog();
    const room = new WaitingRoom(log);
    room.wait(job, runner, "capacity");
    room.wait(job, runner, "capacity");
    room.wait(job, runner, "max-runners");
    expect(lines).toEqual([
      expect.objectContaining({ msg: "job waiting for a runner", job: 42, repo: "acme/app", runner, reason: "capacity" }),
      expect.objectContaining({ msg: "job waiting for a runner", reason: "max-runners", was: "capacity" }),
    ]);
  });

  it("forgets a job its repository's listing no longer shows as queued, and only that repository's", () => {
    const room = new WaitingRoom(recordingLog().log);
    room.wait(job, runner, "vault");
    room.wait(workflowJob({ id: 7, owner: "acme", repo: "other" }), `${PREFIX}-7`, "vault");
    room.listed("ACME/app", new Set([`${PREFIX}-99`]));
    expect(room.summary().jobs.map((j) => j.job)).toEqual([7]);
  });
});

describe("the provisioner's waiting jobs", () => {
  it("over capacity: 'capacity', then the plan's cap; served: gone", async () => {
    const deps = fakeDeps();
    addRunnerJob(deps, 1);
    const { provisioner } = fakeProvisioner(deps, { maxRunners: 1, maxRunnersPerRepo: 5 });
    expect(await provisioner.needsRunner(job, runner)).toEqual({ status: "over-capacity" });
    expect(provisioner.waiting().byReason).toEqual({ capacity: 1 });
    provisioner.waitsForCapacity(job, runner, "max-runners");
    // A later refusal on the webhook path keeps the plan's more precise reason.
    expect(await provisioner.needsRunner(job, runner)).toEqual({ status: "over-capacity" });
    expect(provisioner.waiting().jobs).toEqual([expect.objectContaining({ job: 42, reason: "max-runners" })]);
    await provisioner.needsRunner(job, runner, { planned: true });
    await provisioner.queue.close(1_000);
    expect(provisioner.waiting().count).toBe(0);
  });

  it("a dependency that fails the attempt is the reason until the job is served", async () => {
    const deps = fakeDeps();
    deps.vault.faults.transient("putRunnerSecret", 5);
    const { provisioner } = fakeProvisioner(deps);
    // The delivery is answered with the failure (503: GitHub marks it failed).
    await expect(provisioner.needsRunner(job, runner)).rejects.toThrow(/503/);
    expect(provisioner.waiting().byReason).toEqual({ vault: 1 });
    expect(await provisioner.needsRunner(job, runner)).toMatchObject({ status: "dispatched" });
    expect(provisioner.waiting().count).toBe(0);
  });

  it("a job being provisioned here is not marked waiting for capacity by a plan that did not count it", async () => {
    const deps = fakeDeps();
    deps.github.faults.transient("createJitRunner", 1);
    const { provisioner } = fakeProvisioner(deps);
    const pending = provisioner.needsRunner(job, runner);
    provisioner.waitsForCapacity(job, runner, "max-runners");
    await pending;
    expect(provisioner.waiting().count).toBe(0);
  });

  it("a job that ends while it waits is no longer listed", async () => {
    const deps = fakeDeps();
    addRunnerJob(deps, 1);
    const { provisioner } = fakeProvisioner(deps, { maxRunners: 1, maxRunnersPerRepo: 5 });
    await provisioner.needsRunner(job, runner);
    provisioner.noLongerNeeded(runner, "job 42 completed");
    expect(provisioner.waiting().count).toBe(0);
  });

  it("jobs waiting in the dispatch queue for GitHub's rate limit are listed as 'github-budget'", async () => {
    const deps = fakeDeps();
    const { provisioner } = fakeProvisioner(deps);
    // The queue's lane lets 4 start at once; GitHub answers none of them yet.
    deps.github.createJitRunner = () => new Promise(() => undefined);
    const jobs = Array.from({ length: 6 }, (_, i) => workflowJob({ id: 100 + i, owner: "acme", repo: "app" }));
    for (const j of jobs) void provisioner.needsRunner(j, `${PREFIX}-${j.id}`);
    await new Promise((r) => setTimeout(r, 20));
    expect(provisioner.waiting().byReason).toEqual({ "github-budget": 2 });
  });
});
