import { describe, expect, it } from "vitest";
import type { WorkflowJob } from "../../src/core/job-event.js";
import { poolRunnerName, poolSeatOfRunner, runnerOfDispatchedJob, scopeTag } from "../../src/core/naming.js";
import { type Memory, POOL_FILL_DELAY_MS, planReconcile, type ReconcileSettings, type RunnerChild, type World } from "../../src/core/reconcile-plan.js";
import { classOfRunner } from "../../src/core/runner-class.js";
import { poolKey, poolRepoOf, poolsOf } from "../../src/core/warm-pool.js";
import { runnerClass } from "../fakes/deps.js";
import { workflowJob } from "../harness/fixtures.js";

// Warm pools as the reconciler's plan keeps them (src/core/warm-pool.ts): which idle runners a pool
// keeps, which go, and which new ones it asks for, under every cap.

const NOW = Date.parse("2026-12-02T10:00:00Z");
const TTL = 3_600_000;
const pooled = runnerClass({ runnerPrefix: "r", pool: { minIdle: 2, idleTtlMs: TTL } });
const base: ReconcileSettings = {
  classes: [pooled],
  retentionMs: 600_000,
  graceMs: 60_000,
  maxRunners: Number.POSITIVE_INFINITY,
  maxRunnersPerRepo: Number.POSITIVE_INFINITY,
  registrationScope: "repo",
};
const seat = (repo: string, n: number) => poolRunnerName("r", repo, n);

function job(id: number, repo = "acme/app"): WorkflowJob {
  const [owner = "", name = ""] = repo.split("/");
  return workflowJob({ id, runId: id, owner, repo: name, createdAt: new Date(NOW - 1000).toISOString() });
}

function child(runnerName: string, opts: Partial<RunnerChild> = {}): RunnerChild {
  return {
    id: `github-runner/dispatch-${runnerName}-1-0a0a0a0a`,
    runnerName,
    jobId: 0,
    repo: "acme/app",
    cls: "default",
    alive: true,
    changedAt: NOW - 1000,
    ...opts,
  };
}

function world(overrides: Partial<World> = {}): World {
  return { now: NOW, queued: [], busyRunners: new Set(), children: [], secrets: [], inFlight: [], registered: [], served: ["acme/app"], ...overrides };
}

/** A memory in which every spare has been spare, and every pool short, for longer than the grace period. */
const graceOver = (w: World, s: ReconcileSettings): Memory => ({
  firstSeen: new Map([
    ...w.children.map((c) => [`spare:${c.runnerName}`, NOW - 120_000] as const),
    ...poolsOf(s.classes, s.registrationScope ?? "repo", w.served ?? []).map((p) => [`shortfall:${poolKey(p.cls.name, p.repo)}`, NOW - 120_000] as const),
  ]),
});
const plan = (w: World, s: Partial<ReconcileSettings> = {}, memory = graceOver(w, { ...base, ...s })) =>
  planReconcile(w, { ...base, ...s }, memory).map((a) => `${a.kind}:${"runnerName" in a ? a.runnerName : ""}`);

describe("pool runner names", () => {
  it("say their class and pool, and no job: a seat per pool, the pool's scope hashed in", () => {
    const name = seat("acme/app", 3);
    expect(name).toBe(`r-pool-${scopeTag("acme/app")}-3`);
    expect(poolSeatOfRunner("r", name)).toEqual({ tag: scopeTag("acme/app"), seat: 3 });
    expect(classOfRunner([pooled], name)).toEqual({ cls: pooled });
    expect(classOfRunner([pooled], "r-123")).toEqual({ cls: pooled, jobId: 123 });
    expect(runnerOfDispatchedJob("github-runner", "r", `github-runner/dispatch-${name}-1764669600-0a0b0c0d`)).toBe(name);
  });

  it("keep two pools of one class apart, and the same pool's the same in any spelling", () => {
    expect(scopeTag("acme/app")).not.toBe(scopeTag("acme/web"));
    expect(scopeTag("Acme/App")).toBe(scopeTag("acme/app"));
    expect(scopeTag("acme/app")).toMatch(/^[0-9a-f]{8}$/);
  });

  it("are not taken for another class's, a job runner's or a stranger's", () => {
    expect(poolSeatOfRunner("r", "r-pool-xyz-1")).toBeUndefined();
    expect(poolSeatOfRunner("r", `r-pool-${scopeTag("a/b")}-01`)).toBeUndefined();
    expect(poolSeatOfRunner("r", "r-12")).toBeUndefined();
    expect(poolSeatOfRunner("q", seat("a/b", 0))).toBeUndefined();
  });
});

describe("which pools exist", () => {
  it("one per repository served, or one per organisation with RUNNER_SCOPE=org; none for a class without min_idle", () => {
    const plain = runnerClass({ name: "plain", runnerPrefix: "p" });
    const served = ["acme/app", "acme/web", "other/x", "Acme/App"];
    expect(poolsOf([pooled, plain], "repo", served).map((p) => p.repo)).toEqual(["acme/app", "acme/web", "other/x"]);
    expect(poolsOf([pooled, plain], "org", served).map((p) => p.repo)).toEqual(["acme/*", "other/*"]);
    expect(poolRepoOf("org", "acme/app")).toBe("acme/*");
  });
});

describe("planReconcile with warm pools", () => {
  it("fills an empty pool up to min_idle, seats 0 and 1", () => {
    expect(plan(world())).toEqual([`fill:${seat("acme/app", 0)}`, `fill:${seat("acme/app", 1)}`]);
  });

  it("fills one pool per organisation with RUNNER_SCOPE=org, whichever repositories it serves", () => {
    const w = world({ served: ["acme/app", "acme/web", "other/x"] });
    expect(plan(w, { registrationScope: "org" })).toEqual([
      `fill:${seat("acme/*", 0)}`,
      `fill:${seat("other/*", 0)}`,
      `fill:${seat("acme/*", 1)}`,
      `fill:${seat("other/*", 1)}`,
    ]);
  });

  it("asks for nothing when the pool is full, starting runners included", () => {
    const w = world({ children: [child(seat("acme/app", 0)), child(seat("acme/app", 1), { changedAt: NOW })] });
    expect(plan(w)).toEqual([]);
  });

  it("replaces a pool runner that took a job, under a seat nothing uses", () => {
    const busy = seat("acme/app", 0);
    const w = world({ children: [child(busy), child(seat("acme/app", 1))], busyRunners: new Set([busy]) });
    expect(plan(w)).toEqual([`fill:${seat("acme/app", 2)}`]);
  });

  it("never reuses a seat whose name a dead runner job, a registration or a secret still holds", () => {
    const w = world({
      children: [child(seat("acme/app", 0), { alive: false })],
      registered: [{ id: 7, name: seat("acme/app", 1), repo: "acme/app", busy: false, online: true }],
      secrets: [seat("acme/app", 2)],
    });
    // Seats 1 and 2 are being filled (a registration, a credential): a pool of 4 needs two more.
    const four = { ...pooled, pool: { minIdle: 4, idleTtlMs: TTL } };
    expect(plan(w, { classes: [four] }).filter((a) => a.startsWith("fill:"))).toEqual([`fill:${seat("acme/app", 3)}`, `fill:${seat("acme/app", 4)}`]);
  });

  it("counts the runner dispatched for a job another runner took as a pool member, and asks for nothing", () => {
    // r-5 was dispatched for job 5, which a pool runner took: r-5 is now the pool's replacement.
    const w = world({ children: [child("r-5", { jobId: 5 }), child(seat("acme/app", 1))] });
    expect(plan(w)).toEqual([]);
  });

  it("releases idle runners above min_idle once they stayed spare for the grace period, keeping the youngest", () => {
    const w = world({
      children: [
        child(seat("acme/app", 0), { changedAt: NOW - 4000 }),
        child(seat("acme/app", 1), { changedAt: NOW - 3000 }),
        child(seat("acme/app", 2), { changedAt: NOW - 2000 }),
        child("r-9", { jobId: 9, changedAt: NOW - 1000 }),
      ],
    });
    expect(plan(w)).toEqual([`release:${seat("acme/app", 1)}`, `release:${seat("acme/app", 0)}`]);
    expect(plan(w, {}, { firstSeen: new Map() })).toEqual([]);
  });

  it("recycles a runner idle past the TTL at once, and fills its place once the pool stayed short for the fill delay", () => {
    const memory: Memory = { firstSeen: new Map() };
    const w = world({ children: [child(seat("acme/app", 0), { changedAt: NOW - TTL - 1 }), child(seat("acme/app", 1))] });
    expect(plan(w, {}, memory)).toEqual([`release:${seat("acme/app", 0)}`]);
    const later = world({ now: NOW + POOL_FILL_DELAY_MS, children: [child(seat("acme/app", 1))] });
    expect(plan(later, {}, memory)).toEqual([`fill:${seat("acme/app", 0)}`]);
  });

  it("fills a shortfall only once it lasted: a job's own runner, not listed yet, is the usual replacement", () => {
    // A pool runner took a job; the pass its in_progress asks for sees the pool one short.
    const memory: Memory = { firstSeen: new Map() };
    const taken = world({ children: [child(seat("acme/app", 0)), child(seat("acme/app", 1))], busyRunners: new Set([seat("acme/app", 0)]) });
    expect(plan(taken, {}, memory)).toEqual([]);
    // The job's own runner is listed on the next pass: nothing to fill, and the shortfall is forgotten.
    const replaced = world({
      now: NOW + 2_000,
      children: [...taken.children, child("r-5", { jobId: 5, changedAt: NOW + 1_000 })],
      busyRunners: taken.busyRunners,
    });
    expect(plan(replaced, {}, memory)).toEqual([]);
    expect([...memory.firstSeen.keys()].some((k) => k.startsWith("shortfall:"))).toBe(false);
    // Still short after the delay (its own runner never came): filled. Never later than RECONCILE_GRACE.
    expect(plan({ ...taken, now: NOW + 2_000 }, {}, { firstSeen: new Map() })).toEqual([]);
    const stillShort = { firstSeen: new Map([[`shortfall:${poolKey("default", "acme/app")}`, NOW - POOL_FILL_DELAY_MS]]) };
    expect(plan(taken, {}, stillShort)).toEqual([`fill:${seat("acme/app", 2)}`]);
    const shortGrace = { firstSeen: new Map([[`shortfall:${poolKey("default", "acme/app")}`, NOW - 1_000]]) };
    expect(plan(taken, { graceMs: 1_000 }, shortGrace)).toEqual([`fill:${seat("acme/app", 2)}`]);
  });

  it("counts seats another replica is filling (credential or registration, runner job not listed yet): never fills the next ones", () => {
    // Replica A wrote the credentials of seats 0 and 1; replica B lists them before A's dispatches land.
    expect(plan(world({ secrets: [seat("acme/app", 0), seat("acme/app", 1)] }))).toEqual([]);
    expect(plan(world({ secrets: [seat("acme/app", 0)] }))).toEqual([`fill:${seat("acme/app", 1)}`]);
    const registered = (name: string) => ({ id: 1, name, repo: "acme/app", busy: false, online: false });
    expect(plan(world({ registered: [registered(seat("acme/app", 1))], inFlight: [seat("acme/app", 0)] }))).toEqual([]);
    // Another pool's seat, or a seat whose runner job is dead, fills nothing of this pool.
    expect(plan(world({ secrets: [seat("acme/web", 0), seat("acme/web", 1)] }))).toEqual([`fill:${seat("acme/app", 0)}`, `fill:${seat("acme/app", 1)}`]);
    const dead = child(seat("acme/app", 0), { alive: false, changedAt: NOW });
    expect(plan(world({ children: [dead], secrets: [seat("acme/app", 0)] }))).toEqual([
      `clean:${seat("acme/app", 0)}`,
      `fill:${seat("acme/app", 1)}`,
      `fill:${seat("acme/app", 2)}`,
    ]);
  });

  it("serves queued jobs before pools, and never fills past MAX_RUNNERS", () => {
    const w = world({ queued: [job(1)], children: [child("r-40", { jobId: 40 }), child("r-41", { jobId: 41 })] });
    // r-40 and r-41 are idle (their jobs gone): r-40 serves job 1, r-41 is a pool member.
    expect(plan(w, { maxRunners: 3 })).toEqual([`fill:${seat("acme/app", 0)}`]);
    expect(plan(world({ queued: [job(1)] }), { maxRunners: 1 })).toEqual(["provision:r-1"]);
    expect(plan(world({ queued: [job(1)] }), { maxRunners: 2 })).toEqual(["provision:r-1", `fill:${seat("acme/app", 0)}`]);
  });

  it("holds to the class's and the per-repository caps", () => {
    const capped = { ...pooled, limits: { maxRunners: 1, maxRunnersPerRepo: Number.POSITIVE_INFINITY } };
    expect(plan(world(), { classes: [capped] })).toEqual([`fill:${seat("acme/app", 0)}`]);
    expect(plan(world(), { maxRunnersPerRepo: 1 })).toEqual([`fill:${seat("acme/app", 0)}`]);
  });

  it("gives an idle pool runner's slot up to a job it cannot take that waits for the same cap", () => {
    // MAX_RUNNERS=2, both slots idle pool runners of acme/app; a job of acme/web waits: one pool runner goes.
    const w = world({
      queued: [job(7, "acme/web")],
      children: [child(seat("acme/app", 0), { changedAt: NOW - 5000 }), child(seat("acme/app", 1))],
      served: ["acme/app", "acme/web"],
    });
    expect(plan(w, { maxRunners: 2 }, { firstSeen: new Map() })).toEqual(["wait:r-7", `release:${seat("acme/app", 0)}`]);
    // The next pass: the freed slot goes to the job, not back to the pool.
    const next = world({ queued: [job(7, "acme/web")], children: [child(seat("acme/app", 1))], served: ["acme/app", "acme/web"] });
    expect(plan(next, { maxRunners: 2 }, { firstSeen: new Map() })).toEqual(["provision:r-7"]);
    // A job held by its own repository's cap gains nothing from another repository's slot.
    expect(plan(w, { maxRunnersPerRepo: 0 }, { firstSeen: new Map() })).toEqual(["wait:r-7"]);
  });

  it("lets go of kept runners above a cap lowered since they started, oldest first", () => {
    const w = world({ children: [child(seat("acme/app", 0), { changedAt: NOW - 5000 }), child(seat("acme/app", 1))] });
    expect(plan(w, { maxRunners: 1 }, { firstSeen: new Map() })).toEqual([`release:${seat("acme/app", 0)}`]);
  });

  it("lets an organisation's idle pool runner cover a queued job of any of its repositories", () => {
    const poolRunner = child(seat("acme/*", 0), { repo: "acme/*" });
    const w = world({ queued: [job(3, "acme/web")], children: [poolRunner, child(seat("acme/*", 1), { repo: "acme/*" })], served: ["acme/app", "acme/web"] });
    // Job 3 goes to a pool runner (no dispatch for it); the pool is one short: one fill.
    expect(plan(w, { registrationScope: "org" })).toEqual([`fill:${seat("acme/*", 2)}`]);
    // With repository scope an organisation's runner is no repository's pool: job 3 gets its own runner.
    expect(plan(world({ queued: [job(3, "acme/web")], served: ["acme/web"] }))).toEqual([
      "provision:r-3",
      `fill:${seat("acme/web", 0)}`,
      `fill:${seat("acme/web", 1)}`,
    ]);
  });

  it("gives two replicas looking at the same world the same names, and nothing more once they exist", () => {
    const first = plan(world());
    expect(plan(world())).toEqual(first);
    const filled = world({ children: [child(seat("acme/app", 0), { changedAt: NOW }), child(seat("acme/app", 1), { changedAt: NOW })] });
    expect(plan(filled)).toEqual([]);
  });

  it("scales to zero: without min_idle every idle runner goes after the grace period, and nothing is filled", () => {
    const plain = runnerClass({ runnerPrefix: "r" });
    const w = world({ children: [child(seat("acme/app", 0)), child("r-5", { jobId: 5 })] });
    expect(plan(w, { classes: [plain] }).sort()).toEqual(["release:r-5", `release:${seat("acme/app", 0)}`]);
  });

  it("lets go of a pool whose repository is no longer served", () => {
    const w = world({ children: [child(seat("acme/old", 0), { repo: "acme/old" })], served: [] });
    expect(plan(w)).toEqual([`release:${seat("acme/old", 0)}`]);
  });
});
