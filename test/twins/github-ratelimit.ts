// GitHub's REST rate limits, per caller key (`user:<login>`, `installation:<id>`, `app:<id>`,
// `ip:<address>`):
// - primary: N requests per hour from the first request of the window (x-ratelimit-* headers);
//   a conditional request answered 304 is refunded, as GitHub documents;
// - secondary: points in a sliding 60 s window (GET/HEAD/OPTIONS 1, other methods 5) and a cap on
//   concurrent requests, answered 403 with retry-after.

export interface SecondaryLimitOptions {
  pointsPerMinute: number;
  maxConcurrent: number;
}

export interface PrimaryStatus {
  limit: number;
  remaining: number;
  /** Unix seconds when the window resets. */
  reset: number;
  used: number;
}

export type Admission = { ok: true; release: () => void } | { ok: false; retryAfterSeconds: number; reason: "points" | "concurrency" };

const WINDOW_MS = 60_000;
const HOUR_MS = 3_600_000;
export const DEFAULT_SECONDARY_LIMIT: SecondaryLimitOptions = { pointsPerMinute: 900, maxConcurrent: 100 };
const AUTHENTICATED_PRIMARY_LIMIT = 5000;
const ANONYMOUS_PRIMARY_LIMIT = 60;

export function requestPoints(method: string): number {
  return ["GET", "HEAD", "OPTIONS"].includes(method.toUpperCase()) ? 1 : 5;
}

export class RateLimiter {
  /** Points every key has spent since the twin started (admitted requests only). */
  readonly pointsSpent = new Map<string, number>();
  secondaryLimitHits = 0;
  private readonly windows = new Map<string, { at: number; points: number }[]>();
  private readonly inFlight = new Map<string, number>();
  private readonly primary = new Map<string, { used: number; resetAt: number }>();

  constructor(
    private readonly clock: () => number,
    private readonly secondary: SecondaryLimitOptions | false,
    private readonly primaryLimit: number = AUTHENTICATED_PRIMARY_LIMIT,
  ) {}

  /** Requests of `key` being handled right now. */
  concurrent(key: string): number {
    return this.inFlight.get(key) ?? 0;
  }

  /**
   * Admits a request at arrival or refuses it under the secondary limit. An admitted request
   * holds a concurrency slot until `release()`.
   */
  admit(key: string, method: string): Admission {
    const points = requestPoints(method);
    if (this.secondary) {
      const refusal = this.secondaryRefusal(key, points, this.secondary);
      if (refusal) {
        this.secondaryLimitHits++;
        return refusal;
      }
    }
    this.windowOf(key).push({ at: this.clock(), points });
    this.pointsSpent.set(key, (this.pointsSpent.get(key) ?? 0) + points);
    this.inFlight.set(key, this.concurrent(key) + 1);
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        this.inFlight.set(key, this.concurrent(key) - 1);
      },
    };
  }

  private secondaryRefusal(key: string, points: number, limits: SecondaryLimitOptions): Admission | undefined {
    if (this.concurrent(key) >= limits.maxConcurrent) return { ok: false, retryAfterSeconds: 1, reason: "concurrency" };
    const window = this.windowOf(key);
    const used = window.reduce((sum, entry) => sum + entry.points, 0);
    if (used + points <= limits.pointsPerMinute) return undefined;
    return { ok: false, retryAfterSeconds: this.secondsUntilFree(window, used + points - limits.pointsPerMinute), reason: "points" };
  }

  /** Seconds until the oldest entries leave the window and free at least `needed` points. */
  private secondsUntilFree(window: { at: number; points: number }[], needed: number): number {
    let freed = 0;
    for (const entry of window) {
      freed += entry.points;
      if (freed >= needed) return Math.max(1, Math.ceil((entry.at + WINDOW_MS - this.clock()) / 1000));
    }
    return Math.ceil(WINDOW_MS / 1000);
  }

  /** Entries of the last 60 s (older ones are dropped). */
  private windowOf(key: string): { at: number; points: number }[] {
    const cutoff = this.clock() - WINDOW_MS;
    const window = (this.windows.get(key) ?? []).filter((entry) => entry.at > cutoff);
    this.windows.set(key, window);
    return window;
  }

  // ---- primary ------------------------------------------------------------------------------------

  private limitFor(key: string): number {
    return key.startsWith("ip:") ? ANONYMOUS_PRIMARY_LIMIT : this.primaryLimit;
  }

  private primaryWindow(key: string): { used: number; resetAt: number } {
    let window = this.primary.get(key);
    if (!window || window.resetAt <= this.clock()) {
      window = { used: 0, resetAt: this.clock() + HOUR_MS };
      this.primary.set(key, window);
    }
    return window;
  }

  /** Counts a request against the hourly limit; false when the limit is already used up. */
  consumePrimary(key: string): boolean {
    const window = this.primaryWindow(key);
    if (window.used >= this.limitFor(key)) return false;
    window.used++;
    return true;
  }

  /** A 304 does not count against the primary limit. */
  refundPrimary(key: string): void {
    const window = this.primaryWindow(key);
    window.used = Math.max(0, window.used - 1);
  }

  primaryStatus(key: string): PrimaryStatus {
    const window = this.primaryWindow(key);
    const limit = this.limitFor(key);
    return { limit, used: window.used, remaining: Math.max(0, limit - window.used), reset: Math.ceil(window.resetAt / 1000) };
  }
}
