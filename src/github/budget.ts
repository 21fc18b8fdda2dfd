/**
 * GitHub's secondary rate limit for REST, kept on our side so we never hit it: points per
 * sliding minute (GET/HEAD/OPTIONS 1, other methods 5) and a cap on concurrent requests, per
 * token or App installation. Runner credentials go first; polling waits for what is left.
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
  resolve: (release: () => void) => void;
}

/** One sliding-window budget (one token or installation). */
export class Budget {
  private readonly spent: Array<{ at: number; points: number }> = [];
  private spentTotal = 0;
  private inFlight = 0;
  private pausedUntil = 0;
  private readonly queues = new Map<Priority, Waiter[]>(PRIORITY_ORDER.map((p) => [p, []]));
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly limits: BudgetLimits,
    private readonly now: () => number = Date.now,
  ) {}

  /** Points still available in the current window. */
  available(): number {
    this.expire();
    return this.limits.pointsPerMinute - this.spentTotal;
  }

  /** Requests waiting for budget (all priorities). */
  waiting(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.length;
    return n;
  }

  /** Resolves with a release function once the request may be sent. */
  acquire(points: number, priority: Priority): Promise<() => void> {
    return new Promise((resolve) => {
      this.queues.get(priority)!.push({ points, resolve });
      this.pump();
    });
  }

  /** GitHub said stop (403/429 with retry-after): send nothing before then. */
  pause(seconds: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, this.now() + seconds * 1000);
    this.pump();
  }

  private expire(): void {
    const cutoff = this.now() - WINDOW_MS;
    while (this.spent.length > 0 && this.spent[0]!.at <= cutoff) this.spentTotal -= this.spent.shift()!.points;
  }

  private pump(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.expire();
    const now = this.now();
    if (now < this.pausedUntil) return this.wakeAt(this.pausedUntil);
    for (const priority of PRIORITY_ORDER) {
      const queue = this.queues.get(priority)!;
      while (queue.length > 0) {
        const next = queue[0]!;
        if (this.inFlight >= this.limits.maxConcurrent) return;
        if (this.spentTotal + next.points > this.limits.pointsPerMinute) return this.wakeWhenPointsFree(next.points);
        queue.shift();
        this.spent.push({ at: now, points: next.points });
        this.spentTotal += next.points;
        this.inFlight += 1;
        let released = false;
        next.resolve(() => {
          if (released) return;
          released = true;
          this.inFlight -= 1;
          this.pump();
        });
      }
    }
  }

  /** Strict priority: a waiting credential blocks polling until enough points expire. */
  private wakeWhenPointsFree(points: number): void {
    let freed = this.limits.pointsPerMinute - this.spentTotal;
    for (const entry of this.spent) {
      freed += entry.points;
      if (freed >= points) return this.wakeAt(entry.at + WINDOW_MS + 1);
    }
  }

  private wakeAt(at: number): void {
    this.timer = setTimeout(() => this.pump(), Math.max(0, at - this.now()));
    this.timer.unref?.();
  }
}

/** The lower bound a burst of `count` requests of `points` each needs under `limits`, in ms. */
export function burstLowerBoundMs(count: number, points: number, limits: BudgetLimits): number {
  const perWindow = Math.floor(limits.pointsPerMinute / points);
  if (count <= perWindow) return 0;
  return Math.ceil(count / perWindow - 1) * WINDOW_MS;
}
