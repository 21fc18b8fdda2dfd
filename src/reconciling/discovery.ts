import { matchesPolicy, type ServePolicy, servesRepo } from "../core/event-decision.js";
import type { RunnerTarget, WorkflowJob } from "../core/job-event.js";
import type { World } from "../core/reconcile-plan.js";
import { availablePoints, INITIAL_POINTS_PER_REPO, inWindow, nextCostEstimate, planScan, type Spend } from "../core/scan-plan.js";
import { isOrgPoolRepo } from "../core/warm-pool.js";
import type { RunnerDeps } from "../ports/index.js";
import { withRetry } from "../ports/retry.js";
import { listRunnerJobs } from "../ports/runner-jobs.js";
import { forEachLimited } from "./for-each-limited.js";

/** Repository lists change rarely; listing them every pass would spend the rate-limit budget. */
const REPO_LIST_CACHE_MS = 10 * 60_000;

export interface DiscoveryOptions {
  /** Repositories served with a PAT (ALLOWED_REPOS); an App lists its installations' repos. */
  staticRepos: string[];
  /** Owners whose repositories are served with a PAT (ALLOWED_OWNERS); listed every few minutes. */
  owners: string[];
  /**
   * The reconciler's share of GitHub's budget, points per sliding minute: the per-repository
   * scan visits only what the share leaves (scan-plan.ts). Undefined: every repository each pass.
   */
  scanPointsPerMinute?: number;
}

/** What a pass found, and which repositories' queues it listed (only those are known). */
export interface Discovered {
  world: World;
  targets: Targets;
  /** Lower-cased `owner/repo` of the repositories listed this pass. */
  scanned: Set<string>;
}

/** The part of the reconciler's share the scan plans with. */
const SCAN_HEADROOM = 0.8;

/** Targets by lower-cased `owner/repo`. */
export type Targets = Map<string, RunnerTarget>;

/**
 * Finds the world the plan compares: queued jobs at GitHub for every repository served, our
 * registrations there, our runner jobs in Nomad and our credentials in Vault.
 */
export class Discovery {
  private readonly seenRepos = new Map<string, RunnerTarget>();
  private listedRepos: { at: number; targets: RunnerTarget[] } | undefined;
  private readonly inFlight = new Set<string>();
  /** Last activity per repository (lower-cased), ms: the scan visits these first. */
  private readonly activeAt = new Map<string, number>();
  private readonly scannedAt = new Map<string, number>();
  /** The reconciler's reads in the last minute. */
  private ledger: Spend[] = [];
  private pointsPerRepo = INITIAL_POINTS_PER_REPO;

  constructor(
    private readonly deps: Pick<RunnerDeps, "github" | "nomad" | "vault" | "settings" | "runnerIndex">,
    private readonly policy: ServePolicy,
    private readonly opts: DiscoveryOptions,
  ) {}

  /** Remember a repository from a webhook so its queue is watched even with an App or owners list. */
  watchRepo(target: RunnerTarget): void {
    const key = `${target.owner}/${target.repo}`.toLowerCase();
    this.seenRepos.set(key, target);
    this.activeAt.set(key, Date.now());
  }

  /** Reads the reconciler made outside the scan (redelivery): they count against the same share. */
  spent(points: number): void {
    this.ledger = inWindow([...this.ledger, { at: Date.now(), points }], Date.now());
  }

  /** Points of the reconciler's share left in the last minute (unbounded without a share). */
  roomInShare(): number {
    const perMinute = this.opts.scanPointsPerMinute;
    if (perMinute === undefined) return Number.POSITIVE_INFINITY;
    return availablePoints({ now: Date.now(), pointsPerMinute: perMinute, spent: this.ledger });
  }

  /** Provisioning found the runner registered but no credential yet; reported on the next pass. */
  recheckInFlight(runnerName: string): void {
    this.inFlight.add(runnerName);
  }

  async discover(): Promise<Discovered> {
    const { deps } = this;
    const listed = await deps.github.metered(() => Promise.all([listRunnerJobs(deps), deps.vault.listRunnerSecrets(), this.servedRepos()]));
    this.spent(listed.points);
    const [children, secrets, targets] = listed.result;
    const now = Date.now();
    for (const child of children) {
      // A warm pool of an organisation (`owner/*`) is no repository to list.
      if (isOrgPoolRepo(child.repo)) continue;
      const [owner = "", repo = ""] = child.repo.split("/");
      this.addTarget(targets, owner, repo);
      // A repository with a live runner of ours is busy: its queue is the likeliest to hold more.
      if (child.alive) this.activeAt.set(child.repo.toLowerCase(), now);
    }

    const chosen = this.chooseRepos(targets, now);
    const queued: WorkflowJob[] = [];
    const scan = await deps.github.metered(() =>
      forEachLimited(chosen, 4, async (target) => {
        // Retried like every other call: one sporadic failure (5xx, a rate limit's retry-after)
        // must not throw the whole pass away.
        const jobs = await withRetry(() => deps.github.listQueuedJobs(target), deps.settings.retry);
        const key = `${target.owner}/${target.repo}`.toLowerCase();
        this.scannedAt.set(key, now);
        if (jobs.length > 0) this.activeAt.set(key, now);
        queued.push(...jobs.filter((j) => matchesPolicy(j, this.policy).ok));
      }),
    );
    this.spent(scan.points);

    // Our registrations in the scopes of the repositories listed: busy runners are never
    // released, and a registration without a runner job or credential is an orphan to remove.
    // Only listed repositories get runners released (reconciler.ts), and every scope comes round
    // with the scan, so no pass reads them all. (Repositories with runners of ours are active:
    // the scan visits them first.)
    const scanned = new Set(chosen.map((t) => `${t.owner}/${t.repo}`.toLowerCase()));
    const registered: World["registered"] = [];
    const busyRunners = new Set<string>();
    const scopes = new Map<string, RunnerTarget>();
    for (const target of chosen) if (!scopes.has(deps.github.scopeKey(target))) scopes.set(deps.github.scopeKey(target), target);
    const listing = await deps.github.metered(() =>
      forEachLimited([...scopes.values()], 4, async (target) => {
        const runners = await withRetry(() => deps.github.listRunners(target, `${deps.settings.runnerNamePrefix}-`), deps.settings.retry);
        for (const r of runners) {
          registered.push({ id: r.id, name: r.name, repo: `${target.owner}/${target.repo}`, busy: r.busy, online: r.status === "online" });
          if (r.busy) busyRunners.add(r.name);
        }
      }),
    );
    this.spent(listing.points);
    // A repository's cost includes its registrations' listing (one per repository with
    // RUNNER_SCOPE=repo): the next pass plans with both.
    this.pointsPerRepo = nextCostEstimate(this.pointsPerRepo, scan.points + listing.points, chosen.length);

    const inFlight = [...this.inFlight];
    this.inFlight.clear();
    const served = [...targets.values()].map((t) => `${t.owner}/${t.repo}`);
    return { world: { now: Date.now(), queued, busyRunners, children, secrets, inFlight, registered, served }, targets, scanned };
  }

  /** Every repository without a share; otherwise what the share affords, in scan-plan's order. */
  private chooseRepos(targets: Targets, now: number): RunnerTarget[] {
    const perMinute = this.opts.scanPointsPerMinute;
    if (perMinute === undefined) return [...targets.values()];
    const candidates = [...targets.keys()].map((key) => ({ key, activeAt: this.activeAt.get(key), scannedAt: this.scannedAt.get(key) }));
    // Headroom: the redelivery timer's listings between passes, and a repository dearer than
    // estimated, come out of the share too.
    const keys = planScan(candidates, { now, pointsPerMinute: perMinute * SCAN_HEADROOM, spent: this.ledger, pointsPerRepo: this.pointsPerRepo });
    return keys.map((key) => targets.get(key)!);
  }

  private async servedRepos(): Promise<Targets> {
    if (!this.listedRepos || Date.now() - this.listedRepos.at > REPO_LIST_CACHE_MS) {
      this.listedRepos = { at: Date.now(), targets: await this.listServedRepos() };
    }
    const targets: Targets = new Map();
    for (const target of this.listedRepos.targets) {
      if (servesRepo(target, this.policy).ok) {
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
  private addTarget(targets: Targets, owner: string, repo: string): void {
    const key = `${owner}/${repo}`.toLowerCase();
    if (targets.has(key)) return;
    const installationId =
      this.seenRepos.get(key)?.installationId ?? this.listedRepos?.targets.find((t) => `${t.owner}/${t.repo}`.toLowerCase() === key)?.installationId;
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
}
