/**
 * The part of a `workflow_job` webhook the decisions need, as plain data. Keeping the decisions
 * off the full payload type lets the reconciler feed them jobs it listed from the REST API too.
 */
export interface WorkflowJob {
  id: number;
  runId: number;
  owner: string;
  repo: string;
  labels: string[];
  status: "queued" | "waiting" | "in_progress" | "completed" | "pending" | "requested";
  conclusion: string | null;
  runnerName: string | null;
  /** When GitHub queued the job (ISO 8601); "" when a delivery did not say. */
  createdAt: string;
  /** When a runner picked it up (ISO 8601; `in_progress` and later deliveries that also carry `created_at`). */
  startedAt?: string;
  installationId?: number;
}

export type JobAction = "queued" | "waiting" | "in_progress" | "completed";

export interface JobEvent {
  action: JobAction;
  job: WorkflowJob;
}

export function repoFullName(job: Pick<WorkflowJob, "owner" | "repo">): string {
  return `${job.owner}/${job.repo}`;
}

/** Where a job's runner is registered: its repository (or the owner, for org-scoped runners). */
export interface RunnerTarget {
  owner: string;
  repo: string;
  installationId?: number;
}

export function targetOf(job: WorkflowJob): RunnerTarget {
  return { owner: job.owner, repo: job.repo, installationId: job.installationId };
}
