/** MAX_RUNNERS and MAX_RUNNERS_PER_REPO, or a class's max_runners and max_runners_per_repo. */
export interface Limits {
  maxRunners: number;
  maxRunnersPerRepo: number;
}

/** A runner class's own caps, checked on top of the global ones. */
export interface ClassLimits {
  name: string;
  limits: Limits;
}

/** A live runner as capacity counts it: its repository and, when known, its class. */
export type Slot = string | { repo: string; cls?: string };

/** Which cap holds a job back. */
export const CAPS = ["max-runners", "max-runners-per-repo", "class-max-runners", "class-max-runners-per-repo"] as const;
export type Cap = (typeof CAPS)[number];

export function isUnlimited(limits: Limits): boolean {
  return !Number.isFinite(limits.maxRunners) && !Number.isFinite(limits.maxRunnersPerRepo);
}

const UNLIMITED: Limits = { maxRunners: Number.POSITIVE_INFINITY, maxRunnersPerRepo: Number.POSITIVE_INFINITY };

/**
 * The one capacity model, used by the webhook path (CapacityGate) and the reconciler's plan
 * alike: how many runners are alive, in total, per repository (case-insensitive), per class and
 * per class and repository, and whether the limits leave room for one more.
 */
export class Occupancy {
  private readonly counts = new Map<string, number>();
  private count = 0;

  constructor(slots: Iterable<Slot> = []) {
    for (const slot of slots) typeof slot === "string" ? this.add(slot) : this.add(slot.repo, slot.cls);
  }

  get total(): number {
    return this.count;
  }

  inRepo(repo: string): number {
    return this.counts.get(repoKey(repo)) ?? 0;
  }

  inClass(cls: string, repo?: string): number {
    return this.counts.get(classKey(cls, repo)) ?? 0;
  }

  /** Room for one more runner of `repo` (of class `cls`, with its own caps) under `limits`. */
  admits(repo: string, limits: Limits, cls?: ClassLimits): boolean {
    return this.blockedBy(repo, limits, cls) === undefined;
  }

  /** The first cap that leaves no room for one more runner of `repo` (and `cls`); undefined: room. */
  blockedBy(repo: string, limits: Limits, cls?: ClassLimits): Cap | undefined {
    if (this.count >= limits.maxRunners) return "max-runners";
    if (this.inRepo(repo) >= limits.maxRunnersPerRepo) return "max-runners-per-repo";
    const own = cls?.limits ?? UNLIMITED;
    if (cls && this.inClass(cls.name) >= own.maxRunners) return "class-max-runners";
    if (cls && this.inClass(cls.name, repo) >= own.maxRunnersPerRepo) return "class-max-runners-per-repo";
    return undefined;
  }

  add(repo: string, cls?: string): void {
    const keys = [repoKey(repo), ...(cls === undefined ? [] : [classKey(cls), classKey(cls, repo)])];
    for (const key of keys) this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    this.count += 1;
  }
}

// Class names are [a-z0-9-] and repositories owner/name, so "\0" cannot occur in either.
const repoKey = (repo: string) => `repo\0${repo.toLowerCase()}`;
const classKey = (cls: string, repo?: string) => (repo === undefined ? `class\0${cls}` : `class\0${cls}\0${repo.toLowerCase()}`);
