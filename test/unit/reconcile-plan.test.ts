import { describe, expect, it } from "vitest";
import type { WorkflowJob } from "../../src/core/job-event.js";
import { type Memory, planReconcile, type ReconcileSettings, type RunnerChild, type World } from "../../src/core/reconcile-plan.js";
import { runnerClass } from "../fakes/deps.js";
import { workflowJob } from "../harness/fixtures.js";

const NOW = Date.parse("2026-11-23T10:00:00Z");
const settings: ReconcileSettings = {
  classes: [runnerClass({ runnerPrefix: "r" })],
  retentionMs: 600_000,
  graceMs: 60_000,
  maxRunners: Number.POSITIVE_INFINITY,
  maxRunnersPerRepo: Number.POSITIVE_INFINITY,
};

function job(id: number, repo = "acme/app", ageS = 0): WorkflowJob {
  const [owner = "", name = ""] = repo.split("/");
  return workflowJob({ id, runId: id, owner, repo: name, createdAt: new Date(NOW - ageS * 1000).toISOString() });
}

function child(jobId: number, opts: Partial<RunnerChild> = {}): RunnerChild {
  return {
    id: `github-runner/dispatch-r-${jobId}-1-0a0a0a0a`,
    runnerName: `r-${jobId}`,
    jobId,
    repo: "acme/app",
    cls: "default",
    alive: true,
    changedAt: NOW,
    ...opts,
  };
}

function world(overrides: Partial<World> = {}): World {
  return { now: NOW, queued: [], busyRunners: new Set(), children: [], secrets: [], inFlight: [], registered: [], ...overrides };
}

const fresh = (): Memory => ({ firstSeen: new Map() });
const kinds = (w: World, s = settings, m = fresh()) =>
  planReconcile(w, s, m).map((a) => `${a.kind}:${"runnerName" in a ? a.runnerName : ""}${a.kind === "wait" ? `:${a.cap}` : ""}`);

describe("planReconcile", () => {
  it("does nothing when the world is consistent", () => {
    expect(kinds(world({ queued: [job(1)], children: [child(1)], secrets: ["r-1"] }))).toEqual([]);
  });

  it("provisions a queued job that has no runner (lost webhook)", () => {
    expect(kinds(world({ queued: [job(1)] }))).toEqual(["provision:r-1"]);
  });

  it("cleans a finished runner's secret and purges its job only after retention", () => {
    const dead = child(1, { alive: false, changedAt: NOW - 1000 });
    expect(kinds(world({ children: [dead], secrets: ["r-1"] }))).toEqual(["clean:r-1"]);
    const old = child(1, { alive: false, changedAt: NOW - 700_000 });
    expect(kinds(world({ children: [old] }))).toEqual(["purge:r-1"]);
  });

  it("replaces a runner that died while its job is still queued: clean, purge, provision", () => {
    const dead = child(1, { alive: false, changedAt: NOW - 1000 });
    expect(kinds(world({ queued: [job(1)], children: [dead], secrets: ["r-1"] }))).toEqual(["clean:r-1", "purge:r-1", "provision:r-1"]);
  });

  it("lets an idle runner whose job was taken by another runner serve the other queued job", () => {
    // r-1 ran job 2; job 1 is still queued and has r-2 idle, whose own job (2) is gone: no dispatch.
    const w = world({ queued: [job(1)], children: [child(2)] });
    expect(kinds(w)).toEqual([]);
  });

  it("releases idle spare runners only after they stayed spare for the grace period", () => {
    const memory = fresh();
    const w = world({ children: [child(5)] });
    expect(kinds(w, settings, memory)).toEqual([]);
    expect(kinds({ ...w, now: NOW + 61_000 }, settings, memory)).toEqual(["release:r-5"]);
  });

  it("never releases a busy runner", () => {
    const memory = fresh();
    const w = world({ children: [child(5)], busyRunners: new Set(["r-5"]) });
    planReconcile(w, settings, memory);
    expect(kinds({ ...w, now: NOW + 120_000 }, settings, memory)).toEqual([]);
  });

  it("deletes an orphan secret only when stale and not needed by a queued job", () => {
    const memory = fresh();
    expect(kinds(world({ secrets: ["r-9"] }), settings, memory)).toEqual([]);
    expect(kinds(world({ now: NOW + 60_000, secrets: ["r-9"] }), settings, memory)).toEqual(["delete-secret:r-9"]);
    // Queued: provisioning resumes from the secret instead.
    expect(kinds(world({ queued: [job(9)], secrets: ["r-9"] }), settings, memory)).toEqual(["provision:r-9"]);
  });

  it("abandons a half-provisioned runner that stays in flight past the grace period", () => {
    const memory = fresh();
    const w = world({ queued: [job(3)], inFlight: ["r-3"] });
    expect(kinds(w, settings, memory)).toEqual(["provision:r-3"]);
    expect(kinds({ ...w, now: NOW + 60_000 }, settings, memory)).toEqual(["abandon:r-3", "provision:r-3"]);
  });

  it("respects MAX_RUNNERS: oldest first, fair across repositories, never dropping jobs", () => {
    const limited = { ...settings, maxRunners: 3 };
    const queued = [job(1, "a/x", 50), job(2, "a/x", 40), job(3, "a/x", 30), job(4, "b/y", 20), job(5, "c/z", 10)];
    // The rest wait, and the plan says for which cap (what /readyz and the metrics show).
    expect(kinds(world({ queued }), limited)).toEqual(["provision:r-1", "provision:r-4", "provision:r-5", "wait:r-2:max-runners", "wait:r-3:max-runners"]);
    // Once two runners are alive, only one more slot: the oldest waiting job gets it.
    const alive = [child(1, { repo: "a/x" }), child(4, { repo: "b/y" })];
    expect(kinds(world({ queued, children: alive }), limited)).toEqual(["provision:r-2", "wait:r-3:max-runners", "wait:r-5:max-runners"]);
  });

  it("respects MAX_RUNNERS_PER_REPO", () => {
    const limited = { ...settings, maxRunnersPerRepo: 1 };
    const queued = [job(1, "a/x", 50), job(2, "a/x", 40), job(3, "b/y", 30)];
    expect(kinds(world({ queued }), limited)).toEqual(["provision:r-1", "provision:r-3", "wait:r-2:max-runners-per-repo"]);
    // Both caps reached: the total one is what frees a slot first.
    expect(kinds(world({ queued }), { ...limited, maxRunners: 2 })).toEqual(["provision:r-1", "provision:r-3", "wait:r-2:max-runners"]);
    // A job an idle spare runner of its repository covers does not wait.
    const spare = child(7, { repo: "a/x" });
    expect(kinds(world({ queued: [job(1, "a/x", 50)], children: [spare] }), limited)).toEqual([]);
  });

  describe("runner classes", () => {
    const small = runnerClass({ name: "small", runnerPrefix: "r-small", job: "runner-small" });
    const large = runnerClass({ name: "large", labels: ["large", "nomad", "self-hosted"], runnerPrefix: "r-large", job: "runner-large" });
    const classed = (l: Partial<typeof large.limits> = {}, s: Partial<typeof small.limits> = {}): ReconcileSettings => ({
      ...settings,
      classes: [
        { ...small, limits: { ...small.limits, ...s } },
        { ...large, limits: { ...large.limits, ...l } },
      ],
    });
    const big = (id: number, repo = "acme/app", ageS = 0) => ({ ...job(id, repo, ageS), labels: ["self-hosted", "nomad", "large"] });
    const kid = (cls: "small" | "large", jobId: number, opts: Partial<RunnerChild> = {}) =>
      child(jobId, { id: `runner-${cls}/dispatch-r-${cls}-${jobId}-1-0a0a0a0a`, runnerName: `r-${cls}-${jobId}`, cls, ...opts });

    it("names each job's runner after the class of its labels, and plans nothing for a job of no class", () => {
      const queued = [job(1), big(2), { ...job(3), labels: ["self-hosted", "gpu"] }];
      expect(kinds(world({ queued }), classed())).toEqual(["provision:r-small-1", "provision:r-large-2"]);
    });

    it("holds a class at its max_runners while other classes and the global cap still have room", () => {
      const queued = [big(1, "a/x", 50), big(2, "b/y", 40), job(3, "a/x", 30), job(4, "b/y", 20)];
      expect(kinds(world({ queued }), classed({ maxRunners: 1 }))).toEqual([
        "provision:r-large-1",
        "provision:r-small-3",
        "provision:r-small-4",
        "wait:r-large-2:class-max-runners",
      ]);
      // A live large runner counts against its class: the next large job waits, a small one does not.
      const alive = [kid("large", 9, { repo: "c/z" })];
      expect(kinds(world({ queued: [big(1), job(3)], children: alive }), classed({ maxRunners: 1 }))).toEqual([
        "provision:r-small-3",
        "wait:r-large-1:class-max-runners",
      ]);
    });

    it("holds a class at its max_runners_per_repo in that repository only", () => {
      const queued = [big(1, "a/x", 50), big(2, "a/x", 40), big(3, "b/y", 30)];
      expect(kinds(world({ queued }), classed({ maxRunnersPerRepo: 1 }))).toEqual([
        "provision:r-large-1",
        "provision:r-large-3",
        "wait:r-large-2:class-max-runners-per-repo",
      ]);
    });

    it("keeps the global caps above the classes'", () => {
      const queued = [big(1, "a/x", 50), job(2, "a/x", 40), job(3, "b/y", 30)];
      const limited = { ...classed({ maxRunners: 5 }, { maxRunners: 5 }), maxRunners: 2 };
      expect(kinds(world({ queued }), limited)).toEqual(["provision:r-large-1", "provision:r-small-2", "wait:r-small-3:max-runners"]);
    });

    it("lets an idle spare cover only a job of its own class, and releases the spare another class cannot use", () => {
      const spare = kid("small", 7, { changedAt: NOW - 120_000 });
      const memory = fresh();
      const w = world({ queued: [big(1)], children: [spare] });
      kinds(w, classed(), memory);
      expect(kinds({ ...w, now: NOW + 60_000 }, classed(), memory)).toEqual(["release:r-small-7", "provision:r-large-1"]);
    });
  });

  it("deregisters an orphan registration (no runner job, no credential) once it stayed orphaned for the grace period", () => {
    // A provisioning lost the race: its dispatch found job 7's runner job already there and served.
    const memory = fresh();
    const orphan = { id: 70, name: "r-7", repo: "acme/app", busy: false, online: false };
    const w = world({ children: [child(7, { alive: false, changedAt: NOW - 1000 })], registered: [orphan] });
    expect(kinds(w, settings, memory)).toEqual([]);
    expect(kinds({ ...w, now: NOW + 60_000 }, settings, memory)).toEqual(["clean:r-7"]);
    // Without any Nomad job at all (purged), the same.
    expect(kinds(world({ now: NOW + 61_000, registered: [orphan] }), settings, memory)).toEqual(["clean:r-7"]);
  });

  it("gives a runner registered again under the same name its own grace period", () => {
    // Each pass may catch a provisioning under way (registered; credential and runner job not
    // there yet). A name seen orphaned before must not make the next registration stale at once.
    const memory = fresh();
    const seen = (id: number, now: number) =>
      kinds(world({ now, registered: [{ id, name: "r-8", repo: "acme/app", busy: false, online: false }] }), settings, memory);
    expect(seen(80, NOW)).toEqual([]);
    expect(seen(81, NOW + 59_000)).toEqual([]);
    expect(seen(81, NOW + 61_000)).toEqual([]);
    expect(seen(81, NOW + 119_000)).toEqual(["clean:r-8"]);
  });

  it("leaves registrations alone that a runner job, a credential or a job uses", () => {
    const memory = fresh();
    const later = NOW + 120_000;
    const reg = (name: string, busy = false, online = busy) => ({ id: Number(name.slice(2)), name, repo: "acme/app", busy, online });
    const w = world({
      queued: [job(3)],
      children: [child(1), child(3)],
      secrets: ["r-2", "r-3"],
      registered: [reg("r-1"), reg("r-2"), reg("r-3"), reg("r-4", true), reg("r-5", false, true)],
      busyRunners: new Set(["r-4"]),
    });
    planReconcile(w, settings, memory);
    // r-1 and r-3 have live runner jobs, r-2 a credential (its dispatch may be under way), r-4 is
    // busy, and r-5 online: something runs it (another deployment's runner, say).
    expect(kinds({ ...w, now: later }, settings, memory).filter((k) => k.startsWith("clean"))).toEqual([]);
  });

  it("does not clean the same runner twice in one plan", () => {
    const memory = fresh();
    const dead = child(1, { alive: false, changedAt: NOW - 1000 });
    const w = world({ queued: [job(1)], children: [dead], registered: [{ id: 10, name: "r-1", repo: "acme/app", busy: false, online: false }] });
    planReconcile(w, settings, memory);
    expect(kinds({ ...w, now: NOW + 60_000 }, settings, memory)).toEqual(["clean:r-1", "purge:r-1", "provision:r-1"]);
  });

  it("forgets half-done things that resolved themselves", () => {
    const memory = fresh();
    planReconcile(world({ secrets: ["r-9"] }), settings, memory);
    planReconcile(world({ now: NOW + 30_000 }), settings, memory);
    expect(kinds(world({ now: NOW + 90_000, secrets: ["r-9"] }), settings, memory)).toEqual([]);
  });
});
