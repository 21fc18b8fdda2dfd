import { errorMessage } from "../core/errors.js";
import type { ServePolicy } from "../core/event-decision.js";
import { type RunnerTarget, repoFullName } from "../core/job-event.js";
import { type Memory, planReconcile, type ReconcileSettings, type World } from "../core/reconcile-plan.js";
import { runnerForJob } from "../core/runner-class.js";
import { runnerStates } from "../core/status.js";
import { isOrgPoolRepo, poolTargets } from "../core/warm-pool.js";
import type { RunnerDeps } from "../ports/index.js";
import type { Backlog } from "../provisioning/provisioner.js";
import { applyPlan, type RunnerDemand } from "./apply.js";
import { Discovery, type DiscoveryOptions } from "./discovery.js";
import { REDELIVERY_POINTS, Redelivery } from "./redelivery.js";
import { emptyReport, type ReconcileReport } from "./report.js";
import { PassScheduler, type SchedulerOptions } from "./scheduler.js";

export type { ReconcileReport } from "./report.js";

export interface ReconcilerOptions extends ReconcileSettings, DiscoveryOptions, SchedulerOptions {
  /** How far back failed App webhook deliveries are redelivered on the first pass. */
  redeliverWindowMs: number;
  /**
   * Failed deliveries are also looked for this often between passes: a lost webhook then waits
   * seconds, not a whole interval. Its cost is a listing per hook, whatever the repository count.
   * Undefined: with the passes only.
   */
  redeliverEveryMs?: number;
}

/**
 * The loop that makes the promises hold when webhooks do not: every interval (and when asked) it
 * redelivers failed webhook deliveries, discovers GitHub, Nomad and Vault, plans with the pure
 * `planReconcile`, and applies the plan. Jobs that need a runner go to the same entry point as
 * the webhooks'. All state it needs is rebuilt from those three systems, except `firstSeen`,
 * which only delays.
 */
export class Reconciler implements Backlog {
  private readonly memory: Memory = { firstSeen: new Map() };
  private readonly discovery: Discovery;
  private readonly redelivery: Redelivery;
  private readonly scheduler: PassScheduler;
  private redeliverTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly deps: Pick<RunnerDeps, "github" | "nomad" | "vault" | "log" | "settings" | "runnerIndex">,
    policy: ServePolicy,
    private readonly opts: ReconcilerOptions,
    private readonly demand: RunnerDemand,
    private readonly onReport?: (report: ReconcileReport) => void,
  ) {
    this.discovery = new Discovery(deps, policy, opts);
    this.redelivery = new Redelivery(deps, opts.redeliverWindowMs);
    this.scheduler = new PassScheduler(
      () => this.runOnce(),
      (pass) => deps.github.metered(pass),
      opts,
    );
  }

  /**
   * How long after the last pass ended the next periodic one starts: the interval, or longer when
   * the pass read so much that its reads would otherwise exceed the reconciler's share.
   */
  nextPassInMs(): number {
    return this.scheduler.nextPassInMs();
  }

  start(): void {
    this.scheduler.start();
    const every = this.opts.redeliverEveryMs;
    if (every !== undefined && this.redeliverTimer === undefined) {
      this.redeliverTimer = setInterval(() => void this.redeliverNow(), every);
      this.redeliverTimer.unref?.();
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.redeliverTimer);
    this.redeliverTimer = undefined;
    await Promise.all([this.scheduler.stop(), this.redelivery.settled()]);
  }

  /** Redelivers failed deliveries now (the timer between passes); its reads count against the share. */
  async redeliverNow(): Promise<void> {
    const report = emptyReport();
    await this.redeliver(report);
    if (report.errors.length > 0) this.deps.log.warn({ errors: report.errors.slice(0, 5) }, "redelivery had errors");
  }

  /** Resolves once no pass is running (tests, shutdown). */
  idle(): Promise<void> {
    return this.scheduler.idle();
  }

  passSoon(): void {
    this.scheduler.soon();
  }

  watchRepo(target: RunnerTarget): void {
    this.discovery.watchRepo(target);
  }

  recheckInFlight(runnerName: string): void {
    this.discovery.recheckInFlight(runnerName);
  }

  /** Its reads and its redeliveries count against the reconciler's share, as the scan's do. */
  private async redeliver(report: ReconcileReport): Promise<void> {
    // Within what the share has left this minute (a few points kept for the listings themselves):
    // redeliveries go before the scan, which plans with only part of the share.
    const max = Math.floor(Math.max(0, this.discovery.roomInShare() - LISTING_RESERVE_POINTS) / REDELIVERY_POINTS);
    const { result: count, points } = await this.deps.github.metered(() => this.redelivery.run(report, max));
    this.discovery.spent(points + count * REDELIVERY_POINTS);
  }

  async runOnce(): Promise<ReconcileReport> {
    const report = emptyReport();
    try {
      await this.redeliver(report);
      const lookedAt = Date.now();
      const { world, targets, scanned } = await this.discovery.discover();
      report.queued = world.queued.length;
      report.alive = world.children.filter((c) => c.alive).length;
      report.scanned = scanned.size;
      report.runners = {
        board: runnerStates(world),
        lookedAt,
        poolTargets: poolTargets(this.opts.classes, this.opts.registrationScope ?? "repo", world.served ?? []),
      };
      // Jobs of a listed repository that are no longer queued there wait no more.
      const queuedIn = new Map<string, Set<string>>([...scanned].map((repo) => [repo, new Set<string>()]));
      for (const job of world.queued) {
        const ours = runnerForJob(this.opts.classes, job);
        if (ours) queuedIn.get(repoFullName(job).toLowerCase())?.add(ours.runnerName);
      }
      for (const [repo, names] of queuedIn) this.demand.stillQueued(repo, names);
      // A repository whose queue this pass did not list may still want its idle runners: only a
      // listing can tell a spare runner from one whose job is still queued.
      const before = this.memory.firstSeen;
      const actions = planReconcile(world, this.opts, this.memory).filter((a) => a.kind !== "release" || listedFor(a.repo, scanned));
      keepUnlistedRegistrations(before, this.memory, world);
      await applyPlan(this.deps, this.demand, actions, targets, report);
    } catch (err) {
      report.errors.push(errorMessage(err));
    }
    if (report.errors.length > 0) this.deps.log.warn({ errors: report.errors.slice(0, 5) }, "reconcile pass had errors");
    else if (Object.values(report.actions).some((n) => n > 0)) this.deps.log.info({ ...report.actions }, "reconciled");
    this.onReport?.(report);
    return report;
  }
}

/**
 * Was what says a runner of `repo` is idle listed this pass: its repository's queue, or for an
 * organisation's warm pool (`owner/*`, no job of its own) the organisation's registrations,
 * listed with any of its repositories.
 */
function listedFor(repo: string, scanned: ReadonlySet<string>): boolean {
  const key = repo.toLowerCase();
  if (!isOrgPoolRepo(key)) return scanned.has(key);
  const owner = key.slice(0, key.indexOf("/") + 1);
  return [...scanned].some((r) => r.startsWith(owner));
}

/** Points a redelivery run's listings of the delivery logs take (a page per hook, usually). */
const LISTING_RESERVE_POINTS = 2;

/** How long a registration not listed since keeps its first sighting (a full scan round is far shorter). */
const UNLISTED_REGISTRATION_MEMORY_MS = 24 * 60 * 60_000;

/**
 * Registrations are listed only in the repositories a pass scanned, and the plan remembers only
 * what it saw: a registration not listed this pass keeps its first sighting, so its grace period
 * runs across the passes that do list it instead of starting over each time.
 */
function keepUnlistedRegistrations(before: Map<string, number>, memory: Memory, world: World): void {
  const listed = new Set(world.registered.map((r) => `registered:${r.name}#${r.id}`));
  for (const [key, at] of before) {
    if (!key.startsWith("registered:") || listed.has(key) || memory.firstSeen.has(key)) continue;
    if (world.now - at < UNLISTED_REGISTRATION_MEMORY_MS) memory.firstSeen.set(key, at);
  }
}
