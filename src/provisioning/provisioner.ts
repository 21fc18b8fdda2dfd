import { CAPS, type Cap } from "../core/capacity.js";
import { errorMessage } from "../core/errors.js";
import { type RunnerTarget, repoFullName, targetOf, type WorkflowJob } from "../core/job-event.js";
import type { JobStatusAtGitHub } from "../core/replay-guard.js";
import { classOfRunner } from "../core/runner-class.js";
import { type WaitingSummary, waitReasonOf } from "../core/waiting.js";
import type { RunnerDeps } from "../ports/index.js";
import type { SlotGate } from "./capacity-gate.js";
import type { DispatchQueue, QueueOutcome } from "./dispatch-queue.js";
import { WaitingRoom } from "./waiting-room.js";

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
  /**
   * The runner `runner` of class `cls` was dispatched: `sinceQueued` seconds after its job was
   * queued at GitHub (undefined: a job without a queued time), `ownSeconds` after this process
   * heard of the job (its own share); both undefined for a warm pool's runner.
   */
  dispatched?(timing: { sinceQueued?: number; ownSeconds?: number }, cls: string, runner: string): void;
  /** A `queued` delivery was refused: GitHub says the job is not queued (a replay). */
  notQueued?(jobStatus: JobStatusAtGitHub): void;
  /** An attempt failed (the job waits; see the waiting room). */
  failed?(err: unknown): void;
}

/**
 * The one entry point for "this job needs a runner", whoever found the job: a webhook delivery
 * (first or redelivered) or the reconciler. Capacity, then the dispatch queue; what cannot be
 * served now is handed to the backlog, which finds the job again at GitHub.
 */
export class Provisioner {
  private backlog: Backlog | undefined;
  /** Jobs accepted and not served yet, with what each waits for (/readyz, metrics, log). */
  private readonly room: WaitingRoom;

  constructor(
    private readonly deps: Pick<RunnerDeps, "log" | "settings">,
    private readonly gate: SlotGate,
    readonly queue: DispatchQueue,
    private readonly observer: ProvisionObserver = {},
  ) {
    this.room = new WaitingRoom(deps.log);
    this.queue.onSettled((job, runner, result, heardAt) => this.settled(job, runner, result, heardAt));
  }

  /** Which jobs wait for a runner, and why. */
  waiting(limit?: number): WaitingSummary {
    return this.room.summary(this.queue.waitingJobs(), Date.now(), limit);
  }

  /**
   * The reconciler's plan leaves the job waiting for a cap. A job being provisioned here is not:
   * the plan counts only the runner jobs Nomad lists.
   */
  waitsForCapacity(job: WorkflowJob, runnerName: string, cap: Cap): void {
    if (!this.queue.has(runnerName)) this.room.wait(job, runnerName, cap);
  }

  /** GitHub's queue of `repo` was listed just now: jobs not in it wait no more. */
  stillQueued(repo: string, runnerNames: ReadonlySet<string>): void {
    this.room.listed(repo, runnerNames);
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
      this.queue.heard(runnerName, opts.planned ?? false);
      // The reconciler's plan names the cap (on the webhook path it is asked for now).
      const known = this.room.reasonOf(runnerName);
      if (!(CAPS as readonly (string | undefined)[]).includes(known)) this.room.wait(job, runnerName, "capacity");
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
      this.room.wait(job, runnerName, "queue-full");
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

  /**
   * A new runner for the warm pool of `poolRepo` (the reconciler's plan): it takes a slot like
   * any runner, so a pool never pushes live runners past a cap, in this replica or across them.
   */
  async fillPool(target: RunnerTarget, poolRepo: string, runnerName: string): Promise<"dispatched" | "duplicate" | "in-flight" | "over-capacity"> {
    if (!(await this.gate.reserve(poolRepo, runnerName))) return "over-capacity";
    let dispatched = false;
    try {
      const outcome = await this.queue.provisionPool(target, poolRepo, runnerName, this.gate.fence?.bind(this.gate, runnerName));
      dispatched = outcome.status !== "in-flight";
      if (outcome.status === "dispatched") {
        this.deps.log.info({ runner: runnerName, pool: poolRepo }, "warm pool runner dispatched");
        this.observer.dispatched?.({}, classOfRunner(this.deps.settings.classes, runnerName)?.cls.name ?? "", runnerName);
      }
      if (outcome.status === "in-flight") this.backlog?.recheckInFlight(runnerName);
      return outcome.status;
    } finally {
      this.gate.settle(runnerName, dispatched);
    }
  }

  /** The job ended: a dispatch for it that has not started is taken out (it costs nothing then). */
  noLongerNeeded(runnerName: string, reason: string): void {
    this.room.leave(runnerName);
    this.queue.cancel(runnerName, reason);
  }

  /** A warm pool's runner took a job: a pass soon puts another in its place. */
  poolRunnerTaken(): void {
    this.backlog?.passSoon();
  }

  /** A runner went: the oldest job waiting for capacity, which only the backlog knows, may go. */
  capacityFreed(): void {
    if (!this.gate.unlimited) this.backlog?.passSoon();
  }

  /** What became of a queued job, whoever queued it. */
  private settled(job: WorkflowJob, runner: string, result: { outcome: QueueOutcome } | { error: unknown }, heardAt: number): void {
    const { log } = this.deps;
    const context = { job: job.id, repo: repoFullName(job), runner };
    if ("error" in result) {
      // Still queued at GitHub: the reconciler takes it over once the dependency is back.
      log.error({ ...context, err: errorMessage(result.error) }, "dispatch failed; the reconciler retries it");
      this.room.wait(job, runner, waitReasonOf(result.error));
      this.observer.failed?.(result.error);
      this.backlog?.passSoon();
      return;
    }
    const outcome = result.outcome;
    if (outcome.status === "in-flight") this.room.wait(job, runner, "in-flight");
    else this.room.leave(runner);
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
        const cls = classOfRunner(this.deps.settings.classes, runner)?.cls.name ?? "";
        const now = Date.now();
        const sinceQueued = Number.isFinite(queuedAt) ? Math.max(0, (now - queuedAt) / 1000) : undefined;
        if (outcome.status === "dispatched") this.observer.dispatched?.({ sinceQueued, ownSeconds: Math.max(0, (now - heardAt) / 1000) }, cls, runner);
        return;
      }
    }
  }
}
