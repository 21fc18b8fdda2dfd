/**
 * GitHub's secondary rate limit for REST, kept on our side so we never hit it: points per
 * sliding minute (GET/HEAD/OPTIONS 1, other methods 5) and a cap on concurrent requests, per
 * token or App installation. Runner credentials go first; polling waits for what is left.
 *
 * GitHub counts a request in its window from when it arrives, which is after we sent it. So
 * points are held from the moment a request may go until 60 s after its response came back:
 * never shorter than GitHub's own window, however slow the request or the event loop was.
 */
export interface BudgetLimits {
  pointsPerMinute: number;
  maxConcurrent: number;
}

/** GitHub's published numbers (docs: "About secondary rate limits"). */
export const GITHUB_SECONDARY_LIMITS: BudgetLimits = { pointsPerMinute: 900, maxConcurrent: 100 };

export type Priority = "credential" | "cleanup" | "poll";
const PRIORITY_ORDER: Priority[] = ["credential", "cleanup", "poll"];

export function pointsFor(method: string): number {
  return ["GET", "HEAD", "OPTIONS"].includes(method.toUpperCase()) ? 1 : 5;
}

const WINDOW_MS = 60_000;

interface Waiter {
  points: number;
  /** Its points were taken by claim(): it waits for a concurrency slot only. */
  prepaid: boolean;
  resolve: (release: () => void) => void;
  reject: (err: Error) => void;
}

/**
 * Points taken ahead of the request that spends them (see Budget.claim). A claim that is never
 * used gives its points back after CLAIM_TTL_MS.
 */
export interface Claim {
  readonly points: number;
  readonly at: number;
}

const CLAIM_TTL_MS = 30_000;

/** One sliding-window budget (one token or installation). */
export class Budget {
  /** Finished requests by completion time; their points count until 60 s after it. */
  private readonly spent: Array<{ at: number; points: number }> = [];
  /** Points of finished requests in the window, of requests in flight and of open claims. */
  private spentTotal = 0;
  private inFlight = 0;
  private pausedUntil = 0;
  private readonly queues = new Map<Priority, Waiter[]>(PRIORITY_ORDER.map((p) => [p, []]));
  private readonly prepaid: Waiter[] = [];
  private readonly claims = new Set<Claim>();
  private timer: NodeJS.Timeout | undefined;
  private closed: Error | undefined;

  constructor(
    private readonly limits: BudgetLimits,
    private readonly now: () => number = Date.now,
  ) {}

  get pointsPerMinute(): number {
    return this.limits.pointsPerMinute;
  }

  /** Points still available in the current window. */
  available(): number {
    this.expire();
    return this.limits.pointsPerMinute - this.spentTotal;
  }

  /** Milliseconds left of a pause GitHub asked for (a secondary-limit answer's retry-after). */
  pausedForMs(): number {
    return Math.max(0, this.pausedUntil - this.now());
  }

  /** Requests waiting for budget (all priorities). */
  waiting(): number {
    let n = this.prepaid.length;
    for (const q of this.queues.values()) n += q.length;
    return n;
  }

  /**
   * Resolves with a release function once the request may be sent; call it when the response
   * is in. With an unused `claim` of the same points, only a concurrency slot is waited for.
   */
  acquire(points: number, priority: Priority, claim?: Claim): Promise<() => void> {
    if (this.closed) return Promise.reject(this.closed);
    const prepaid = claim !== undefined && claim.points === points && this.claims.delete(claim);
    return new Promise((resolve, reject) => {
      (prepaid ? this.prepaid : this.queues.get(priority)!).push({ points, prepaid, resolve, reject });
      this.pump();
    });
  }

  /** Shutdown: every request waiting for budget, and any asking from now on, fails with `err`. */
  close(err: Error): void {
    this.closed = err;
    for (const queue of [this.prepaid, ...this.queues.values()]) for (const waiter of queue.splice(0)) waiter.reject(err);
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /**
   * Takes `points` now, for a decision that depends on the budget being free (RUNNER_REGISTRATION
   * =auto): only when nothing waits and `keepFree` points stay available afterwards. Concurrent
   * callers each see what the others took. Pass the claim to acquire() for the request it pays for.
   */
  claim(points: number, keepFree = 0): Claim | undefined {
    this.expire();
    if (this.now() < this.pausedUntil || this.waiting() > 0) return undefined;
    if (this.limits.pointsPerMinute - this.spentTotal - points < keepFree) return undefined;
    const claim: Claim = { points, at: this.now() };
    this.claims.add(claim);
    this.spentTotal += points;
    return claim;
  }

  /** GitHub said stop (403/429 with retry-after): send nothing before then. */
  pause(seconds: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, this.now() + seconds * 1000);
    this.pump();
  }

  private expire(): void {
    const now = this.now();
    const cutoff = now - WINDOW_MS;
    while (this.spent.length > 0 && this.spent[0]!.at <= cutoff) this.spentTotal -= this.spent.shift()!.points;
    for (const claim of this.claims) {
      if (now - claim.at < CLAIM_TTL_MS) continue;
      this.claims.delete(claim);
      this.spentTotal -= claim.points;
    }
  }

  private pump(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.expire();
    const now = this.now();
    if (now < this.pausedUntil) return this.wakeAt(this.pausedUntil);
    for (const queue of [this.prepaid, ...PRIORITY_ORDER.map((p) => this.queues.get(p)!)]) {
      while (queue.length > 0) {
        const next = queue[0]!;
        if (this.inFlight >= this.limits.maxConcurrent) return;
        if (!next.prepaid && this.spentTotal + next.points > this.limits.pointsPerMinute) return this.wakeWhenPointsFree(next.points);
        queue.shift();
        if (!next.prepaid) this.spentTotal += next.points;
        this.inFlight += 1;
        let released = false;
        next.resolve(() => {
          if (released) return;
          released = true;
          this.inFlight -= 1;
          // In the window from now: GitHub saw the request no later than its response left.
          this.spent.push({ at: this.now(), points: next.points });
          this.pump();
        });
      }
    }
  }

  /**
   * Strict priority: a waiting credential blocks polling until enough points expire. Points of
   * requests still in flight free up no sooner than 60 s after their release, which pumps again.
   */
  private wakeWhenPointsFree(points: number): void {
    let freed = this.limits.pointsPerMinute - this.spentTotal;
    for (const entry of this.spent) {
      freed += entry.points;
      if (freed >= points) return this.wakeAt(entry.at + WINDOW_MS + 1);
    }
    // Not enough even once the window empties: claims expire, or releases bring more entries.
    const oldestClaim = Math.min(...[...this.claims].map((c) => c.at));
    if (Number.isFinite(oldestClaim)) this.wakeAt(oldestClaim + CLAIM_TTL_MS + 1);
  }

  private wakeAt(at: number): void {
    this.timer = setTimeout(() => this.pump(), Math.max(0, at - this.now()));
    this.timer.unref?.();
  }
}

/**
 * How long spending `points` takes when only `pointsPerMinute` of the budget may go to it: the
 * reconciler spaces its passes by this so its polling stays within its share.
 */
export function paceMs(points: number, pointsPerMinute: number): number {
  return pointsPerMinute > 0 ? Math.ceil((points / pointsPerMinute) * WINDOW_MS) : 0;
}

/** The lower bound a burst of `count` requests of `points` each needs under `limits`, in ms. */
export function burstLowerBoundMs(count: number, points: number, limits: BudgetLimits): number {
  const perWindow = Math.floor(limits.pointsPerMinute / points);
  if (count <= perWindow) return 0;
  return Math.ceil(count / perWindow - 1) * WINDOW_MS;
}
