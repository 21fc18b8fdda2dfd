/** MAX_RUNNERS and MAX_RUNNERS_PER_REPO. */
export interface Limits {
  maxRunners: number;
  maxRunnersPerRepo: number;
}

export function isUnlimited(limits: Limits): boolean {
  return !Number.isFinite(limits.maxRunners) && !Number.isFinite(limits.maxRunnersPerRepo);
}

/**
 * The one capacity model, used by the webhook path (CapacityGate) and the reconciler's plan
 * alike: how many runners are alive, in total and per repository (case-insensitive), and whether
 * the limits leave room for one more in a repository.
 */
export class Occupancy {
  private readonly perRepo = new Map<string, number>();
  private count = 0;

  constructor(repos: Iterable<string> = []) {
    for (const repo of repos) this.add(repo);
  }

  get total(): number {
    return this.count;
  }

  inRepo(repo: string): number {
    return this.perRepo.get(repo.toLowerCase()) ?? 0;
  }

  /** Room for one more runner of `repo` under `limits`. */
  admits(repo: string, limits: Limits): boolean {
    return this.count < limits.maxRunners && this.inRepo(repo) < limits.maxRunnersPerRepo;
  }

  add(repo: string): void {
    const key = repo.toLowerCase();
    this.perRepo.set(key, (this.perRepo.get(key) ?? 0) + 1);
    this.count += 1;
  }
}
