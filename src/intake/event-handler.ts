import { type Decision, decide, type IgnoreCode, type ServePolicy } from "../core/event-decision.js";
import { type JobEvent, repoFullName, targetOf } from "../core/job-event.js";
import { classOfRunner } from "../core/runner-class.js";
import type { RunnerDeps } from "../ports/index.js";
import type { Provisioner } from "../provisioning/provisioner.js";
import { releaseRunner, releaseSpentRunner } from "../teardown/release.js";

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
  /** Our runner picked up a job. */
  | { outcome: "observed"; runner: string };

/** What the metrics learn from events. */
export interface EventObserver {
  /** A job this service does not serve, by why (bounded values). */
  notServed?(code: IgnoreCode): void;
  /**
   * Our runner `runner` (of class `runnerClass`) picked up a job of class `cls` (its labels') that
   * GitHub queued `seconds` earlier (undefined: the event lacks a time).
   */
  started?(cls: string, seconds: number | undefined, runner: { name: string; cls: string }): void;
  /** A job our runner `runner` of class `cls` ran ended with GitHub's `conclusion`. */
  completed?(cls: string, conclusion: string | null, runner: string): void;
}

/**
 * Receives one `workflow_job` event (verified and parsed by src/http/app.ts): the pure decision
 * (src/core/event-decision.ts), then its effects. Concurrent deliveries of the same job in this
 * process share one execution (dedupe); across processes the idempotency of each step (runner
 * name, Nomad idempotency token) keeps the result single.
 *
 * A job that needs a runner goes to the provisioner, the entry point the reconciler uses too: a
 * delivery is answered with the dispatch when that takes a moment, and "deferred" (202) when the
 * job has to wait for GitHub's rate limit or for capacity.
 */
export class JobEventHandler {
  private readonly inFlight = new Map<string, Promise<EventOutcome>>();

  constructor(
    private readonly deps: Pick<RunnerDeps, "github" | "nomad" | "vault" | "log" | "settings" | "runnerIndex">,
    private readonly policy: ServePolicy,
    private readonly provisioner: Provisioner,
    private readonly observer: EventObserver = {},
  ) {}

  /**
   * Events that need nothing done (most of a busy organisation's: other labels, jobs starting)
   * are answered synchronously, without scheduling anything.
   */
  handle(event: JobEvent): EventOutcome | Promise<EventOutcome> {
    const decision = decide(event, this.policy);
    if (decision.kind === "ignore" || decision.kind === "observe") return this.answer(event, decision);
    if (decision.kind === "release") {
      // The job ran on a runner of ours (the first one named spent is the one GitHub reported).
      const ranOn = classOfRunner(this.deps.settings.classes, decision.spent[0])?.cls;
      if (ranOn) this.observer.completed?.(ranOn.name, event.job.conclusion ?? null, decision.spent[0]!);
      const nothingToDo = this.releaseNothingDispatched(event, decision);
      if (nothingToDo) return nothingToDo;
    }
    const key = `${event.action}:${event.job.id}`;
    const running = this.inFlight.get(key);
    if (running) return running;
    const work = (decision.kind === "provision" ? this.provision(event, decision) : this.release(event, decision)).finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, work);
    return work;
  }

  /** Resolves when every event being handled has finished (graceful shutdown). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.inFlight.values()]);
  }

  private answer(event: JobEvent, decision: Extract<Decision, { kind: "ignore" | "observe" }>): EventOutcome {
    const outcome: EventOutcome =
      decision.kind === "ignore" ? { outcome: "ignored", reason: decision.reason } : { outcome: "observed", runner: decision.runnerName };
    if (decision.kind === "ignore" && decision.code) this.observer.notServed?.(decision.code);
    if (decision.kind === "observe") {
      this.observer.started?.(decision.cls.name, decision.startupSeconds, { name: decision.runnerName, cls: decision.runnerClass.name });
      // A warm pool runner took a job: the pool is one short until a pass refills it.
      if (decision.pooled) this.provisioner.poolRunnerTaken();
    }
    // Debug, and its context built only when wanted: on a busy organisation these are most events.
    const { log } = this.deps;
    if (log.isLevelEnabled("debug")) {
      log.debug(
        { job: event.job.id, repo: repoFullName(event.job), action: event.action, ...outcome },
        decision.kind === "ignore" ? "event ignored" : "runner picked up job",
      );
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
    for (const name of decision.unneeded) this.provisioner.noLongerNeeded(name, `job ${event.job.id} completed`);
    if (decision.spent.length > 0 || !decision.unneeded.every((name) => this.deps.runnerIndex?.knownAbsent(name))) return undefined;
    this.deps.log.debug({ job: event.job.id, repo: repoFullName(event.job), conclusion: event.job.conclusion }, "job finished; no runner of ours to release");
    this.provisioner.capacityFreed();
    return { outcome: "released", runners: [], kept: [] };
  }

  private async provision(event: JobEvent, decision: Extract<Decision, { kind: "provision" }>): Promise<EventOutcome> {
    const { log } = this.deps;
    const runner = decision.runnerName;
    const context = { job: event.job.id, repo: repoFullName(event.job), action: event.action, runner };
    const need = await this.provisioner.needsRunner(decision.job, runner);
    switch (need.status) {
      case "over-capacity":
        log.info(context, "runner limit reached; job waits for capacity");
        return { outcome: "deferred", runner, reason: "runner limit reached; dispatched when capacity frees" };
      case "queue-full":
        log.warn({ ...context, waiting: need.waiting, running: need.running }, "dispatch queue full; the reconciler dispatches this job");
        return { outcome: "deferred", runner, reason: "dispatch queue full; the reconciler dispatches it from GitHub's queue" };
      case "queued":
        log.debug({ ...context, position: need.position }, "job queued for dispatch");
        return { outcome: "deferred", runner, reason: "queued for dispatch at the pace GitHub's rate limit allows" };
      case "cancelled":
        return { outcome: "ignored", reason: `dispatch cancelled: ${need.reason}` };
      case "in-flight":
        return { outcome: "in-flight", runner };
      case "not-queued":
        // Logged and counted where every provisioning settles (Provisioner).
        return { outcome: "ignored", reason: `replayed delivery: the job is ${need.jobStatus} at GitHub` };
      default:
        return { outcome: need.status, runner, nomadJobId: need.nomadJobId };
    }
  }

  private async release(event: JobEvent, decision: Extract<Decision, { kind: "release" }>): Promise<EventOutcome> {
    const context = { job: event.job.id, repo: repoFullName(event.job), action: event.action };
    const released: string[] = [];
    const kept: string[] = [];
    for (const name of decision.spent) {
      await releaseSpentRunner(this.deps, name);
      released.push(name);
    }
    // Queued dispatches for them were cancelled in handle() already.
    for (const name of decision.unneeded) {
      const result = await releaseRunner(this.deps, targetOf(decision.job), name, "unneeded-if-dispatched");
      if (result !== "absent") (result === "busy" ? kept : released).push(name);
    }
    const level = released.length + kept.length > 0 ? "info" : "debug";
    this.deps.log[level]({ ...context, conclusion: event.job.conclusion, released, kept }, "job finished; runners released");
    this.provisioner.capacityFreed();
    return { outcome: "released", runners: released, kept };
  }
}
