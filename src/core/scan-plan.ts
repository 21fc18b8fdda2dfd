/**
 * The per-repository backstop scan (listing queued jobs repository by repository) as pure
 * decisions: how many points the reconciler may still read this minute, which repositories a pass
 * visits, and what one repository costs. Lost webhooks are recovered by redelivery first; this
 * scan is what is left for jobs GitHub never tried to deliver, so it must never crowd out runners.
 */

/** GitHub's secondary rate limit counts points per sliding minute. */
export const SCAN_WINDOW_MS = 60_000;

/** Activity older than this does not move a repository ahead of the round-robin. */
export const RECENT_ACTIVITY_MS = 60 * 60_000;

/**
 * At most this fraction of a pass's visits go to recently active repositories while others wait:
 * a few busy repositories must not starve the round-robin (a lost webhook can be anywhere).
 */
export const ACTIVE_SHARE = 0.5;

/** What one repository is first assumed to cost: the queued and in_progress run listings, one run's jobs. */
export const INITIAL_POINTS_PER_REPO = 3;

/** Points the reconciler read, and when (its ledger). */
export interface Spend {
  at: number;
  points: number;
}

/** One repository the scan may visit. */
export interface ScanCandidate {
  /** Lower-cased `owner/repo`. */
  key: string;
  /** Last sign of activity, ms: a webhook, one of our runner jobs, a queued job found there. */
  activeAt?: number;
  /** When the scan last listed it, ms. */
  scannedAt?: number;
}

export interface ScanBudget {
  now: number;
  /** The reconciler's share of GitHub's budget, points per sliding minute. */
  pointsPerMinute: number;
  /** What the reconciler read recently (older entries are ignored). */
  spent: readonly Spend[];
  /** Estimated points one repository costs (see nextCostEstimate). */
  pointsPerRepo: number;
}

/** Entries still inside the sliding window at `now`; the ledger keeps only these. */
export function inWindow(spent: readonly Spend[], now: number): Spend[] {
  return spent.filter((s) => s.at > now - SCAN_WINDOW_MS && s.points > 0);
}

/** Points of the share not yet used in the window ending at `now` (never negative). */
export function availablePoints(budget: Pick<ScanBudget, "now" | "pointsPerMinute" | "spent">): number {
  const used = inWindow(budget.spent, budget.now).reduce((sum, s) => sum + s.points, 0);
  return Math.max(0, budget.pointsPerMinute - used);
}

/** How many repositories this pass can afford. */
export function affordableRepos(budget: ScanBudget): number {
  const available = availablePoints(budget);
  const perRepo = Math.max(1, budget.pointsPerRepo);
  const count = Math.floor(available / perRepo);
  // A repository dearer than the whole share is still visited, one at a time, once the window
  // is empty: otherwise it would never be.
  if (count === 0 && available >= budget.pointsPerMinute && budget.pointsPerMinute > 0) return 1;
  return count;
}

/** Recently active and not listed since that activity: its queue may hold a lost job. */
function isFresh(c: ScanCandidate, now: number): boolean {
  if (c.activeAt === undefined || now - c.activeAt > RECENT_ACTIVITY_MS) return false;
  return c.scannedAt === undefined || c.activeAt > c.scannedAt;
}

/**
 * The order the scan visits repositories in: fresh ones (recent activity since their last
 * listing), newest activity first; then round-robin over the rest, least recently listed first
 * (never listed before all, in the order given).
 */
export function scanOrder(candidates: readonly ScanCandidate[], now: number): { fresh: ScanCandidate[]; rest: ScanCandidate[] } {
  const fresh: ScanCandidate[] = [];
  const rest: ScanCandidate[] = [];
  for (const c of candidates) (isFresh(c, now) ? fresh : rest).push(c);
  fresh.sort((a, b) => (b.activeAt ?? 0) - (a.activeAt ?? 0));
  // Array.prototype.sort is stable: equal times keep the given order.
  rest.sort((a, b) => (a.scannedAt ?? Number.NEGATIVE_INFINITY) - (b.scannedAt ?? Number.NEGATIVE_INFINITY) || 0);
  return { fresh, rest };
}

/**
 * The repositories this pass lists, in order: as many as the share still affords, fresh ones
 * first but no more than ACTIVE_SHARE of the visits while round-robin ones wait.
 */
export function planScan(candidates: readonly ScanCandidate[], budget: ScanBudget): string[] {
  const count = Math.min(affordableRepos(budget), candidates.length);
  if (count === 0) return [];
  const { fresh, rest } = scanOrder(candidates, budget.now);
  const freshSlots = Math.min(fresh.length, Math.max(count - rest.length, Math.ceil(count * ACTIVE_SHARE)));
  const chosen = [...fresh.slice(0, freshSlots), ...rest.slice(0, count - freshSlots)];
  return chosen.map((c) => c.key);
}

/**
 * The cost estimate after a pass listed `repos` repositories for `points`: a moving average, so
 * one repository with many queued runs does not make the next passes visit almost none.
 */
export function nextCostEstimate(previous: number, points: number, repos: number): number {
  if (repos <= 0 || !Number.isFinite(points) || points < 0) return previous;
  const measured = points / repos;
  return Math.max(1, 0.7 * previous + 0.3 * measured);
}
