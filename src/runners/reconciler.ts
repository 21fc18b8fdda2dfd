import { matchesPolicy, type ServePolicy } from "../core/decide.js";
import { errorMessage } from "../core/errors.js";
import type { WorkflowJob } from "../core/job-event.js";
import { planReconcile, type Memory, type ReconcileAction, type ReconcileSettings, type World } from "../core/reconcile.js";
import type { RunnerTarget } from "../github/client.js";
import type { RunnerDeps } from "./deps.js";
import { listRunnerChildren } from "./observe.js";
import { provisionRunner } from "./provision.js";
import { releaseIdleRunner } from "./release.js";

export interface ReconcilerOptions extends ReconcileSettings {
  intervalMs: number;
  /** Kicks never start passes closer than this: each pass spends GitHub rate-limit points. */
  minGapMs: number;
  /** Repositories served with a PAT (ALLOWED_REPOS); an App lists its installations' repos. */
  staticRepos: string[];
  /** How far back failed App webhook deliveries are redelivered on the first pass. */
  redeliverWindowMs: number;
}

export interface ReconcileReport {
  actions: Record<ReconcileAction["kind"], number>;
  queued: number;
  alive: number;
  errors: string[];
}

const INSTALLATION_CACHE_MS = 10 * 60_000;

/**
 * The loop that makes the promises hold when webhooks do not: every interval (and on kick) it
 * observes GitHub, Nomad and Vault, plans with the pure `planReconcile`, and executes the plan.
 * All state it needs is rebuilt from those three systems, except `firstSeen`, which only delays.
 */
export class Reconciler {
  private readonly memory: Memory = { firstSeen: new Map() };
  private readonly inFlight = new Set<string>();
  private readonly seenRepos = new Map<string, RunnerTarget>();
  private installationRepos: { at: number; targets: RunnerTarget[] } | undefined;
  private lastRedelivery: number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<ReconcileReport> | undefined;
  private again = false;
  private lastStart = 0;
  private stopped = false;

  constructor(
    private readonly deps: RunnerDeps,
    private readonly policy: ServePolicy,
    private readonly opts: ReconcilerOptions,
    private readonly onReport?: (report: ReconcileReport) => void,
  ) {
    this.lastRedelivery = Date.now() - opts.redeliverWindowMs;
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
    this.running = this.runOnce().finally(() => {
      this.running = undefined;
      if (this.stopped) return;
      if (this.again) {
        this.again = false;
        setImmediate(() => this.kick());
      } else {
        this.timer = setTimeout(() => this.kick(), this.opts.intervalMs);
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
      const key = child.repo.toLowerCase();
      if (!targets.has(key)) {
        const [owner = "", repo = ""] = child.repo.split("/");
        targets.set(key, { owner, repo, installationId: this.seenRepos.get(key)?.installationId });
      }
    }

    const queued: WorkflowJob[] = [];
    const busyRunners = new Set<string>();
    await forEachLimited([...targets.values()], 4, async (target) => {
      const jobs = await deps.github.listQueuedJobs(target);
      queued.push(...jobs.filter((j) => matchesPolicy(j, this.policy).ok));
    });
    // Busy state only matters where an alive runner's own job is no longer queued.
    const queuedIds = new Set(queued.map((j) => j.id));
    const uncertainRepos = new Set(children.filter((c) => c.alive && !queuedIds.has(c.jobId)).map((c) => c.repo.toLowerCase()));
    await forEachLimited([...uncertainRepos], 4, async (repo) => {
      const target = targets.get(repo);
      if (!target) return;
      for (const r of await deps.github.listRunners(target, `${deps.settings.runnerNamePrefix}-`)) if (r.busy) busyRunners.add(r.name);
    });

    const inFlight = [...this.inFlight];
    this.inFlight.clear();
    return { world: { now: Date.now(), queued, busyRunners, children, secrets, inFlight }, targets };
  }

  private async servedRepos(): Promise<Map<string, RunnerTarget>> {
    const targets = new Map<string, RunnerTarget>();
    for (const full of this.opts.staticRepos) {
      const [owner = "", repo = ""] = full.split("/");
      targets.set(full.toLowerCase(), { owner, repo });
    }
    for (const [key, target] of this.seenRepos) targets.set(key, target);
    if (!this.installationRepos || Date.now() - this.installationRepos.at > INSTALLATION_CACHE_MS) {
      this.installationRepos = { at: Date.now(), targets: await this.deps.github.listInstallationRepos() };
    }
    for (const target of this.installationRepos.targets) {
      const key = `${target.owner}/${target.repo}`.toLowerCase();
      if (matchesPolicy({ owner: target.owner, repo: target.repo, labels: this.policy.labels } as WorkflowJob, this.policy).ok) {
        targets.set(key, target);
      }
    }
    return targets;
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
        const target = targetOf(action.repo);
        const runner = await deps.github.findRunner(target, action.runnerName);
        if (runner && !runner.busy) await deps.github.deleteRunner(target, runner.id);
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
        const result = await provisionRunner(deps, job, action.runnerName);
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
