import { repoFullName, type WorkflowJob } from "../core/job-event.js";
import { summarizeWaiting, type WaitingJob, type WaitingSummary, type WaitReason } from "../core/waiting.js";
import type { Logger } from "../log.js";

/**
 * The jobs this process accepted that have no runner yet, with what each waits for. Fed by the
 * provisioning outcomes and the reconciler's plan; read by /readyz, the metrics and the log.
 * In memory: after a restart the reconciler finds the jobs again, and with them their reasons.
 */
export class WaitingRoom {
  private readonly entries = new Map<string, WaitingJob>();

  constructor(private readonly log: Pick<Logger, "info">) {}

  /** The job waits for `reason`; one log line when it starts waiting or the reason changes. */
  wait(job: WorkflowJob, runnerName: string, reason: WaitReason): void {
    const known = this.entries.get(runnerName);
    if (known?.reason === reason) return;
    const repo = repoFullName(job);
    this.entries.set(runnerName, { runnerName, jobId: job.id, repo, queuedAt: job.createdAt, reason, since: Date.now() });
    this.log.info({ job: job.id, repo, runner: runnerName, reason, was: known?.reason }, "job waiting for a runner");
  }

  /** The job has a runner, or no longer needs one. */
  leave(runnerName: string): void {
    this.entries.delete(runnerName);
  }

  /**
   * GitHub's queue of `repo` was just listed: a job of it not among `queued` ended or was taken
   * while we did not hear of it (a lost `completed` delivery).
   */
  listed(repo: string, queued: ReadonlySet<string>): void {
    const key = repo.toLowerCase();
    for (const [name, entry] of this.entries) if (entry.repo.toLowerCase() === key && !queued.has(name)) this.entries.delete(name);
  }

  reasonOf(runnerName: string): WaitReason | undefined {
    return this.entries.get(runnerName)?.reason;
  }

  summary(extra: Iterable<WaitingJob> = [], now = Date.now(), limit?: number): WaitingSummary {
    const merged = new Map(this.entries);
    for (const e of extra) if (!merged.has(e.runnerName)) merged.set(e.runnerName, e);
    return summarizeWaiting(merged.values(), now, limit);
  }
}
