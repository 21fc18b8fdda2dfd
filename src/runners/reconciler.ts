import { matchesPolicy, type ServePolicy } from "../core/decide.js";
import { errorMessage } from "../core/errors.js";
import type { WorkflowJob } from "../core/job-event.js";
import { dispatchedJobPrefix } from "../core/naming.js";
import { planReconcile, type Memory, type ReconcileAction, type ReconcileSettings, type World } from "../core/reconcile.js";
import { paceMs } from "../github/budget.js";
import type { RunnerTarget } from "../github/client.js";
import type { RunnerDeps } from "./deps.js";
import { isLiveChild, listRunnerChildren } from "./observe.js";
import { provisionRunner, type ProvisionOutcome } from "./provision.js";
import { releaseIdleRunner } from "./release.js";
import { withRetry } from "./retry.js";

export interface ReconcilerOptions extends ReconcileSettings {
  intervalMs: number;
  /** Kicks never start passes closer than this: each pass spends GitHub rate-limit points. */
  minGapMs: number;
  /** Repositories served with a PAT (ALLOWED_REPOS); an App lists its installations' repos. */
  staticRepos: string[];
  /** Owners whose repositories are served with a PAT (ALLOWED_OWNERS); listed every few minutes. */
  owners: string[];
  /** How far back failed App webhook deliveries are redelivered on the first pass. */
  redeliverWindowMs: number;
  /**
   * GitHub points per minute the periodic passes may spend on reads: a pass that read more
   * (many repositories) makes the next one wait longer than `intervalMs`. Default: no limit.
   */
  pollPointsPerMinute?: number;
}

/** How the reconciler gets a runner for a queued job: now, or by queueing it (dispatch queue). */
export type ProvisionFn = (job: WorkflowJob, runnerName: string) => Promise<ProvisionOutcome | { status: "queued" }>;

export interface ReconcileReport {
  actions: Record<ReconcileAction["kind"], number>;
  queued: number;
  alive: number;
  errors: string[];
}

/** Repository lists change rarely; listing them every pass would spend the rate-limit budget. */
const REPO_LIST_CACHE_MS = 10 * 60_000;

/**
 * The loop that makes the promises hold when webhooks do not: every interval (and on kick) it
 * observes GitHub, Nomad and Vault, plans with the pure `planReconcile`, and executes the plan.
 * All state it needs is rebuilt from those three systems, except `firstSeen`, which only delays.
 */
export class Reconciler {
  private readonly memory: Memory = { firstSeen: new Map() };
  private readonly inFlight = new Set<string>();
  private readonly seenRepos = new Map<string, RunnerTarget>();
  private listedRepos: { at: number; targets: RunnerTarget[] } | undefined;
  private lastRedelivery: number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<ReconcileReport> | undefined;
  private again = false;
  private lastStart = 0;
  /** GitHub read points the last pass spent, and how long it took. */
  private lastPass = { points: 0, ms: 0 };
  private stopped = false;
  private readonly provision: ProvisionFn;

  constructor(
    private readonly deps: RunnerDeps,
    private readonly policy: ServePolicy,
    private readonly opts: ReconcilerOptions,
    private readonly onReport?: (report: ReconcileReport) => void,
    provision?: ProvisionFn,
  ) {
    this.lastRedelivery = Date.now() - opts.redeliverWindowMs;
    this.provision = provision ?? ((job, runnerName) => provisionRunner(deps, job, runnerName));
  }

  /**
   * How long after the last pass ended the next periodic one starts: the interval, or longer when
   * the pass read so much that its reads would otherwise exceed `pollPointsPerMinute`.
   */
  nextPassInMs(): number {
    const share = this.opts.pollPointsPerMinute;
    const paced = share === undefined ? 0 : paceMs(this.lastPass.points, share) - this.lastPass.ms;
    return Math.max(this.opts.intervalMs, paced);
  }

  start(): void {
    this.stopped = false;
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
  }

  /** Resolves once no pass is running (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.running) await this.running.catch(() => undefined);
  }

  /** Remember a repository from a webhook so its queue is watched even with an App or owners list. */
  noteRepo(target: RunnerTarget): void {
    this.seenRepos.set(`${target.owner}/${target.repo}`.toLowerCase(), target);
  }

  /** Provisioning found the runner registered but no credential yet; checked again next pass. */
  noteInFlight(runnerName: string): void {
    this.inFlight.add(runnerName);
  }

  /** Runs a pass soon (coalesced): capacity freed, or a job waits for it. */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    const wait = this.lastStart + this.opts.minGapMs - Date.now();
    if (wait > 0) {
      this.timer = setTimeout(() => this.kick(), wait);
      this.timer.unref?.();
      return;
    }
    this.lastStart = Date.now();
    const pass = this.deps.github.metered(() => this.runOnce());
    this.running = pass.then(({ result }) => result);
    void pass.then(({ points }) => (this.lastPass = { points, ms: Date.now() - this.lastStart }), () => undefined).finally(() => {
      this.running = undefined;
      if (this.stopped) return;
      if (this.again) {
        this.again = false;
        setImmediate(() => this.kick());
      } else {
        this.timer = setTimeout(() => this.kick(), this.nextPassInMs());
        this.timer.unref?.();
      }
    });
  }

  async runOnce(): Promise<ReconcileReport> {
    const report: ReconcileReport = { actions: emptyCounts(), queued: 0, alive: 0, errors: [] };
    try {
      await this.redeliverFailed(report);
      const { world, targets } = await this.observe();
      report.queued = world.queued.length;
      report.alive = world.children.filter((c) => c.alive).length;
      const actions = planReconcile(world, this.opts, this.memory);
      await this.execute(actions, targets, report);
    } catch (err) {
      report.errors.push(errorMessage(err));
    }
    if (report.errors.length > 0) this.deps.log.warn({ errors: report.errors.slice(0, 5) }, "reconcile pass had errors");
    else if (Object.values(report.actions).some((n) => n > 0)) this.deps.log.info({ ...report.actions }, "reconciled");
    this.onReport?.(report);
    return report;
  }

  private async redeliverFailed(report: ReconcileReport): Promise<void> {
    const since = this.lastRedelivery;
    const startedAt = Date.now();
    try {
      const count = await this.deps.github.redeliverFailedDeliveries(since);
      this.lastRedelivery = startedAt - 60_000; // overlap: a delivery may be logged late
      if (count > 0) this.deps.log.info({ count }, "redelivered failed webhook deliveries");
    } catch (err) {
      report.errors.push(errorMessage(err));
    }
  }

  private async observe(): Promise<{ world: World; targets: Map<string, RunnerTarget> }> {
    const { deps } = this;
    const [children, secrets, targets] = await Promise.all([
      listRunnerChildren(deps),
      deps.vault.listRunnerSecrets(),
      this.servedRepos(),
    ]);
    for (const child of children) {
      const [owner = "", repo = ""] = child.repo.split("/");
      this.addTarget(targets, owner, repo);
    }

    const queued: WorkflowJob[] = [];
    const busyRunners = new Set<string>();
    await forEachLimited([...targets.values()], 4, async (target) => {
      // Retried like every other call: one pass reads every repository, and one sporadic
      // failure (5xx, a rate limit's retry-after) must not throw the whole pass away.
      const jobs = await withRetry(() => deps.github.listQueuedJobs(target), deps.settings.retry);
      queued.push(...jobs.filter((j) => matchesPolicy(j, this.policy).ok));
    });
    // Our registrations in every scope: busy runners are never released, and a registration
    // without a runner job or credential is an orphan to remove.
    const registered: World["registered"] = [];
    const scopes = new Map<string, RunnerTarget>();
    for (const target of targets.values()) if (!scopes.has(deps.github.scopeKey(target))) scopes.set(deps.github.scopeKey(target), target);
    await forEachLimited([...scopes.values()], 4, async (target) => {
      const runners = await withRetry(() => deps.github.listRunners(target, `${deps.settings.runnerNamePrefix}-`), deps.settings.retry);
      for (const r of runners) {
        registered.push({ id: r.id, name: r.name, repo: `${target.owner}/${target.repo}`, busy: r.busy, online: r.status === "online" });
        if (r.busy) busyRunners.add(r.name);
      }
    });

    const inFlight = [...this.inFlight];
    this.inFlight.clear();
    return { world: { now: Date.now(), queued, busyRunners, children, secrets, inFlight, registered }, targets };
  }

  private async servedRepos(): Promise<Map<string, RunnerTarget>> {
    if (!this.listedRepos || Date.now() - this.listedRepos.at > REPO_LIST_CACHE_MS) {
      this.listedRepos = { at: Date.now(), targets: await this.listServedRepos() };
    }
    const targets = new Map<string, RunnerTarget>();
    for (const target of this.listedRepos.targets) {
      if (matchesPolicy({ owner: target.owner, repo: target.repo, labels: this.policy.labels } as WorkflowJob, this.policy).ok) {
        this.addTarget(targets, target.owner, target.repo);
      }
    }
    for (const full of this.opts.staticRepos) {
      const [owner = "", repo = ""] = full.split("/");
      this.addTarget(targets, owner, repo);
    }
    for (const target of this.seenRepos.values()) this.addTarget(targets, target.owner, target.repo);
    return targets;
  }

  /**
   * Adds a repository with the installation its calls must use. With App auth a repository no
   * installation covers cannot be polled, so it is left out rather than failing the pass.
   */
  private addTarget(targets: Map<string, RunnerTarget>, owner: string, repo: string): void {
    const key = `${owner}/${repo}`.toLowerCase();
    if (targets.has(key)) return;
    const installationId =
      this.seenRepos.get(key)?.installationId ??
      this.listedRepos?.targets.find((t) => `${t.owner}/${t.repo}`.toLowerCase() === key)?.installationId;
    if (this.deps.github.usesApp && installationId === undefined) return;
    targets.set(key, { owner, repo, installationId });
  }

  /** An App serves its installations' repositories; a PAT the repositories of ALLOWED_OWNERS. */
  private async listServedRepos(): Promise<RunnerTarget[]> {
    const fromApp = await this.deps.github.listInstallationRepos();
    if (fromApp.length > 0) return fromApp;
    const owned: RunnerTarget[] = [];
    for (const owner of this.opts.owners) owned.push(...(await this.deps.github.listOwnerRepos(owner)));
    return owned;
  }

  private async execute(actions: ReconcileAction[], targets: Map<string, RunnerTarget>, report: ReconcileReport): Promise<void> {
    const targetOf = (repo: string): RunnerTarget => {
      const known = targets.get(repo.toLowerCase());
      if (known) return known;
      const [owner = "", name = ""] = repo.split("/");
      return { owner, repo: name };
    };
    const phases: Array<ReconcileAction["kind"][]> = [["clean", "abandon", "release", "delete-secret"], ["purge"], ["provision"]];
    for (const kinds of phases) {
      const batch = actions.filter((a) => kinds.includes(a.kind));
      await forEachLimited(batch, 8, async (action) => {
        try {
          await this.apply(action, targetOf);
          report.actions[action.kind] += 1;
        } catch (err) {
          report.errors.push(`${action.kind} ${"runnerName" in action ? action.runnerName : ""}: ${errorMessage(err)}`);
        }
      });
    }
  }

  private async apply(action: ReconcileAction, targetOf: (repo: string) => RunnerTarget): Promise<void> {
    const { deps } = this;
    switch (action.kind) {
      case "clean": {
        // Another replica or a delivery may have provisioned this runner again since this pass
        // looked: a live runner job means the name's registration and credential are now its own.
        const children = await deps.nomad.listJobs(dispatchedJobPrefix(deps.settings.runnerJob, action.runnerName));
        if (children.some(isLiveChild)) return;
        const target = targetOf(action.repo);
        const runner = await deps.github.findRunner(target, action.runnerName);
        if (runner && !runner.busy) await deps.github.deleteRunner(target, runner.id);
        // One stranded on a lost node must not come back to life if the node does.
        for (const child of children) if (child.Status !== "dead" && !child.Stop) await deps.nomad.stopJob(child.ID, { purge: false });
        await deps.vault.deleteRunnerSecret(action.runnerName);
        return;
      }
      case "abandon":
      case "release":
        await releaseIdleRunner(deps, targetOf(action.repo), action.runnerName);
        return;
      case "delete-secret":
        await deps.vault.deleteRunnerSecret(action.runnerName);
        return;
      case "purge":
        await deps.nomad.stopJob(action.childId, { purge: true });
        return;
      case "provision": {
        const job = { ...action.job, installationId: action.job.installationId ?? targetOf(`${action.job.owner}/${action.job.repo}`).installationId };
        const result = await this.provision(job, action.runnerName);
        // Queued: the dispatch queue provisions it and reports the outcome.
        if (result.status === "queued") return;
        if (result.status === "in-flight") this.noteInFlight(action.runnerName);
        else deps.log.info({ job: job.id, runner: action.runnerName, nomadJob: result.nomadJobId, status: result.status }, "reconciler provisioned runner");
        return;
      }
    }
  }
}

function emptyCounts(): Record<ReconcileAction["kind"], number> {
  return { purge: 0, provision: 0, release: 0, clean: 0, "delete-secret": 0, abandon: 0 };
}

async function forEachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
