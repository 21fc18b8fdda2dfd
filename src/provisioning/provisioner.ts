import { errorMessage } from "../core/errors.js";
import { type RunnerTarget, repoFullName, targetOf, type WorkflowJob } from "../core/job-event.js";
import type { JobStatusAtGitHub } from "../core/replay-guard.js";
import type { RunnerDeps } from "../ports/index.js";
import type { SlotGate } from "./capacity-gate.js";
import type { DispatchQueue, QueueOutcome } from "./dispatch-queue.js";

/**
 * The catch-up path, as provisioning sees it (the reconciler): jobs provisioning cannot serve now
 * are still queued at GitHub, and a pass finds them there.
 */
export interface Backlog {
  /** A pass soon (coalesced): capacity freed, or a job waits for capacity or for a dependency. */
  passSoon(): void;
  /** A repository jobs came from: its queue is watched even with an App or an owners list. */
  watchRepo(target: RunnerTarget): void;
  /** The runner is registered but has no credential yet: looked at again next pass. */
  recheckInFlight(runnerName: string): void;
}

export type NeedOutcome =
  /** Over MAX_RUNNERS(_PER_REPO): the backlog dispatches it when capacity frees. */
  | { status: "over-capacity" }
  /** The dispatch queue is full (or closed): the backlog dispatches it from GitHub's queue. */
  | { status: "queue-full"; waiting: number; running: number }
  /** Waits in the dispatch queue (behind other jobs, or for GitHub's rate limit). */
  | { status: "queued"; position: number }
  | QueueOutcome;

export interface NeedOptions {
  /**
   * The caller counted capacity already (the reconciler's plan) and does not wait for the
   * dispatch: answered as soon as the job is queued.
   */
  planned?: boolean;
}

/** What became of provisionings, for the metrics. */
export interface ProvisionObserver {
  /** A runner was dispatched, `seconds` after its job was queued at GitHub. */
  dispatched?(seconds: number): void;
  /** A `queued` delivery was refused: GitHub says the job is not queued (a replay). */
  notQueued?(jobStatus: JobStatusAtGitHub): void;
}

/**
 * The one entry point for "this job needs a runner", whoever found the job: a webhook delivery
 * (first or redelivered) or the reconciler. Capacity, then the dispatch queue; what cannot be
 * served now is handed to the backlog, which finds the job again at GitHub.
 */
export class Provisioner {
  private backlog: Backlog | undefined;

  constructor(
    private readonly deps: Pick<RunnerDeps, "log">,
    private readonly gate: SlotGate,
    readonly queue: DispatchQueue,
    private readonly observer: ProvisionObserver = {},
  ) {
    this.queue.onSettled((job, runner, result) => this.settled(job, runner, result));
  }

  /** Where jobs go that cannot be served now (set once the reconciler exists). */
  followUpWith(backlog: Backlog): void {
    this.backlog = backlog;
  }

  async needsRunner(job: WorkflowJob, runnerName: string, opts: NeedOptions = {}): Promise<NeedOutcome> {
    // A plan counted in this replica only: with a shared count it takes its slot like a webhook.
    const gated = !opts.planned || this.gate.shared;
    if (!opts.planned) this.backlog?.watchRepo(targetOf(job));
    if (gated && !(await this.gate.reserve(repoFullName(job), runnerName))) {
      // The reconciler's next periodic pass tries a planned job again; it need not hurry.
      if (!opts.planned) this.backlog?.passSoon();
      return { status: "over-capacity" };
    }
    // The reconciler's plan comes from GitHub's queue: provisioning need not ask GitHub again.
    // Under a shared count the slot is held on a lease: each dispatch request asks whether it still holds.
    const fence = gated ? this.gate.fence?.bind(this.gate, runnerName) : undefined;
    const ticket = this.queue.enqueue(job, runnerName, { seenQueued: opts.planned ?? false, beforeDispatch: fence });
    if (!ticket) {
      if (gated) this.gate.settle(runnerName, false);
      if (!opts.planned) this.backlog?.passSoon();
      return { status: "queue-full", ...this.queue.size };
    }
    if (gated)
      ticket.outcome.then(
        (r) => this.gate.settle(runnerName, r.status === "dispatched" || r.status === "duplicate"),
        () => this.gate.settle(runnerName, false),
      );
    if (opts.planned) return { status: "queued", position: 0 };
    return this.queue.answer(runnerName, ticket);
  }

  /** The job ended: a dispatch for it that has not started is taken out (it costs nothing then). */
  noLongerNeeded(runnerName: string, reason: string): void {
    this.queue.cancel(runnerName, reason);
  }

  /** A runner went: the oldest job waiting for capacity, which only the backlog knows, may go. */
  capacityFreed(): void {
    if (!this.gate.unlimited) this.backlog?.passSoon();
  }

  /** What became of a queued job, whoever queued it. */
  private settled(job: WorkflowJob, runner: string, result: { outcome: QueueOutcome } | { error: unknown }): void {
    const { log } = this.deps;
    const context = { job: job.id, repo: repoFullName(job), runner };
    if ("error" in result) {
      // Still queued at GitHub: the reconciler takes it over once the dependency is back.
      log.error({ ...context, err: errorMessage(result.error) }, "dispatch failed; the reconciler retries it");
      this.backlog?.passSoon();
      return;
    }
    const outcome = result.outcome;
    switch (outcome.status) {
      case "cancelled":
        log.info({ ...context, reason: outcome.reason }, "queued dispatch cancelled");
        return;
      case "not-queued":
        log.info({ ...context, jobStatus: outcome.jobStatus }, `replayed delivery of a job that is ${outcome.jobStatus} at GitHub: no runner`);
        this.observer.notQueued?.(outcome.jobStatus);
        return;
      case "in-flight":
        log.info(context, "runner is being provisioned elsewhere");
        this.backlog?.recheckInFlight(runner);
        // Looked at again soon (the dispatch queue spaces the job's attempts), not only next interval.
        this.backlog?.passSoon();
        return;
      case "dispatched":
      case "duplicate": {
        log.info({ ...context, nomadJob: outcome.nomadJobId }, outcome.status === "dispatched" ? "runner dispatched" : "runner already dispatched");
        const queuedAt = Date.parse(job.createdAt);
        if (outcome.status === "dispatched" && Number.isFinite(queuedAt)) this.observer.dispatched?.(Math.max(0, (Date.now() - queuedAt) / 1000));
        return;
      }
    }
  }
}
