import { errorMessage } from "../core/errors.js";
import type { RunnerDeps } from "../ports/index.js";
import type { ReconcileReport } from "./report.js";

/** A redelivery is a POST: GitHub's secondary limit charges it 5 points (budget.ts pointsFor). */
export const REDELIVERY_POINTS = 5;

/** A delivery may show in GitHub's log a little after it was attempted: windows overlap this much. */
const DELIVERY_LOG_OVERLAP_MS = 60_000;

/**
 * Asks GitHub to deliver again the App's webhook deliveries that failed (a 503 while a dependency
 * was down, or this service not running): they come back through the webhook path like any other.
 */
export class Redelivery {
  private since: number;

  constructor(
    private readonly deps: Pick<RunnerDeps, "github" | "log">,
    /** How far back failed deliveries are redelivered on the first pass. */
    windowMs: number,
  ) {
    this.since = Date.now() - windowMs;
  }

  private running: Promise<number> | undefined;

  /**
   * One run at a time: a pass and the more frequent redelivery timer may ask together, and two
   * overlapping runs would redeliver the same failed delivery twice. At most `max` redeliveries
   * (what the reconciler's share has room for); the rest wait for a later run.
   */
  run(report: ReconcileReport, max = Number.POSITIVE_INFINITY): Promise<number> {
    this.running ??= this.redeliver(report, max).finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Resolves once no run is under way (shutdown). */
  async settled(): Promise<void> {
    await this.running;
  }

  /** How many deliveries it asked GitHub to redeliver. */
  private async redeliver(report: ReconcileReport, max: number): Promise<number> {
    const startedAt = Date.now();
    try {
      const { redelivered, left } = await this.deps.github.redeliverFailedDeliveries(this.since, max);
      // Deliveries left over are found again from the same point next time.
      if (left === 0) this.since = startedAt - DELIVERY_LOG_OVERLAP_MS;
      if (redelivered > 0 || left > 0) this.deps.log.info({ count: redelivered, left }, "redelivered failed webhook deliveries");
      return redelivered;
    } catch (err) {
      report.errors.push(errorMessage(err));
      return 0;
    }
  }
}
