// Per-job backoff between provisioning attempts. A job whose attempt failed (a dependency down,
// a write refused, someone else mid-way) is tried again by whoever finds it next: a redelivery,
// the reconciler's next pass. Without spacing, every one of those repeats the same writes against
// GitHub's budget; with it, a job is tried at most once per backoff, and the backoff stays short
// (capped) so a job costs little more than the outage itself once the dependency is back.

export interface BackoffPolicy {
  /** Wait after the first failure. */
  baseMs: number;
  /** Doubles per consecutive failure up to this. */
  maxMs: number;
}

export const DEFAULT_ATTEMPT_BACKOFF: BackoffPolicy = { baseMs: 500, maxMs: 8_000 };

/** One job's failed attempts in a row, and when the next may start. */
export interface AttemptRecord {
  failures: number;
  notBefore: number;
}

/** The record after an attempt that failed at `now`. */
export function afterFailure(record: AttemptRecord | undefined, now: number, policy: BackoffPolicy): AttemptRecord {
  const failures = (record?.failures ?? 0) + 1;
  const wait = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(failures - 1, 30));
  return { failures, notBefore: now + wait };
}

/** How long an attempt starting at `now` must wait first (0: at once). */
export function waitBeforeAttempt(record: AttemptRecord | undefined, now: number): number {
  return record ? Math.max(0, record.notBefore - now) : 0;
}
