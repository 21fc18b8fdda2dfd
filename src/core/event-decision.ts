import type { JobEvent, WorkflowJob } from "./job-event.js";
import { jobIdOfRunner, runnerNameFor } from "./naming.js";

/** What a deployment serves; derived from config, plain data so decisions stay pure. */
export interface ServePolicy {
  /** Lower-cased labels a job must all request. */
  labels: string[];
  /** Lower-cased owners; empty = any owner. */
  allowedOwners: string[];
  /** Lower-cased `owner/repo`; empty = any repo (of an allowed owner). */
  allowedRepos: string[];
  runnerNamePrefix: string;
}

export type Decision =
  | { kind: "ignore"; reason: string }
  /** A runner must exist for this job. */
  | { kind: "provision"; job: WorkflowJob; runnerName: string }
  /**
   * The job is over. `spent`: our runner that ran it (ephemeral, exits by itself; its credential
   * goes). `unneeded`: the runner dispatched for it that never got it; it is released unless it
   * turns out busy, because a runner may take a job other than its own.
   */
  | { kind: "release"; job: WorkflowJob; spent: string[]; unneeded: string[] }
  /** Our runner picked up a job: nothing to change, worth a log line and a metric. */
  | { kind: "observe"; job: WorkflowJob; runnerName: string };

/** Does the job ask for a runner we provide, from a repository we serve? */
export function matchesPolicy(job: WorkflowJob, policy: ServePolicy): { ok: true } | { ok: false; reason: string } {
  const owner = job.owner.toLowerCase();
  const fullName = `${owner}/${job.repo.toLowerCase()}`;
  if (policy.allowedOwners.length > 0 && !policy.allowedOwners.includes(owner)) {
    return { ok: false, reason: `owner ${job.owner} is not in ALLOWED_OWNERS` };
  }
  if (policy.allowedRepos.length > 0 && !policy.allowedRepos.includes(fullName)) {
    return { ok: false, reason: `repository ${fullName} is not in ALLOWED_REPOS` };
  }
  // GitHub matches labels case-insensitively; a job must request every label we serve.
  const requested = new Set(job.labels.map((l) => l.toLowerCase()));
  const missing = policy.labels.filter((l) => !requested.has(l));
  if (missing.length > 0) return { ok: false, reason: `job does not request label(s) ${missing.join(", ")}` };
  return { ok: true };
}

/** The single decision for one webhook event. */
export function decide(event: JobEvent, policy: ServePolicy): Decision {
  const { job } = event;
  const match = matchesPolicy(job, policy);
  if (!match.ok) return { kind: "ignore", reason: match.reason };
  const runnerName = runnerNameFor(policy.runnerNamePrefix, job.id);

  switch (event.action) {
    case "queued":
      return { kind: "provision", job, runnerName };
    case "waiting":
      // Held for an environment approval: GitHub sends `queued` once approved.
      return { kind: "ignore", reason: "job is waiting for approval" };
    case "in_progress": {
      const servedBy = job.runnerName;
      if (jobIdOfRunner(policy.runnerNamePrefix, servedBy) !== undefined && servedBy) {
        return { kind: "observe", job, runnerName: servedBy };
      }
      return { kind: "ignore", reason: `job runs on a runner we did not create (${servedBy ?? "none"})` };
    }
    case "completed": {
      const ranOn = job.runnerName;
      const ranOnOurs = ranOn !== null && jobIdOfRunner(policy.runnerNamePrefix, ranOn) !== undefined;
      // When another of our runners ran it, the one dispatched for this job stays: it serves
      // the job that other runner was meant for.
      if (ranOnOurs) return { kind: "release", job, spent: [ranOn], unneeded: [] };
      return { kind: "release", job, spent: [], unneeded: [runnerName] };
    }
  }
}
