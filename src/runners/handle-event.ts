import { decide, type ServePolicy } from "../core/decide.js";
import type { JobEvent } from "../core/job-event.js";
import { repoFullName } from "../core/job-event.js";
import type { CapacityGate } from "./capacity.js";
import type { RunnerDeps } from "./deps.js";
import type { Reconciler } from "./reconciler.js";
import { provisionRunner, targetOf } from "./provision.js";
import { releaseIdleRunner, releaseSpentRunner } from "./release.js";

export type EventOutcome =
  | { outcome: "ignored"; reason: string }
  | { outcome: "dispatched" | "duplicate"; runner: string; nomadJobId: string }
  | { outcome: "in-flight"; runner: string }
  /** Over MAX_RUNNERS(_PER_REPO): still queued at GitHub, the reconciler dispatches it later. */
  | { outcome: "deferred"; runner: string; reason: string }
  | { outcome: "released"; runners: string[]; kept: string[] }
  | { outcome: "observed"; runner: string };

/**
 * Receives one `workflow_job` event: the pure decision, then its effects. Concurrent deliveries
 * of the same job in this process share one execution; across processes the idempotency of each
 * step (runner name, Nomad idempotency token) keeps the result single.
 */
export class JobEventHandler {
  private readonly inFlight = new Map<string, Promise<EventOutcome>>();

  constructor(
    private readonly deps: RunnerDeps,
    private readonly policy: ServePolicy,
    private readonly gate: CapacityGate,
    private readonly reconciler?: Reconciler,
    /** Called with the job's queued-to-dispatched time when a runner was dispatched. */
    private readonly onDispatched?: (seconds: number) => void,
  ) {}

  handle(event: JobEvent): Promise<EventOutcome> {
    const key = `${event.action}:${event.job.id}`;
    const running = this.inFlight.get(key);
    if (running) return running;
    const work = this.execute(event).finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, work);
    return work;
  }

  /** Resolves when every event being handled has finished (graceful shutdown). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.inFlight.values()]);
  }

  private async execute(event: JobEvent): Promise<EventOutcome> {
    const { log } = this.deps;
    const decision = decide(event, this.policy);
    const context = { job: event.job.id, repo: repoFullName(event.job), action: event.action };

    switch (decision.kind) {
      case "ignore":
        log.debug({ ...context, reason: decision.reason }, "event ignored");
        return { outcome: "ignored", reason: decision.reason };

      case "provision": {
        const runner = decision.runnerName;
        this.reconciler?.noteRepo(targetOf(decision.job));
        if (!(await this.gate.reserve(repoFullName(decision.job), runner))) {
          log.info({ ...context, runner }, "runner limit reached; job waits for capacity");
          this.reconciler?.kick();
          return { outcome: "deferred", runner, reason: "runner limit reached; dispatched when capacity frees" };
        }
        let result;
        try {
          result = await provisionRunner(this.deps, decision.job, runner);
        } finally {
          this.gate.settle(runner, result !== undefined && result.status !== "in-flight");
        }
        if (result.status === "in-flight") {
          log.info({ ...context, runner }, "runner is being provisioned elsewhere");
          this.reconciler?.noteInFlight(runner);
          return { outcome: "in-flight", runner };
        }
        log.info({ ...context, runner, nomadJob: result.nomadJobId }, result.status === "dispatched" ? "runner dispatched" : "runner already dispatched");
        const queuedAt = Date.parse(decision.job.createdAt);
        if (result.status === "dispatched" && Number.isFinite(queuedAt)) this.onDispatched?.(Math.max(0, (Date.now() - queuedAt) / 1000));
        return { outcome: result.status, runner, nomadJobId: result.nomadJobId };
      }

      case "observe":
        log.info({ ...context, runner: decision.runnerName }, "runner picked up job");
        return { outcome: "observed", runner: decision.runnerName };

      case "release": {
        const released: string[] = [];
        const kept: string[] = [];
        for (const name of decision.spent) {
          await releaseSpentRunner(this.deps, name);
          released.push(name);
        }
        for (const name of decision.unneeded) {
          const result = await releaseIdleRunner(this.deps, targetOf(decision.job), name);
          (result === "busy" ? kept : released).push(name);
        }
        log.info({ ...context, conclusion: event.job.conclusion, released, kept }, "job finished; runners released");
        // Freed capacity goes to the oldest waiting job, which only the reconciler knows.
        if (!this.gate.unlimited) this.reconciler?.kick();
        return { outcome: "released", runners: released, kept };
      }
    }
  }
}
