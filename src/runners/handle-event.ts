import { decide, type Decision, type ServePolicy } from "../core/decide.js";
import { errorMessage } from "../core/errors.js";
import { repoFullName, type JobEvent, type WorkflowJob } from "../core/job-event.js";
import type { CapacityGate } from "./capacity.js";
import type { RunnerDeps } from "./deps.js";
import { DispatchQueue, type QueueOutcome } from "./dispatch-queue.js";
import type { Reconciler } from "./reconciler.js";
import { targetOf } from "./provision.js";
import { releaseIdleRunner, releaseSpentRunner } from "./release.js";

export type EventOutcome =
  | { outcome: "ignored"; reason: string }
  | { outcome: "dispatched" | "duplicate"; runner: string; nomadJobId: string }
  | { outcome: "in-flight"; runner: string }
  /**
   * Accepted, not dispatched yet: it waits in the dispatch queue (GitHub's rate limit), or over
   * MAX_RUNNERS(_PER_REPO) for capacity. Still queued at GitHub either way, so nothing is lost.
   */
  | { outcome: "deferred"; runner: string; reason: string }
  | { outcome: "released"; runners: string[]; kept: string[] }
  | { outcome: "observed"; runner: string };

/**
 * Receives one `workflow_job` event: the pure decision, then its effects. Concurrent deliveries
 * of the same job in this process share one execution; across processes the idempotency of each
 * step (runner name, Nomad idempotency token) keeps the result single.
 *
 * Runners are provisioned through the dispatch queue: a delivery is answered with the dispatch
 * when that takes a moment, and "deferred" (202) when the job has to wait for GitHub's rate limit.
 */
export class JobEventHandler {
  private readonly inFlight = new Map<string, Promise<EventOutcome>>();
  readonly queue: DispatchQueue;

  constructor(
    private readonly deps: RunnerDeps,
    private readonly policy: ServePolicy,
    private readonly gate: CapacityGate,
    private readonly reconciler?: Reconciler,
    /** Called with the job's queued-to-dispatched time when a runner was dispatched. */
    private readonly onDispatched?: (seconds: number) => void,
    queue?: DispatchQueue,
  ) {
    this.queue = queue ?? new DispatchQueue(deps);
    this.queue.onSettled((job, runner, result) => this.dispatchSettled(job, runner, result));
  }

  /**
   * Events that need nothing done (most of a busy organisation's: other labels, jobs starting)
   * are answered synchronously, without scheduling anything.
   */
  handle(event: JobEvent): EventOutcome | Promise<EventOutcome> {
    const decision = decide(event, this.policy);
    if (decision.kind === "ignore" || decision.kind === "observe") return this.answer(event, decision);
    if (decision.kind === "release") {
      const nothingToDo = this.releaseNothingDispatched(event, decision);
      if (nothingToDo) return nothingToDo;
    }
    const key = `${event.action}:${event.job.id}`;
    const running = this.inFlight.get(key);
    if (running) return running;
    const work = this.execute(event, decision).finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, work);
    return work;
  }

  /** Resolves when every event being handled has finished (graceful shutdown). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.inFlight.values()]);
  }

  /** What became of a queued job, whoever queued it (a delivery or the reconciler). */
  private dispatchSettled(job: WorkflowJob, runner: string, result: { outcome: QueueOutcome } | { error: unknown }): void {
    const { log } = this.deps;
    const context = { job: job.id, repo: repoFullName(job), runner };
    if ("error" in result) {
      // Still queued at GitHub: the reconciler takes it over once the dependency is back.
      log.error({ ...context, err: errorMessage(result.error) }, "dispatch failed; the reconciler retries it");
      this.reconciler?.kick();
      return;
    }
    const outcome = result.outcome;
    switch (outcome.status) {
      case "cancelled":
        log.info({ ...context, reason: outcome.reason }, "queued dispatch cancelled");
        return;
      case "in-flight":
        log.info(context, "runner is being provisioned elsewhere");
        this.reconciler?.noteInFlight(runner);
        return;
      case "dispatched":
      case "duplicate": {
        log.info({ ...context, nomadJob: outcome.nomadJobId }, outcome.status === "dispatched" ? "runner dispatched" : "runner already dispatched");
        const queuedAt = Date.parse(job.createdAt);
        if (outcome.status === "dispatched" && Number.isFinite(queuedAt)) this.onDispatched?.(Math.max(0, (Date.now() - queuedAt) / 1000));
        return;
      }
    }
  }

  private answer(event: JobEvent, decision: Extract<Decision, { kind: "ignore" | "observe" }>): EventOutcome {
    const outcome: EventOutcome =
      decision.kind === "ignore" ? { outcome: "ignored", reason: decision.reason } : { outcome: "observed", runner: decision.runnerName };
    // Debug, and its context built only when wanted: on a busy organisation these are most events.
    const { log } = this.deps;
    if (log.isLevelEnabled("debug")) {
      log.debug({ job: event.job.id, repo: repoFullName(event.job), action: event.action, ...outcome }, decision.kind === "ignore" ? "event ignored" : "runner picked up job");
    }
    return outcome;
  }

  /**
   * The common end of a job that ran elsewhere: its runner was never dispatched (still waiting
   * in the queue, or never queued here, as the runner index knows). Answered without any I/O;
   * undefined when Nomad, Vault or GitHub must be asked.
   */
  private releaseNothingDispatched(event: JobEvent, decision: Extract<Decision, { kind: "release" }>): EventOutcome | undefined {
    // Not started yet: nothing exists for it, and it costs no GitHub point now.
    for (const name of decision.unneeded) this.queue.cancel(name, `job ${event.job.id} completed`);
    if (decision.spent.length > 0 || !decision.unneeded.every((name) => this.deps.runnerIndex?.knownAbsent(name))) return undefined;
    this.deps.log.debug({ job: event.job.id, repo: repoFullName(event.job), conclusion: event.job.conclusion }, "job finished; no runner of ours to release");
    if (!this.gate.unlimited) this.reconciler?.kick();
    return { outcome: "released", runners: [], kept: [] };
  }

  private async execute(event: JobEvent, decision: Extract<Decision, { kind: "provision" | "release" }>): Promise<EventOutcome> {
    const { log } = this.deps;
    const context = { job: event.job.id, repo: repoFullName(event.job), action: event.action };

    switch (decision.kind) {
      case "provision": {
        const runner = decision.runnerName;
        this.reconciler?.noteRepo(targetOf(decision.job));
        if (!(await this.gate.reserve(repoFullName(decision.job), runner))) {
          log.info({ ...context, runner }, "runner limit reached; job waits for capacity");
          this.reconciler?.kick();
          return { outcome: "deferred", runner, reason: "runner limit reached; dispatched when capacity frees" };
        }
        const ticket = this.queue.enqueue(decision.job, runner);
        if (!ticket) {
          this.gate.settle(runner, false);
          log.warn({ ...context, runner, ...this.queue.size }, "dispatch queue full; the reconciler dispatches this job");
          this.reconciler?.kick();
          return { outcome: "deferred", runner, reason: "dispatch queue full; the reconciler dispatches it from GitHub's queue" };
        }
        ticket.outcome.then(
          (r) => this.gate.settle(runner, r.status === "dispatched" || r.status === "duplicate"),
          () => this.gate.settle(runner, false),
        );
        const answer = await this.queue.answer(runner, ticket);
        switch (answer.status) {
          case "queued":
            log.debug({ ...context, runner, position: answer.position }, "job queued for dispatch");
            return { outcome: "deferred", runner, reason: "queued for dispatch at the pace GitHub's rate limit allows" };
          case "cancelled":
            return { outcome: "ignored", reason: `dispatch cancelled: ${answer.reason}` };
          case "in-flight":
            return { outcome: "in-flight", runner };
          default:
            return { outcome: answer.status, runner, nomadJobId: answer.nomadJobId };
        }
      }

      case "release": {
        const released: string[] = [];
        const kept: string[] = [];
        for (const name of decision.spent) {
          await releaseSpentRunner(this.deps, name);
          released.push(name);
        }
        // Queued dispatches for them were cancelled in handle() already.
        for (const name of decision.unneeded) {
          const result = await releaseIdleRunner(this.deps, targetOf(decision.job), name, { onlyIfDispatched: true });
          if (result !== "absent") (result === "busy" ? kept : released).push(name);
        }
        const level = released.length + kept.length > 0 ? "info" : "debug";
        log[level]({ ...context, conclusion: event.job.conclusion, released, kept }, "job finished; runners released");
        // Freed capacity goes to the oldest waiting job, which only the reconciler knows.
        if (!this.gate.unlimited) this.reconciler?.kick();
        return { outcome: "released", runners: released, kept };
      }
    }
  }
}
