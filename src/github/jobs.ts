import type { WorkflowJob } from "../core/job-event.js";
import type { JobStatusAtGitHub } from "../core/replay-guard.js";
import type { ConditionalGets } from "./conditional.js";
import { hasStatus } from "./errors.js";
import { PAGE_SIZE, readAllPages } from "./pages.js";
import type { RunnerTarget } from "./target.js";

/**
 * GitHub lists at most 1,000 workflow runs when the listing is filtered by `status` (REST docs,
 * "List workflow runs for a repository"): pages past the tenth are never asked for.
 */
const MAX_FILTERED_RUN_PAGES = 1_000 / PAGE_SIZE;

/**
 * Jobs still waiting for a runner in one repository (queued runs and queued jobs of running ones),
 * every page of every listing. Each page is a conditional request of its own: unchanged ones come
 * back 304, free under the primary rate limit (not the secondary one: GitHub charges a GET its
 * point either way, so every page counts against the budget).
 */
export async function listQueuedJobs(conditional: ConditionalGets, target: RunnerTarget): Promise<WorkflowJob[]> {
  const jobs = new Map<number, WorkflowJob>();
  const repoKey = `${target.owner}/${target.repo}`.toLowerCase();
  // A run that moved from queued to in_progress between the two listings shows up in both.
  const seenRuns = new Set<number>();
  for (const status of ["queued", "in_progress"] as const) {
    const runIds = await readAllPages(
      (page) =>
        conditional.get(
          target,
          `list ${status} runs`,
          `runs:${repoKey}:${status}:${page}`,
          (o, headers) => o.rest.actions.listWorkflowRunsForRepo({ owner: target.owner, repo: target.repo, status, per_page: PAGE_SIZE, page, headers }),
          (data) => ({ items: data.workflow_runs.map((run) => run.id), count: data.workflow_runs.length }),
        ),
      MAX_FILTERED_RUN_PAGES,
    );
    for (const runId of runIds) {
      if (seenRuns.has(runId)) continue;
      seenRuns.add(runId);
      for (const job of await listQueuedJobsOfRun(conditional, target, repoKey, runId)) jobs.set(job.id, job);
    }
  }
  return [...jobs.values()];
}

/**
 * One job's status now: a conditional GET (operation `actions/get-job-for-workflow-run`), so
 * asking again about an unchanged job is a 304. A 404 means GitHub knows no such job in this
 * repository, or does not let us see it: either way nothing of ours may serve it.
 */
export async function jobStatus(conditional: ConditionalGets, target: RunnerTarget, jobId: number): Promise<JobStatusAtGitHub> {
  const repoKey = `${target.owner}/${target.repo}`.toLowerCase();
  try {
    return await conditional.get(
      target,
      "get job",
      `job:${repoKey}:${jobId}`,
      (o, headers) => o.rest.actions.getJobForWorkflowRun({ owner: target.owner, repo: target.repo, job_id: jobId, headers }),
      (data) => data.status,
    );
  } catch (err) {
    if (hasStatus(err, 404)) return "not-found";
    throw err;
  }
}

function listQueuedJobsOfRun(conditional: ConditionalGets, target: RunnerTarget, repoKey: string, runId: number): Promise<WorkflowJob[]> {
  return readAllPages((page) =>
    conditional.get(
      target,
      "list run jobs",
      `jobs:${repoKey}:${runId}:${page}`,
      (o, headers) =>
        o.rest.actions.listJobsForWorkflowRun({
          owner: target.owner,
          repo: target.repo,
          run_id: runId,
          filter: "latest",
          per_page: PAGE_SIZE,
          page,
          headers,
        }),
      // Shortness is judged on what GitHub sent, before keeping only the queued jobs.
      (data) => ({ items: data.jobs.filter((job) => job.status === "queued").map((job) => jobFromRest(target, job)), count: data.jobs.length }),
    ),
  );
}

/** The fields of a REST workflow job that a WorkflowJob is made of. */
interface RestJob {
  id: number;
  run_id: number;
  status: string;
  conclusion: string | null;
  labels: string[];
  runner_name: string | null;
  created_at: string;
}

export function jobFromRest(target: RunnerTarget, j: RestJob): WorkflowJob {
  return {
    id: j.id,
    runId: j.run_id,
    owner: target.owner,
    repo: target.repo,
    labels: j.labels,
    status: j.status as WorkflowJob["status"],
    conclusion: j.conclusion,
    runnerName: j.runner_name,
    createdAt: j.created_at,
    installationId: target.installationId,
  };
}
