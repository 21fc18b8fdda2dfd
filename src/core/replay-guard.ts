import type { WorkflowJob } from "./job-event.js";

// GitHub signs webhook deliveries without a timestamp: a captured or manually redelivered `queued`
// delivery verifies forever. Nomad remembers a job's runner job (the durable fact "this job had a
// runner") only until the reconciler purges it, RUNNER_RETENTION after it ended. Past that, only
// GitHub can say whether the job still waits for a runner.

/** A job's status at GitHub right now; "not-found" when GitHub knows no such job or hides it from us (404). */
export type JobStatusAtGitHub = WorkflowJob["status"] | "not-found";

const JOB_STATUSES: ReadonlySet<string> = new Set<JobStatusAtGitHub>(["queued", "waiting", "in_progress", "completed", "pending", "requested", "not-found"]);

/** A status as a metric label: one of a fixed few, whatever GitHub may add one day. */
export function statusLabel(status: string): string {
  return JOB_STATUSES.has(status) ? status : "other";
}

/**
 * Clocks disagree: GitHub's `created_at` against ours and Nomad's. A job this much younger than
 * RUNNER_RETENTION by our clock is treated as old already, which costs at most one GET.
 */
export const CLOCK_SKEW_ALLOWANCE_MS = 60_000;

/** What provisioning knows before it spends anything, as plain data. */
export interface ReplayFacts {
  /** ms since epoch. */
  now: number;
  /** When GitHub queued the job: the event's `created_at`. */
  createdAt: string;
  /** How long a dead runner job stays in Nomad before the reconciler purges it. */
  retentionMs: number;
  /** The caller saw the job queued at GitHub moments ago (the reconciler's plan). */
  seenQueued: boolean;
  /** A runner job for this GitHub job exists in Nomad, in any state. */
  runnerJobExists: boolean;
}

/**
 * - "runner-exists": a repeat (redelivery, other replica, replay): Nomad answers it, GitHub is not asked.
 * - "provision": no runner job, and none can have been purged yet (or GitHub just said queued).
 * - "ask-github": a runner job this job had may have been purged; only a queued job may get one.
 */
export type ReplayGuard = "runner-exists" | "provision" | "ask-github";

/** Must GitHub confirm the job is queued before a credential is issued for it? */
export function replayGuard(facts: ReplayFacts): ReplayGuard {
  if (facts.runnerJobExists) return "runner-exists";
  if (facts.seenQueued) return "provision";
  const queuedAt = Date.parse(facts.createdAt);
  // An unreadable time proves nothing about the job's age: ask.
  if (!Number.isFinite(queuedAt)) return "ask-github";
  const age = facts.now - queuedAt;
  return age + CLOCK_SKEW_ALLOWANCE_MS >= facts.retentionMs ? "ask-github" : "provision";
}
