import { afterEach, describe, expect, it, vi } from "vitest";
import type { WorkflowJob } from "../../src/core/job-event.js";
import { Budget } from "../../src/github/budget.js";
import { createLogger } from "../../src/log.js";
import type { RunnerDeps } from "../../src/ports/index.js";
import { DispatchQueue, type QueueOutcome } from "../../src/provisioning/dispatch-queue.js";
import type { ProvisionOptions, ProvisionOutcome } from "../../src/provisioning/provision.js";
import { workflowJob } from "../harness/fixtures.js";

afterEach(() => vi.useRealTimers());

const job = (id: number, installationId?: number) => workflowJob({ id, runId: id, installationId });

/** A provision whose calls the test finishes by hand. */
function manualProvision() {
  const calls: Array<{ runner: string; opts: ProvisionOptions; resolve: (o: ProvisionOutcome) => void; reject: (e: unknown) => void }> = [];
  const provision = (_deps: RunnerDeps, _job: WorkflowJob, runner: string, opts: ProvisionOptions) =>
    new Promise<ProvisionOutcome>((resolve, reject) => calls.push({ runner, opts, resolve, reject }));
  return { calls, provision };
}

function setup(opts: { concurrencyPerLane?: number; maxJobs?: number; answerWithinMs?: number; budget?: Budget } = {}) {
  const budget = opts.budget ?? new Budget({ pointsPerMinute: 900, maxConcurrent: 100 });
  const deps = {
    log: createLogger({ level: "silent" }),
    github: {
      budgetKey: (t: { installationId?: number }) => (t.installationId === undefined ? "pat" : `installation:${t.installationId}`),
      budgetFor: () => budget,
    },
  } as unknown as RunnerDeps;
  const { calls, provision } = manualProvision();
  const queue = new DispatchQueue(
    deps,
    { maxJobs: opts.maxJobs ?? 100, concurrencyPerLane: opts.concurrencyPerLane ?? 2, answerWithinMs: opts.answerWithinMs ?? 1_000 },
    provision,
  );
  const settled: Array<[string, QueueOutcome | string]> = [];
  queue.onSettled((_job, runner, result) => settled.push([runner, "outcome" in result ? result.outcome : `error: ${String(result.error)}`]));
  return { queue, calls, settled, budget };
}

const flush = () => new Promise((r) => setImmediate(r));

describe("DispatchQueue", () => {
  it("answers a delivery with the dispatch when its job starts at once and finishes in time", async () => {
    const { queue, calls } = setup();
    const ticket = queue.enqueue(job(1), "r-1")!;
    const answer = queue.answer("r-1", ticket);
    calls[0]!.resolve({ status: "dispatched", nomadJobId: "child-1" });
    expect(await answer).toEqual({ status: "dispatched", nomadJobId: "child-1" });
  });

  it("provisions a job the reconciler's plan joined while it waited as seen queued at GitHub (no second look-up)", async () => {
    const { queue, calls } = setup({ concurrencyPerLane: 1 });
    queue.enqueue(job(1), "r-1");
    queue.enqueue(job(2), "r-2");
    expect(queue.enqueue(job(2), "r-2", { seenQueued: true })?.joined).toBe(true);
    queue.enqueue(job(3), "r-3");
    calls[0]!.resolve({ status: "dispatched", nomadJobId: "c1" });
    await flush();
    calls[1]!.resolve({ status: "dispatched", nomadJobId: "c2" });
    await flush();
    expect(calls.map((c) => [c.runner, c.opts])).toEqual([
      ["r-1", { seenQueued: false, memory: { firstHeard: { at: expect.any(Number), seenQueued: false } } }],
      // First heard of from a webhook: whether someone else attempted it is judged from then.
      ["r-2", { seenQueued: true, memory: { firstHeard: { at: expect.any(Number), seenQueued: false } } }],
      ["r-3", { seenQueued: false, memory: { firstHeard: { at: expect.any(Number), seenQueued: false } } }],
    ]);
  });

  it("answers 'queued' at once for a job that waits behind others, and provisions it later", async () => {
    const { queue, calls, settled } = setup({ concurrencyPerLane: 1 });
    queue.enqueue(job(1), "r-1");
    const second = queue.enqueue(job(2), "r-2")!;
    expect(await queue.answer("r-2", second)).toEqual({ status: "queued", position: 1 });
    expect(calls.map((c) => c.runner)).toEqual(["r-1"]);
    calls[0]!.resolve({ status: "dispatched", nomadJobId: "c1" });
    await flush();
    expect(calls.map((c) => c.runner)).toEqual(["r-1", "r-2"]);
    calls[1]!.resolve({ status: "dispatched", nomadJobId: "c2" });
    expect(await second.outcome).toEqual({ status: "dispatched", nomadJobId: "c2" });
    expect(settled.map(([r]) => r)).toEqual(["r-1", "r-2"]);
  });

  it("answers 'queued' at once when GitHub's rate limit has no room for a credential", async () => {
    const budget = new Budget({ pointsPerMinute: 10, maxConcurrent: 100 });
    budget.claim(5);
    const { queue } = setup({ budget });
    const ticket = queue.enqueue(job(1), "r-1")!;
    expect(await queue.answer("r-1", ticket)).toEqual({ status: "queued", position: 0 });
  });

  it("answers 'queued' when the dispatch takes longer than answerWithinMs, and still reports it", async () => {
    vi.useFakeTimers();
    const { queue, calls, settled } = setup({ answerWithinMs: 1_000 });
    const ticket = queue.enqueue(job(1), "r-1")!;
    const answer = queue.answer("r-1", ticket);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(await answer).toEqual({ status: "queued", position: 0 });
    calls[0]!.resolve({ status: "dispatched", nomadJobId: "c1" });
    await vi.advanceTimersByTimeAsync(0);
    expect(settled).toEqual([["r-1", { status: "dispatched", nomadJobId: "c1" }]]);
  });

  it("a failure within answerWithinMs reaches the delivery (503) and the hook; nothing is left unhandled", async () => {
    const { queue, calls, settled } = setup();
    const ticket = queue.enqueue(job(1), "r-1")!;
    const answer = queue.answer("r-1", ticket);
    calls[0]!.reject(new Error("nomad has no leader"));
    await expect(answer).rejects.toThrow("no leader");
    expect(settled).toEqual([["r-1", "error: Error: nomad has no leader"]]);
  });

  it("provisions a job once however often it is queued", async () => {
    const { queue, calls } = setup();
    const first = queue.enqueue(job(1), "r-1")!;
    const again = queue.enqueue(job(1), "r-1")!;
    expect(again.joined).toBe(true);
    expect(calls).toHaveLength(1);
    calls[0]!.resolve({ status: "dispatched", nomadJobId: "c1" });
    expect(await again.outcome).toEqual(await first.outcome);
  });

  it("is bounded: a full queue refuses (the job stays queued at GitHub for the reconciler)", () => {
    const { queue } = setup({ maxJobs: 2, concurrencyPerLane: 1 });
    expect(queue.enqueue(job(1), "r-1")).toBeDefined();
    expect(queue.enqueue(job(2), "r-2")).toBeDefined();
    expect(queue.enqueue(job(3), "r-3")).toBeUndefined();
    expect(queue.size).toEqual({ waiting: 1, running: 1 });
  });

  it("keeps budgets apart: a starved installation does not hold up another", () => {
    const { queue, calls } = setup({ concurrencyPerLane: 1 });
    queue.enqueue(job(1, 7), "r-1");
    queue.enqueue(job(2, 7), "r-2");
    queue.enqueue(job(3, 8), "r-3");
    expect(calls.map((c) => c.runner)).toEqual(["r-1", "r-3"]);
  });

  it("cancels a job that has not started (its job completed meanwhile)", async () => {
    const { queue, calls, settled } = setup({ concurrencyPerLane: 1 });
    queue.enqueue(job(1), "r-1");
    const second = queue.enqueue(job(2), "r-2")!;
    expect(queue.cancel("r-1", "done")).toBe(false); // running: provisioning finishes
    expect(queue.cancel("r-2", "job 2 completed")).toBe(true);
    expect(await second.outcome).toEqual({ status: "cancelled", reason: "job 2 completed" });
    calls[0]!.resolve({ status: "dispatched", nomadJobId: "c1" });
    await flush();
    expect(calls).toHaveLength(1);
    expect(settled.map(([r]) => r)).toEqual(["r-2", "r-1"]);
  });

  it("on close cancels what waits, gives what runs time to finish, and takes nothing new", async () => {
    const { queue, calls } = setup({ concurrencyPerLane: 1 });
    const first = queue.enqueue(job(1), "r-1")!;
    const second = queue.enqueue(job(2), "r-2")!;
    const closing = queue.close(5_000);
    expect(await second.outcome).toEqual({ status: "cancelled", reason: "shutting down" });
    expect(queue.enqueue(job(3), "r-3")).toBeUndefined();
    calls[0]!.resolve({ status: "dispatched", nomadJobId: "c1" });
    await closing;
    expect(await first.outcome).toEqual({ status: "dispatched", nomadJobId: "c1" });
    expect(calls).toHaveLength(1);
  });
});
