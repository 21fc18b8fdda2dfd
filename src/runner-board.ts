import { type BoardEntry, countRunners, currentBoard, type RunnerCounts, type RunnerEvent } from "./core/status.js";

/** Events kept between passes; a pass that never comes (GitHub down) must not grow memory. */
const MAX_EVENTS = 10_000;

/**
 * The live runners for the status page and the `ngd_runners` gauges: the reconciler's last look,
 * moved on by what the service hears between passes (core/status `currentBoard`).
 */
export class RunnerBoard {
  private snapshot: ReadonlyMap<string, BoardEntry> = new Map();
  private poolTargets: Record<string, number>;
  private asOf: number | undefined;
  private events: RunnerEvent[] = [];

  /** Every class is listed, with no runner and no pool until a pass says otherwise. */
  constructor(private readonly classes: readonly string[]) {
    this.poolTargets = Object.fromEntries(classes.map((c) => [c, 0]));
  }

  heard(event: RunnerEvent): void {
    this.events.push(event);
    if (this.events.length > MAX_EVENTS) this.events.splice(0, this.events.length - MAX_EVENTS);
  }

  /** A pass's board, looked at from `lookedAt` on: events from before then are in it. */
  passed(board: ReadonlyMap<string, BoardEntry>, lookedAt: number, poolTargets: Record<string, number>): void {
    this.snapshot = board;
    this.poolTargets = { ...Object.fromEntries(this.classes.map((c) => [c, 0])), ...poolTargets };
    this.asOf = lookedAt;
    this.events = this.events.filter((e) => e.at >= lookedAt);
  }

  counts(): RunnerCounts {
    const board = currentBoard(this.snapshot, this.asOf ?? 0, this.events);
    return { ...countRunners(board, this.poolTargets), asOf: this.asOf };
  }
}
