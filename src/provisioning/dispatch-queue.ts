import { setTimeout as sleep } from "node:timers/promises";
import { type AttemptRecord, afterFailure, type BackoffPolicy, DEFAULT_ATTEMPT_BACKOFF, waitBeforeAttempt } from "../core/attempt-backoff.js";
import { type BookLimits, DispatchBook } from "../core/dispatch-book.js";
import { type RunnerTarget, repoFullName, targetOf, type WorkflowJob } from "../core/job-event.js";
import type { WaitingJob } from "../core/waiting.js";
import type { RunnerDeps } from "../ports/index.js";
import type { AttemptMemory } from "./credential.js";
import { CREDENTIAL_POINTS, type ProvisionOptions, type ProvisionOutcome, provisionPoolRunner, provisionRunner } from "./provision.js";

export interface DispatchQueueOptions extends BookLimits {
  /**
   * How long a webhook delivery may wait for its job's dispatch before it is answered "queued"
   * (202), when the job did not have to wait for anything. GitHub gives up on a delivery after
   * 10 s; the retries of a failing dependency (about 5 s) fit, so a dependency that is down still
   * gets the delivery a 503 (marked failed at GitHub, redelivered for an App).
   */
  answerWithinMs: number;
  /** Spacing of one job's attempts after failures (default DEFAULT_ATTEMPT_BACKOFF). */
  backoff?: BackoffPolicy;
}

/** What is kept of a job between its attempts in this process. */
interface JobAttempts {
  record?: AttemptRecord;
  memory: AttemptMemory;
  touchedAt: number;
}

/** A job not attempted for this long is forgotten (its job ended, or another replica serves it). */
const FORGET_AFTER_MS = 15 * 60_000;

/** Sized for a burst of thousands of jobs on a small box (a waiting job is a few small objects). */
export const DEFAULT_DISPATCH_QUEUE: DispatchQueueOptions = { maxJobs: 10_000, concurrencyPerLane: 32, answerWithinMs: 8_000 };

/** "cancelled": taken out before it started (its job completed meanwhile, or shutdown). */
export type QueueOutcome = ProvisionOutcome | { status: "cancelled"; reason: string };

export interface Ticket {
  /** Settles when the job is provisioned; rejects with the provisioning error. */
  outcome: Promise<QueueOutcome>;
  /** The job was in the queue already (another delivery, or the reconciler). */
  joined: boolean;
}

/**
 * Called once per job that leaves the queue, whoever queued it; `heardAt`: when this process
 * first heard of the job (a webhook, or the reconciler finding it), ms since epoch.
 */
export type SettledHook = (job: WorkflowJob, runnerName: string, result: { outcome: QueueOutcome } | { error: unknown }, heardAt: number) => void;

interface Item {
  job: WorkflowJob;
  runnerName: string;
  /** Read when the provisioning starts: a later enqueue from the reconciler's plan may set it. */
  seenQueued: boolean;
  /** When it was queued here. */
  since: number;
  beforeDispatch: ProvisionOptions["beforeDispatch"];
  outcome: Promise<QueueOutcome>;
  resolve: (outcome: QueueOutcome) => void;
  reject: (err: unknown) => void;
}

type Provision = (deps: RunnerDeps, job: WorkflowJob, runnerName: string, opts: ProvisionOptions) => Promise<ProvisionOutcome>;

/**
 * The imperative shell around DispatchBook: accepted `queued` jobs are provisioned here at the
 * pace GitHub's rate limit allows, so a webhook delivery is answered within seconds however
 * many jobs arrive at once. Bounded: when full, a job is left to the reconciler (it is still
 * queued at GitHub). In memory only: after a restart the reconciler finds the jobs again.
 */
export class DispatchQueue {
  private readonly book: DispatchBook<Item>;
  /** Every job in the book, waiting or running, by runner name. */
  private readonly items = new Map<string, Item>();
  private readonly hooks: SettledHook[] = [];
  /** By runner name: backoff and held credential of jobs whose last attempt did not finish. */
  private readonly attempts = new Map<string, JobAttempts>();
  private closed = false;

  constructor(
    private readonly deps: RunnerDeps,
    private readonly opts: DispatchQueueOptions,
    private readonly provision: Provision = provisionRunner,
  ) {
    this.book = new DispatchBook(opts);
  }

  onSettled(hook: SettledHook): void {
    this.hooks.push(hook);
  }

  get size(): { waiting: number; running: number } {
    return { waiting: this.book.waiting, running: this.book.running };
  }

  /** Queues the job (once per runner name); undefined when the queue is full or closed. */
  enqueue(job: WorkflowJob, runnerName: string, opts: ProvisionOptions = {}): Ticket | undefined {
    if (this.closed) return undefined;
    let resolve!: Item["resolve"];
    let reject!: Item["reject"];
    const outcome = new Promise<QueueOutcome>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const seenQueued = opts.seenQueued ?? false;
    this.heard(runnerName, seenQueued);
    const item: Item = { job, runnerName, seenQueued, since: Date.now(), beforeDispatch: opts.beforeDispatch, outcome, resolve, reject };
    const offer = this.book.offer(runnerName, this.deps.github.budgetKey(targetOf(job)), item);
    if (offer === "full") return undefined;
    if (offer === "duplicate") {
      const queued = this.items.get(runnerName)!;
      // GitHub said queued since this job was queued here: a provisioning not started yet need not ask.
      queued.seenQueued ||= seenQueued;
      return { outcome: queued.outcome, joined: true };
    }
    this.items.set(runnerName, item);
    // Whoever queued it may not wait for it; the hooks report what became of it.
    outcome.catch(() => undefined);
    this.pump();
    return { outcome, joined: false };
  }

  /**
   * Jobs here that wait for GitHub's rate limit: those not started (their lane's budget paces
   * the ones ahead), and those started while the budget has requests waiting.
   */
  waitingJobs(): WaitingJob[] {
    const jobs: WaitingJob[] = [];
    for (const item of this.items.values()) {
      const started = this.book.stateOf(item.runnerName) === "running";
      if (started && this.deps.github.budgetFor(targetOf(item.job)).waiting() === 0) continue;
      const { job } = item;
      jobs.push({ runnerName: item.runnerName, jobId: job.id, repo: repoFullName(job), queuedAt: job.createdAt, reason: "github-budget", since: item.since });
    }
    return jobs;
  }

  /** The job is queued or being provisioned here. */
  has(runnerName: string): boolean {
    return this.items.has(runnerName);
  }

  /**
   * This process hears of the job (queued here, or left waiting for capacity): remembered, so that
   * its later attempts judge from then, not from how long it waited here, whether an attempt
   * elsewhere may have come before (src/core/resume.ts probeRegistrationFirst).
   */
  heard(runnerName: string, seenQueued: boolean): void {
    const attempts = this.attemptsOf(runnerName);
    attempts.memory.firstHeard ??= { at: Date.now(), seenQueued };
  }

  /**
   * What to answer a delivery: "queued" at once when the job waits, behind other jobs or for
   * GitHub's rate limit; otherwise its outcome, or "queued" after `answerWithinMs`.
   */
  async answer(runnerName: string, ticket: Ticket): Promise<QueueOutcome | { status: "queued"; position: number }> {
    const state = this.book.stateOf(runnerName);
    if (state === "waiting") return { status: "queued", position: this.book.position(runnerName) };
    const item = this.items.get(runnerName);
    if (item) {
      const budget = this.deps.github.budgetFor(targetOf(item.job));
      if (budget.waiting() > 0 || budget.available() < CREDENTIAL_POINTS) return { status: "queued", position: 0 };
    }
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<{ status: "queued"; position: number }>((resolve) => {
      timer = setTimeout(() => resolve({ status: "queued", position: 0 }), this.opts.answerWithinMs);
    });
    try {
      return await Promise.race([ticket.outcome, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Takes the job out if it has not started; true when it was. */
  cancel(runnerName: string, reason: string): boolean {
    const item = this.book.cancel(runnerName);
    // A credential held for it is of a runner nobody needs: the reconciler removes the registration.
    this.attempts.delete(runnerName);
    if (!item) return false;
    this.settle(item, { outcome: { status: "cancelled", reason } });
    return true;
  }

  /**
   * A warm pool's runner, provisioned right away (the reconciler's plan asks for a few per pass,
   * after its jobs'): its GitHub calls wait for the budget like every other request.
   */
  async provisionPool(target: RunnerTarget, poolRepo: string, runnerName: string, beforeDispatch?: () => Promise<void>) {
    if (this.closed) throw new Error("dispatch queue closed: shutting down");
    return provisionPoolRunner(this.deps, target, poolRepo, runnerName, { beforeDispatch });
  }

  /**
   * Shutdown: nothing new starts, jobs not started are cancelled (the reconciler of the next
   * process dispatches them), and those being provisioned get up to `timeoutMs` to finish.
   */
  async close(timeoutMs: number): Promise<void> {
    this.closed = true;
    for (const { item } of this.book.cancelWaiting()) this.settle(item, { outcome: { status: "cancelled", reason: "shutting down" } });
    const running = [...this.items.values()].map((i) => i.outcome.catch(() => undefined));
    if (running.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(running), new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  private pump(): void {
    if (this.closed) return;
    for (const { key, item } of this.book.start()) void this.run(key, item);
  }

  private async run(key: string, item: Item): Promise<void> {
    const attempts = this.attemptsOf(item.runnerName);
    const heardAt = attempts.memory.firstHeard?.at ?? item.since;
    let result: { outcome: QueueOutcome } | { error: unknown };
    try {
      // A job whose last attempt failed waits out its backoff: a redelivery or a reconcile pass
      // right after a failure does not repeat the same writes against GitHub's budget.
      const wait = waitBeforeAttempt(attempts.record, Date.now());
      if (wait > 0) await sleep(wait, undefined, { ref: false });
      result = {
        outcome: await this.provision(this.deps, item.job, item.runnerName, {
          seenQueued: item.seenQueued,
          memory: attempts.memory,
          beforeDispatch: item.beforeDispatch,
        }),
      };
    } catch (error) {
      result = { error };
    }
    if ("error" in result || result.outcome.status === "in-flight") {
      attempts.record = afterFailure(attempts.record, Date.now(), this.opts.backoff ?? DEFAULT_ATTEMPT_BACKOFF);
      attempts.memory.attemptedHere = true;
      attempts.touchedAt = Date.now();
    } else {
      this.attempts.delete(item.runnerName);
    }
    this.book.finish(key);
    this.settle(item, result, heardAt);
    this.pump();
  }

  private attemptsOf(runnerName: string): JobAttempts {
    let attempts = this.attempts.get(runnerName);
    if (!attempts) {
      this.forgetOld();
      this.attempts.set(runnerName, (attempts = { memory: {}, touchedAt: Date.now() }));
    }
    return attempts;
  }

  /** Bounded memory: jobs not attempted for a while are forgotten. */
  private forgetOld(): void {
    if (this.attempts.size < 1_000) return;
    const cutoff = Date.now() - FORGET_AFTER_MS;
    for (const [name, attempts] of this.attempts) if (attempts.touchedAt < cutoff) this.attempts.delete(name);
  }

  private settle(item: Item, result: { outcome: QueueOutcome } | { error: unknown }, heardAt = item.since): void {
    this.items.delete(item.runnerName);
    for (const hook of this.hooks) {
      try {
        hook(item.job, item.runnerName, result, heardAt);
      } catch (err) {
        this.deps.log.error({ runner: item.runnerName, err: String(err) }, "dispatch queue hook failed");
      }
    }
    if ("outcome" in result) item.resolve(result.outcome);
    else item.reject(result.error);
  }
}
