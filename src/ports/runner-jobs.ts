import { dispatchedJobPrefix, runnerOfDispatchedJob } from "../core/naming.js";
import type { RunnerChild } from "../core/reconcile-plan.js";
import { classOfRunner, type RunnerClass } from "../core/runner-class.js";
import type { RunnerDeps, RunnerJobStub } from "./index.js";

/**
 * Every runner job this deployment dispatched, of every class (by child ID prefix under each
 * class's parameterized job, and dispatcher meta): the count of record for capacity, and what
 * the reconciler plans with.
 */
export async function listRunnerJobs(deps: Pick<RunnerDeps, "nomad" | "settings" | "runnerIndex">): Promise<RunnerChild[]> {
  const { classes, dispatcherId } = deps.settings;
  const startedAt = deps.runnerIndex?.listingStarted();
  const perClass = await Promise.all(
    classes.map(async (cls) => {
      const stubs = await deps.nomad.listJobs(`${cls.job}/dispatch-${cls.runnerPrefix}-`);
      return stubs.flatMap((stub) => {
        const child = toRunnerChild(stub, cls);
        // Another deployment sharing the namespace and prefix is not ours to touch.
        return child && (stub.Meta?.dispatcher_id ?? dispatcherId) === dispatcherId ? [child] : [];
      });
    }),
  );
  const children = perClass.flat();
  if (startedAt !== undefined)
    deps.runnerIndex?.listingDone(
      startedAt,
      children.map((c) => c.runnerName),
    );
  return children;
}

/** The Nomad jobs dispatched for one runner, found under its class's parameterized job. */
export async function runnerJobsOf(deps: Pick<RunnerDeps, "nomad" | "settings">, runnerName: string): Promise<RunnerJobStub[]> {
  const cls = classOfRunner(deps.settings.classes, runnerName)?.cls;
  return cls ? deps.nomad.listJobs(dispatchedJobPrefix(cls.job, runnerName)) : [];
}

function toRunnerChild(stub: RunnerJobStub, cls: RunnerClass): RunnerChild | undefined {
  const runnerName = runnerOfDispatchedJob(cls.job, cls.runnerPrefix, stub.ID);
  const jobId = Number(stub.Meta?.github_job_id);
  const repo = stub.Meta?.github_repo;
  if (!runnerName || !Number.isSafeInteger(jobId) || !repo) return undefined;
  return {
    id: stub.ID,
    runnerName,
    jobId,
    repo,
    cls: cls.name,
    alive: isLiveChild(stub),
    // Nomad reports nanoseconds.
    changedAt: Math.floor(stub.SubmitTime / 1e6),
  };
}

/**
 * A runner job that is, or will be, running a runner. Not one that is dead or stopped, and not
 * one stranded on a lost node: the runner group has `disconnect { replace = false }`, so Nomad
 * keeps such an allocation "unknown" (the job stays "running") and never replaces it
 * (hashicorp/nomad scheduler/reconciler/reconcile_cluster.go); it is ours to stop and replace.
 */
export function isLiveChild(stub: Pick<RunnerJobStub, "Status" | "Stop" | "JobSummary">): boolean {
  if (stub.Status === "dead" || stub.Stop) return false;
  const groups = Object.values(stub.JobSummary?.Summary ?? {});
  const stranded = groups.some((g) => (g.Unknown ?? 0) + (g.Lost ?? 0) > 0);
  const placed = groups.some((g) => (g.Queued ?? 0) + (g.Starting ?? 0) + (g.Running ?? 0) > 0);
  return !stranded || placed;
}

/** A runner job not yet asked to stop: stopping it again is a wasted call. */
export function isUnstopped(stub: Pick<RunnerJobStub, "Status" | "Stop">): boolean {
  return stub.Status !== "dead" && !stub.Stop;
}
