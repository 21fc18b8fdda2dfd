import { poolRunnerName, poolSeatOfRunner, scopeTag } from "./naming.js";
import type { RunnerClass } from "./runner-class.js";

// Warm pools: `min_idle` runners of a class kept registered and idle where runners register, so a
// job starts on one in seconds instead of waiting for a placement and an image pull. No runner
// is ever made "for the pool" when a runner made for a job is idle there: GitHub hands a job to
// any idle runner with its labels, so the runner dispatched for a job another runner took is the
// pool's replacement for that runner. Pure: the reconciler's plan (core/reconcile-plan) calls it.

/** Where runners register (RUNNER_SCOPE): one pool per organisation, or one per repository. */
export type RegistrationScope = "org" | "repo";

/** An organisation pool's runners carry `<owner>/*` as their repository: they serve all of them. */
const ORG_POOL_REPO = "*";

/** The `owner/repo` a pool's runners carry: the repository, or `<owner>/*` for an organisation's pool. */
export function poolRepoOf(scope: RegistrationScope, repo: string): string {
  const [owner = ""] = repo.split("/");
  return scope === "org" ? `${owner}/${ORG_POOL_REPO}` : repo;
}

/** Is this a pool's own `owner/*`, not a repository (never listed, never scanned)? */
export function isOrgPoolRepo(repo: string): boolean {
  return repo.endsWith(`/${ORG_POOL_REPO}`);
}

/** Does a runner of `repo` count in the pool of `poolRepo`: the same repository, or any of the organisation's. */
export function inPool(scope: RegistrationScope, poolRepo: string, repo: string): boolean {
  return poolRepoOf(scope, repo).toLowerCase() === poolRepo.toLowerCase();
}

/** One pool per class with `min_idle` and per organisation (or repository) served, in a stable order. */
export function poolsOf(classes: readonly RunnerClass[], scope: RegistrationScope, served: Iterable<string>): Array<{ cls: RunnerClass; repo: string }> {
  const repos = new Map<string, string>();
  for (const repo of served) {
    const pool = poolRepoOf(scope, repo);
    if (!repos.has(pool.toLowerCase())) repos.set(pool.toLowerCase(), pool);
  }
  const sorted = [...repos.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, repo]) => repo);
  return classes.filter((cls) => (cls.pool?.minIdle ?? 0) > 0).flatMap((cls) => sorted.map((repo) => ({ cls, repo })));
}

/** Idle runners each class's pools want in all (min_idle times its pools; 0 without), for the status page and metrics. */
export function poolTargets(classes: readonly RunnerClass[], scope: RegistrationScope, served: Iterable<string>): Record<string, number> {
  const targets: Record<string, number> = Object.fromEntries(classes.map((cls) => [cls.name, 0]));
  for (const { cls } of poolsOf(classes, scope, served)) targets[cls.name] = (targets[cls.name] ?? 0) + (cls.pool?.minIdle ?? 0);
  return targets;
}

/** An idle runner of ours that no queued job needs: the pool may keep it. */
export interface IdleRunner {
  runnerName: string;
  repo: string;
  cls: string;
  /** ms since epoch its runner job was submitted. */
  changedAt: number;
}

export interface PoolVerdict {
  /** Idle runners kept, per pool (`cls\0poolRepo`). */
  kept: Map<string, IdleRunner[]>;
  /** Idle runners the pools do not want: beyond `min_idle`, or idle longer than the TTL. */
  unwanted: Array<IdleRunner & { why: "surplus" | "idle-ttl" }>;
}

export const poolKey = (cls: string, poolRepo: string) => `${cls}\0${poolRepo.toLowerCase()}`;

/**
 * Which idle runners each of `pools` keeps: the youngest up to `min_idle`, none idle past the
 * class's TTL (a runner idle for hours is recycled: a fresh one has the current image and
 * registration). Runners of no pool (a class without one, a scope no longer served) are unwanted.
 */
export function keepIdle(
  idle: readonly IdleRunner[],
  pools: ReadonlyArray<{ cls: RunnerClass; repo: string }>,
  scope: RegistrationScope,
  now: number,
): PoolVerdict {
  const poolOf = new Map(pools.map((p) => [poolKey(p.cls.name, p.repo), p.cls.pool]));
  const kept = new Map<string, IdleRunner[]>();
  const unwanted: PoolVerdict["unwanted"] = [];
  const youngestFirst = [...idle].sort((a, b) => b.changedAt - a.changedAt || a.runnerName.localeCompare(b.runnerName));
  for (const runner of youngestFirst) {
    const key = poolKey(runner.cls, poolRepoOf(scope, runner.repo));
    const pool = poolOf.get(key);
    const members = kept.get(key) ?? [];
    if (!pool || members.length >= pool.minIdle) unwanted.push({ ...runner, why: "surplus" });
    else if (now - runner.changedAt >= pool.idleTtlMs) unwanted.push({ ...runner, why: "idle-ttl" });
    else kept.set(key, [...members, runner]);
  }
  return { kept, unwanted };
}

/**
 * Names for `count` new runners of a pool: the lowest seats whose name nothing of ours uses (no
 * runner job, alive or dead, which would hold the idempotency token; no registration; no secret).
 */
export function freeSeats(cls: Pick<RunnerClass, "runnerPrefix">, poolRepo: string, count: number, taken: ReadonlySet<string>): string[] {
  const names: string[] = [];
  for (let seat = 0; names.length < count; seat += 1) {
    const name = poolRunnerName(cls.runnerPrefix, poolRepo, seat);
    if (!taken.has(name)) names.push(name);
  }
  return names;
}

/**
 * How many of a pool's seats are being filled: names of the pool with a credential, a
 * registration or a provisioning in flight, but no runner job listed (yet). They are the pool's:
 * a replica that saw another's credential before its runner job, and filled the next seats,
 * doubled the pool.
 */
export function seatsUnderWay(cls: Pick<RunnerClass, "runnerPrefix">, poolRepo: string, unlisted: Iterable<string>): number {
  const tag = scopeTag(poolRepo);
  let count = 0;
  for (const name of unlisted) if (poolSeatOfRunner(cls.runnerPrefix, name)?.tag === tag) count += 1;
  return count;
}
