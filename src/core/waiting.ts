import { DependencyError } from "./errors.js";

// Jobs that are queued at GitHub, accepted by us, and have no runner yet: nothing is lost, but an
// operator needs to see that they wait, and for what. The reasons are a small fixed set (metric
// label values), never raw error text.

export type WaitReason =
  /** Refused by MAX_RUNNERS on the webhook path; the reconciler's next pass says which cap. */
  | "capacity"
  | "max-runners"
  | "max-runners-per-repo"
  /** A runner class's own max_runners / max_runners_per_repo (RUNNER_CLASSES_FILE). */
  | "class-max-runners"
  | "class-max-runners-per-repo"
  /** In the dispatch queue, waiting for GitHub's rate limit (or behind jobs that do). */
  | "github-budget"
  /** The dispatch queue was full: the reconciler takes it from GitHub's queue. */
  | "queue-full"
  /** The last attempt failed on this system (down, refusing, timing out); retried with backoff. */
  | "github"
  | "vault"
  | "nomad"
  /** Another attempt is mid-way (another replica, or a runner process holds the registration). */
  | "in-flight"
  /** The last attempt failed on something else; its message is in the log. */
  | "error";

export const WAIT_REASONS: readonly WaitReason[] = [
  "capacity",
  "max-runners",
  "max-runners-per-repo",
  "class-max-runners",
  "class-max-runners-per-repo",
  "github-budget",
  "queue-full",
  "github",
  "vault",
  "nomad",
  "in-flight",
  "error",
];

export interface WaitingJob {
  runnerName: string;
  jobId: number;
  /** owner/repo */
  repo: string;
  /** When GitHub queued the job (its `created_at`). */
  queuedAt: string;
  reason: WaitReason;
  /** Since when it waits for this reason (ms since epoch). */
  since: number;
}

/** Which system an attempt's failure is waiting on. */
export function waitReasonOf(err: unknown): WaitReason {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (e instanceof DependencyError) return e.dependency;
  }
  return "error";
}

export interface WaitingSummary {
  count: number;
  byReason: Partial<Record<WaitReason, number>>;
  /** The longest-waiting jobs first (by GitHub's queue time), at most `limit`. */
  jobs: Array<{ job: number; repo: string; runner: string; reason: WaitReason; waitingSeconds: number; reasonSeconds: number }>;
}

/** What /readyz and the metrics show; pure over the entries. */
export function summarizeWaiting(entries: Iterable<WaitingJob>, now: number, limit = 50): WaitingSummary {
  const all = [...entries];
  const byReason: WaitingSummary["byReason"] = {};
  for (const e of all) byReason[e.reason] = (byReason[e.reason] ?? 0) + 1;
  const queuedAt = (e: WaitingJob) => {
    const at = Date.parse(e.queuedAt);
    return Number.isFinite(at) ? at : e.since;
  };
  const jobs = all
    .sort((a, b) => queuedAt(a) - queuedAt(b) || a.jobId - b.jobId)
    .slice(0, limit)
    .map((e) => ({
      job: e.jobId,
      repo: e.repo,
      runner: e.runnerName,
      reason: e.reason,
      waitingSeconds: Math.max(0, Math.round((now - queuedAt(e)) / 1000)),
      reasonSeconds: Math.max(0, Math.round((now - e.since) / 1000)),
    }));
  return { count: all.length, byReason, jobs };
}
