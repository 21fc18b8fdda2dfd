import { randomBytes } from "node:crypto";
import type { Limits } from "../core/capacity.js";
import { isUnlimited } from "../core/capacity.js";
import { errorMessage } from "../core/errors.js";
import { deadHolders, decodeLedger, encodeLedger, type Ledger, ledgerPaths, planSlots, type SlotRequest } from "../core/slot-ledger.js";
import type { RunnerDeps, Variables } from "../ports/index.js";
import { listRunnerJobs } from "../ports/runner-jobs.js";

export interface SharedCapacityOptions {
  /** How often this replica writes its heartbeat variable. */
  heartbeatMs: number;
  /** A holder whose heartbeat is older than this (servers' clock) is dead: its reservations are reclaimed. */
  holderTtlMs: number;
  /** Releases wait this long for a reservation round to ride on before they are written alone. */
  releaseFlushMs: number;
  /** This replica's id in the ledger (random by default). */
  holder?: string;
}

/** A heartbeat every 5 s and 20 s to be declared dead: a dead replica's slots return within ~25 s. */
export const DEFAULT_SHARED_CAPACITY: SharedCapacityOptions = { heartbeatMs: 5_000, holderTtlMs: 20_000, releaseFlushMs: 2_000 };

/** CAS rounds lost in a row before the requests are refused (the backlog tries them again). */
const MAX_ATTEMPTS = 8;

interface Waiting {
  request: SlotRequest;
  resolve: (granted: boolean) => void;
  reject: (err: unknown) => void;
}

/**
 * MAX_RUNNERS / MAX_RUNNERS_PER_REPO across replicas: reservations are entries of one Nomad
 * Variable written with check-and-set (core/slot-ledger decides), live runner jobs count as
 * Nomad lists them. Concurrent reservations of this process share one round (one listing, one
 * write); releases ride on the next round. The replica's heartbeat variable lets the others
 * reclaim its reservations when it dies.
 */
export class SharedCapacityGate {
  readonly shared = true;
  readonly holder: string;
  private readonly paths: ReturnType<typeof ledgerPaths>;
  /** The ledger as this replica last wrote or read it: the CAS base of the next round. */
  private cached: Ledger | undefined;
  private waiting: Waiting[] = [];
  private readonly releases = new Set<string>();
  private running = false;
  private flushTimer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private beats = 0;
  /** The servers' clock at a local instant (from the last heartbeat's ModifyTime). */
  private serverClock: { serverNs: number; localMs: number } | undefined;
  private closed = false;

  constructor(
    private readonly deps: Pick<RunnerDeps, "nomad" | "settings" | "runnerIndex" | "log">,
    private readonly variables: Variables,
    private readonly limits: Limits,
    private readonly opts: SharedCapacityOptions = DEFAULT_SHARED_CAPACITY,
  ) {
    this.holder = opts.holder ?? randomBytes(6).toString("hex");
    this.paths = ledgerPaths(deps.settings.dispatcherId);
  }

  get unlimited(): boolean {
    return isUnlimited(this.limits);
  }

  /** Starts the heartbeat (the first beat is awaited: reservations need the servers' clock). */
  async start(): Promise<void> {
    if (this.unlimited) return;
    this.deps.log.info({ holder: this.holder, ledger: this.paths.slots }, "capacity limits held across replicas (slot ledger in Nomad Variables)");
    await this.beat().catch((err) => this.deps.log.warn({ err: errorMessage(err) }, "capacity heartbeat failed"));
    this.heartbeat = setInterval(
      () => void this.beat().catch((err) => this.deps.log.warn({ err: errorMessage(err) }, "capacity heartbeat failed")),
      this.opts.heartbeatMs,
    );
    this.heartbeat.unref();
  }

  reserve(repo: string, runnerName: string): Promise<boolean> {
    if (this.unlimited) return Promise.resolve(true);
    if (this.closed) return Promise.resolve(false);
    return new Promise((resolve, reject) => {
      this.waiting.push({ request: { repo, runnerName }, resolve, reject });
      void this.pump();
    });
  }

  /** The dispatch finished or failed: the reservation goes (Nomad lists the runner job if there is one). */
  settle(runnerName: string, _dispatched: boolean): void {
    if (this.unlimited) return;
    this.releases.add(runnerName);
    this.flushTimer ??= setTimeout(() => {
      this.flushTimer = undefined;
      void this.pump();
    }, this.opts.releaseFlushMs);
    this.flushTimer.unref();
  }

  /** Shutdown: gives back this replica's reservations and heartbeat, within `timeoutMs`. */
  async close(timeoutMs: number): Promise<void> {
    this.closed = true;
    clearInterval(this.heartbeat);
    clearTimeout(this.flushTimer);
    if (this.unlimited) return;
    const giveBack = async () => {
      for (const [name, entry] of this.cached?.entries ?? []) if (entry.holder === this.holder) this.releases.add(name);
      await this.pump();
      await this.variables.remove(this.paths.holder(this.holder));
    };
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([giveBack().catch(() => undefined), new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  private async beat(): Promise<void> {
    // The items change every beat: Nomad keeps ModifyTime on a write that changes nothing.
    this.beats += 1;
    const before = performance.now();
    const written = await this.variables.put(this.paths.holder(this.holder), { beat: String(this.beats) });
    this.serverClock = { serverNs: written.modifyTimeNs, localMs: (before + performance.now()) / 2 };
  }

  private serverNowNs(): number | undefined {
    if (!this.serverClock) return undefined;
    return this.serverClock.serverNs + (performance.now() - this.serverClock.localMs) * 1e6;
  }

  /** One round at a time; what arrives meanwhile waits for the next. */
  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.waiting.length > 0 || this.releases.size > 0) {
        const batch = this.waiting;
        this.waiting = [];
        const releases = new Set(this.releases);
        try {
          const granted = await this.round(
            batch.map((w) => w.request),
            releases,
          );
          for (const name of releases) this.releases.delete(name);
          for (const w of batch) w.resolve(granted.has(w.request.runnerName));
        } catch (err) {
          // Nomad unreachable: the reservations fail as the count of record failing did before
          // (a delivery gets its 5xx; the job stays queued at GitHub); releases wait for the next round.
          this.cached = undefined;
          this.deps.log.warn({ err: errorMessage(err), requests: batch.length }, "capacity ledger round failed");
          for (const w of batch) w.reject(err);
          if (batch.length === 0) return;
        }
      }
    } finally {
      this.running = false;
    }
  }

  /** Returns the runner names granted a slot. */
  private async round(requests: SlotRequest[], releases: ReadonlySet<string>): Promise<Set<string>> {
    // A replica that could not beat for a while (paused, partitioned) may look dead to the others:
    // it beats before it takes anything new.
    if (requests.length > 0 && (!this.serverClock || performance.now() - this.serverClock.localMs > this.opts.holderTtlMs / 2)) await this.beat();
    let ledger = this.cached ?? (await this.readLedger());
    let fresh = this.cached === undefined;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      // Listed after the ledger was known (see PlanInput.listed). A release-only round needs no listing.
      const listed = requests.length > 0 ? await listRunnerJobs(this.deps) : [];
      const input = { ledger, listed, holder: this.holder, releases, deadHolders: undefined, requests, limits: this.limits };
      let plan = planSlots(input);
      let dead: Map<string, number> | undefined;
      if (plan.askHolders) {
        dead = await this.deadHolders(ledger);
        if (dead) plan = planSlots({ ...input, deadHolders: new Set(dead.keys()) });
      }
      if (plan.refused.length > 0 && !fresh) {
        // Refusing on a cached ledger could starve a job another replica made room for: read it first.
        ledger = await this.readLedger();
        fresh = true;
        continue;
      }
      if (!plan.changed) {
        this.cached = ledger;
        return new Set(plan.granted);
      }
      const result = await this.variables.compareAndSet(this.paths.slots, encodeLedger(plan.entries), ledger.index);
      if ("written" in result) {
        this.cached = decodeLedger(result.written.modifyIndex, result.written.items);
        if (dead && dead.size > 0) void this.forgetHolders(dead);
        return new Set(plan.granted);
      }
      // Another replica wrote since: decide again on what it wrote.
      ledger = result.conflict ? decodeLedger(result.conflict.modifyIndex, result.conflict.items) : { index: 0, entries: new Map() };
      fresh = true;
    }
    this.cached = undefined;
    this.deps.log.warn({ requests: requests.length }, "capacity ledger stayed contended; the backlog retries");
    return new Set();
  }

  private async readLedger(): Promise<Ledger> {
    const v = await this.variables.read(this.paths.slots);
    return v ? decodeLedger(v.modifyIndex, v.items) : { index: 0, entries: new Map() };
  }

  /** Holders of the ledger's entries that stopped beating; undefined while this replica has no server clock. */
  private async deadHolders(ledger: Ledger): Promise<Map<string, number> | undefined> {
    const now = this.serverNowNs();
    if (now === undefined) return undefined;
    const beats = await this.variables.list(this.paths.holders);
    const holderBeats = beats.map((b) => ({ holder: b.path.slice(this.paths.holders.length), modifyTimeNs: b.modifyTimeNs, index: b.modifyIndex }));
    const dead = deadHolders(ledger.entries, holderBeats, now, this.opts.holderTtlMs, this.holder);
    if (dead.size > 0) this.deps.log.warn({ holders: [...dead] }, "reclaiming the reservations of replicas that stopped beating");
    // Each with the index of the beat it was judged on (0: it had none).
    return new Map([...dead].map((h) => [h, holderBeats.find((b) => b.holder === h)?.index ?? 0]));
  }

  /**
   * Their heartbeat variables go too, each only if it is still the beat judged stale (CAS): a
   * holder that beat since keeps its variable.
   */
  private async forgetHolders(dead: ReadonlyMap<string, number>): Promise<void> {
    for (const [holder, index] of dead) {
      if (index > 0) await this.variables.remove(this.paths.holder(holder), index).catch(() => undefined);
    }
  }
}
