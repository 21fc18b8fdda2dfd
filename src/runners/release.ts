import { dispatchedJobPrefix } from "../core/naming.js";
import type { RunnerTarget } from "../github/client.js";
import type { RunnerDeps } from "./deps.js";
import { withRetry } from "./retry.js";

/** "absent": nothing was ever dispatched for it (only with `onlyIfDispatched`). */
export type ReleaseOutcome = "released" | "busy" | "absent";

/**
 * A runner whose job is done: it exits by itself (ephemeral) and GitHub deregisters it, so only
 * its credential is ours to remove.
 */
export async function releaseSpentRunner(deps: RunnerDeps, runnerName: string): Promise<void> {
  await withRetry(() => deps.vault.deleteRunnerSecret(runnerName), deps.settings.retry);
  deps.log.info({ runner: runnerName }, "runner done; secret deleted");
}

/**
 * A runner no longer needed (its job was cancelled, skipped or ran elsewhere). A busy runner is
 * never touched: it took another job and finishes it. Otherwise it is deregistered first, so
 * GitHub cannot hand it a job while its Nomad job stops, then its credential is deleted.
 *
 * Nomad is asked first. With `onlyIfDispatched` (the webhook path) a runner that never got a
 * runner job is left alone: most jobs that end elsewhere never had one of ours, and finding that
 * out must not cost a GitHub rate-limit point per event (nor a Nomad call, when the runner index
 * knows). A registration or credential that a provisioning crashed half-way left behind is the
 * reconciler's to remove.
 */
export async function releaseIdleRunner(
  deps: RunnerDeps,
  target: RunnerTarget,
  runnerName: string,
  opts: { onlyIfDispatched?: boolean } = {},
): Promise<ReleaseOutcome> {
  const { github, nomad, settings } = deps;
  const retry = <T>(fn: () => Promise<T>) => withRetry(fn, settings.retry);

  if (opts.onlyIfDispatched && deps.runnerIndex?.knownAbsent(runnerName)) return "absent";
  const children = await retry(() => nomad.listJobs(dispatchedJobPrefix(settings.runnerJob, runnerName)));
  if (children.length === 0 && opts.onlyIfDispatched) return "absent";

  const runner = await retry(() => github.findRunner(target, runnerName));
  if (runner?.busy) return "busy";
  if (runner && (await retry(() => github.deleteRunner(target, runner.id))) === "busy") return "busy";

  for (const child of children) {
    if (child.Status !== "dead" && !child.Stop) await retry(() => nomad.stopJob(child.ID, { purge: false }));
  }
  await retry(() => deps.vault.deleteRunnerSecret(runnerName));
  deps.log.info({ runner: runnerName, deregistered: runner !== undefined, stopped: children.length }, "unneeded runner released; secret deleted");
  return "released";
}
