import { describe, expect, it } from "vitest";
import type { AttemptMemory } from "../../src/provisioning/credential.js";
import { DispatchQueue } from "../../src/provisioning/dispatch-queue.js";
import { provisionRunner } from "../../src/provisioning/provision.js";
import { type FakeDeps, fakeDeps, PREFIX } from "../fakes/deps.js";
import { workflowJob } from "../harness/fixtures.js";

// Issue 16 (1): an attempt can fail, or simply stop (a crash), between any two of its writes;
// the next attempt finishes or redoes it at once, with exactly one runner in the end and no
// more than twice the fault-free credential requests at GitHub.

const job = workflowJob({ id: 42, owner: "acme", repo: "app" });
const runner = `${PREFIX}-42`;
/** Job queued a minute ago: an attempt looks at the registration before asking for a credential. */
const oldJob = workflowJob({ id: 42, owner: "acme", repo: "app", createdAt: new Date(Date.now() - 60_000).toISOString() });

/** Resolves never: the attempt stops right there, as if its process died. */
const crash = () => new Promise<never>(() => undefined);

/** One runner for the job: one runner job, and Vault holds the credential of the registration GitHub has. */
function expectOneRunner(deps: FakeDeps): void {
  expect(deps.nomad.children.filter((c) => c.Meta.runner_name === runner && !c.Stop)).toHaveLength(1);
  const registered = deps.github.runners.get("acme/app") ?? [];
  expect(registered).toHaveLength(1);
  expect(deps.vault.secrets.get(runner)).toMatchObject({ kind: "jit", runner_id: registered[0]!.id });
}

const jitRequests = (deps: FakeDeps) => deps.github.faults.count("createJitRunner");

describe("resumable provisioning: failure after registration", () => {
  it("Vault down right after the JIT config was issued: the next attempt of this process writes the credential it holds (one JIT request in all)", async () => {
    const deps = fakeDeps();
    const memory: AttemptMemory = {};
    deps.vault.faults.transient("putRunnerSecret", 5);
    await expect(provisionRunner(deps, job, runner, { memory })).rejects.toThrow(/503/);
    expect(memory.held?.runnerId).toBe(1);
    // Vault is back: a redelivery (or the reconciler) in this process.
    expect(await provisionRunner(deps, job, runner, { memory })).toMatchObject({ status: "dispatched" });
    expectOneRunner(deps);
    expect(jitRequests(deps)).toBe(1);
    expect(deps.github.faults.count("deleteRunner")).toBe(0);
    expect(memory.held).toBeUndefined();
  });

  it("the attempt stops after registration (crash): another replica reissues the orphan at once, claim first", async () => {
    const deps = fakeDeps();
    const put = deps.vault.putRunnerSecret.bind(deps.vault);
    deps.vault.putRunnerSecret = crash;
    void provisionRunner(deps, job, runner);
    await new Promise((r) => setTimeout(r, 10));
    deps.vault.putRunnerSecret = put;
    // A redelivery of a young job: its credential request is refused (409), then the facts decide.
    expect(await provisionRunner(deps, job, runner)).toMatchObject({ status: "dispatched" });
    expectOneRunner(deps);
    expect(deps.github.faults.count("deleteRunner")).toBe(1);
    expect(deps.vault.faults.calls).toContain("claimRunnerSecret");
  });

  it("the reconciler (or an old job's delivery) looks first: the crash costs one more JIT request, not a refused one besides", async () => {
    const deps = fakeDeps();
    const put = deps.vault.putRunnerSecret.bind(deps.vault);
    deps.vault.putRunnerSecret = crash;
    void provisionRunner(deps, oldJob, runner, { seenQueued: true });
    await new Promise((r) => setTimeout(r, 10));
    deps.vault.putRunnerSecret = put;
    expect(await provisionRunner(deps, oldJob, runner, { seenQueued: true })).toMatchObject({ status: "dispatched" });
    expectOneRunner(deps);
    expect(jitRequests(deps)).toBe(2);
  });
});

describe("resumable provisioning: failure mid-way through a reissue", () => {
  it("GitHub fails after the claim: this process's next attempt carries on from its own claim at once; another waits for it", async () => {
    const deps = fakeDeps();
    deps.github.register(job, runner);
    const memory: AttemptMemory = {};
    deps.github.faults.transient("deleteRunner", 5);
    await expect(provisionRunner(deps, oldJob, runner, { seenQueued: true, memory })).rejects.toThrow(/503/);
    expect(deps.vault.claims.has(runner)).toBe(true);
    // Another replica respects the young claim: no delete, no JIT request.
    expect(await provisionRunner(deps, oldJob, runner, { seenQueued: true })).toEqual({ status: "in-flight" });
    expect(await provisionRunner(deps, oldJob, runner, { seenQueued: true, memory })).toMatchObject({ status: "dispatched" });
    expectOneRunner(deps);
    expect(jitRequests(deps)).toBe(1);
    expect(memory).toEqual({});
  });
});

describe("resumable provisioning: failure after the secret write", () => {
  it("the attempt stops after writing the credential: the next one dispatches from Vault, no new credential", async () => {
    const deps = fakeDeps();
    deps.nomad.dispatch = crash;
    void provisionRunner(deps, job, runner);
    await new Promise((r) => setTimeout(r, 10));
    expect(deps.vault.secrets.has(runner)).toBe(true);
    const fresh = fakeDeps();
    deps.nomad.dispatch = fresh.nomad.dispatch.bind(deps.nomad);
    expect(await provisionRunner(deps, job, runner)).toMatchObject({ status: "dispatched" });
    expectOneRunner(deps);
    expect(deps.github.faults.count("deleteRunner")).toBe(0);
    // The young job's redelivery asks once (409); an old one looks instead.
    expect(jitRequests(deps)).toBe(2);
  });

  it("Nomad down after the write: the next attempt dispatches with what Vault has (old job: one JIT request in all)", async () => {
    const deps = fakeDeps();
    deps.nomad.faults.transient("dispatch", 5);
    await expect(provisionRunner(deps, oldJob, runner, { seenQueued: true })).rejects.toThrow(/503/);
    expect(await provisionRunner(deps, oldJob, runner, { seenQueued: true })).toMatchObject({ status: "dispatched" });
    expectOneRunner(deps);
    expect(jitRequests(deps)).toBe(1);
  });
});

describe("resumable provisioning: the dispatch was sent, its answer lost", () => {
  it("the next attempt finds the runner job (a duplicate) and asks GitHub for nothing", async () => {
    const deps = fakeDeps();
    const dispatch = deps.nomad.dispatch.bind(deps.nomad);
    deps.nomad.dispatch = async (...args) => {
      await dispatch(...args);
      throw Object.assign(new Error("socket hang up"), { code: "ECONNRESET" });
    };
    await expect(provisionRunner(deps, job, runner)).rejects.toThrow(/hang up/);
    deps.nomad.dispatch = dispatch;
    expect(await provisionRunner(deps, job, runner)).toMatchObject({ status: "duplicate" });
    expectOneRunner(deps);
    expect(jitRequests(deps)).toBe(1);
  });
});

describe("resumable provisioning: an attempt mid-way and one that takes it for an orphan", () => {
  /** Attempt A registers and stops before its write until `release`; returns A's outcome. */
  function pauseBeforeWrite(deps: FakeDeps) {
    const put = deps.vault.putRunnerSecret.bind(deps.vault);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let paused!: () => void;
    const reached = new Promise<void>((r) => (paused = r));
    let first = true;
    deps.vault.putRunnerSecret = async (...args) => {
      if (first) {
        first = false;
        paused();
        await gate;
      }
      return put(...args);
    };
    return { reached, release };
  }

  it("B reissues while A is paused before its write: A's late write fails on B's version, A dispatches B's credential", async () => {
    const deps = fakeDeps();
    const a = pauseBeforeWrite(deps);
    const attemptA = provisionRunner(deps, job, runner);
    await a.reached;
    const attemptB = await provisionRunner(deps, job, runner);
    expect(attemptB).toMatchObject({ status: "dispatched" });
    a.release();
    expect(await attemptA).toMatchObject({ status: "duplicate" });
    expectOneRunner(deps);
  });

  it("A writes between B's look and B's claim: B's claim fails, and B resumes from A's credential instead of deleting A's runner", async () => {
    const deps = fakeDeps();
    const a = pauseBeforeWrite(deps);
    const attemptA = provisionRunner(deps, job, runner);
    await a.reached;
    const claim = deps.vault.claimRunnerSecret.bind(deps.vault);
    deps.vault.claimRunnerSecret = async (...args) => {
      // B decided to reissue; A's write lands first.
      a.release();
      await attemptA;
      return claim(...args);
    };
    expect(await provisionRunner(deps, job, runner)).toMatchObject({ status: "duplicate" });
    expect(await attemptA).toMatchObject({ status: "dispatched" });
    expect(deps.github.faults.count("deleteRunner")).toBe(0);
    expectOneRunner(deps);
  });
});

describe("per-job backoff", () => {
  it("a job whose attempts fail is attempted again only after its backoff, so it cannot loop against GitHub", async () => {
    const deps = fakeDeps();
    deps.github.faults.permanent("createJitRunner");
    deps.github.faults.permanent("createJitRunner");
    const queue = new DispatchQueue(deps, { maxJobs: 10, concurrencyPerLane: 4, answerWithinMs: 1_000, backoff: { baseMs: 200, maxMs: 400 } });
    await expect(queue.enqueue(job, runner)!.outcome).rejects.toThrow(/403/);
    const started = Date.now();
    await expect(queue.enqueue(job, runner)!.outcome).rejects.toThrow(/403/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    const again = Date.now();
    expect(await queue.enqueue(job, runner)!.outcome).toMatchObject({ status: "dispatched" });
    expect(Date.now() - again).toBeGreaterThanOrEqual(390);
    expect(jitRequests(deps)).toBe(3);
    // Success forgets the job: its next attempt (a repeat) starts at once.
    const repeat = Date.now();
    expect(await queue.enqueue(job, runner)!.outcome).toMatchObject({ status: "duplicate" });
    expect(Date.now() - repeat).toBeLessThan(150);
  });

  it("keeps the credential of a failed attempt for the job's next attempt in this process", async () => {
    const deps = fakeDeps();
    deps.vault.faults.transient("putRunnerSecret", 5);
    const queue = new DispatchQueue(deps, { maxJobs: 10, concurrencyPerLane: 4, answerWithinMs: 1_000, backoff: { baseMs: 10, maxMs: 10 } });
    await expect(queue.enqueue(job, runner)!.outcome).rejects.toThrow(/503/);
    expect(await queue.enqueue(job, runner)!.outcome).toMatchObject({ status: "dispatched" });
    expect(jitRequests(deps)).toBe(1);
    expectOneRunner(deps);
  });
});

describe("looking at GitHub's registration first: judged when this process first hears of the job", () => {
  const findRunnerReads = (deps: FakeDeps) => deps.github.faults.count("findRunner");

  it("a job that waited in this process (a burst paced by the budget) is not looked up however old it is by its turn", async () => {
    const deps = fakeDeps();
    // Heard of by webhook when one second old; its turn comes a minute later, the reconciler's plan joined meanwhile.
    const memory: AttemptMemory = { firstHeard: { at: Date.parse(oldJob.createdAt) + 1_000, seenQueued: false } };
    expect(await provisionRunner(deps, oldJob, runner, { seenQueued: true, memory })).toMatchObject({ status: "dispatched" });
    expect(findRunnerReads(deps)).toBe(0);
    expect(jitRequests(deps)).toBe(1);
  });

  it("a job first heard of from GitHub's queue (the reconciler), or already old, or attempted here before, is looked up first", async () => {
    for (const memory of [
      { firstHeard: { at: Date.parse(oldJob.createdAt) + 1_000, seenQueued: true } },
      { firstHeard: { at: Date.parse(oldJob.createdAt) + 30_000, seenQueued: false } },
      { firstHeard: { at: Date.parse(oldJob.createdAt) + 1_000, seenQueued: false }, attemptedHere: true },
    ] satisfies AttemptMemory[]) {
      const deps = fakeDeps();
      expect(await provisionRunner(deps, oldJob, runner, { memory: { ...memory } })).toMatchObject({ status: "dispatched" });
      expect(findRunnerReads(deps)).toBe(1);
    }
  });

  it("the dispatch queue remembers the first hearing and marks a failed attempt, so the retry looks first", async () => {
    const deps = fakeDeps();
    deps.vault.faults.transient("putRunnerSecret", 5);
    const queue = new DispatchQueue(deps, { maxJobs: 10, concurrencyPerLane: 4, answerWithinMs: 1_000, backoff: { baseMs: 10, maxMs: 10 } });
    await expect(queue.enqueue(job, runner)!.outcome).rejects.toThrow(/503/);
    expect(findRunnerReads(deps)).toBe(0);
    expect(await queue.enqueue(job, runner, { seenQueued: true })!.outcome).toMatchObject({ status: "dispatched" });
    expect(findRunnerReads(deps)).toBe(1);
    expect(jitRequests(deps)).toBe(1);
  });
});
