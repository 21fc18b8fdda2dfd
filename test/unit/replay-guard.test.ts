import { describe, expect, it } from "vitest";
import { CLOCK_SKEW_ALLOWANCE_MS, type ReplayFacts, replayGuard, statusLabel } from "../../src/core/replay-guard.js";

const NOW = Date.parse("2026-12-02T10:00:00Z");
const RETENTION = 600_000;

/** A job queued `ageMs` before NOW, no runner job, not seen queued. */
function facts(ageMs: number, overrides: Partial<ReplayFacts> = {}): ReplayFacts {
  return {
    now: NOW,
    createdAt: new Date(NOW - ageMs).toISOString(),
    retentionMs: RETENTION,
    seenQueued: false,
    runnerJobExists: false,
    ...overrides,
  };
}

/** Just young enough that no runner job of it can have been purged, allowing for clock skew. */
const YOUNGEST_OLD = RETENTION - CLOCK_SKEW_ALLOWANCE_MS;

describe("replayGuard", () => {
  it("answers a repeat from Nomad whenever a runner job exists, old or young, seen queued or not", () => {
    for (const age of [0, YOUNGEST_OLD, 10 * RETENTION]) {
      for (const seenQueued of [false, true]) {
        expect(replayGuard(facts(age, { runnerJobExists: true, seenQueued }))).toBe("runner-exists");
      }
    }
  });

  it("provisions a young job without asking GitHub: no runner job of it can have been purged yet", () => {
    expect(replayGuard(facts(0))).toBe("provision");
    expect(replayGuard(facts(YOUNGEST_OLD - 1))).toBe("provision");
  });

  it("asks GitHub about a job old enough that a runner job it had may have been purged", () => {
    expect(replayGuard(facts(YOUNGEST_OLD))).toBe("ask-github");
    expect(replayGuard(facts(RETENTION))).toBe("ask-github");
    expect(replayGuard(facts(365 * 86_400_000))).toBe("ask-github");
  });

  it("never asks again about a job the caller just saw queued at GitHub (the reconciler's plan)", () => {
    expect(replayGuard(facts(10 * RETENTION, { seenQueued: true }))).toBe("provision");
    expect(replayGuard(facts(0, { seenQueued: true, createdAt: "not a time" }))).toBe("provision");
  });

  it("asks when the job's queued time cannot be read (its age proves nothing)", () => {
    expect(replayGuard(facts(0, { createdAt: "" }))).toBe("ask-github");
    expect(replayGuard(facts(0, { createdAt: "yesterday-ish" }))).toBe("ask-github");
  });

  it("asks about every job when dead runner jobs are purged at once (RUNNER_RETENTION=0)", () => {
    expect(replayGuard(facts(0, { retentionMs: 0 }))).toBe("ask-github");
  });

  it("allows for a clock ahead of GitHub's: a job queued 'in the future' is young", () => {
    expect(replayGuard(facts(-30_000))).toBe("provision");
  });
});

describe("statusLabel", () => {
  it("keeps GitHub's job statuses and 'not-found', and folds anything else into 'other'", () => {
    for (const status of ["queued", "waiting", "in_progress", "completed", "pending", "requested", "not-found"]) expect(statusLabel(status)).toBe(status);
    expect(statusLabel("some_new_status")).toBe("other");
  });
});
