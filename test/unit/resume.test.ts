import { describe, expect, it } from "vitest";
import { afterFailure, DEFAULT_ATTEMPT_BACKOFF, waitBeforeAttempt } from "../../src/core/attempt-backoff.js";
import { decideResume, PROBE_AFTER_MS, probeRegistrationFirst, type ResumeFacts, type SecretSlot } from "../../src/core/resume.js";

const NOW = 1_800_000_000_000;
const LEASE = 10_000;
const offline = { id: 7, online: false, busy: false };

function facts(over: Partial<ResumeFacts>): ResumeFacts {
  return { now: NOW, registration: offline, secret: undefined, heldRunnerId: undefined, claimLeaseMs: LEASE, ...over };
}

describe("decideResume", () => {
  const own: SecretSlot = { kind: "credential", version: 3, runnerId: 7 };
  const stale: SecretSlot = { kind: "credential", version: 2, runnerId: 6 };
  const legacy: SecretSlot = { kind: "credential", version: 1 };
  const liveClaim: SecretSlot = { kind: "reissuing", version: 4, claimedAt: NOW - LEASE + 1 };
  const deadClaim: SecretSlot = { kind: "reissuing", version: 4, claimedAt: NOW - LEASE };

  it("resumes from Vault when the secret is the registered runner's credential (or one written before ids were kept)", () => {
    expect(decideResume(facts({ secret: own }))).toEqual({ step: "dispatch" });
    expect(decideResume(facts({ secret: legacy }))).toEqual({ step: "dispatch" });
    expect(decideResume(facts({ secret: own, heldRunnerId: 7 }))).toEqual({ step: "dispatch" });
  });

  it("writes the credential this process holds for the registered runner, over whatever version Vault has", () => {
    expect(decideResume(facts({ heldRunnerId: 7 }))).toEqual({ step: "store-held", cas: 0 });
    expect(decideResume(facts({ heldRunnerId: 7, secret: stale }))).toEqual({ step: "store-held", cas: 2 });
    expect(decideResume(facts({ heldRunnerId: 7, secret: deadClaim }))).toEqual({ step: "store-held", cas: 4 });
  });

  it("reissues an offline, idle registration whose credential nobody has, at once (no grace period)", () => {
    expect(decideResume(facts({}))).toEqual({ step: "reissue", cas: 0, runnerId: 7 });
    // A credential of another registration is a deleted runner's: overwritten.
    expect(decideResume(facts({ secret: stale }))).toEqual({ step: "reissue", cas: 2, runnerId: 7 });
    // A credential this process holds for another (deleted) registration does not help.
    expect(decideResume(facts({ heldRunnerId: 6 }))).toEqual({ step: "reissue", cas: 0, runnerId: 7 });
    // An abandoned claim (its attempt died mid-way) is taken over.
    expect(decideResume(facts({ secret: deadClaim }))).toEqual({ step: "reissue", cas: 4, runnerId: 7 });
  });

  it("carries on from its own claim (this process claimed, then something failed), live or not", () => {
    const mine: SecretSlot = { ...liveClaim, claimant: "me" };
    expect(decideResume(facts({ secret: mine, ownClaim: "me" }))).toEqual({ step: "reissue", cas: 4, runnerId: 7 });
    expect(decideResume(facts({ secret: mine, ownClaim: "me", registration: undefined }))).toEqual({ step: "register", cas: 4 });
    expect(decideResume(facts({ secret: mine, ownClaim: "me", heldRunnerId: 7 }))).toEqual({ step: "store-held", cas: 4 });
    // Another process's claim is not ours, whatever this process claimed before.
    expect(decideResume(facts({ secret: { ...liveClaim, claimant: "other" }, ownClaim: "me" }))).toMatchObject({ step: "wait" });
  });

  it("waits while another attempt holds a live claim, whatever else it sees", () => {
    for (const over of [{}, { heldRunnerId: 7 }, { registration: undefined }, { registration: { ...offline, online: true } }]) {
      expect(decideResume(facts({ secret: liveClaim, ...over }))).toMatchObject({ step: "wait" });
    }
  });

  it("never touches a registration a runner process uses (online or busy), even without a credential", () => {
    for (const registration of [
      { ...offline, online: true },
      { ...offline, busy: true },
    ]) {
      for (const secret of [undefined, stale, deadClaim]) {
        expect(decideResume(facts({ registration, secret, heldRunnerId: 7 }))).toMatchObject({ step: "wait" });
      }
    }
  });

  it("registers afresh when the name is free again, writing over the version it saw", () => {
    expect(decideResume(facts({ registration: undefined }))).toEqual({ step: "register", cas: 0 });
    expect(decideResume(facts({ registration: undefined, secret: stale }))).toEqual({ step: "register", cas: 2 });
    expect(decideResume(facts({ registration: undefined, secret: deadClaim, heldRunnerId: 7 }))).toEqual({ step: "register", cas: 4 });
  });
});

describe("probeRegistrationFirst", () => {
  const at = (ageMs: number) => new Date(NOW - ageMs).toISOString();
  it("not for a fresh webhook: that would cost every job a read", () => {
    expect(probeRegistrationFirst({ now: NOW, createdAt: at(1_000), seenQueued: false, attemptedHere: false })).toBe(false);
  });
  it("for a job probably attempted before: held credential, the reconciler's plan, an old or unreadable time", () => {
    expect(probeRegistrationFirst({ now: NOW, createdAt: at(1_000), seenQueued: false, attemptedHere: true })).toBe(true);
    expect(probeRegistrationFirst({ now: NOW, createdAt: at(1_000), seenQueued: true, attemptedHere: false })).toBe(true);
    expect(probeRegistrationFirst({ now: NOW, createdAt: at(PROBE_AFTER_MS), seenQueued: false, attemptedHere: false })).toBe(true);
    expect(probeRegistrationFirst({ now: NOW, createdAt: "yesterday-ish", seenQueued: false, attemptedHere: false })).toBe(true);
  });
});

describe("attempt backoff", () => {
  const policy = { baseMs: 500, maxMs: 8_000 };
  it("lets a job's first attempt start at once, and doubles the wait per failure up to the cap", () => {
    expect(waitBeforeAttempt(undefined, NOW)).toBe(0);
    let record = afterFailure(undefined, NOW, policy);
    const waits = [waitBeforeAttempt(record, NOW)];
    for (let i = 0; i < 6; i++) {
      record = afterFailure(record, NOW, policy);
      waits.push(waitBeforeAttempt(record, NOW));
    }
    expect(waits).toEqual([500, 1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
    expect(waitBeforeAttempt(record, NOW + 10_000)).toBe(0);
  });
  it("stays bounded after very many failures, and the default cap keeps a job a few seconds behind its dependency", () => {
    let record = afterFailure(undefined, NOW, DEFAULT_ATTEMPT_BACKOFF);
    for (let i = 0; i < 100; i++) record = afterFailure(record, NOW, DEFAULT_ATTEMPT_BACKOFF);
    expect(waitBeforeAttempt(record, NOW)).toBe(DEFAULT_ATTEMPT_BACKOFF.maxMs);
    expect(DEFAULT_ATTEMPT_BACKOFF.maxMs).toBeLessThanOrEqual(8_000);
  });
});
