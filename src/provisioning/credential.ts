import { randomUUID } from "node:crypto";
import type { RunnerTarget } from "../core/job-event.js";
import { decideResume, type ResumeStep } from "../core/resume.js";
import { type BudgetClaim, isRunnerExists, isSecretConflict, type RunnerDeps, type RunnerSecret } from "../ports/index.js";
import { withRetry } from "../ports/retry.js";

// The JIT credential of one runner, resumable at every step (see src/core/resume.ts): register at
// GitHub, commit the credential in Vault by check-and-set, and on any surprise (the name taken,
// the secret changed) read the durable facts and let `decideResume` say what to do next.

/**
 * A "reissuing" claim younger than this is respected: its attempt deletes a registration and
 * registers again, a few requests (with their retries). Older, it is taken over: that attempt died.
 */
export const CLAIM_LEASE_MS = 10_000;

/** Decisions per attempt: a conflict costs one more; beyond this the attempt backs off. */
const MAX_ROUNDS = 3;

/** A credential an earlier attempt of this process got from GitHub and could not store yet. */
export interface HeldCredential {
  runnerId: number;
  secret: RunnerSecret;
}

/**
 * What this process keeps of one job between its attempts (the dispatch queue owns it): the
 * credential of a registration made before the attempt failed, so the next attempt writes it
 * instead of deleting the registration and asking GitHub for another.
 */
export interface AttemptMemory {
  held?: HeldCredential;
  /** The "reissuing" claim this process wrote for the job: it carries on from it, never waits for it. */
  claimant?: string;
  /**
   * When this process first heard of the job, and whether from GitHub's queue (the reconciler):
   * what says whether someone else may have attempted it before (see probeRegistrationFirst).
   */
  firstHeard?: { at: number; seenQueued: boolean };
  /** An attempt of this process failed: it may have left a registration behind. */
  attemptedHere?: boolean;
}

export type StoreOutcome = "stored" | "resumed" | "in-flight";

export interface JitRequest {
  target: RunnerTarget;
  runnerName: string;
  labels: string[];
  /** Pays for the first registration request (auto mode). */
  claim?: BudgetClaim;
  /** Look at GitHub's registration first (see probeRegistrationFirst). */
  probe: boolean;
  memory: AttemptMemory;
}

type Deps = Pick<RunnerDeps, "github" | "vault" | "log" | "settings">;

/**
 * Gets the runner a JIT credential stored in Vault: "stored" (this attempt wrote it), "resumed"
 * (Vault has the credential of the registered runner), or "in-flight" (someone else is mid-way,
 * or the facts kept changing: the caller backs off and a later attempt looks again).
 */
export async function storeJitCredential(deps: Deps, req: JitRequest): Promise<StoreOutcome> {
  const { log } = deps;
  const { runnerName, memory } = req;
  const retry = <T>(fn: () => Promise<T>) => withRetry(fn, deps.settings.retry);
  let claim = req.claim;
  const register = async (): Promise<HeldCredential | undefined> => {
    try {
      const created = await retry(() => deps.github.createJitRunner(req.target, runnerName, req.labels, claim));
      claim = undefined;
      const held = { runnerId: created.runnerId, secret: { kind: "jit" as const, jitconfig: created.jitconfig, runner_id: created.runnerId } };
      // Kept until Vault has it: a failed write is retried with it, not with a new registration.
      memory.held = held;
      log.info({ runner: runnerName, runnerId: created.runnerId }, "credential obtained: JIT runner config");
      return held;
    } catch (err) {
      if (!isRunnerExists(err)) throw err;
      return undefined;
    }
  };
  /** True when written; false when the slot changed since it was read (check-and-set). */
  const commit = async (held: HeldCredential, cas: number): Promise<boolean> => {
    try {
      await retry(() => deps.vault.putRunnerSecret(runnerName, held.secret, { cas }));
    } catch (err) {
      if (isSecretConflict(err)) return false;
      throw err;
    }
    memory.held = undefined;
    memory.claimant = undefined;
    log.info({ runner: runnerName, path: deps.vault.secretPath(runnerName) }, "credential stored in Vault");
    return true;
  };
  const facts = async (): Promise<ResumeStep> => {
    const [registration, secret] = await Promise.all([
      retry(() => deps.github.findRunner(req.target, runnerName)),
      retry(() => deps.vault.readRunnerSecret(runnerName)),
    ]);
    return decideResume({
      now: Date.now(),
      registration: registration && { id: registration.id, online: registration.status === "online", busy: registration.busy },
      secret,
      heldRunnerId: memory.held?.runnerId,
      ownClaim: memory.claimant,
      claimLeaseMs: CLAIM_LEASE_MS,
    });
  };

  let step: ResumeStep = req.probe ? await facts() : { step: "register", cas: 0 };
  for (let round = 1; round <= MAX_ROUNDS; round++) {
    log.debug({ runner: runnerName, round, ...step }, "provisioning step");
    switch (step.step) {
      case "dispatch":
        return "resumed";
      case "wait":
        log.info({ runner: runnerName, why: step.why }, "runner is being provisioned elsewhere; backing off");
        return "in-flight";
      case "store-held":
        if (memory.held && (await commit(memory.held, step.cas))) return "stored";
        break;
      case "register": {
        const held = await register();
        if (held && (await commit(held, step.cas))) return "stored";
        break;
      }
      case "reissue": {
        const { cas, runnerId } = step;
        // The claim first: an attempt that is mid-way after all fails its write on it, and
        // one that wrote first makes this claim fail; never both a credential and a deletion.
        try {
          memory.claimant ??= randomUUID();
          const claimant = memory.claimant;
          await retry(() => deps.vault.claimRunnerSecret(runnerName, cas, { claimedAt: Date.now(), claimant }));
        } catch (err) {
          if (!isSecretConflict(err)) throw err;
          break;
        }
        const removed = await retry(() => deps.github.deleteRunner(req.target, runnerId));
        log.info({ runner: runnerName, runnerId, removed }, "orphaned runner registration (no credential anywhere) deleted to register it again");
        if (removed === "busy") return "in-flight";
        if (memory.held?.runnerId === runnerId) memory.held = undefined;
        const held = await register();
        if (held && (await commit(held, cas + 1))) return "stored";
        break;
      }
    }
    if (round < MAX_ROUNDS) step = await facts();
  }
  return "in-flight";
}
