import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type DeadHolders,
  deadHolders,
  decodeLedger,
  encodeLedger,
  type Lease,
  type Ledger,
  type ListedRunner,
  leaseCovers,
  ledgerPaths,
  planSlots,
  renewLease,
  type SlotEntry,
} from "../../src/core/slot-ledger.js";

const limits = { maxRunners: 3, maxRunnersPerRepo: 2 };
const ledgerOf = (index: number, entries: Record<string, SlotEntry>): Ledger => ({ index, entries: new Map(Object.entries(entries)) });
// The ledger read at 1, the runner jobs listed at 10 (PlanInput's clock).
const base = { holder: "a", releases: new Set<string>(), deadHolders: undefined, limits, ledgerAt: 1, listedAt: 10 };

describe("planSlots", () => {
  it("holds each runner class's own caps across replicas: the class of a runner (by its name) counts its listed jobs and every replica's entries", () => {
    const large = { name: "large", limits: { maxRunners: 2, maxRunnersPerRepo: 2 } };
    const classOf = (name: string) => (name.startsWith("large-") ? large : undefined);
    const plan = planSlots({
      ...base,
      limits: { maxRunners: 10, maxRunnersPerRepo: 10 },
      classOf,
      ledger: ledgerOf(5, { "large-1": { repo: "o/x", holder: "b" } }),
      listed: [{ runnerName: "large-0", repo: "o/y", alive: true }],
      requests: [
        { runnerName: "large-2", repo: "o/z" },
        { runnerName: "small-3", repo: "o/z" },
      ],
    });
    // Two large runners already (one listed, one another replica reserves): the class is full, the global cap is not.
    expect(plan.granted).toEqual(["small-3"]);
    expect(plan.refused).toEqual(["large-2"]);
  });

  it("grants up to the limits, counting live runner jobs and every replica's reservations once per runner", () => {
    const plan = planSlots({
      ...base,
      ledger: ledgerOf(5, { r1: { repo: "o/x", holder: "b" } }),
      listed: [{ runnerName: "r0", repo: "o/y", alive: true }],
      requests: [
        { runnerName: "r2", repo: "o/x" },
        { runnerName: "r3", repo: "o/x" },
        { runnerName: "r4", repo: "o/z" },
      ],
    });
    // r2 fills the total (r0, r1, r2); r3 would be a third in o/x anyway.
    expect(plan.granted).toEqual(["r2"]);
    expect(plan.refused).toEqual(["r3", "r4"]);
    expect(plan.changed).toBe(true);
    expect([...plan.entries.keys()].sort()).toEqual(["r1", "r2"]);
    // b's entry might be a dead replica's: worth a look before refusing.
    expect(plan.askHolders).toBe(true);
  });

  it("drops entries whose runner job Nomad lists alive, ours released, and dead holders' entries", () => {
    const plan = planSlots({
      ...base,
      releases: new Set(["mine-done", "theirs"]),
      deadHolders: { holders: new Set(["c"]), askedAt: 4, answeredAt: 5 },
      ledger: ledgerOf(9, {
        listedAlive: { repo: "o/x", holder: "b" },
        listedDead: { repo: "o/x", holder: "b" },
        "mine-done": { repo: "o/x", holder: "a" },
        theirs: { repo: "o/x", holder: "b" },
        ghost: { repo: "o/x", holder: "c" },
      }),
      listed: [
        { runnerName: "listedAlive", repo: "o/x", alive: true },
        { runnerName: "listedDead", repo: "o/x", alive: false },
      ],
      requests: [],
    });
    // Only b's own release would remove "theirs"; a dead job may be the previous one of a
    // replacement under way, so "listedDead" stays until its holder settles it.
    expect([...plan.entries.keys()].sort()).toEqual(["listedDead", "theirs"]);
    expect(plan.changed).toBe(true);
  });

  it("a runner already counted is granted without a new entry (its own entry written again), but not one another replica is reserving", () => {
    const plan = planSlots({
      ...base,
      ledger: ledgerOf(3, { mine: { repo: "o/x", holder: "a" } }),
      listed: [{ runnerName: "running", repo: "o/x", alive: true }],
      requests: [
        { runnerName: "mine", repo: "o/x" },
        { runnerName: "running", repo: "o/x" },
      ],
    });
    expect(plan.granted).toEqual(["mine", "running"]);
    expect([...plan.entries.keys()]).toEqual(["mine"]);
    // Written again: "mine" may date from before a lapse of a's lease, which another replica may be reclaiming.
    expect(plan.changed).toBe(true);
    const listedOnly = planSlots({
      ...base,
      ledger: ledgerOf(3, {}),
      listed: [{ runnerName: "running", repo: "o/x", alive: true }],
      requests: [{ runnerName: "running", repo: "o/x" }],
    });
    expect(listedOnly.changed).toBe(false);
    // b is dispatching "theirs": not a second time here (b's failure would free the slot under it).
    const theirs = planSlots({
      ...base,
      ledger: ledgerOf(4, { theirs: { repo: "o/x", holder: "b" } }),
      listed: [],
      requests: [{ runnerName: "theirs", repo: "o/x" }],
    });
    expect(theirs).toMatchObject({ granted: [], refused: ["theirs"], changed: false, askHolders: true });
  });

  it("nothing to write when nothing changes; no look at holders when only own entries refuse", () => {
    const plan = planSlots({
      ...base,
      ledger: ledgerOf(3, { m1: { repo: "o/x", holder: "a" }, m2: { repo: "o/y", holder: "a" }, m3: { repo: "o/z", holder: "a" } }),
      listed: [],
      requests: [{ runnerName: "r", repo: "o/w" }],
    });
    expect(plan).toMatchObject({ changed: false, granted: [], refused: ["r"], askHolders: false });
  });
});

describe("reclaiming a dead holder's slots, in order with the ledger and the listing", () => {
  const ledger = ledgerOf(9, { ghost: { repo: "o/x", holder: "c" }, mine: { repo: "o/x", holder: "a" } });
  const request = [{ runnerName: "new", repo: "o/y" }];
  const tight = { maxRunners: 2, maxRunnersPerRepo: 2 };
  const judged = (askedAt: number, answeredAt: number): DeadHolders => ({ holders: new Set(["c"]), askedAt, answeredAt });

  it("a judgment made after the listing was asked for reclaims nothing (the dead holder's last dispatch may have landed since)", () => {
    const plan = planSlots({ ...base, limits: tight, ledger, ledgerAt: 1, listed: [], listedAt: 10, deadHolders: judged(11, 12), requests: request });
    expect(plan).toMatchObject({ granted: [], refused: ["new"], changed: false });
    // Not looked at in the right order: worth a judgment and a new listing.
    expect(plan.askHolders).toBe(true);
  });

  it("a judgment made before the ledger was read reclaims nothing (the holder may have come back and written those entries)", () => {
    const plan = planSlots({ ...base, limits: tight, ledger, ledgerAt: 5, listed: [], listedAt: 10, deadHolders: judged(3, 4), requests: request });
    expect(plan).toMatchObject({ granted: [], refused: ["new"], askHolders: true });
  });

  it("ledger, then judgment, then listing: the dead holder's slot goes to the request, and what its dispatch created counts", () => {
    const plan = planSlots({ ...base, limits: tight, ledger, ledgerAt: 1, listed: [], listedAt: 10, deadHolders: judged(2, 3), requests: request });
    expect(plan).toMatchObject({ granted: ["new"], refused: [], askHolders: false });
    expect([...plan.entries.keys()].sort()).toEqual(["mine", "new"]);
    // The same, but the listing shows the runner job its dispatch created: the slot stays taken.
    const landed = planSlots({
      ...base,
      limits: tight,
      ledger,
      ledgerAt: 1,
      listedAt: 10,
      deadHolders: judged(2, 3),
      listed: [{ runnerName: "ghost", repo: "o/x", alive: true }],
      requests: request,
    });
    expect(landed).toMatchObject({ granted: [], refused: ["new"], askHolders: false });
  });
});

describe("the holder's lease", () => {
  it("renewed by beats answered in time; a beat answered after it ran out starts a new run", () => {
    const first = renewLease(undefined, 0, 1, 15);
    expect(first).toEqual({ since: 0, until: 15 });
    const renewed = renewLease(first, 5, 14, 15);
    expect(renewed).toEqual({ since: 0, until: 20 });
    // Sent before the end, answered after it: the others may have judged this holder dead meanwhile.
    expect(renewLease(renewed, 19, 21, 15)).toEqual({ since: 19, until: 34 });
  });

  it("covers a dispatch only while it holds and has not lapsed since the round that granted the slot", () => {
    const lease = { since: 10, until: 30 };
    expect(leaseCovers(lease, 12, 29)).toBe(true);
    expect(leaseCovers(lease, 12, 30)).toBe(false);
    expect(leaseCovers(lease, 9, 20)).toBe(false);
    expect(leaseCovers(undefined, 12, 20)).toBe(false);
  });
});

describe("deadHolders, encoding, paths", () => {
  it("a holder with no heartbeat, or one older than the TTL on the servers' clock, is dead; never oneself", () => {
    const entries = new Map<string, SlotEntry>([
      ["r1", { repo: "o/x", holder: "fresh" }],
      ["r2", { repo: "o/x", holder: "stale" }],
      ["r3", { repo: "o/x", holder: "gone" }],
      ["r4", { repo: "o/x", holder: "me" }],
    ]);
    const now = 100e9;
    const beats = [
      { holder: "fresh", modifyTimeNs: now - 5e9 },
      { holder: "stale", modifyTimeNs: now - 21e9 },
    ];
    expect([...deadHolders(entries, beats, now, 20_000, "me")].sort()).toEqual(["gone", "stale"]);
  });

  it("round-trips the ledger through the variable's items (never empty), ignoring foreign items", () => {
    const entries = new Map<string, SlotEntry>([["nomad-gha-1", { repo: "octo/app", holder: "h1" }]]);
    const items = encodeLedger(entries);
    expect(items).toEqual({ _ledger: "1", "nomad-gha-1": "h1 octo/app" });
    expect(encodeLedger(new Map())).toEqual({ _ledger: "1" });
    expect(decodeLedger(7, { ...items, junk: "nospace", trailing: "h " })).toEqual({ index: 7, entries });
    expect(ledgerPaths("prod").slots).toBe("nomad-gha-dispatcher/prod/slots");
    expect(ledgerPaths("prod").holder("h1")).toBe("nomad-gha-dispatcher/prod/holders/h1");
  });
});

// ---------------------------------------------------------------------------------------------
// Interleavings: replicas taking slots through one CAS-written variable, sending dispatches that
// land in Nomad later (after their sender died, too), Nomad listing runner jobs, jobs ending,
// replicas dying or pausing and coming back. Every step is atomic; fast-check picks the order.
//
// Time is a step counter. What the lease's timing guarantees (SharedCapacityGate: no dispatch sent
// after the lease, which ends NOMAD_REQUEST_MS or more before the TTL) is a precondition: a replica
// is judged dead by the others ("expired") only once none of its dispatches is still in flight.

/** A lease that lasts until the script makes it go stale. */
const FOREVER = 1e12;

interface Child {
  name: string;
  repo: string;
  alive: boolean;
}

interface Grant {
  repo: string;
  /** When the round that granted it started (the gate's grantedAt). */
  grantedAt: number;
}

interface Round {
  phase: "read" | "list" | "judge" | "write";
  request: { runnerName: string; repo: string };
  startedAt: number;
  /** Taken when the round starts, before its listing (as the gate's pump does). */
  releases: Set<string>;
  ledger?: Ledger;
  ledgerAt?: number;
  fresh?: boolean;
  listed?: ListedRunner[];
  listedAt?: number;
  dead?: DeadHolders;
}

interface Replica {
  id: string;
  /** SIGKILLed: does nothing more, but what it sent may still land. */
  dead: boolean;
  /**
   * Its lease (core renewLease): `until` is when its heartbeat went stale and the others judge
   * it dead ("expired"); a beat after that starts a new run of the lease.
   */
  lease: Lease;
  /** The ledger it last wrote or read, and when (its CAS base when it does not read first). */
  cached: { ledger: Ledger; at: number } | undefined;
  round: Round | undefined;
  /** Granted, no dispatch in flight. */
  granted: Map<string, Grant>;
  /** Dispatched or failed: to release in its next round. */
  releases: Set<string>;
}

class World {
  variable: Ledger = { index: 0, entries: new Map() };
  private raft = 10;
  private clock = 0;
  children: Child[] = [];
  /** Dispatch requests sent, not yet applied by Nomad (or lost). */
  inflight: Array<{ name: string; repo: string; grant: Grant; sender: Replica }> = [];
  replicas: Replica[];
  private next = 0;
  /** Every runner asked for so far, with its repository. */
  private readonly asked = new Map<string, string>();
  readonly violations: string[] = [];

  constructor(
    n: number,
    readonly lim: { maxRunners: number; maxRunnersPerRepo: number },
  ) {
    this.replicas = Array.from({ length: n }, (_, i) => ({
      id: `h${i}`,
      dead: false,
      lease: { since: 0, until: FOREVER },
      cached: undefined,
      round: undefined,
      granted: new Map(),
      releases: new Set(),
    }));
  }

  private tick(): number {
    this.clock += 1;
    return this.clock;
  }

  /** The gate's fence: its lease holds, unbroken since the round that granted the slot. */
  private mayDispatch(r: Replica, grant: Grant): boolean {
    return !r.dead && leaseCovers(r.lease, grant.grantedAt, this.clock);
  }

  expired(r: Replica): boolean {
    return r.lease.until <= this.clock;
  }

  step(replicaIndex: number, action: number, pick: number): void {
    const r = this.replicas[replicaIndex % this.replicas.length]!;
    this.tick();
    switch (action) {
      case 0: // a job needs a runner: a round starts
        this.startRound(r, pick);
        return;
      case 1:
        if (!r.dead && r.round) this.advance(r, pick);
        return;
      case 2: {
        // A granted runner's dispatch request is sent, if the fence lets it (else it is settled).
        const [name, grant] = [...r.granted][pick % Math.max(1, r.granted.size)] ?? [];
        if (r.dead || name === undefined || grant === undefined) return;
        r.granted.delete(name);
        if (this.mayDispatch(r, grant)) this.inflight.push({ name, repo: grant.repo, grant, sender: r });
        else r.releases.add(name);
        return;
      }
      case 3: {
        // Nomad applies a dispatch in flight, whether its sender still lives or not. Idempotent on the
        // job's token while a child with it exists, dead or alive (hashicorp/nomad
        // nomad/state/state_store.go CheckIdempotencyToken). Its answer: the sender settles it
        // (pick odd), or the answer is lost and it sends again (pick even).
        const sent = this.inflight.splice(pick % Math.max(1, this.inflight.length), 1)[0];
        if (!sent) return;
        if (!this.children.some((c) => c.name === sent.name)) this.children.push({ name: sent.name, repo: sent.repo, alive: true });
        this.answer(sent, pick % 2 === 1);
        return;
      }
      case 4: {
        const alive = this.children.filter((c) => c.alive);
        const c = alive[pick % Math.max(1, alive.length)];
        if (c) c.alive = false;
        return;
      }
      case 5: {
        // Nomad's GC purges a dead child, hours after it ended: never one whose dispatch is still
        // being retried (job_gc_threshold, 4 h by default, against seconds of retries).
        const busy = new Set([...this.inflight.map((s) => s.name), ...this.replicas.flatMap((x) => [...x.granted.keys()])]);
        const deadIdx = this.children.findIndex((c) => !c.alive && !busy.has(c.name));
        if (deadIdx >= 0) this.children.splice(deadIdx, 1);
        return;
      }
      case 6:
        // SIGKILL: what it had not sent never will be; what it sent may still land. One replica stays.
        if (!r.dead && this.replicas.filter((x) => !x.dead).length > 1) {
          r.dead = true;
          r.round = undefined;
          r.granted.clear();
        }
        return;
      case 7:
        this.flush(r);
        return;
      case 8: {
        // A dispatch in flight fails without Nomad applying it: the sender gives up (pick odd) or retries.
        const sent = this.inflight.splice(pick % Math.max(1, this.inflight.length), 1)[0];
        if (sent) this.answer(sent, pick % 2 === 1);
        return;
      }
      case 9:
        // Its heartbeat goes stale (SIGKILLed, or paused, partitioned): the others judge it dead.
        // Only once nothing it sent is in flight: it sends nothing after its lease, and the TTL is
        // longer than the lease by more than a dispatch request can take.
        if (!this.expired(r) && !this.inflight.some((s) => s.sender === r)) r.lease = { ...r.lease, until: this.clock };
        return;
      case 10:
        // A paused replica beats again: a new lease, which covers nothing granted before.
        if (!r.dead && this.expired(r)) this.renew(r);
        return;
    }
  }

  private renew(r: Replica): void {
    const now = this.tick();
    r.lease = renewLease(r.lease, now, now, FOREVER);
  }

  private answer(sent: { name: string; grant: Grant; sender: Replica }, settled: boolean): void {
    if (sent.sender.dead) return;
    if (settled) sent.sender.releases.add(sent.name);
    else sent.sender.granted.set(sent.name, sent.grant); // the retry goes through the fence again
  }

  startRound(r: Replica, pick: number): void {
    if (r.dead || r.round) return;
    // The gate renews its lease before a round that takes slots.
    if (this.expired(r)) this.renew(r);
    const startedAt = this.tick();
    // Now and then a runner asked for already whose job Nomad does not list alive (a
    // duplicate delivery, the reconciler; a dispatch may be under way elsewhere).
    if (pick % 4 === 0) {
      const again = [...this.asked].filter(([name]) => !this.children.some((c) => c.name === name && c.alive));
      const [runnerName, repo] = again[pick % Math.max(1, again.length)] ?? [];
      const mine = (name: string) => r.granted.has(name) || this.inflight.some((s) => s.sender === r && s.name === name);
      if (runnerName && repo && !mine(runnerName)) r.round = { phase: "read", request: { runnerName, repo }, startedAt, releases: new Set(r.releases) };
      return;
    }
    this.next += 1;
    this.asked.set(`run-${this.next}`, `o/${pick % 3}`);
    r.round = { phase: "read", request: { runnerName: `run-${this.next}`, repo: `o/${pick % 3}` }, startedAt, releases: new Set(r.releases) };
  }

  advance(r: Replica, pick: number): void {
    const round = r.round!;
    const now = this.tick();
    if (round.phase === "read") {
      // Either its cached ledger or a fresh read.
      const useCache = r.cached !== undefined && pick % 2 === 0;
      round.ledger = useCache ? r.cached!.ledger : this.variable;
      round.ledgerAt = useCache ? r.cached!.at : now;
      round.fresh = !useCache;
      round.phase = "list";
      return;
    }
    if (round.phase === "judge") {
      // The heartbeats as the servers judge them now.
      round.dead = { holders: new Set(this.replicas.filter((x) => this.expired(x) && x !== r).map((x) => x.id)), askedAt: now, answeredAt: now };
      round.phase = "list";
      return;
    }
    if (round.phase === "list") {
      round.listed = this.children.map((c) => ({ runnerName: c.name, repo: c.repo, alive: c.alive }));
      round.listedAt = now;
      round.phase = "write";
      return;
    }
    const ledger = round.ledger!;
    const plan = planSlots({
      ledger,
      ledgerAt: round.ledgerAt!,
      listed: round.listed!,
      listedAt: round.listedAt!,
      holder: r.id,
      releases: round.releases,
      deadHolders: round.dead,
      requests: [round.request],
      limits: this.lim,
    });
    if (plan.refused.length > 0 && !round.fresh) {
      round.phase = "read";
      round.dead = undefined;
      r.cached = undefined;
      return;
    }
    if (plan.askHolders && round.dead === undefined) {
      // Judge, then list again (the gate's order).
      round.phase = "judge";
      return;
    }
    if (plan.changed) {
      if (this.variable.index !== ledger.index) {
        // 409: the conflict body is the current variable; decide again after listing again.
        round.ledger = this.variable;
        round.ledgerAt = now;
        round.fresh = true;
        round.dead = undefined;
        round.phase = "list";
        return;
      }
      this.raft += 1;
      this.variable = { index: this.raft, entries: plan.entries };
    }
    r.cached = { ledger: plan.changed ? this.variable : ledger, at: now };
    for (const name of round.releases) r.releases.delete(name);
    // Granted without a slot of its own only when its job is listed alive (the dispatch is then a repeat).
    if (plan.granted.includes(round.request.runnerName) && !round.listed!.some((c) => c.runnerName === round.request.runnerName && c.alive))
      r.granted.set(round.request.runnerName, { repo: round.request.repo, grantedAt: round.startedAt });
    r.round = undefined;
  }

  /** A release-only round (the gate's flush): fresh read, CAS, until it lands. No listing needed. */
  flush(r: Replica): void {
    // The gate runs one round at a time: a release-only round never overlaps another.
    if (r.dead || r.round || r.releases.size === 0) return;
    const now = this.tick();
    const plan = planSlots({
      ledger: this.variable,
      ledgerAt: now,
      listed: [],
      listedAt: now,
      holder: r.id,
      releases: r.releases,
      deadHolders: undefined,
      requests: [],
      limits: this.lim,
    });
    if (plan.changed) {
      this.raft += 1;
      this.variable = { index: this.raft, entries: plan.entries };
    }
    // As the gate keeps it: its cache is what it last wrote or read.
    r.cached = { ledger: this.variable, at: now };
    r.releases.clear();
  }

  /**
   * Runners alive, or that may come to be: every dispatch in flight (whoever sent it, dead or not)
   * and every grant its replica may still dispatch, unless a child of that name exists (dead or
   * alive: the dispatch would be a no-op); against the limits.
   */
  check(): void {
    const counted = new Map<string, string>();
    for (const c of this.children) if (c.alive) counted.set(c.name, c.repo);
    const mayCreate = (name: string) => !this.children.some((c) => c.name === name);
    for (const s of this.inflight) if (mayCreate(s.name)) counted.set(s.name, s.repo);
    for (const r of this.replicas) for (const [name, grant] of r.granted) if (this.mayDispatch(r, grant) && mayCreate(name)) counted.set(name, grant.repo);
    if (counted.size > this.lim.maxRunners) this.violations.push(`total ${counted.size} > ${this.lim.maxRunners}`);
    const perRepo = new Map<string, number>();
    for (const repo of counted.values()) perRepo.set(repo, (perRepo.get(repo) ?? 0) + 1);
    for (const [repo, n] of perRepo) if (n > this.lim.maxRunnersPerRepo) this.violations.push(`${repo} ${n} > ${this.lim.maxRunnersPerRepo}`);
  }

  /**
   * Everything settles: what is in flight lands or fails, live replicas finish their rounds and
   * send (or are refused) what they hold, runner jobs end, stale replicas are judged dead (a
   * paused one beats again), releases are written.
   */
  windDown(): void {
    const live = () => this.replicas.filter((x) => !x.dead);
    for (let guard = 0; guard < 100; guard++) {
      for (const r of live()) for (let k = 0; k < 20 && r.round; k++) this.advance(r, 1);
      for (const r of live()) for (const name of [...r.granted.keys()]) this.step(this.replicas.indexOf(r), 2, [...r.granted.keys()].indexOf(name));
      // Applied, and answered (pick 1): nothing is retried any more.
      while (this.inflight.length > 0) this.step(0, 3, 1);
      if (live().every((r) => !r.round && r.granted.size === 0) && this.inflight.length === 0) break;
      this.check();
    }
    this.check();
    for (const c of this.children) c.alive = false;
    for (const r of this.replicas) if (r.dead && !this.expired(r)) r.lease = { ...r.lease, until: this.clock };
    for (const r of live()) if (this.expired(r)) this.renew(r);
    for (const r of this.replicas) this.flush(r);
  }
}

// Rounds advancing (1) are the steps that race; weighted so that most scripts interleave several.
const action = fc.oneof(
  { arbitrary: fc.constant(1), weight: 6 },
  { arbitrary: fc.constant(0), weight: 3 },
  // Dispatches sent and landing, replicas dying and going stale: the steps a reclaim races with.
  { arbitrary: fc.constantFrom(2, 3), weight: 4 },
  { arbitrary: fc.constantFrom(6, 9), weight: 1 },
  { arbitrary: fc.nat(10), weight: 1 },
);
const steps = fc.array(fc.tuple(fc.nat(2), action, fc.nat(1000)), { minLength: 20, maxLength: 300, size: "max" });

/**
 * Fixed seeds first: 1110795639 and 29768172 found the reclaim on a listing older than the
 * judgment (issue 16); then fresh ones, so every run also looks somewhere new.
 */
const SEEDS = [1110795639, 29768172, 42, 20261202, 7, 950855528, Date.now() % 2 ** 31];
const RUNS_PER_SEED = 250;

describe("planSlots under interleaved replicas (CAS on one variable)", () => {
  for (const replicas of [2, 3]) {
    it(`${replicas} replicas never exceed MAX_RUNNERS / MAX_RUNNERS_PER_REPO, whatever the order (dispatches landing after their sender died included)`, () => {
      for (const seed of SEEDS)
        fc.assert(
          fc.property(steps, (script) => {
            const world = new World(replicas, { maxRunners: 2, maxRunnersPerRepo: 2 });
            for (const [replica, action, pick] of script) {
              world.step(replica, action, pick);
              world.check();
            }
            expect(world.violations).toEqual([]);
          }),
          { numRuns: RUNS_PER_SEED, seed },
        );
    });
  }

  it("issue 16's counterexample: a replica's dispatches land after another's listing, it dies and is judged dead; the slots stay counted", () => {
    const world = new World(3, { maxRunners: 2, maxRunnersPerRepo: 2 });
    const [a, , c] = world.replicas as [Replica, Replica, Replica];
    const round = (i: number, pick: number) => {
      world.step(i, 0, pick);
      for (let k = 0; k < 3; k++) world.step(i, 1, 1);
    };
    round(0, 1); // run-1 in o/1
    round(0, 5); // run-2 in o/2: the limit
    expect([...a.granted.keys()]).toEqual(["run-1", "run-2"]);
    world.step(2, 0, 9); // c asks for run-3: reads the ledger, lists the runner jobs (none yet)
    world.step(2, 1, 1);
    world.step(2, 1, 1);
    for (const pick of [0, 0]) world.step(0, 2, pick); // a sends both dispatches; Nomad applies them
    for (const pick of [1, 1]) world.step(0, 3, pick);
    world.step(0, 6, 0); // SIGKILL, then its heartbeat goes stale
    world.step(0, 9, 0);
    expect(world.expired(a)).toBe(true);
    // c's round goes on: refused on a's entries, judges a dead, lists again, and sees both jobs.
    for (let k = 0; k < 6 && c.round; k++) world.step(2, 1, 1);
    expect(c.round).toBeUndefined();
    expect(c.granted.size).toBe(0);
    world.check();
    expect(world.violations).toEqual([]);
    // Once they end, the dead replica's slots are c's.
    for (const child of world.children) child.alive = false;
    for (const pick of [9, 13]) {
      world.step(2, 0, pick);
      for (let k = 0; k < 6 && c.round; k++) world.step(2, 1, 1);
    }
    expect(c.granted.size).toBe(2);
    expect(world.variable.entries.size).toBe(2);
  });

  it("nothing is starved: once runners end and dead replicas are judged dead, a live replica gets every slot back", () => {
    for (const seed of SEEDS)
      fc.assert(
        fc.property(steps, (script) => {
          const world = new World(3, { maxRunners: 2, maxRunnersPerRepo: 2 });
          for (const [replica, action, pick] of script) {
            world.step(replica, action, pick);
            world.check();
          }
          world.windDown();
          // Now two new jobs on one live replica both get a slot.
          const live = world.replicas.find((x) => !x.dead)!;
          for (let n = 0; n < 2; n++) {
            world.startRound(live, 1);
            for (let k = 0; k < 20 && live.round; k++) world.advance(live, 1);
          }
          expect(live.granted.size).toBe(2);
          expect(world.violations).toEqual([]);
        }),
        { numRuns: RUNS_PER_SEED, seed },
      );
  });
});
