import type { JobEvent, WorkflowJob } from "./job-event.js";
import { runnerNameFor } from "./naming.js";
import { classForLabels, classOfRunner, type NoClassReason, type RunnerClass } from "./runner-class.js";

/** What a deployment serves; derived from config, plain data so decisions stay pure. */
export interface ServePolicy {
  /** The runner classes; a job is served by the one whose labels equal its own (src/core/runner-class.ts). */
  classes: RunnerClass[];
  /** Lower-cased owners; empty = any owner. */
  allowedOwners: string[];
  /** Lower-cased `owner/repo`; empty = any repo (of an allowed owner). */
  allowedRepos: string[];
}

/** Why a job is not ours, bounded (a metric label); the log line says the rest. */
export type IgnoreCode = "owner-not-allowed" | "repo-not-allowed" | NoClassReason;

export type Decision =
  | { kind: "ignore"; reason: string; code?: IgnoreCode }
  /** A runner of class `cls` must exist for this job. */
  | { kind: "provision"; job: WorkflowJob; runnerName: string; cls: RunnerClass }
  /**
   * The job is over. `spent`: our runner that ran it (ephemeral, exits by itself; its credential
   * goes). `unneeded`: the runner dispatched for it that never got it; it is released unless it
   * turns out busy, because a runner may take a job other than its own.
   */
  | { kind: "release"; job: WorkflowJob; spent: string[]; unneeded: string[] }
  /**
   * Our runner picked up a job of class `cls` (its labels'): nothing to change, worth a log line and a metric. `startupSeconds`:
   * GitHub's own queued -> started time (`started_at - created_at`), when the delivery has both.
   * `runnerClass`: the runner's own class (a wider one may take the job); `pooled`: a warm pool's runner.
   */
  | { kind: "observe"; job: WorkflowJob; runnerName: string; cls: RunnerClass; runnerClass: RunnerClass; pooled: boolean; startupSeconds?: number };

export type PolicyMatch = { ok: true; cls: RunnerClass } | { ok: false; reason: string; code: IgnoreCode };

/** Is the repository one we serve? (Labels aside: the backstop scan asks this of repositories.) */
export function servesRepo(
  target: Pick<WorkflowJob, "owner" | "repo">,
  policy: Pick<ServePolicy, "allowedOwners" | "allowedRepos">,
): { ok: true } | Extract<PolicyMatch, { ok: false }> {
  const owner = target.owner.toLowerCase();
  const fullName = `${owner}/${target.repo.toLowerCase()}`;
  if (policy.allowedOwners.length > 0 && !policy.allowedOwners.includes(owner)) {
    return { ok: false, reason: `owner ${target.owner} is not in ALLOWED_OWNERS`, code: "owner-not-allowed" };
  }
  if (policy.allowedRepos.length > 0 && !policy.allowedRepos.includes(fullName)) {
    return { ok: false, reason: `repository ${fullName} is not in ALLOWED_REPOS`, code: "repo-not-allowed" };
  }
  return { ok: true };
}

/** Does the job come from a repository we serve and ask for exactly the labels of one of our classes? */
export function matchesPolicy(job: WorkflowJob, policy: ServePolicy): PolicyMatch {
  const repo = servesRepo(job, policy);
  if (!repo.ok) return repo;
  const match = classForLabels(policy.classes, job.labels);
  if (match.ok) return match;
  const reason =
    match.reason === "no-labels"
      ? "job requests no labels"
      : `no runner class has exactly the labels ${JSON.stringify(job.labels)} (labels are matched as a set)`;
  return { ok: false, reason, code: match.reason };
}

/** The single decision for one webhook event. */
export function decide(event: JobEvent, policy: ServePolicy): Decision {
  const { job } = event;
  const match = matchesPolicy(job, policy);
  if (!match.ok) return { kind: "ignore", reason: match.reason, code: match.code };
  const { cls } = match;
  const runnerName = runnerNameFor(cls.runnerPrefix, job.id);

  switch (event.action) {
    case "queued":
      return { kind: "provision", job, runnerName, cls };
    case "waiting":
      // Held for an environment approval: GitHub sends `queued` once approved.
      return { kind: "ignore", reason: "job is waiting for approval" };
    case "in_progress": {
      const servedBy = job.runnerName;
      // Ours when its name is one of our classes'. Counted under the job's class (its labels'): a
      // runner of a wider class may take it (GitHub gives a job to any runner with its labels).
      const ours = classOfRunner(policy.classes, servedBy);
      if (servedBy && ours) {
        return {
          kind: "observe",
          job,
          runnerName: servedBy,
          cls,
          runnerClass: ours.cls,
          pooled: ours.jobId === undefined,
          startupSeconds: startupSeconds(job),
        };
      }
      return { kind: "ignore", reason: `job runs on a runner we did not create (${servedBy ?? "none"})` };
    }
    case "completed": {
      const ranOn = job.runnerName;
      const ranOnClass = classOfRunner(policy.classes, ranOn)?.cls;
      // When another of our runners of the job's class ran it, the one dispatched for this job
      // stays: it serves the job that other runner was meant for. A runner of another (wider)
      // class took it from a job this one cannot serve, so this one is not needed.
      if (ranOn !== null && ranOnClass === cls) return { kind: "release", job, spent: [ranOn], unneeded: [] };
      if (ranOn !== null && ranOnClass) return { kind: "release", job, spent: [ranOn], unneeded: [runnerName] };
      return { kind: "release", job, spent: [], unneeded: [runnerName] };
    }
  }
}

/** GitHub's `started_at - created_at` in seconds (what ARC publishes as gha_job_startup_duration_seconds). */
export function startupSeconds(job: Pick<WorkflowJob, "createdAt" | "startedAt">): number | undefined {
  const seconds = (Date.parse(job.startedAt ?? "") - Date.parse(job.createdAt)) / 1000;
  return Number.isFinite(seconds) && seconds >= 0 ? seconds : undefined;
}
