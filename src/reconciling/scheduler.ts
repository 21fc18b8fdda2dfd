export interface SchedulerOptions {
  intervalMs: number;
  /** Requested passes never start closer than this. */
  minGapMs: number;
  /**
   * How long reading `points` GitHub points must take for the periodic passes to stay within
   * their share of the rate-limit budget; undefined: no limit.
   */
  readPaceMs?: (points: number) => number;
}

/**
 * When reconcile passes run: one at a time, every interval (paced by the GitHub points the last
 * pass read), and soon after one is asked for; requests during a pass coalesce into one more.
 */
export class PassScheduler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private again = false;
  private lastStart = 0;
  /** GitHub read points the last pass spent, and how long it took. */
  private lastPass = { points: 0, ms: 0 };
  private stopped = false;

  constructor(
    private readonly pass: () => Promise<unknown>,
    /** Runs a pass and reports the GitHub read points it spent. */
    private readonly metered: (pass: () => Promise<unknown>) => Promise<{ points: number }>,
    private readonly opts: SchedulerOptions,
  ) {}

  nextPassInMs(): number {
    const pace = this.opts.readPaceMs;
    const paced = pace === undefined ? 0 : pace(this.lastPass.points) - this.lastPass.ms;
    return Math.max(this.opts.intervalMs, paced);
  }

  start(): void {
    this.stopped = false;
    this.soon();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
  }

  async idle(): Promise<void> {
    while (this.running) await this.running.catch(() => undefined);
  }

  /** Runs a pass soon (coalesced). */
  soon(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    const wait = this.lastStart + this.opts.minGapMs - Date.now();
    if (wait > 0) {
      this.timer = setTimeout(() => this.soon(), wait);
      this.timer.unref?.();
      return;
    }
    this.lastStart = Date.now();
    const pass = this.metered(this.pass);
    this.running = pass;
    void pass
      .then(
        ({ points }) => (this.lastPass = { points, ms: Date.now() - this.lastStart }),
        () => undefined,
      )
      .finally(() => {
        this.running = undefined;
        if (this.stopped) return;
        if (this.again) {
          this.again = false;
          setImmediate(() => this.soon());
        } else {
          this.timer = setTimeout(() => this.soon(), this.nextPassInMs());
          this.timer.unref?.();
        }
      });
  }
}
