import { credentialRefused } from "../core/credential-refused.js";
import type { RunnerTarget } from "../core/job-event.js";
import type { RunnerDeps, RunnerJobStub } from "../ports/index.js";
import { withRetry } from "../ports/retry.js";
import { isLiveChild, isUnstopped, runnerJobsOf } from "../ports/runner-jobs.js";

// Teardown: the one implementation of removing a runner, its credential and its runner job, with
// the retries of every other workflow, used by the webhook path and the reconciler alike.

/**
 * Why a runner goes, which decides what may stop the release:
 * - "unneeded": its job was cancelled, skipped or ran elsewhere; a busy runner took another job
 *   and is kept. The reconciler's spare and abandoned runners go this way too.
 * - "unneeded-if-dispatched": the same, on the webhook path: a runner that never got a runner job
 *   is left alone (most jobs that end elsewhere never had one of ours, and finding that out must
 *   not cost a GitHub rate-limit point per event, nor a Nomad call when the runner index knows).
 *   A registration or credential a crashed provisioning left behind is the reconciler's.
 * - "leftovers": a finished or half-done runner (reconciler): remove whatever it left, unless a
 *   live runner job shows the name was provisioned again meanwhile (another replica, a delivery).
 */
export type ReleaseReason = "unneeded" | "unneeded-if-dispatched" | "leftovers";

/**
 * "busy": kept, it is running a job. "absent": nothing was ever dispatched for it
 * ("unneeded-if-dispatched" only). "reprovisioned": a live runner job owns the name now
 * ("leftovers" only). "credential-refused": released, and its runner job showed that Vault
 * refused its credential to it (someone else used it first): removed even if busy.
 */
export type ReleaseOutcome = "released" | "busy" | "absent" | "reprovisioned" | "credential-refused";

type TeardownDeps = Pick<RunnerDeps, "github" | "nomad" | "vault" | "log" | "settings" | "runnerIndex">;

/**
 * Releases a runner: deregistered first, so GitHub cannot hand it a job while its runner job
 * stops, then its runner job stopped, then its credential deleted. A busy runner is never
 * deregistered. Nomad is asked first (cheap, and it says whether there is anything to release).
 */
export async function releaseRunner(deps: TeardownDeps, target: RunnerTarget, runnerName: string, reason: ReleaseReason): Promise<ReleaseOutcome> {
  const { github, nomad, settings } = deps;
  const retry = <T>(fn: () => Promise<T>) => withRetry(fn, settings.retry);
  const onlyIfDispatched = reason === "unneeded-if-dispatched";

  if (onlyIfDispatched && deps.runnerIndex?.knownAbsent(runnerName)) return "absent";
  const children = await retry(() => runnerJobsOf(deps, runnerName));
  if (children.length === 0 && onlyIfDispatched) return "absent";
  if (reason === "leftovers" && children.some(isLiveChild)) return "reprovisioned";

  const runner = await retry(() => github.findRunner(target, runnerName));
  if (reason === "leftovers" && (await wasCredentialRefused(deps, children))) {
    // Whoever holds the credential may run a runner of ours outside Nomad: it goes, busy or not.
    const removed = runner ? await retry(() => github.deleteRunner(target, runner.id)) : "absent";
    await deleteRunnerSecret(deps, runnerName);
    deps.log.error(
      { runner: runnerName, children: children.map((c) => c.ID), registration: removed },
      removed === "busy"
        ? "runner credential refused to its own allocation, and a runner of that name is running a job outside Nomad: possible theft; secret destroyed, GitHub refused to remove the busy runner"
        : "runner credential refused to its own allocation (wrapping token spent, expired or not its own): possible theft; runner removed at GitHub, secret destroyed",
    );
    return "credential-refused";
  }
  if (reason === "leftovers") {
    // What is left of a runner goes even when its registration is busy (that is kept).
    if (runner && !runner.busy) await retry(() => github.deleteRunner(target, runner.id));
  } else {
    if (runner?.busy) return "busy";
    if (runner && (await retry(() => github.deleteRunner(target, runner.id))) === "busy") return "busy";
  }

  // A runner job stranded on a lost node must not come back to life if the node does.
  for (const child of children) if (isUnstopped(child)) await retry(() => nomad.stopJob(child.ID, { purge: false }));
  await deleteRunnerSecret(deps, runnerName);
  if (reason !== "leftovers") {
    deps.log.info({ runner: runnerName, deregistered: runner !== undefined, stopped: children.length }, "unneeded runner released; secret deleted");
  }
  return "released";
}

/** Reads the allocations of failed runner jobs only: a healthy teardown costs no extra call. */
async function wasCredentialRefused(deps: TeardownDeps, children: RunnerJobStub[]): Promise<boolean> {
  for (const child of children.filter(hasFailed)) {
    if (credentialRefused(await withRetry(() => deps.nomad.taskExits(child.ID), deps.settings.retry))) return true;
  }
  return false;
}

function hasFailed(child: RunnerJobStub): boolean {
  return Object.values(child.JobSummary?.Summary ?? {}).some((counts) => (counts.Failed ?? 0) > 0);
}

/**
 * A runner whose job is done: it exits by itself (ephemeral) and GitHub deregisters it, so only
 * its credential is ours to remove.
 */
export async function releaseSpentRunner(deps: TeardownDeps, runnerName: string): Promise<void> {
  await deleteRunnerSecret(deps, runnerName);
  deps.log.info({ runner: runnerName }, "runner done; secret deleted");
}

/** A credential nothing will use. Idempotent. */
export async function deleteRunnerSecret(deps: Pick<RunnerDeps, "vault" | "settings">, runnerName: string): Promise<void> {
  await withRetry(() => deps.vault.deleteRunnerSecret(runnerName), deps.settings.retry);
}

/** Removes a spent runner job from Nomad for good (frees its idempotency token). */
export async function purgeRunnerJob(deps: Pick<RunnerDeps, "nomad" | "settings">, childId: string): Promise<void> {
  await withRetry(() => deps.nomad.stopJob(childId, { purge: true }), deps.settings.retry);
}
