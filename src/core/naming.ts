// Every name the service gives to things it creates is derived from the GitHub job id, so that a
// duplicate delivery, a second replica or a restarted process recognises its own work in GitHub,
// Vault and Nomad without any memory of its own.

/** GitHub runner name for a job: `<prefix>-<jobId>` (GitHub allows up to 64 characters). */
export function runnerNameFor(prefix: string, jobId: number): string {
  return `${prefix}-${jobId}`;
}

/** The job id a runner name was derived from, or undefined when the runner is not ours. */
export function jobIdOfRunner(prefix: string, runnerName: string | null | undefined): number | undefined {
  if (!runnerName?.startsWith(`${prefix}-`)) return undefined;
  const rest = runnerName.slice(prefix.length + 1);
  if (!/^[1-9]\d{0,17}$/.test(rest)) return undefined;
  const id = Number(rest);
  return Number.isSafeInteger(id) ? id : undefined;
}

/**
 * Nomad dispatch idempotency token. Nomad returns the existing child for a repeated token while
 * that child exists, which is what makes dispatch safe to repeat.
 */
export function idempotencyTokenFor(dispatcherId: string, jobId: number): string {
  return `${dispatcherId}-job-${jobId}`;
}

/**
 * Prefix shared by every child Nomad creates for this runner: dispatch is called with
 * IdPrefixTemplate = runner name, so children are `<parent>/dispatch-<runner>-<unix>-<hex>`.
 * The trailing dash keeps job 12 from matching job 123.
 */
export function dispatchedJobPrefix(parentJobId: string, runnerName: string): string {
  return `${parentJobId}/dispatch-${runnerName}-`;
}

/** The runner name inside a dispatched child's ID, or undefined when the child is not ours. */
export function runnerOfDispatchedJob(parentJobId: string, prefix: string, childId: string): string | undefined {
  const head = `${parentJobId}/dispatch-`;
  if (!childId.startsWith(head)) return undefined;
  const match = /^(.+)-\d+-[0-9a-f]{8}$/.exec(childId.slice(head.length));
  const runnerName = match?.[1];
  const ours = jobIdOfRunner(prefix, runnerName) !== undefined || poolSeatOfRunner(prefix, runnerName) !== undefined;
  return runnerName !== undefined && ours ? runnerName : undefined;
}

/**
 * Warm pool runners (core/warm-pool) are not made for a job: `<prefix>-pool-<scope tag>-<seat>`.
 * The tag (a hash of the organisation or repository the pool registers in) keeps the names of
 * two pools of one class apart in Vault and Nomad, which key by runner name alone; the seat is
 * the lowest number no runner of ours uses, so replicas that see the same world fill a pool
 * with the same names, which Nomad's idempotent dispatch and GitHub's unique runner names dedupe.
 */
export function poolRunnerName(prefix: string, poolRepo: string, seat: number): string {
  return `${prefix}-pool-${scopeTag(poolRepo)}-${seat}`;
}

/** The seat of a pool runner of `prefix`, or undefined when the name is not one. */
export function poolSeatOfRunner(prefix: string, runnerName: string | null | undefined): { tag: string; seat: number } | undefined {
  if (!runnerName?.startsWith(`${prefix}-pool-`)) return undefined;
  const match = /^([0-9a-f]{8})-(0|[1-9]\d{0,4})$/.exec(runnerName.slice(prefix.length + 6));
  return match ? { tag: match[1]!, seat: Number(match[2]) } : undefined;
}

/** A pool runner's dispatch idempotency token (a job's runner has `idempotencyTokenFor`). */
export function poolIdempotencyTokenFor(dispatcherId: string, runnerName: string): string {
  return `${dispatcherId}-pool-${runnerName}`;
}

/** Eight hex digits of FNV-1a over the lower-cased scope: short, stable across processes and versions. */
export function scopeTag(poolRepo: string): string {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(poolRepo.toLowerCase())) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, "0");
}
