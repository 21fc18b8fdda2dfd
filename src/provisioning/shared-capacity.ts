import { randomBytes } from "node:crypto";
import type { Limits } from "../core/capacity.js";
import { isUnlimited } from "../core/capacity.js";
import { DependencyError, errorMessage } from "../core/errors.js";
import { classOfRunner } from "../core/runner-class.js";
import {
  type DeadHolders,
  deadHolders,
  decodeLedger,
  encodeLedger,
  type Lease,
  type Ledger,
  leaseCovers,
  ledgerPaths,
  planSlots,
  renewLease,
  type SlotRequest,
} from "../core/slot-ledger.js";
import type { RunnerDeps, Variables } from "../ports/index.js";
import { listRunnerJobs } from "../ports/runner-jobs.js";

export interface SharedCapacityOptions {
  /** How often this replica writes its heartbeat variable. */
  heartbeatMs: number;
  /** A holder whose heartbeat is older than this (servers' clock) is dead: its reservations are reclaimed. */
  holderTtlMs: number;
  /**
   * How long after sending a heartbeat this replica may still send dispatches under its
   * reservations. `holderTtlMs` must exceed it by `requestMs` or more: when the others judge this
   * replica dead, every dispatch it sent has landed, or never will.
   */
  leaseMs: number;
  /** The longest a dispatch request may take to land or fail (NOMAD_REQUEST_MS). */
  requestMs: number;
  /** Releases wait this long for a reservation round to ride on before they are written alone. */
  releaseFlushMs: number;
  /** This replica's id in the ledger (random by default). */
  holder?: string;
}

/**
 * The longest a Nomad request may take to be answered or fail (src/nomad/http.ts REQUEST_TIMEOUT_MS,
 * 10 s), with room for the servers' clock against ours: a dispatch sent inside the lease has
 * landed, or never will, this long after the lease ended.
 */
export const NOMAD_REQUEST_MS = 12_000;

/**
 * A heartbeat every 5 s; dispatches only within 15 s of an answered beat (two beats may fail); 30 s
 * without a beat to be declared dead (15 s + NOMAD_REQUEST_MS, and some): a dead replica's slots
 * return within ~35 s.
 */
export const DEFAULT_SHARED_CAPACITY: SharedCapacityOptions = {
  heartbeatMs: 5_000,
  leaseMs: 15_000,
  requestMs: NOMAD_REQUEST_MS,
  holderTtlMs: 30_000,
  releaseFlushMs: 2_000,
};

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
  /** The ledger as this replica last wrote or read it (and when): the CAS base of the next round. */
  private cached: { ledger: Ledger; at: number } | undefined;
  private waiting: Waiting[] = [];
  private readonly releases = new Set<string>();
  private running = false;
  private flushTimer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private beats = 0;
  /** The servers' clock at a local instant (from the last heartbeat's ModifyTime). */
  private serverClock: { serverNs: number; localMs: number } | undefined;
  /** This replica's lease on its reservations (core/slot-ledger renewLease), local monotonic clock. */
  private lease: Lease | undefined;
  /** When the round that granted each runner its slot started: its dispatch needs the lease unbroken since. */
  private readonly grantedAt = new Map<string, number>();
  private closed = false;

  constructor(
    private readonly deps: Pick<RunnerDeps, "nomad" | "settings" | "runnerIndex" | "log">,
    private readonly variables: Variables,
    private readonly limits: Limits,
    private readonly opts: SharedCapacityOptions = DEFAULT_SHARED_CAPACITY,
  ) {
    if (opts.holderTtlMs < opts.leaseMs + opts.requestMs)
      throw new Error(`holderTtlMs (${opts.holderTtlMs}) must exceed leaseMs (${opts.leaseMs}) by requestMs (${opts.requestMs}) or more`);
    this.holder = opts.holder ?? randomBytes(6).toString("hex");
    this.paths = ledgerPaths(deps.settings.dispatcherId);
  }

  get unlimited(): boolean {
    return isUnlimited(this.limits) && this.deps.settings.classes.every((c) => isUnlimited(c.limits));
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

  /**
   * Called before every dispatch request under a reservation (the first and each retry): it may be
   * sent only while this replica's lease holds, unbroken since the round that granted the slot.
   * After a lapse the others may have judged this replica dead and given the slot away; the
   * dispatch is refused (not transient: the job stays queued at GitHub and the backlog retries it
   * under a new reservation). A lease about to end is renewed first.
   */
  async fence(runnerName: string): Promise<void> {
    if (this.unlimited) return;
    const grantedAt = this.grantedAt.get(runnerName);
    if (this.lease && this.lease.until - performance.now() < this.opts.leaseMs / 2) await this.beat().catch(() => undefined);
    if (grantedAt !== undefined && leaseCovers(this.lease, grantedAt, performance.now())) return;
    throw new DependencyError("nomad", `the slot reservation of ${runnerName} lapsed (no heartbeat answered in time); not dispatching`, undefined, false);
  }

  /** The dispatch finished or failed: the reservation goes (Nomad lists the runner job if there is one). */
  settle(runnerName: string, _dispatched: boolean): void {
    if (this.unlimited) return;
    this.grantedAt.delete(runnerName);
    this.releases.add(runnerName);
    this.scheduleFlush();
  }

  /** Releases wait a little for a reservation round to ride on, then go alone. */
  private scheduleFlush(): void {
    if (this.closed) return;
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
      for (const [name, entry] of this.cached?.ledger.entries ?? []) if (entry.holder === this.holder) this.releases.add(name);
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
    const sentAt = performance.now();
    const written = await this.variables.put(this.paths.holder(this.holder), { beat: String(this.beats) });
    const answeredAt = performance.now();
    // The lease counts from the sending (ModifyTime is no earlier), so it ends no later on the
    // servers' clock than ModifyTime + leaseMs. The servers' clock is estimated low (ModifyTime
    // was at the answer or before), so this replica judges others dead late, never early.
    this.lease = renewLease(this.lease, sentAt, answeredAt, this.opts.leaseMs);
    this.serverClock = { serverNs: written.modifyTimeNs, localMs: answeredAt };
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
          const { granted, released } = await this.round(
            batch.map((w) => w.request),
            releases,
          );
          for (const w of batch) w.resolve(granted.has(w.request.runnerName));
          if (released) for (const name of releases) this.releases.delete(name);
          else {
            // Not written (the ledger stayed contended): dropping them here would leave this
            // replica's entries counted until it dies. They go with a later round.
            this.scheduleFlush();
            if (this.waiting.length === 0) return;
          }
        } catch (err) {
          // Nomad unreachable: the reservations fail as the count of record failing did before
          // (a delivery gets its 5xx; the job stays queued at GitHub); releases wait for the next round.
          this.cached = undefined;
          this.deps.log.warn({ err: errorMessage(err), requests: batch.length }, "capacity ledger round failed");
          for (const w of batch) w.reject(err);
          if (batch.length === 0) {
            this.scheduleFlush();
            return;
          }
        }
      }
    } finally {
      this.running = false;
    }
  }

  /** The runner names granted a slot, and whether `releases` are written (or were not in the ledger). */
  private async round(requests: SlotRequest[], releases: ReadonlySet<string>): Promise<{ granted: Set<string>; released: boolean }> {
    // A replica that could not beat for a while (paused, partitioned) may look dead to the others:
    // it renews its lease before it takes anything new, so what it is granted can be dispatched.
    if (requests.length > 0 && (!this.lease || this.lease.until - performance.now() < this.opts.leaseMs / 2)) await this.beat();
    const startedAt = performance.now();
    let { ledger, at: ledgerAt } = this.cached ?? (await this.readLedger());
    let fresh = this.cached === undefined;
    // Holders judged dead, with the index of the beat each was judged on (0: it had none); only
    // for the ledger it was judged after (PlanInput.deadHolders).
    let dead: { judged: DeadHolders; beats: Map<string, number> } | undefined;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      // Listed after the ledger was known (see PlanInput.listed), and after any judgment of dead
      // holders (PlanInput.deadHolders). A release-only round needs no listing.
      const listedAt = performance.now();
      const listed = requests.length > 0 ? await listRunnerJobs(this.deps) : [];
      const input = {
        ledger,
        ledgerAt,
        listed,
        listedAt,
        holder: this.holder,
        releases,
        deadHolders: dead?.judged,
        requests,
        limits: this.limits,
        classOf: (name: string) => classOfRunner(this.deps.settings.classes, name)?.cls,
      };
      const plan = planSlots(input);
      if (plan.refused.length > 0 && !fresh) {
        // Refusing on a cached ledger could starve a job another replica made room for: read it
        // first (before any judgment, which would not hold for a ledger read after it).
        ({ ledger, at: ledgerAt } = await this.readLedger());
        fresh = true;
        dead = undefined;
        continue;
      }
      if (plan.askHolders && dead === undefined) {
        // Judge first, then list again: only a listing after the judgment shows every runner job
        // the dead holders' dispatches created.
        dead = await this.deadHolders(ledger);
        if (dead) continue;
      }
      if (!plan.changed) {
        this.cached = { ledger, at: ledgerAt };
        return { granted: this.granted(plan.granted, startedAt), released: true };
      }
      const result = await this.variables.compareAndSet(this.paths.slots, encodeLedger(plan.entries), ledger.index);
      if ("written" in result) {
        this.cached = { ledger: decodeLedger(result.written.modifyIndex, result.written.items), at: performance.now() };
        if (dead && dead.beats.size > 0) void this.forgetHolders(dead.beats);
        return { granted: this.granted(plan.granted, startedAt), released: true };
      }
      // Another replica wrote since: decide again on what it wrote (newer than any judgment made).
      ledger = result.conflict ? decodeLedger(result.conflict.modifyIndex, result.conflict.items) : { index: 0, entries: new Map() };
      ledgerAt = performance.now();
      fresh = true;
      dead = undefined;
    }
    this.cached = undefined;
    this.deps.log.warn({ requests: requests.length, releases: releases.size }, "capacity ledger stayed contended; the backlog retries");
    return { granted: new Set(), released: false };
  }

  private granted(names: readonly string[], startedAt: number): Set<string> {
    for (const name of names) this.grantedAt.set(name, startedAt);
    return new Set(names);
  }

  private async readLedger(): Promise<{ ledger: Ledger; at: number }> {
    const v = await this.variables.read(this.paths.slots);
    return { ledger: v ? decodeLedger(v.modifyIndex, v.items) : { index: 0, entries: new Map() }, at: performance.now() };
  }

  /** Holders of the ledger's entries that stopped beating; undefined while this replica has no server clock. */
  private async deadHolders(ledger: Ledger): Promise<{ judged: DeadHolders; beats: Map<string, number> } | undefined> {
    const now = this.serverNowNs();
    if (now === undefined) return undefined;
    const askedAt = performance.now();
    const beats = await this.variables.list(this.paths.holders);
    const answeredAt = performance.now();
    const holderBeats = beats.map((b) => ({ holder: b.path.slice(this.paths.holders.length), modifyTimeNs: b.modifyTimeNs, index: b.modifyIndex }));
    const dead = deadHolders(ledger.entries, holderBeats, now, this.opts.holderTtlMs, this.holder);
    if (dead.size > 0) this.deps.log.warn({ holders: [...dead] }, "reclaiming the reservations of replicas that stopped beating");
    // Each with the index of the beat it was judged on (0: it had none).
    return { judged: { holders: dead, askedAt, answeredAt }, beats: new Map([...dead].map((h) => [h, holderBeats.find((b) => b.holder === h)?.index ?? 0])) };
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
