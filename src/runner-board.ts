import { type BoardEntry, countRunners, currentBoard, type RunnerCounts, type RunnerEvent } from "./core/status.js";

/**
 * Runners remembered between passes. Each runner's last event is enough (core/status
 * `currentBoard`); the oldest are forgotten beyond twice this, so a pass that never comes (GitHub down)
 * or a flood of events cannot grow memory.
 */
const MAX_RUNNERS_HEARD = 10_000;

/**
 * The live runners for the status page and the `ngd_runners` gauges: the reconciler's last look,
 * moved on by what the service hears between passes. O(1) per event: events arrive with every
 * `in_progress` and `completed` delivery, the board is read only when scraped.
 */
export class RunnerBoard {
  private snapshot: ReadonlyMap<string, BoardEntry> = new Map();
  private asOf: number | undefined;
  /** The last event heard of each runner, oldest first. */
  private readonly lastHeard = new Map<string, RunnerEvent>();

  /** `poolTargets` names every class (core/warm-pool `poolTargets`), before any pass too. */
  constructor(private poolTargets: Record<string, number>) {}

  heard(event: RunnerEvent): void {
    this.lastHeard.delete(event.runner);
    this.lastHeard.set(event.runner, event);
    // Trimmed in batches: deleting a Map's first key one at a time costs V8 a scan over the holes left.
    if (this.lastHeard.size > 2 * MAX_RUNNERS_HEARD) {
      const keep = [...this.lastHeard].slice(-MAX_RUNNERS_HEARD);
      this.lastHeard.clear();
      for (const [runner, event] of keep) this.lastHeard.set(runner, event);
    }
  }

  /** A pass's board, looked at from `lookedAt` on: events from before then are in it. */
  passed(board: ReadonlyMap<string, BoardEntry>, lookedAt: number, poolTargets: Record<string, number>): void {
    this.snapshot = board;
    this.poolTargets = poolTargets;
    this.asOf = lookedAt;
    for (const [runner, event] of this.lastHeard) if (event.at < lookedAt) this.lastHeard.delete(runner);
  }

  counts(): RunnerCounts {
    const events = [...this.lastHeard.values()].sort((a, b) => a.at - b.at);
    return { ...countRunners(currentBoard(this.snapshot, this.asOf ?? 0, events), this.poolTargets), asOf: this.asOf };
  }
}
