import { type ClassLimits, type Limits, Occupancy } from "./capacity.js";

/**
 * The slot ledger: MAX_RUNNERS / MAX_RUNNERS_PER_REPO across replicas. Every replica's claim on a
 * runner slot that Nomad does not list as a runner job yet is an entry of one Nomad Variable,
 * written only with check-and-set on the version the replica decided from: two replicas deciding
 * from the same version cannot both write, so they cannot both take the last slot. This module is
 * the decision, pure: what the ledger becomes, and who gets a slot.
 *
 * A slot is taken by a runner job Nomad lists alive, or by a ledger entry (a dispatch under way),
 * counted once per runner name. An entry ends when its holder settles it, when Nomad lists its
 * runner job alive (the job counts from then on), or when its holder is dead: a replica that stopped
 * beating its heartbeat variable (judged on the Nomad servers' clock) holds nothing.
 *
 * "Dead" must mean "can no longer create a runner job", or a reclaimed slot is counted twice: once
 * for whoever takes it, once for the dead holder's dispatch landing late. Nomad's dispatch has no
 * fence (no check-and-set against the ledger), so this is a lease, as Nomad's own variable locks
 * are (hashicorp/nomad nomad/structs/variables.go, VariableLock: TTL, then LockDelay before anyone
 * else may take it). A holder sends a dispatch only inside its lease (`leaseCovers`): renewed by
 * heartbeats answered in time, and never broken since the round that granted the slot. The lease
 * is shorter than the TTL by more than a dispatch request's timeout, so by the time another replica
 * judges the holder dead on the servers' clock, every dispatch it sent has landed or never will.
 * What it may have landed shows only in a listing taken AFTER that judgment: `planSlots` reclaims
 * nothing on a listing older than the judgment (a listing taken before could miss a job the dead
 * holder's dispatch created right after it, and the reclaimed slot would be counted twice).
 */

/** One reservation: the runner, its repository (per-repository limit) and the replica holding it. */
export interface SlotEntry {
  repo: string;
  holder: string;
}

/** The ledger as read from (or written to) its variable; `index` 0: the variable does not exist. */
export interface Ledger {
  index: number;
  entries: ReadonlyMap<string, SlotEntry>;
}

/** A runner job as the capacity count sees it (listRunnerJobs). */
export interface ListedRunner {
  runnerName: string;
  repo: string;
  alive: boolean;
}

export interface SlotRequest {
  runnerName: string;
  repo: string;
}

export interface PlanInput {
  ledger: Ledger;
  /** When `ledger` was known (its read or write answered; the caller's monotonic clock). */
  ledgerAt: number;
  /**
   * Our runner jobs, listed AFTER `ledger` was read: an entry is dropped because its job is
   * listed, so a listing older than the ledger could miss a job whose entry another replica
   * has already dropped.
   */
  listed: readonly ListedRunner[];
  /** When the listing was asked for (the caller's monotonic clock), to order it after `deadHolders`. */
  listedAt: number;
  /** This replica. */
  holder: string;
  /**
   * Runner names whose reservation this replica gives back (dispatched, failed or cancelled),
   * gathered BEFORE `listed` was taken: a dispatched runner's job must be in the listing that
   * replaces its entry.
   */
  releases: ReadonlySet<string>;
  /**
   * Holders judged dead (undefined when not looked at). Their entries are reclaimed only when the
   * judgment lies between `ledgerAt` and `listedAt`: the listing must come after it, to show every
   * runner job their last dispatches created; the ledger before it, or an entry in it may have
   * been written after the judgment by a holder that came back (a paused replica beating again),
   * under a lease the judgment knows nothing of.
   */
  deadHolders: DeadHolders | undefined;
  requests: readonly SlotRequest[];
  limits: Limits;
  /** The runner class of a runner (from its name), whose own caps hold too; undefined: none. */
  classOf?: (runnerName: string) => ClassLimits | undefined;
}

export interface DeadHolders {
  holders: ReadonlySet<string>;
  /** The heartbeats' listing was asked for at `askedAt` and answered at `answeredAt`. */
  askedAt: number;
  answeredAt: number;
}

export interface SlotPlan {
  /** The ledger's entries to write (CAS on `ledger.index`) when `changed`. */
  entries: Map<string, SlotEntry>;
  changed: boolean;
  /** Runner names that have a slot: a new entry, or already counted (listed alive, or reserved). */
  granted: string[];
  refused: string[];
  /**
   * Some request was refused while other replicas hold entries and their liveness was not looked
   * at before this listing: a dead replica's entries might be what refuses it. Worth a look at the
   * heartbeats, then a new listing, before refusing.
   */
  askHolders: boolean;
}

/** What the ledger becomes and who gets a slot, in request order (the caller's order is fair). */
export function planSlots(input: PlanInput): SlotPlan {
  const { ledger, ledgerAt, listed, listedAt, holder, releases, deadHolders, requests, limits } = input;
  const classOf = input.classOf ?? (() => undefined);
  // A judgment out of order with the ledger and the listing is not used (see PlanInput.deadHolders).
  const dead = deadHolders !== undefined && ledgerAt <= deadHolders.askedAt && deadHolders.answeredAt <= listedAt ? deadHolders.holders : undefined;
  // Only a live job replaces an entry: a dead one may be the runner's previous job while the entry
  // is a new dispatch for the same runner name (a replacement), not landed yet.
  const liveNames = new Set(listed.filter((r) => r.alive).map((r) => r.runnerName));
  const entries = new Map<string, SlotEntry>();
  for (const [name, entry] of ledger.entries) {
    if (liveNames.has(name)) continue; // Nomad counts it now
    if (entry.holder === holder && releases.has(name)) continue;
    if (entry.holder !== holder && dead?.has(entry.holder)) continue;
    entries.set(name, entry);
  }
  const counted = new Map<string, string>();
  for (const r of listed) if (r.alive) counted.set(r.runnerName, r.repo);
  for (const [name, entry] of entries) counted.set(name, entry.repo);
  const occupancy = new Occupancy([...counted].map(([name, repo]) => ({ repo, cls: classOf(name)?.name })));
  const granted: string[] = [];
  const refused: string[] = [];
  for (const request of requests) {
    const reserved = entries.get(request.runnerName);
    if (reserved && reserved.holder !== holder) {
      // Another replica is dispatching it (a duplicate delivery, its reconciler). Granting it here
      // too would count one slot for two dispatches: if that one failed and gave its slot back
      // while this one was under way, the runner would run uncounted. Its job stays queued at
      // GitHub if that dispatch fails, and the next pass dispatches it.
      refused.push(request.runnerName);
      continue;
    }
    if (counted.has(request.runnerName)) {
      granted.push(request.runnerName);
      continue;
    }
    const cls = classOf(request.runnerName);
    if (!occupancy.admits(request.repo, limits, cls)) {
      refused.push(request.runnerName);
      continue;
    }
    const entry = { repo: request.repo.toLowerCase(), holder };
    entries.set(request.runnerName, entry);
    counted.set(request.runnerName, entry.repo);
    occupancy.add(entry.repo, cls?.name);
    granted.push(request.runnerName);
  }
  const othersHold = [...entries.values()].some((e) => e.holder !== holder);
  // Every grant that rests on an entry is written, even when the entries read the same: the entry
  // may be from before a lapse of this holder's lease (given back and taken again, or kept), and a
  // replica that judged it dead meanwhile may be about to drop it by check-and-set on the version
  // both read. The new version fails that write; that replica reads again, and its judgment, now
  // older than its ledger, is not used (found by the model in test/unit/slot-ledger.test.ts, seed 950855528).
  const rests = granted.some((name) => entries.get(name)?.holder === holder);
  return {
    entries,
    changed: rests || !sameEntries(ledger.entries, entries),
    granted,
    refused,
    askHolders: refused.length > 0 && dead === undefined && othersHold,
  };
}

function sameEntries(a: ReadonlyMap<string, SlotEntry>, b: ReadonlyMap<string, SlotEntry>): boolean {
  if (a.size !== b.size) return false;
  for (const [name, entry] of a) {
    const other = b.get(name);
    if (!other || other.holder !== entry.holder || other.repo !== entry.repo) return false;
  }
  return true;
}

/**
 * A holder's lease on its reservations, on its own monotonic clock: `until` is when it ends, `since`
 * when the current unbroken run of renewals began (a lapse starts a new run).
 */
export interface Lease {
  since: number;
  until: number;
}

/**
 * The lease after a heartbeat sent at `sentAt` was answered at `answeredAt`: `leaseMs` from the
 * sending (the servers' ModifyTime is no earlier than that). It continues the current run only if
 * the answer came while the lease still held: a beat that lands after the lease ran out may land
 * after the others judged this holder dead and reclaimed its slots.
 */
export function renewLease(lease: Lease | undefined, sentAt: number, answeredAt: number, leaseMs: number): Lease {
  const until = sentAt + leaseMs;
  if (lease !== undefined && answeredAt < lease.until) return { since: lease.since, until: Math.max(lease.until, until) };
  return { since: sentAt, until };
}

/**
 * May a dispatch be sent now under a slot granted by a round that started at `grantedAt`? Only
 * while the lease holds and has not lapsed since: a lapse may have let another replica reclaim it.
 */
export function leaseCovers(lease: Lease | undefined, grantedAt: number, now: number): boolean {
  return lease !== undefined && lease.since <= grantedAt && now < lease.until;
}

/** A replica's heartbeat variable as listed: its holder id and when the servers last wrote it. */
export interface HolderBeat {
  holder: string;
  /** ModifyTime, nanoseconds on the Nomad servers' clock. */
  modifyTimeNs: number;
}

/**
 * Holders of `entries` that are dead at `serverNowNs` (the servers' clock): no heartbeat variable,
 * or one not written for longer than `ttlMs`. `self` is never dead.
 */
export function deadHolders(
  entries: ReadonlyMap<string, SlotEntry>,
  beats: readonly HolderBeat[],
  serverNowNs: number,
  ttlMs: number,
  self: string,
): Set<string> {
  const lastBeat = new Map(beats.map((b) => [b.holder, b.modifyTimeNs]));
  const dead = new Set<string>();
  for (const { holder } of entries.values()) {
    if (holder === self) continue;
    const beat = lastBeat.get(holder);
    if (beat === undefined || serverNowNs - beat > ttlMs * 1e6) dead.add(holder);
  }
  return dead;
}

// ---------------------------------------------------------------------------------------------
// The variable's Items: one per entry, `<runner name>` -> `<holder> <repo>`, and a version marker
// (a variable must have at least one item, and an empty ledger is still a ledger).

const VERSION_KEY = "_ledger";
const VERSION = "1";

export function encodeLedger(entries: ReadonlyMap<string, SlotEntry>): Record<string, string> {
  const items: Record<string, string> = { [VERSION_KEY]: VERSION };
  for (const [name, { holder, repo }] of entries) items[name] = `${holder} ${repo}`;
  return items;
}

/** Items that are not entries (a future version's, garbage) are ignored rather than counted. */
export function decodeLedger(index: number, items: Readonly<Record<string, string>>): Ledger {
  const entries = new Map<string, SlotEntry>();
  for (const [name, value] of Object.entries(items)) {
    if (name === VERSION_KEY) continue;
    const space = value.indexOf(" ");
    if (space <= 0 || space === value.length - 1) continue;
    entries.set(name, { holder: value.slice(0, space), repo: value.slice(space + 1) });
  }
  return { index, entries };
}

/** Where a deployment's coordination lives, under the `nomad-gha-dispatcher/` the policy grants. */
export function ledgerPaths(dispatcherId: string): { slots: string; holders: string; holder: (id: string) => string } {
  const root = `nomad-gha-dispatcher/${dispatcherId}`;
  return { slots: `${root}/slots`, holders: `${root}/holders/`, holder: (id) => `${root}/holders/${id}` };
}
