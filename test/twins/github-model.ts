// The GitHub twin's domain state: accounts, repositories, apps and installations, runners, workflow
// runs and jobs, and the matching of queued jobs to idle runners. Pure in-memory bookkeeping with
// no HTTP in it; the REST layer, the webhook sender and the runner protocol all act through here.

import { type KeyObject, randomUUID } from "node:crypto";

export type JobStatus = "waiting" | "queued" | "in_progress" | "completed";
export type JobConclusion = "success" | "failure" | "cancelled";
export type Assignment = "oldest" | "own";

export interface Account {
  id: number;
  login: string;
  type: "Organization" | "User";
}

export interface Repo {
  id: number;
  owner: Account;
  name: string;
  fullName: string;
  installationId: number | undefined;
  createdAt: string;
}

export interface App {
  id: number;
  slug: string;
  name: string;
  clientId: string;
  publicKey: KeyObject;
  owner: Account;
  createdAt: string;
}

export interface Installation {
  id: number;
  /** Undefined until an app exists: the first app created adopts unbound installations. */
  appId: number | undefined;
  account: Account;
  repoIds: Set<number>;
  createdAt: string;
}

/** Where a runner is registered: a repository, or an organization (serving all its repositories). */
export type RunnerScope = { kind: "repo"; repo: Repo } | { kind: "org"; org: Account };

export interface Runner {
  id: number;
  name: string;
  scope: RunnerScope;
  labels: string[];
  status: "online" | "offline";
  busy: boolean;
  ephemeral: boolean;
  groupId: number;
  registration: "jit" | "token";
  /** JIT runners: the secret inside their encoded config, and whether a runner process used it. */
  jit: { secret: string; used: boolean } | undefined;
  /**
   * OAuth client of the runner (`.credentials` clientId) and the key a runner registered with
   * `config.sh` proves itself with (JIT runners use `jit.secret`).
   */
  clientId: string;
  secret: string | undefined;
  jobId: number | null;
  version: string | null;
}

export interface Run {
  id: number;
  repo: Repo;
  runNumber: number;
  headSha: string;
  workflowName: string;
  createdAt: string;
  updatedAt: string;
}

export interface Job {
  id: number;
  run: Run;
  name: string;
  labels: string[];
  status: JobStatus;
  conclusion: JobConclusion | null;
  runnerId: number | null;
  runnerName: string | null;
  runnerGroupId: number | null;
  createdAt: string;
  startedAt: string;
  completedAt: string | null;
  /** Set while a runner runs the job; called when the job is cancelled under it. */
  onCancel: (() => void) | undefined;
}

/** Snapshot of a job for tests, with GitHub's field names (`repo` is the full name). */
export interface TwinJob {
  id: number;
  run_id: number;
  repo: string;
  labels: string[];
  status: JobStatus;
  conclusion: JobConclusion | null;
  runner_id: number | null;
  runner_name: string | null;
  runner_group_id: number | null;
  created_at: string;
  started_at: string;
  completed_at: string | null;
}

/**
 * Snapshot of a registered runner for tests, with GitHub's field names (labels as plain names);
 * `scope` is `owner/repo` or an organization login, `job_id` the job it is running.
 */
export interface TwinRunner {
  id: number;
  name: string;
  status: "online" | "offline";
  busy: boolean;
  ephemeral: boolean;
  labels: string[];
  runner_group_id: number;
  scope: string;
  scope_kind: "repo" | "org";
  registration: "jit" | "token";
  job_id: number | null;
}

/** What an idle runner's wait ends with. */
export type WaitOutcome = { kind: "job"; job: Job } | { kind: "stopped" } | { kind: "deleted" };

interface IdleRunner {
  runner: Runner;
  resolve: (outcome: WaitOutcome) => void;
}

export const DEFAULT_RUNNER_GROUP = { id: 1, name: "Default" } as const;

/**
 * Where each kind of ID starts. Run and job IDs are above 2^32 like GitHub's today, so a client
 * that truncates them to 32 bits is caught.
 */
const ID_BASES = { account: 1000, repo: 100_000, app: 900_000, runner: 0, run: 11_000_000_000, job: 30_000_000_000 };
export type IdKind = keyof typeof ID_BASES;

/** GitHub timestamps have second precision and a Z suffix. */
export function isoSeconds(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(".000Z", "Z");
}

export function scopeName(scope: RunnerScope): string {
  return scope.kind === "repo" ? scope.repo.fullName : scope.org.login;
}

/** Identity of a scope for token and uniqueness checks (GitHub logins are case-insensitive). */
export function scopeKey(scope: RunnerScope): string {
  return `${scope.kind}:${scopeName(scope).toLowerCase()}`;
}

export class GitHubState {
  readonly accounts = new Map<string, Account>();
  readonly repos = new Map<string, Repo>();
  readonly apps = new Map<number, App>();
  readonly installations = new Map<number, Installation>();
  readonly runners = new Map<number, Runner>();
  readonly runs = new Map<number, Run>();
  readonly jobs = new Map<number, Job>();
  private idle: IdleRunner[] = [];
  /** Told of every runner deregistration (the broker ends the runner's session). */
  readonly runnerDeleted: Array<(runner: Runner) => void> = [];
  private readonly ids: Record<IdKind, number> = { ...ID_BASES };
  private runNumbers = new Map<number, number>();

  constructor(
    readonly clock: () => number,
    private readonly assignment: Assignment,
  ) {}

  nowIso(): string {
    return isoSeconds(this.clock());
  }

  nextId(kind: IdKind): number {
    return ++this.ids[kind];
  }

  // ---- accounts, repositories, installations -------------------------------------------------

  account(login: string, type: Account["type"] = "Organization"): Account {
    const key = login.toLowerCase();
    let account = this.accounts.get(key);
    if (!account) {
      account = { id: this.nextId("account"), login, type };
      this.accounts.set(key, account);
    }
    return account;
  }

  findAccount(login: string): Account | undefined {
    return this.accounts.get(login.toLowerCase());
  }

  findOrg(login: string): Account | undefined {
    const account = this.findAccount(login);
    return account?.type === "Organization" ? account : undefined;
  }

  findRepo(owner: string, name: string): Repo | undefined {
    return this.repos.get(`${owner}/${name}`.toLowerCase());
  }

  addRepo(fullName: string, ownerType: Account["type"], installationId: number | undefined): Repo {
    const [ownerLogin, name, ...rest] = fullName.split("/");
    if (!ownerLogin || !name || rest.length > 0) throw new Error(`repository must be "owner/name", got "${fullName}"`);
    if (this.findRepo(ownerLogin, name)) throw new Error(`repository ${fullName} already exists`);
    const owner = this.account(ownerLogin, ownerType);
    const repo: Repo = { id: this.nextId("repo"), owner, name, fullName: `${owner.login}/${name}`, installationId, createdAt: this.nowIso() };
    this.repos.set(repo.fullName.toLowerCase(), repo);
    if (installationId !== undefined) this.installationFor(installationId, owner).repoIds.add(repo.id);
    return repo;
  }

  private installationFor(id: number, account: Account): Installation {
    let installation = this.installations.get(id);
    if (!installation) {
      const firstApp = [...this.apps.values()][0];
      installation = { id, appId: firstApp?.id, account, repoIds: new Set(), createdAt: this.nowIso() };
      this.installations.set(id, installation);
    }
    if (installation.account.id !== account.id) {
      throw new Error(`installation ${id} belongs to ${installation.account.login}, not ${account.login}`);
    }
    return installation;
  }

  addApp(app: App): void {
    this.apps.set(app.id, app);
    for (const installation of this.installations.values()) installation.appId ??= app.id;
  }

  repoById(id: number): Repo | undefined {
    return [...this.repos.values()].find((r) => r.id === id);
  }

  installationRepos(installation: Installation): Repo[] {
    return [...installation.repoIds].map((id) => this.repoById(id)).filter((r): r is Repo => r !== undefined);
  }

  // ---- runners ----------------------------------------------------------------------------------

  runnersIn(scope: RunnerScope): Runner[] {
    const key = scopeKey(scope);
    return [...this.runners.values()].filter((r) => scopeKey(r.scope) === key);
  }

  runnerNamed(scope: RunnerScope, name: string): Runner | undefined {
    return this.runnersIn(scope).find((r) => r.name.toLowerCase() === name.toLowerCase());
  }

  createRunner(init: Pick<Runner, "name" | "scope" | "labels" | "ephemeral" | "groupId" | "registration" | "jit"> & { secret?: string }): Runner {
    const runner: Runner = {
      secret: undefined,
      ...init,
      id: this.nextId("runner"),
      clientId: randomUUID(),
      status: "offline",
      busy: false,
      jobId: null,
      version: null,
    };
    this.runners.set(runner.id, runner);
    return runner;
  }

  /** Deregisters a runner; a runner process waiting for a job learns it was deleted. */
  deleteRunner(runner: Runner): void {
    this.runners.delete(runner.id);
    const waiter = this.idle.find((w) => w.runner.id === runner.id);
    if (waiter) this.finishWaiting(waiter, { kind: "deleted" });
    for (const listener of this.runnerDeleted) listener(runner);
  }

  // ---- runs and jobs --------------------------------------------------------------------------------

  createJob(repo: Repo, labels: string[], status: "queued" | "waiting", runId: number | undefined): Job {
    const run = this.runFor(repo, runId);
    const now = this.nowIso();
    const job: Job = {
      id: this.nextId("job"),
      run,
      name: "build",
      labels: [...labels],
      status,
      conclusion: null,
      runnerId: null,
      runnerName: null,
      runnerGroupId: null,
      createdAt: now,
      // GitHub reports started_at = created_at until a runner picks the job up.
      startedAt: now,
      completedAt: null,
      onCancel: undefined,
    };
    this.jobs.set(job.id, job);
    run.updatedAt = now;
    return job;
  }

  private runFor(repo: Repo, runId: number | undefined): Run {
    const existing = runId === undefined ? undefined : this.runs.get(runId);
    if (existing) {
      if (existing.repo.id !== repo.id) throw new Error(`run ${runId} belongs to ${existing.repo.fullName}`);
      return existing;
    }
    const runNumber = (this.runNumbers.get(repo.id) ?? 0) + 1;
    this.runNumbers.set(repo.id, runNumber);
    const now = this.nowIso();
    const run: Run = {
      id: runId ?? this.nextId("run"),
      repo,
      runNumber,
      headSha: randomSha(),
      workflowName: "CI",
      createdAt: now,
      updatedAt: now,
    };
    this.runs.set(run.id, run);
    return run;
  }

  jobsOfRun(run: Run): Job[] {
    return [...this.jobs.values()].filter((j) => j.run.id === run.id);
  }

  /** A run's status and conclusion follow its jobs, as GitHub aggregates them. */
  runStatus(run: Run): { status: JobStatus; conclusion: JobConclusion | null } {
    const statuses = this.jobsOfRun(run).map((j) => j.status);
    if (statuses.includes("in_progress")) return { status: "in_progress", conclusion: null };
    if (statuses.includes("queued")) return { status: "queued", conclusion: null };
    if (statuses.includes("waiting")) return { status: "waiting", conclusion: null };
    const conclusions = this.jobsOfRun(run).map((j) => j.conclusion);
    const conclusion = conclusions.includes("failure") ? "failure" : conclusions.includes("cancelled") ? "cancelled" : "success";
    return { status: "completed", conclusion };
  }

  completeJob(job: Job, conclusion: JobConclusion): void {
    job.status = "completed";
    job.conclusion = conclusion;
    job.completedAt = this.nowIso();
    job.run.updatedAt = job.completedAt;
    job.onCancel = undefined;
  }

  // ---- matching queued jobs to idle runners -------------------------------------------------------

  /**
   * Parks an online runner until a job is assigned to it, the signal aborts, or the runner is
   * deleted. Event driven: `matchJobs()` runs whenever a job becomes queued or a runner idle.
   */
  waitForJob(runner: Runner, signal: AbortSignal): Promise<WaitOutcome> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve({ kind: "stopped" });
      const onAbort = () => this.finishWaiting(waiter, { kind: "stopped" });
      const waiter: IdleRunner = {
        runner,
        resolve: (outcome) => {
          signal.removeEventListener("abort", onAbort);
          resolve(outcome);
        },
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.idle.push(waiter);
      this.matchJobs();
    });
  }

  private finishWaiting(waiter: IdleRunner, outcome: WaitOutcome): void {
    const index = this.idle.indexOf(waiter);
    if (index < 0) return;
    this.idle.splice(index, 1);
    waiter.resolve(outcome);
  }

  /** Releases every parked runner (the twin is closing). */
  stopAllWaiting(): void {
    for (const waiter of [...this.idle]) this.finishWaiting(waiter, { kind: "stopped" });
  }

  /** Assigns queued jobs to idle runners; the longest-idle runner chooses first. */
  matchJobs(): void {
    for (const waiter of [...this.idle]) {
      const job = this.pickJob(waiter.runner);
      if (!job) continue;
      this.assign(job, waiter.runner);
      this.finishWaiting(waiter, { kind: "job", job });
    }
  }

  private pickJob(runner: Runner): Job | undefined {
    const eligible = [...this.jobs.values()].filter((job) => job.status === "queued" && runnerServes(runner, job)).sort((a, b) => a.id - b.id);
    if (this.assignment === "oldest") return eligible[0];
    return eligible.find((job) => nameEndsWithId(runner.name, job.id));
  }

  /**
   * Undoes an assignment whose message never reached the runner (its long poll was gone): the
   * job is queued again, as GitHub re-queues a job a runner did not acknowledge.
   */
  unassign(job: Job, runner: Runner): void {
    if (job.status !== "in_progress" || job.runnerId !== runner.id) return;
    job.status = "queued";
    job.runnerId = null;
    job.runnerName = null;
    job.runnerGroupId = null;
    job.startedAt = job.createdAt;
    runner.busy = false;
    runner.jobId = null;
    this.matchJobs();
  }

  /** The runner's job is over: ephemeral runners are deregistered by GitHub, others go idle. */
  releaseRunner(runner: Runner): void {
    runner.busy = false;
    runner.jobId = null;
    if (runner.ephemeral) this.deleteRunner(runner);
  }

  private assign(job: Job, runner: Runner): void {
    job.status = "in_progress";
    job.runnerId = runner.id;
    job.runnerName = runner.name;
    job.runnerGroupId = runner.groupId;
    job.startedAt = this.nowIso();
    job.run.updatedAt = job.startedAt;
    runner.busy = true;
    runner.jobId = job.id;
  }
}

/** A runner can take a job when its scope covers the job's repository and it has every label. */
export function runnerServes(runner: Runner, job: Job): boolean {
  const repo = job.run.repo;
  const inScope = runner.scope.kind === "repo" ? runner.scope.repo.id === repo.id : runner.scope.org.id === repo.owner.id;
  if (!inScope) return false;
  const have = new Set(runner.labels.map((l) => l.toLowerCase()));
  return job.labels.every((label) => have.has(label.toLowerCase()));
}

/** `runner-30000000001` and `30000000001` end with job 30000000001; `runner-130000000001` does not. */
export function nameEndsWithId(name: string, id: number): boolean {
  const suffix = String(id);
  if (!name.endsWith(suffix)) return false;
  const before = name.charAt(name.length - suffix.length - 1);
  return before === "" || !/\d/.test(before);
}

function randomSha(): string {
  let sha = "";
  for (let i = 0; i < 40; i++) sha += Math.floor(Math.random() * 16).toString(16);
  return sha;
}

export function jobSnapshot(job: Job): TwinJob {
  return {
    id: job.id,
    run_id: job.run.id,
    repo: job.run.repo.fullName,
    labels: [...job.labels],
    status: job.status,
    conclusion: job.conclusion,
    runner_id: job.runnerId,
    runner_name: job.runnerName,
    runner_group_id: job.runnerGroupId,
    created_at: job.createdAt,
    started_at: job.startedAt,
    completed_at: job.completedAt,
  };
}

export function runnerSnapshot(runner: Runner): TwinRunner {
  return {
    id: runner.id,
    name: runner.name,
    status: runner.status,
    busy: runner.busy,
    ephemeral: runner.ephemeral,
    labels: [...runner.labels],
    runner_group_id: runner.groupId,
    scope: scopeName(runner.scope),
    scope_kind: runner.scope.kind,
    registration: runner.registration,
    job_id: runner.jobId,
  };
}
