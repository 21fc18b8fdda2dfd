/**
 * The bookkeeping of the dispatch queue, without I/O, clocks or promises: which jobs wait, which
 * are being provisioned, and which may start next. Jobs are keyed by runner name, so a job is in
 * the book at most once however many deliveries (or reconciler passes) bring it.
 *
 * A lane is one GitHub rate-limit budget (a PAT, or an App installation). Within a lane jobs start
 * oldest first, at most `concurrencyPerLane` at a time: they wait here, not as a heap of requests
 * parked inside the budget. Lanes do not wait for each other.
 *
 * Nothing in here is the record of anything: every job in the book is still queued at GitHub, so
 * a lost book (restart) is rebuilt by the reconciler from GitHub.
 */
export interface BookLimits {
  /** Jobs waiting or being provisioned, all lanes together; beyond it offers are refused. */
  maxJobs: number;
  /** Jobs of one lane being provisioned at once. */
  concurrencyPerLane: number;
}

export type Offer = "accepted" | "duplicate" | "full";
export type JobState = "waiting" | "running";

interface Entry<T> {
  lane: string;
  item: T;
  state: JobState;
}

interface Lane {
  /** Keys in arrival order. */
  waiting: string[];
  running: number;
}

export class DispatchBook<T> {
  private readonly entries = new Map<string, Entry<T>>();
  private readonly lanes = new Map<string, Lane>();

  constructor(private readonly limits: BookLimits) {}

  get waiting(): number {
    let n = 0;
    for (const lane of this.lanes.values()) n += lane.waiting.length;
    return n;
  }

  get running(): number {
    return this.entries.size - this.waiting;
  }

  /** Adds a job at the end of its lane, unless it is in the book already or the book is full. */
  offer(key: string, lane: string, item: T): Offer {
    if (this.entries.has(key)) return "duplicate";
    if (this.entries.size >= this.limits.maxJobs) return "full";
    this.entries.set(key, { lane, item, state: "waiting" });
    this.laneOf(lane).waiting.push(key);
    return "accepted";
  }

  /** Marks and returns the jobs that may start now: per lane, oldest first, up to its concurrency. */
  start(): Array<{ key: string; item: T }> {
    const started: Array<{ key: string; item: T }> = [];
    for (const lane of this.lanes.values()) {
      while (lane.running < this.limits.concurrencyPerLane && lane.waiting.length > 0) {
        const key = lane.waiting.shift()!;
        const entry = this.entries.get(key)!;
        entry.state = "running";
        lane.running += 1;
        started.push({ key, item: entry.item });
      }
    }
    return started;
  }

  /** A started job is done (whatever the outcome): it leaves the book and frees its lane slot. */
  finish(key: string): void {
    const entry = this.entries.get(key);
    if (entry?.state !== "running") return;
    this.entries.delete(key);
    const lane = this.lanes.get(entry.lane)!;
    lane.running -= 1;
    this.prune(entry.lane, lane);
  }

  /** Takes a job that has not started out of the book; a started one cannot be taken back. */
  cancel(key: string): T | undefined {
    const entry = this.entries.get(key);
    if (entry?.state !== "waiting") return undefined;
    this.entries.delete(key);
    const lane = this.lanes.get(entry.lane)!;
    lane.waiting.splice(lane.waiting.indexOf(key), 1);
    this.prune(entry.lane, lane);
    return entry.item;
  }

  /** Takes every job that has not started out of the book (shutdown). */
  cancelWaiting(): Array<{ key: string; item: T }> {
    const cancelled: Array<{ key: string; item: T }> = [];
    for (const lane of [...this.lanes.values()]) {
      for (const key of [...lane.waiting]) {
        const item = this.cancel(key);
        if (item !== undefined) cancelled.push({ key, item });
      }
    }
    return cancelled;
  }

  stateOf(key: string): JobState | undefined {
    return this.entries.get(key)?.state;
  }

  /** 1 for the next job of its lane to start, 0 when running or not in the book. */
  position(key: string): number {
    const entry = this.entries.get(key);
    if (entry?.state !== "waiting") return 0;
    return this.lanes.get(entry.lane)!.waiting.indexOf(key) + 1;
  }

  private laneOf(name: string): Lane {
    let lane = this.lanes.get(name);
    if (!lane) {
      lane = { waiting: [], running: 0 };
      this.lanes.set(name, lane);
    }
    return lane;
  }

  private prune(name: string, lane: Lane): void {
    if (lane.running === 0 && lane.waiting.length === 0) this.lanes.delete(name);
  }
}
