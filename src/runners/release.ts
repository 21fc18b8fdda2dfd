import { dispatchedJobPrefix } from "../core/naming.js";
import type { RunnerTarget } from "../github/client.js";
import type { RunnerDeps } from "./deps.js";
import { withRetry } from "./retry.js";

export type ReleaseOutcome = "released" | "busy";

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
 */
export async function releaseIdleRunner(deps: RunnerDeps, target: RunnerTarget, runnerName: string): Promise<ReleaseOutcome> {
  const { github, nomad, settings } = deps;
  const retry = <T>(fn: () => Promise<T>) => withRetry(fn, settings.retry);

  const runner = await retry(() => github.findRunner(target, runnerName));
  if (runner?.busy) return "busy";
  if (runner && (await retry(() => github.deleteRunner(target, runner.id))) === "busy") return "busy";

  const children = await retry(() => nomad.listJobs(dispatchedJobPrefix(settings.runnerJob, runnerName)));
  for (const child of children) {
    if (child.Status !== "dead" && !child.Stop) await retry(() => nomad.stopJob(child.ID, { purge: false }));
  }
  await retry(() => deps.vault.deleteRunnerSecret(runnerName));
  deps.log.info({ runner: runnerName, deregistered: runner !== undefined, stopped: children.length }, "unneeded runner released; secret deleted");
  return "released";
}
