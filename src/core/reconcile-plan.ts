import { type Cap, type Limits, Occupancy } from "./capacity.js";
import type { WorkflowJob } from "./job-event.js";
import { repoFullName } from "./job-event.js";
import { type RunnerClass, runnerForJob } from "./runner-class.js";
import {
  freeSeats,
  type IdleRunner,
  inPool,
  isOrgPoolRepo,
  keepIdle,
  poolKey,
  poolRepoOf,
  poolsOf,
  type RegistrationScope,
  seatsUnderWay,
} from "./warm-pool.js";

export type { Limits } from "./capacity.js";

/**
 * How long a warm pool stays short before the plan fills it (at most RECONCILE_GRACE): longer
 * than a dispatch takes to land (the Nomad client's 10 s request timeout, plus margin).
 */
export const POOL_FILL_DELAY_MS = 15_000;

/** One dispatched runner job in Nomad, reduced to what reconciliation needs. */
export interface RunnerChild {
  id: string;
  runnerName: string;
  jobId: number;
  /** `owner/repo` from the child's meta. */
  repo: string;
  /** The runner class: the one whose parameterized job is this child's parent. */
  cls: string;
  /** alive = pending or running and not asked to stop. */
  alive: boolean;
  /** ms since epoch of the last change (Nomad SubmitTime/ModifyTime). */
  changedAt: number;
}

/** What the reconciler found in GitHub, Nomad and Vault, plain data. */
export interface World {
  now: number;
  /** GitHub jobs still queued that we serve. */
  queued: WorkflowJob[];
  /** Runner names whose GitHub runner is running a job right now (never killed). */
  busyRunners: Set<string>;
  children: RunnerChild[];
  /** Runner names with a credential in Vault. */
  secrets: string[];
  /** Runner names whose provisioning answered "in-flight" (registered, no credential yet). */
  inFlight: string[];
  /** Our runner registrations at GitHub (by name prefix), with the repository they serve. */
  registered: Array<{ id: number; name: string; repo: string; busy: boolean; online: boolean }>;
  /** `owner/repo` of every repository served (listed or not this pass): where warm pools live. */
  served?: string[];
}

export interface ReconcileSettings extends Limits {
  /** Queued jobs are served by the class of their labels; each class has its own caps. */
  classes: RunnerClass[];
  /** Keep dead runner jobs this long for `nomad job status` before purging them. */
  retentionMs: number;
  /** How long something may look half-done before we treat it as abandoned. */
  graceMs: number;
  /** RUNNER_SCOPE: a class's warm pool is per organisation or per repository (default). */
  registrationScope?: RegistrationScope;
}

export type ReconcileAction =
  /** Remove a spent child; when its job is still queued, that frees its idempotency token. */
  | { kind: "purge"; childId: string; runnerName: string }
  /** A runner for this queued job. */
  | { kind: "provision"; job: WorkflowJob; runnerName: string }
  /** An idle runner nobody needs any more: deregister, stop its Nomad job, drop its secret. */
  | { kind: "release"; runnerName: string; repo: string }
  /** Clean up what a finished runner left: registration (if any) and credential. */
  | { kind: "clean"; runnerName: string; repo: string }
  /** A credential nothing will use: the Nomad job never came or is gone. */
  | { kind: "delete-secret"; runnerName: string }
  /** Registered at GitHub, never got a credential (a crash mid-way): start over. */
  | { kind: "abandon"; runnerName: string; repo: string }
  /** A queued job the limits leave without a runner for now, and which cap holds it. */
  | { kind: "wait"; job: WorkflowJob; runnerName: string; cap: Cap }
  /** A new idle runner for the warm pool of `cls` in `repo` (`owner/*`: the organisation's). */
  | { kind: "fill"; cls: string; repo: string; runnerName: string };

/**
 * `firstSeen` remembers when each half-done thing was first observed, so that something is only
 * declared abandoned after it stayed that way for `graceMs` (another replica may be mid-way).
 */
export interface Memory {
  firstSeen: Map<string, number>;
}

/**
 * Compares what GitHub wants (queued jobs) with what exists (Nomad children, Vault secrets) and
 * lists what to do. Pure: the reconciler (src/reconciling) discovers the world and applies the actions.
 */
export function planReconcile(world: World, settings: ReconcileSettings, memory: Memory): ReconcileAction[] {
  const actions: ReconcileAction[] = [];
  const seen = new Map<string, number>();
  const lasted = (key: string, ms: number) => {
    const first = memory.firstSeen.get(key) ?? world.now;
    seen.set(key, first);
    return world.now - first >= ms;
  };
  const stale = (key: string) => lasted(key, settings.graceMs);

  // Discovery keeps only jobs some class serves; one that none does has no runner to plan.
  const served = new Map(
    world.queued.flatMap((job) => {
      const ours = runnerForJob(settings.classes, job);
      return ours ? [[job, ours] as const] : [];
    }),
  );
  const runnerFor = (job: WorkflowJob) => served.get(job)!.runnerName;
  const queued = [...served.keys()];
  const queuedByRunner = new Map(queued.map((j) => [runnerFor(j), j]));
  const alive = world.children.filter((c) => c.alive);
  const aliveRunners = new Set(alive.map((c) => c.runnerName));
  const anyChild = new Set(world.children.map((c) => c.runnerName));

  // Dead children: clean what they left, purge them once retained long enough, or right away
  // when their job is still queued (a new dispatch needs the idempotency token back).
  for (const child of world.children.filter((c) => !c.alive)) {
    if (aliveRunners.has(child.runnerName)) continue;
    const stillQueued = queuedByRunner.has(child.runnerName);
    if (world.secrets.includes(child.runnerName) || stillQueued) {
      actions.push({ kind: "clean", runnerName: child.runnerName, repo: child.repo });
    }
    if (stillQueued || world.now - child.changedAt >= settings.retentionMs) {
      actions.push({ kind: "purge", childId: child.id, runnerName: child.runnerName });
    }
  }

  // Credentials without any Nomad job: a crash between Vault and Nomad. If the job is still
  // queued, provisioning below resumes from the secret; otherwise it is garbage once stale.
  for (const name of world.secrets) {
    if (!anyChild.has(name) && !queuedByRunner.has(name) && stale(`secret:${name}`)) {
      actions.push({ kind: "delete-secret", runnerName: name });
    }
  }
  for (const name of world.inFlight) {
    const job = queuedByRunner.get(name);
    if (job && stale(`in-flight:${name}`)) actions.push({ kind: "abandon", runnerName: name, repo: repoFullName(job) });
  }

  // Registrations nothing runs or will run: offline, no live runner job, no credential. A provisioning that
  // raced another replica or delivery leaves one when its dispatch finds the runner job already
  // there (and already served); without this it stays offline at GitHub forever.
  // The grace period runs per registration (id), not per name: a provisioning under way looks
  // the same for a moment (registered, credential and runner job not there yet), and a runner
  // is registered again under the same name each time its job needs a new one.
  const handled = new Set<string>(actions.flatMap((a) => (a.kind === "clean" || a.kind === "abandon" ? [a.runnerName] : [])));
  const secrets = new Set(world.secrets);
  for (const runner of world.registered) {
    if (runner.busy || runner.online || aliveRunners.has(runner.name) || secrets.has(runner.name) || handled.has(runner.name)) continue;
    if (stale(`registered:${runner.name}#${runner.id}`)) {
      actions.push({ kind: "clean", runnerName: runner.name, repo: runner.repo });
      handled.add(runner.name);
    }
  }

  actions.push(
    ...planCapacity(
      { ...world, queued },
      settings,
      alive,
      (job) => served.get(job)!,
      (c) => stale(`spare:${c.runnerName}`),
      (pool) => lasted(`shortfall:${pool}`, Math.min(settings.graceMs, POOL_FILL_DELAY_MS)),
      new Set([...world.children.map((c) => c.runnerName), ...world.registered.map((r) => r.name), ...world.secrets, ...world.inFlight]),
    ),
  );
  memory.firstSeen = seen;
  return actions;
}

/**
 * Per repository and class, idle runners whose own job is gone can serve other queued jobs of
 * that repository and class (GitHub hands a job to any idle runner with its labels); so can an
 * organisation's warm pool runners, for any of its repositories. Only the shortfall is
 * dispatched; of the idle runners left over, warm pools keep theirs and the rest are released.
 * Dispatches respect the global and the class's limits: oldest job first, one repository and
 * class at a time in turn, so one busy repository (or class) cannot starve the others; pools are
 * filled last, with what the jobs left.
 */
function planCapacity(
  world: World,
  settings: ReconcileSettings,
  alive: RunnerChild[],
  servedBy: (job: WorkflowJob) => { cls: RunnerClass; runnerName: string },
  /** A spare must stay spare for the grace period: its job may have been queued just now. */
  staleSpare: (child: Pick<RunnerChild, "runnerName">) => boolean,
  /** A pool has been short for the fill delay (its key: core/warm-pool `poolKey`). */
  shortLongEnough: (pool: string) => boolean,
  /** Runner names in use (runner jobs alive or dead, registrations, secrets): not for new pool runners. */
  taken: ReadonlySet<string>,
): ReconcileAction[] {
  const actions: ReconcileAction[] = [];
  const scope = settings.registrationScope ?? "repo";
  const runnerFor = (job: WorkflowJob) => servedBy(job).runnerName;
  const queuedRunners = new Set(world.queued.map(runnerFor));
  // A runner takes only jobs of its own labels: spares and needs are matched per repository and class.
  const laneOf = (repo: string, cls: string) => `${repo.toLowerCase()}\0${cls}`;
  const jobLane = (job: WorkflowJob) => laneOf(repoFullName(job), servedBy(job).cls.name);
  const lanes = new Set([...world.queued.map(jobLane), ...alive.map((c) => laneOf(c.repo, c.cls))]);
  const waiting = new Map<string, WorkflowJob[]>();
  const leftover = new Map<string, RunnerChild[]>();

  for (const lane of lanes) {
    const laneAlive = alive.filter((c) => laneOf(c.repo, c.cls) === lane);
    const spare = laneAlive.filter((c) => !queuedRunners.has(c.runnerName) && !world.busyRunners.has(c.runnerName));
    const needy = world.queued.filter((j) => jobLane(j) === lane && !laneAlive.some((c) => c.runnerName === runnerFor(j))).sort(byAge);
    const covered = Math.min(spare.length, needy.length);
    leftover.set(lane, spare.slice(covered));
    waiting.set(lane, needy.slice(covered));
  }
  // An organisation's pool runners register at the organisation: they take any of its repositories' jobs.
  for (const [lane, spares] of leftover) {
    const poolSpare = spares[0];
    if (!poolSpare || !isOrgPoolRepo(poolSpare.repo)) continue;
    const needy = [...waiting.entries()]
      .filter(([other]) => other !== lane)
      .flatMap(([other, jobs]) => jobs.map((job) => ({ other, job })))
      .filter(({ job }) => servedBy(job).cls.name === poolSpare.cls && inPool(scope, poolSpare.repo, repoFullName(job)))
      .sort((a, b) => byAge(a.job, b.job));
    for (const { other, job } of needy.slice(0, spares.length)) {
      waiting.set(
        other,
        waiting.get(other)!.filter((j) => j !== job),
      );
      spares.shift();
    }
  }

  // Warm pools keep some of the idle runners left over; the rest go once they stayed spare for
  // the grace period (a runner idle past the pool's TTL goes at once).
  const idle = [...leftover.values()].flat();
  const served = world.served ?? [...world.queued.map(repoFullName), ...alive.map((c) => c.repo)];
  const pools = poolsOf(settings.classes, scope, served);
  const verdict = keepIdle(idle, pools, scope, world.now);
  const released = new Set<string>();
  const release = (child: IdleRunner) => {
    actions.push({ kind: "release", runnerName: child.runnerName, repo: child.repo });
    released.add(child.runnerName);
  };
  for (const child of verdict.unwanted) if (child.why === "idle-ttl" || staleSpare(child)) release(child);
  // A pool never holds runners beyond a cap (one lowered since they started): its oldest go first.
  const kept = [...verdict.kept.values()].flat().sort((a, b) => a.changedAt - b.changedAt);
  let total = 0;
  const inClass = new Map<string, number>();
  for (const c of alive.filter((c) => !released.has(c.runnerName))) {
    total += 1;
    inClass.set(c.cls, (inClass.get(c.cls) ?? 0) + 1);
  }
  for (const child of kept) {
    const cap = settings.classes.find((c) => c.name === child.cls)?.limits.maxRunners ?? Number.POSITIVE_INFINITY;
    const ofClass = inClass.get(child.cls) ?? 0;
    if (total > settings.maxRunners || ofClass > cap) {
      release(child);
      total -= 1;
      inClass.set(child.cls, ofClass - 1);
      const members = verdict.kept.get(poolKey(child.cls, poolRepoOf(scope, child.repo)));
      members?.splice(members.indexOf(child), 1);
    }
  }

  const occupancy = new Occupancy(alive.filter((c) => !released.has(c.runnerName)).map((c) => ({ repo: c.repo, cls: c.cls })));
  const blocked = (repo: string, cls: RunnerClass) => occupancy.blockedBy(repo, settings, { name: cls.name, limits: cls.limits });
  const order = [...waiting.keys()].sort((a, b) => byAge(waiting.get(a)![0]!, waiting.get(b)![0]!) || a.localeCompare(b));
  let progressed = true;
  while (progressed && occupancy.total < settings.maxRunners) {
    progressed = false;
    for (const lane of order) {
      const queue = waiting.get(lane)!;
      const job = queue[0];
      if (!job || blocked(repoFullName(job), servedBy(job).cls) !== undefined) continue;
      queue.shift();
      actions.push({ kind: "provision", job, runnerName: runnerFor(job) });
      occupancy.add(repoFullName(job), servedBy(job).cls.name);
      progressed = true;
    }
  }
  // What is left waits, each job for the first cap that holds it now. An idle pool runner that
  // cannot take it (another repository's, or organisation's) gives its slot up to it: a pool
  // speeds jobs up, it never keeps one waiting. The slot is the job's on the next pass, which
  // serves jobs before it fills pools.
  const yielding = kept.filter((c) => !released.has(c.runnerName));
  for (const job of order.flatMap((lane) => waiting.get(lane)!)) {
    const cls = servedBy(job).cls;
    const cap = blocked(repoFullName(job), cls) ?? "max-runners";
    actions.push({ kind: "wait", job, runnerName: runnerFor(job), cap });
    const giver = yielding.findIndex((c) => cap === "max-runners" || (cap === "class-max-runners" && c.cls === cls.name));
    if (giver >= 0 && (cap === "max-runners" || cap === "class-max-runners")) release(yielding.splice(giver, 1)[0]!);
  }

  // Pools are filled with what the jobs left, one runner per pool in turn.
  // A shortfall is filled once it has lasted: the usual replacement of a pool runner that took a
  // job is that job's own runner, whose dispatch may not be listed yet on the pass the pool
  // runner's in_progress asked for (filling then made two replicas run 7 runner jobs for 5).
  // Seats being filled (by another replica too): a name taken by no runner job, only a credential,
  // registration or provisioning. They count as the pool's.
  const listed = new Set(world.children.map((c) => c.runnerName));
  const unlisted = [...taken].filter((name) => !listed.has(name));
  const shortfall = pools.map(({ cls, repo }) => {
    const have = (verdict.kept.get(poolKey(cls.name, repo))?.length ?? 0) + seatsUnderWay(cls, repo, unlisted);
    const missing = (cls.pool?.minIdle ?? 0) - have;
    const due = missing > 0 && shortLongEnough(poolKey(cls.name, repo));
    return { cls, repo, names: due ? freeSeats(cls, repo, missing, taken) : [] };
  });
  progressed = true;
  while (progressed) {
    progressed = false;
    for (const pool of shortfall) {
      if (pool.names.length === 0 || blocked(pool.repo, pool.cls) !== undefined) continue;
      actions.push({ kind: "fill", cls: pool.cls.name, repo: pool.repo, runnerName: pool.names.shift()! });
      occupancy.add(pool.repo, pool.cls.name);
      progressed = true;
    }
  }
  return actions;
}

function byAge(a: WorkflowJob | undefined, b: WorkflowJob | undefined): number {
  if (!a || !b) return a ? -1 : b ? 1 : 0;
  return Date.parse(a.createdAt) - Date.parse(b.createdAt) || a.id - b.id;
}
