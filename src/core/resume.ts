// Resuming a half-done provisioning. Provisioning writes to three systems in turn (a runner
// registration at GitHub, its credential in Vault, the runner job in Nomad), and an attempt can
// stop between any two. The next attempt (in this process, another replica, the reconciler) reads
// the durable facts and decides from them alone here, with no grace period.
//
// Vault's KV v2 check-and-set on the runner's secret is the one lock: a credential is committed by
// a write at the version the writer saw, and whoever wants to delete a registration it did not
// create first claims the secret (a "reissuing" marker, also by check-and-set). So an attempt that
// is mid-way (registered, about to write) and one that takes its registration for an orphan cannot
// both win: the second write fails, and its writer reads the facts again.

/** What Vault holds under a runner's name (never the credential itself). */
export type SecretSlot =
  /** A runner credential; `runnerId` is the registration it belongs to (absent: written before ids were kept). */
  | { kind: "credential"; version: number; runnerId?: number }
  /** Another attempt is replacing an orphaned registration (it deletes it, then registers again). */
  | { kind: "reissuing"; version: number; claimedAt: number; claimant?: string };

/** The registration GitHub has under the runner's name. */
export interface RegistrationFacts {
  id: number;
  online: boolean;
  busy: boolean;
}

export interface ResumeFacts {
  now: number;
  /** undefined: no runner of that name is registered (it was deleted after our 409). */
  registration: RegistrationFacts | undefined;
  secret: SecretSlot | undefined;
  /** The registration whose credential this process still holds from an earlier attempt. */
  heldRunnerId: number | undefined;
  /** The claim this process made for the job, if any: its own claim never makes it wait. */
  ownClaim?: string;
  /** A "reissuing" claim older than this is abandoned (its attempt died mid-way) and is taken over. */
  claimLeaseMs: number;
}

export type ResumeStep =
  /** Nothing registered any more: register afresh; the credential is written at `cas`. */
  | { step: "register"; cas: number }
  /** Vault has the registration's credential: dispatch (idempotent). */
  | { step: "dispatch" }
  /** This process holds the registration's credential: write it at `cas`, then dispatch. */
  | { step: "store-held"; cas: number }
  /**
   * An orphan nobody is finishing: claim the secret at `cas`, delete registration `runnerId`,
   * register again, and write the new credential over the claim.
   */
  | { step: "reissue"; cas: number; runnerId: number }
  /** Someone else is mid-way, or a runner process uses the registration: nothing to do now. */
  | { step: "wait"; why: string };

/** Someone else's claim, young enough that its attempt may still be running. */
function liveClaim(facts: ResumeFacts): boolean {
  const { secret } = facts;
  if (secret?.kind !== "reissuing") return false;
  if (secret.claimant !== undefined && secret.claimant === facts.ownClaim) return false;
  return facts.now - secret.claimedAt < facts.claimLeaseMs;
}

/**
 * What to do when the runner's name is taken at GitHub (409), or the credential write found
 * the secret changed under it. Pure; the facts are read just before.
 */
export function decideResume(facts: ResumeFacts): ResumeStep {
  const { registration: reg, secret } = facts;
  const version = secret?.version ?? 0;
  // Someone claimed the name to replace its registration: it deletes whatever is registered
  // and writes over its claim; anything we wrote or dispatched meanwhile would be stale.
  if (liveClaim(facts)) return { step: "wait", why: "another attempt is re-registering the runner" };
  if (!reg) return { step: "register", cas: version };
  // A runner process is connected with this registration, or running a job: never touched here.
  if (reg.busy || reg.online) return { step: "wait", why: `the registered runner is ${reg.busy ? "busy" : "online"}` };
  if (secret?.kind === "credential" && (secret.runnerId === undefined || secret.runnerId === reg.id)) return { step: "dispatch" };
  if (facts.heldRunnerId === reg.id) return { step: "store-held", cas: version };
  // Offline, idle, and neither Vault nor this process has its credential: whoever registered it
  // stopped before its write (a write now would fail on our claim). A credential of another id
  // in Vault belongs to a registration that is gone, and is overwritten.
  return { step: "reissue", cas: version, runnerId: reg.id };
}

/**
 * Webhooks arrive within seconds of a job being queued: a job older than this, or one the
 * reconciler found, has probably had an attempt already, which may have left a registration.
 */
export const PROBE_AFTER_MS = 15_000;

/**
 * Look at GitHub's registration (one read, 1 point) before asking for a credential (a write,
 * 5 points, refused with 409 when a registration exists)? For a fresh webhook, no: that costs one
 * read per job for nothing. For a job that was probably attempted before, yes: an orphan then
 * costs its deletion and one new credential, not a refused request besides.
 *
 * Judged when this process first hears of the job: a job that waited in this process's own queue
 * (a burst paced by GitHub's budget, a wait for capacity) was attempted by nobody meanwhile, so
 * its age then says nothing. What this process did itself is known exactly (`attemptedHere`).
 */
export function probeRegistrationFirst(facts: { now: number; createdAt: string; seenQueued: boolean; attemptedHere?: boolean }): boolean {
  if (facts.attemptedHere || facts.seenQueued) return true;
  const queuedAt = Date.parse(facts.createdAt);
  return !Number.isFinite(queuedAt) || facts.now - queuedAt >= PROBE_AFTER_MS;
}
