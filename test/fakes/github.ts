import type { WorkflowJob } from "../../src/core/job-event.js";
import { Budget } from "../../src/github/budget.js";
import { RunnerExistsError } from "../../src/github/client.js";
import type { BudgetClaim, GitHubPorts, JobStatusAtGitHub, RegisteredRunner, RunnerTarget } from "../../src/ports/index.js";
import { Faults } from "./faults.js";

/**
 * GitHub in memory, repository-scoped runners: registrations per repository, queued jobs per
 * repository, one real rate-limit Budget per token or installation.
 */
export class FakeGitHub implements GitHubPorts {
  readonly usesApp = false;
  readonly faults = new Faults("github");
  /** Registrations by scope key (lower-cased `owner/repo`). */
  readonly runners = new Map<string, RegisteredRunner[]>();
  readonly queued = new Map<string, WorkflowJob[]>();
  /** Jobs' statuses by job id, beyond the queued ones; any other job is unknown (404). */
  readonly jobStatuses = new Map<number, JobStatusAtGitHub>();
  redelivered = 0;
  private readonly budgets = new Map<string, Budget>();
  private nextId = 1;

  scopeKey(target: RunnerTarget): string {
    return `${target.owner}/${target.repo}`.toLowerCase();
  }

  scopeUrl(target: RunnerTarget): string {
    return `https://github.example/${target.owner}/${target.repo}`;
  }

  budgetKey(target: Pick<RunnerTarget, "installationId">): string {
    return target.installationId === undefined ? "pat" : `installation:${target.installationId}`;
  }

  budgetFor(target: Pick<RunnerTarget, "installationId">): Budget {
    const key = this.budgetKey(target);
    let budget = this.budgets.get(key);
    if (!budget) this.budgets.set(key, (budget = new Budget({ pointsPerMinute: 900, maxConcurrent: 100 })));
    return budget;
  }

  /** The labels each JIT runner was registered with, by name. */
  readonly jitLabels = new Map<string, string[]>();

  async createJitRunner(target: RunnerTarget, name: string, labels: string[], _claim?: BudgetClaim): Promise<{ runnerId: number; jitconfig: string }> {
    this.faults.enter("createJitRunner");
    if (this.runnersOf(target).some((r) => r.name === name)) throw new RunnerExistsError(name);
    const runner = this.register(target, name);
    this.jitLabels.set(name, labels);
    return { runnerId: runner.id, jitconfig: `jit:${name}` };
  }

  async registrationToken(_target: RunnerTarget): Promise<string> {
    this.faults.enter("registrationToken");
    return "registration-token";
  }

  async findRunner(target: RunnerTarget, name: string): Promise<RegisteredRunner | undefined> {
    this.faults.enter("findRunner");
    const runner = this.runnersOf(target).find((r) => r.name === name);
    return runner && { ...runner };
  }

  async listRunners(target: RunnerTarget, prefix: string): Promise<RegisteredRunner[]> {
    this.faults.enter("listRunners");
    return this.runnersOf(target)
      .filter((r) => r.name.startsWith(prefix))
      .map((r) => ({ ...r }));
  }

  async deleteRunner(target: RunnerTarget, runnerId: number): Promise<"deleted" | "busy" | "gone"> {
    this.faults.enter("deleteRunner");
    const list = this.runnersOf(target);
    const i = list.findIndex((r) => r.id === runnerId);
    if (i < 0) return "gone";
    // GitHub refuses to delete a runner that is running a job.
    if (list[i]!.busy) return "busy";
    list.splice(i, 1);
    return "deleted";
  }

  async listQueuedJobs(target: RunnerTarget): Promise<WorkflowJob[]> {
    this.faults.enter("listQueuedJobs");
    return [...(this.queued.get(this.scopeKey(target)) ?? [])];
  }

  async jobStatus(target: RunnerTarget, jobId: number): Promise<JobStatusAtGitHub> {
    this.faults.enter("jobStatus");
    const known = this.jobStatuses.get(jobId);
    if (known) return known;
    return this.queued.get(this.scopeKey(target))?.some((j) => j.id === jobId) ? "queued" : "not-found";
  }

  async listInstallationRepos(): Promise<RunnerTarget[]> {
    return [];
  }

  async listOwnerRepos(_owner: string): Promise<RunnerTarget[]> {
    return [];
  }

  /** The `max` of each redelivery run, in order. */
  readonly redeliveryCaps: number[] = [];

  async redeliverFailedDeliveries(_since: number, max = Number.POSITIVE_INFINITY): Promise<{ redelivered: number; left: number }> {
    this.faults.enter("redeliverFailedDeliveries");
    this.redeliveryCaps.push(max);
    const redelivered = Math.min(this.redelivered, max);
    return { redelivered, left: this.redelivered - redelivered };
  }

  async metered<T>(fn: () => Promise<T>): Promise<{ result: T; points: number }> {
    return { result: await fn(), points: 0 };
  }

  /** A registration, as a provisioning (ours or another replica's) leaves it. */
  register(target: RunnerTarget, name: string, state: { busy?: boolean; online?: boolean } = {}): RegisteredRunner {
    const runner = { id: this.nextId++, name, status: state.online ? "online" : "offline", busy: state.busy ?? false };
    this.runnersOf(target).push(runner);
    return runner;
  }

  /** A job queued at GitHub. */
  queue(job: WorkflowJob): void {
    const key = this.scopeKey(job);
    this.queued.set(key, [...(this.queued.get(key) ?? []), job]);
  }

  private runnersOf(target: RunnerTarget): RegisteredRunner[] {
    const key = this.scopeKey(target);
    let list = this.runners.get(key);
    if (!list) this.runners.set(key, (list = []));
    return list;
  }
}
