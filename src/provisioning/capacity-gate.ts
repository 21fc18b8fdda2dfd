import { isUnlimited, type Limits, Occupancy, type Slot } from "../core/capacity.js";
import { classOfRunner } from "../core/runner-class.js";
import type { RunnerDeps } from "../ports/index.js";
import { listRunnerJobs } from "../ports/runner-jobs.js";

/**
 * What provisioning asks before a dispatch. `shared`: the count holds across replicas (the
 * SharedCapacityGate), so the reconciler's plan, counted in one replica, must ask it too.
 */
export interface SlotGate {
  readonly unlimited: boolean;
  readonly shared: boolean;
  reserve(repo: string, runnerName: string): Promise<boolean>;
  /** Before each dispatch request under a reservation: throws when it may not be sent any more. */
  fence?(runnerName: string): Promise<void>;
  settle(runnerName: string, dispatched: boolean): void;
}

/** A dispatch this process finished counts until Nomad lists it, for at most this long. */
const RECENT_DISPATCH_MS = 60_000;

type Held = { repo: string; cls?: string };

/**
 * Enforces MAX_RUNNERS / MAX_RUNNERS_PER_REPO (and each class's own caps) on the webhook path. Nomad is the count of record;
 * dispatches this process started but Nomad may not list yet are held as reservations. A job
 * refused here is not lost: it is still queued at GitHub and the reconciler dispatches it,
 * oldest first, when capacity frees.
 */
export class CapacityGate implements SlotGate {
  /** Per process: right for one replica only (CAPACITY_SCOPE=process). */
  readonly shared = false;
  private readonly reserved = new Map<string, Held>();
  private readonly recent = new Map<string, Held & { at: number }>();

  constructor(
    private readonly deps: Pick<RunnerDeps, "nomad" | "settings" | "runnerIndex">,
    private readonly limits: Limits,
  ) {}

  get unlimited(): boolean {
    return isUnlimited(this.limits) && this.deps.settings.classes.every((c) => isUnlimited(c.limits));
  }

  /** Reserves a slot for `runnerName`; returns false when the limits are reached. */
  async reserve(repo: string, runnerName: string): Promise<boolean> {
    if (this.unlimited) return true;
    const children = await listRunnerJobs(this.deps);
    // Synchronous from here on: concurrent reservations in this process see each other.
    const now = Date.now();
    const alive = new Map<string, Slot>();
    for (const c of children) if (c.alive) alive.set(c.runnerName, { repo: c.repo, cls: c.cls });
    const dead = new Set(children.filter((c) => !c.alive).map((c) => c.runnerName));
    for (const [name, r] of this.recent) {
      if (now - r.at > RECENT_DISPATCH_MS || dead.has(name)) this.recent.delete(name);
      else alive.set(name, { repo: r.repo, cls: r.cls });
    }
    for (const [name, r] of this.reserved) alive.set(name, r);
    if (alive.has(runnerName)) return true;
    const cls = classOfRunner(this.deps.settings.classes, runnerName)?.cls;
    if (!new Occupancy(alive.values()).admits(repo, this.limits, cls)) return false;
    this.reserved.set(runnerName, { repo, cls: cls?.name });
    return true;
  }

  /** The dispatch finished (or failed): Nomad, or nothing, now accounts for the runner. */
  settle(runnerName: string, dispatched: boolean): void {
    const held = this.reserved.get(runnerName);
    this.reserved.delete(runnerName);
    if (dispatched && held !== undefined) this.recent.set(runnerName, { ...held, at: Date.now() });
  }
}
