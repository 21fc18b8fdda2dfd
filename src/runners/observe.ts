import type { RunnerChild } from "../core/reconcile.js";
import { runnerOfDispatchedJob } from "../core/naming.js";
import type { NomadJobStub } from "../nomad/types.js";
import type { RunnerDeps } from "./deps.js";

/** Every runner job this deployment dispatched (by child ID prefix and dispatcher meta). */
export async function listRunnerChildren(deps: RunnerDeps): Promise<RunnerChild[]> {
  const { runnerJob, runnerNamePrefix, dispatcherId } = deps.settings;
  const startedAt = deps.runnerIndex?.listingStarted();
  const stubs = await deps.nomad.listJobs(`${runnerJob}/dispatch-${runnerNamePrefix}-`);
  const children = stubs.flatMap((stub) => {
    const child = toRunnerChild(stub, runnerJob, runnerNamePrefix);
    // Another deployment sharing the namespace and prefix is not ours to touch.
    return child && (stub.Meta?.dispatcher_id ?? dispatcherId) === dispatcherId ? [child] : [];
  });
  if (startedAt !== undefined) deps.runnerIndex?.listingDone(startedAt, children.map((c) => c.runnerName));
  return children;
}

export function toRunnerChild(stub: NomadJobStub, runnerJob: string, prefix: string): RunnerChild | undefined {
  const runnerName = runnerOfDispatchedJob(runnerJob, prefix, stub.ID);
  const jobId = Number(stub.Meta?.github_job_id);
  const repo = stub.Meta?.github_repo;
  if (!runnerName || !Number.isSafeInteger(jobId) || !repo) return undefined;
  return {
    id: stub.ID,
    runnerName,
    jobId,
    repo,
    alive: stub.Status !== "dead" && !stub.Stop,
    // Nomad reports nanoseconds.
    changedAt: Math.floor(stub.SubmitTime / 1e6),
  };
}
