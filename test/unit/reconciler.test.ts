import { describe, expect, it, onTestFinished, vi } from "vitest";
import type { ServePolicy } from "../../src/core/event-decision.js";
import type { WorkflowJob } from "../../src/core/job-event.js";
import type { NeedOptions, NeedOutcome } from "../../src/provisioning/provisioner.js";
import { Reconciler, type ReconcilerOptions } from "../../src/reconciling/reconciler.js";
import { PassScheduler } from "../../src/reconciling/scheduler.js";
import { addRunnerJob, type FakeDeps, fakeDeps, PREFIX, runnerClass } from "../fakes/deps.js";
import { fakeProvisioner } from "../fakes/provisioner.js";
import { reconcilerOptions as options } from "../fakes/reconciler-options.js";
import { workflowJob } from "../harness/fixtures.js";

const policy: ServePolicy = { classes: [runnerClass()], allowedOwners: [], allowedRepos: [] };
const target = { owner: "acme", repo: "app" };

/** The entry point as the reconciler sees it, recording what it asked for. */
class RecordingDemand {
  readonly asked: Array<{ job: WorkflowJob; runnerName: string; opts?: NeedOptions }> = [];
  answer: NeedOutcome = { status: "queued", position: 0 };

  readonly waits: Array<{ runnerName: string; cap: string }> = [];
  readonly listed: Array<{ repo: string; runnerNames: string[] }> = [];

  async needsRunner(job: WorkflowJob, runnerName: string, opts?: NeedOptions): Promise<NeedOutcome> {
    this.asked.push({ job, runnerName, opts });
    return this.answer;
  }

  waitsForCapacity(_job: WorkflowJob, runnerName: string, cap: string): void {
    this.waits.push({ runnerName, cap });
  }

  stillQueued(repo: string, runnerNames: ReadonlySet<string>): void {
    this.listed.push({ repo, runnerNames: [...runnerNames] });
  }

  readonly fills: Array<{ poolRepo: string; runnerName: string }> = [];
  async fillPool(_target: unknown, poolRepo: string, runnerName: string): Promise<"dispatched"> {
    this.fills.push({ poolRepo, runnerName });
    return "dispatched";
  }
}

function setup(deps: FakeDeps = fakeDeps(), opts: Partial<ReconcilerOptions> = {}) {
  const demand = new RecordingDemand();
  return { deps, demand, reconciler: new Reconciler(deps, policy, options(opts), demand) };
}

describe("Reconciler", () => {
  it("asks the shared entry point for a runner for a queued job that has none, as planned capacity", async () => {
    const { deps, demand, reconciler } = setup();
    deps.github.queue(workflowJob({ id: 11 }));
    const report = await reconciler.runOnce();
    expect(report.errors).toEqual([]);
    expect(demand.asked).toEqual([{ job: expect.objectContaining({ id: 11 }), runnerName: `${PREFIX}-11`, opts: { planned: true } }]);
    expect(report.actions.provision).toBe(1);
  });

  it("dispatches through the real provisioner and its dispatch queue", async () => {
    const deps = fakeDeps();
    const { provisioner } = fakeProvisioner(deps);
    const reconciler = new Reconciler(deps, policy, options(), provisioner);
    deps.github.queue(workflowJob({ id: 12 }));
    await reconciler.runOnce();
    await provisioner.queue.close(1_000);
    expect(deps.nomad.children.map((c) => c.Meta.runner_name)).toEqual([`${PREFIX}-12`]);
  });

  it("refuses above the per-repository cap, oldest job first", async () => {
    const { deps, demand, reconciler } = setup(fakeDeps(), { maxRunnersPerRepo: 2 });
    // Busy with a job: no spare to serve the queued ones.
    addRunnerJob(deps, 1);
    deps.github.register(target, `${PREFIX}-1`, { online: true, busy: true });
    deps.github.queue(workflowJob({ id: 30, createdAt: "2026-11-23T08:03:00Z" }));
    deps.github.queue(workflowJob({ id: 20, createdAt: "2026-11-23T08:02:00Z" }));
    await reconciler.runOnce();
    expect(demand.asked.map((a) => a.runnerName)).toEqual([`${PREFIX}-20`]);
  });

  it("counts a full dispatch queue as an error of the pass, to be tried again", async () => {
    const { deps, demand, reconciler } = setup();
    demand.answer = { status: "queue-full", waiting: 100, running: 4 };
    deps.github.queue(workflowJob({ id: 13 }));
    const report = await reconciler.runOnce();
    expect(report.errors).toEqual([expect.stringMatching(/dispatch queue full or closed \(100 waiting\)/)]);
  });

  it("removes what a dead runner job left (registration, credential), retrying transient failures", async () => {
    const { deps, reconciler } = setup();
    addRunnerJob(deps, 40, "acme/app", { Status: "dead" });
    deps.github.register(target, `${PREFIX}-40`);
    deps.vault.secrets.set(`${PREFIX}-40`, { kind: "jit", jitconfig: "x" });
    deps.github.faults.transient("deleteRunner");
    deps.vault.faults.transient("deleteRunnerSecret");
    const report = await reconciler.runOnce();
    expect(report.errors).toEqual([]);
    expect(report.actions.clean).toBe(1);
    expect(deps.github.runners.get("acme/app")).toEqual([]);
    expect(deps.vault.secrets.size).toBe(0);
  });

  it("releases an idle spare runner whose job is gone, and never a busy one", async () => {
    const { deps, reconciler } = setup();
    addRunnerJob(deps, 50);
    addRunnerJob(deps, 51);
    deps.github.register(target, `${PREFIX}-50`, { online: true });
    deps.github.register(target, `${PREFIX}-51`, { online: true, busy: true });
    const report = await reconciler.runOnce();
    expect(report.actions.release).toBe(1);
    expect(deps.github.runners.get("acme/app")!.map((r) => r.name)).toEqual([`${PREFIX}-51`]);
    expect(deps.nomad.children.filter((c) => !c.Stop).map((c) => c.Meta.runner_name)).toEqual([`${PREFIX}-51`]);
  });

  it("deletes a credential no runner job will use once it stayed so for the grace period", async () => {
    const { deps, reconciler } = setup(fakeDeps(), { graceMs: 60_000 });
    deps.vault.secrets.set(`${PREFIX}-60`, { kind: "jit", jitconfig: "x" });
    await reconciler.runOnce();
    // Another replica may be between Vault and Nomad: not yet.
    expect(deps.vault.secrets.has(`${PREFIX}-60`)).toBe(true);
    const { reconciler: patient } = setup(deps, { graceMs: 0 });
    await patient.runOnce();
    expect(deps.vault.secrets.has(`${PREFIX}-60`)).toBe(false);
  });

  it("redelivers only what the reconciler's share has room for this minute; the rest waits for a later run", async () => {
    // 12 points a minute, 2 kept for the delivery logs' listings: two redeliveries of 5 points.
    const { deps, reconciler } = setup(fakeDeps(), { scanPointsPerMinute: 12 });
    deps.github.redelivered = 5;
    await reconciler.redeliverNow();
    expect(deps.github.redeliveryCaps).toEqual([2]);
    // Those 10 points are spent within the minute: nothing more fits now.
    await reconciler.redeliverNow();
    expect(deps.github.redeliveryCaps).toEqual([2, 0]);
    // Without a share (tests, RECONCILE_POLL_SHARE off) nothing caps them.
    const { deps: free, reconciler: unpaced } = setup();
    free.github.redelivered = 5;
    await unpaced.redeliverNow();
    expect(free.github.redeliveryCaps).toEqual([Number.POSITIVE_INFINITY]);
  });

  it("keeps a pass going when one listing fails for good, reporting the error", async () => {
    const { deps, reconciler } = setup();
    deps.github.faults.permanent("redeliverFailedDeliveries");
    deps.github.queue(workflowJob({ id: 14 }));
    const report = await reconciler.runOnce();
    expect(report.errors).toEqual([expect.stringMatching(/403/)]);
    expect(report.actions.provision).toBe(1);
  });
});

describe("PassScheduler", () => {
  it("runs one pass at a time and coalesces the requests made during a pass into one more", async () => {
    let passes = 0;
    let release!: () => void;
    const scheduler = new PassScheduler(
      () => {
        passes += 1;
        return new Promise<void>((resolve) => (release = resolve));
      },
      async (pass) => {
        await pass();
        return { points: 0 };
      },
      { intervalMs: 3_600_000, minGapMs: 0 },
    );
    scheduler.start();
    scheduler.soon();
    scheduler.soon();
    expect(passes).toBe(1);
    release();
    await new Promise((r) => setTimeout(r, 10));
    expect(passes).toBe(2);
    release();
    await scheduler.stop();
    expect(passes).toBe(2);
  });

  it("spaces periodic passes by the reads the last one spent", async () => {
    const scheduler = new PassScheduler(
      async () => undefined,
      async (pass) => {
        await pass();
        return { points: 90 };
      },
      {
        intervalMs: 1_000,
        minGapMs: 0,
        readPaceMs: (points) => points * 1_000,
      },
    );
    expect(scheduler.nextPassInMs()).toBe(1_000);
    scheduler.start();
    await scheduler.idle();
    await new Promise((r) => setImmediate(r));
    expect(scheduler.nextPassInMs()).toBeGreaterThan(80_000);
    await scheduler.stop();
  });
});

describe("Reconciler with a share of the budget (scanPointsPerMinute)", () => {
  const repos = Array.from({ length: 10 }, (_, i) => `acme/r${i}`);

  it("lists only the repositories the share affords per pass, round-robin, and finds a job in the last one in time", async () => {
    // 12 points a minute, 80% planned with, 3 points a repository: three repositories a pass.
    const { deps, demand, reconciler } = setup(fakeDeps(), { staticRepos: repos, scanPointsPerMinute: 12 });
    // Each listing costs 3 points, as the estimate assumes.
    const listings = () => deps.github.faults.count("listQueuedJobs");
    deps.github.metered = async (fn) => {
      const before = listings();
      const result = await fn();
      return { result, points: 3 * (listings() - before) };
    };
    deps.github.queue(workflowJob({ id: 77, owner: "acme", repo: "r9" }));
    vi.useFakeTimers({ toFake: ["Date"] });
    onTestFinished(() => void vi.useRealTimers());
    const listed: number[] = [];
    for (let pass = 0; pass < 4; pass++) {
      const before = listings();
      const report = await reconciler.runOnce();
      expect(report.errors).toEqual([]);
      listed.push(listings() - before);
      expect(report.scanned).toBe(listed.at(-1));
      // A pass right after lists nothing: the minute's share is spent.
      expect((await reconciler.runOnce()).scanned).toBe(0);
      vi.advanceTimersByTime(60_000);
    }
    expect(listed).toEqual([3, 3, 3, 3]);
    expect(demand.asked.map((a) => a.job.id)).toEqual([77]);
  });

  it("lists nothing once the share is spent, and then releases no runner of a repository it did not list", async () => {
    const { deps, reconciler } = setup(fakeDeps(), { staticRepos: ["acme/app"], scanPointsPerMinute: 10 });
    // Every read costs more than the whole share.
    deps.github.metered = async (fn) => ({ result: await fn(), points: 100 });
    addRunnerJob(deps, 50);
    deps.github.register(target, `${PREFIX}-50`, { online: true });
    const report = await reconciler.runOnce();
    expect(report.scanned).toBe(0);
    expect(deps.github.faults.count("listQueuedJobs")).toBe(0);
    // Its job may still be queued: only a listing can tell.
    expect(report.actions.release).toBe(0);
    expect(deps.github.runners.get("acme/app")!.map((r) => r.name)).toEqual([`${PREFIX}-50`]);
  });

  it("an orphan registration's grace runs across the passes that list its repository, not from each one", async () => {
    // About one repository a pass: acme/a, acme/b, acme/a again a minute apart each.
    const { deps, reconciler } = setup(fakeDeps(), { staticRepos: ["acme/a", "acme/b"], scanPointsPerMinute: 4, graceMs: 60_000 });
    const listings = () => deps.github.faults.count("listQueuedJobs");
    deps.github.metered = async (fn) => {
      const before = listings();
      const result = await fn();
      return { result, points: 3 * (listings() - before) };
    };
    deps.github.register({ owner: "acme", repo: "a" }, `${PREFIX}-90`);
    vi.useFakeTimers({ toFake: ["Date"] });
    onTestFinished(() => void vi.useRealTimers());
    const cleaned: number[] = [];
    for (let pass = 0; pass < 3; pass++) {
      cleaned.push((await reconciler.runOnce()).actions.clean);
      vi.advanceTimersByTime(60_000);
    }
    expect(cleaned).toEqual([0, 0, 1]);
    expect(deps.github.runners.get("acme/a") ?? []).toEqual([]);
  });
});
