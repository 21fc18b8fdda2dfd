/**
 * Which runners have a Nomad runner job, as far as this process can tell without asking Nomad:
 * every child the last full listing showed, plus every dispatch this process attempted since
 * that listing began.
 *
 * Most `completed` deliveries are for jobs that ran elsewhere and never had a runner of ours;
 * the index answers those without a Nomad call each. What it cannot see is a runner another
 * replica dispatched after the last listing: such a runner is left to the reconciler, which
 * releases spare runners on its next pass. Until a first listing completes, nothing is known.
 */
export class RunnerIndex {
  private listed: Set<string> | undefined;
  private listedAt = Number.NEGATIVE_INFINITY;
  /** Dispatches attempted, by runner name, with when; pruned as listings cover them. */
  private readonly attempted = new Map<string, number>();

  constructor(private readonly now: () => number = performance.now.bind(performance)) {}

  /** Call before a full listing of our runner jobs; pass the result to `listed`. */
  listingStarted(): number {
    return this.now();
  }

  /** A full listing that started at `startedAt` found these runners. */
  listingDone(startedAt: number, runnerNames: Iterable<string>): void {
    // Listings overlap (reconciler, capacity gate): an older one knows less than the one applied.
    if (startedAt < this.listedAt) return;
    this.listedAt = startedAt;
    const listed = new Set(runnerNames);
    for (const [name, at] of this.attempted) {
      // A dispatch that began before the listing started is in it, or it failed.
      if (at < startedAt) this.attempted.delete(name);
    }
    this.listed = listed;
  }

  /** Call before dispatching: a dispatch whose answer was lost may still have created a job. */
  dispatching(runnerName: string): void {
    this.attempted.set(runnerName, this.now());
  }

  /** True only when the runner certainly has no runner job that this process could know of. */
  knownAbsent(runnerName: string): boolean {
    return this.listed !== undefined && !this.listed.has(runnerName) && !this.attempted.has(runnerName);
  }
}
