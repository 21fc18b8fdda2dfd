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
  return runnerName !== undefined && jobIdOfRunner(prefix, runnerName) !== undefined ? runnerName : undefined;
}
