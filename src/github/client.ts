import type { GitHubAuthConfig, RunnerScope } from "../config.js";
import type { WorkflowJob } from "../core/job-event.js";
import type { JobStatusAtGitHub } from "../core/replay-guard.js";
import { authKey, Octokits } from "./auth.js";
import type { Budget, BudgetLimits, Claim } from "./budget.js";
import { ConditionalGets } from "./conditional.js";
import { RunnerCredentials } from "./credentials.js";
import { type Redelivered, redeliverFailedDeliveries } from "./deliveries.js";
import { HookFinder, type HookScopes } from "./hooks.js";
import { type GitHubIdentity, identity } from "./identity.js";
import { jobStatus, listQueuedJobs } from "./jobs.js";
import { latestRunnerRelease, type RunnerRelease } from "./releases.js";
import { listInstallationRepos, listOwnerRepos } from "./repositories.js";
import { Budgets, type BudgetUsage, type ResponseHeaders } from "./requests.js";
import { type GitHubRunner, Runners } from "./runners.js";
import { type RunnerTarget, scopeKey, scopeUrl } from "./target.js";

export { RunnerExistsError } from "./credentials.js";
export { jobFromRest } from "./jobs.js";
export { GITHUB_API_VERSION } from "./requests.js";
export type { GitHubRunner, RunnerRelease, RunnerTarget };

export interface GitHubClientOptions {
  auth: GitHubAuthConfig;
  apiUrl: string;
  webUrl: string;
  scope: RunnerScope;
  runnerGroupId: number;
  userAgent?: string;
  /** Sees every response's headers (rate-limit metrics). */
  onResponse?: (headers: ResponseHeaders) => void;
  /** Our side of GitHub's secondary rate limit, per token or installation. */
  budget?: BudgetLimits;
  /**
   * With a PAT: this service's public webhook URL (WEBHOOK_URL) and where its hooks may be, so
   * failed deliveries of organization and repository hooks are redelivered.
   */
  webhooks?: { url: string; scopes: HookScopes };
}

/**
 * The GitHub calls the dispatcher makes, for a PAT or a GitHub App installation: one object for
 * the rest of the service to hold, over the capability modules beside it that do the work.
 */
export class GitHubClient {
  private readonly budgets: Budgets;
  private readonly octokits: Octokits;
  private readonly conditional: ConditionalGets;
  private readonly runners: Runners;
  private readonly runnerCredentials: RunnerCredentials;
  private readonly hooks: HookFinder | undefined;

  constructor(private readonly opts: GitHubClientOptions) {
    this.budgets = new Budgets(opts.budget, opts.onResponse);
    this.octokits = new Octokits(opts, this.budgets);
    this.conditional = new ConditionalGets(this.octokits);
    this.runners = new Runners(this.octokits, this.conditional, opts.scope);
    this.runnerCredentials = new RunnerCredentials(this.octokits, opts.scope, opts.runnerGroupId);
    this.hooks = opts.webhooks && new HookFinder(this.octokits, opts.webhooks.url, opts.webhooks.scopes);
  }

  /** App auth: every call needs the installation the repository belongs to. */
  get usesApp(): boolean {
    return this.opts.auth.kind === "app";
  }

  /** The URL `config.sh --url` takes for this target's scope. */
  scopeUrl(target: RunnerTarget): string {
    return scopeUrl(this.opts.scope, this.opts.webUrl, target);
  }

  scopeKey(target: RunnerTarget): string {
    return scopeKey(this.opts.scope, target);
  }

  /**
   * Creates the runner and its single-use JIT config. Throws RunnerExistsError on a name clash.
   * A `claim` on the target's budget (see Budget.claim) pays for the request.
   */
  createJitRunner(target: RunnerTarget, name: string, labels: string[], claim?: Claim): Promise<{ runnerId: number; jitconfig: string }> {
    return this.runnerCredentials.createJitRunner(target, name, labels, claim);
  }

  /** A registration token for the target's scope, reused until shortly before it expires. */
  registrationToken(target: RunnerTarget): Promise<string> {
    return this.runnerCredentials.registrationToken(target);
  }

  findRunner(target: RunnerTarget, name: string): Promise<GitHubRunner | undefined> {
    return this.runners.find(target, name);
  }

  /** Deregisters a runner; a busy runner is left alone ("busy"), a missing one is "gone". */
  deleteRunner(target: RunnerTarget, runnerId: number): Promise<"deleted" | "busy" | "gone"> {
    return this.runners.delete(target, runnerId);
  }

  /** Runners registered in the target's scope whose names start with `prefix` (conditional requests). */
  listRunners(target: RunnerTarget, prefix: string): Promise<GitHubRunner[]> {
    return this.runners.list(target, prefix);
  }

  /** Jobs still waiting for a runner in one repository (conditional requests, every page). */
  listQueuedJobs(target: RunnerTarget): Promise<WorkflowJob[]> {
    return listQueuedJobs(this.conditional, target);
  }

  /** One job's status now (a conditional GET); "not-found" for a job GitHub does not show us. */
  jobStatus(target: RunnerTarget, jobId: number): Promise<JobStatusAtGitHub> {
    return jobStatus(this.conditional, target, jobId);
  }

  /** Who our credentials are and what they may do (doctor). */
  identity(): Promise<GitHubIdentity> {
    return identity(this.octokits);
  }

  /** The newest actions/runner release, or undefined where GitHub has no actions/runner (404). */
  latestRunnerRelease(via: Pick<RunnerTarget, "installationId"> = {}): Promise<RunnerRelease | undefined> {
    return latestRunnerRelease(this.octokits, via);
  }

  /** The repositories of an organisation or user (ALLOWED_OWNERS with a PAT), archived ones left out. */
  listOwnerRepos(owner: string): Promise<RunnerTarget[]> {
    return listOwnerRepos(this.octokits, owner);
  }

  /** Every repository the App's installations can access (App auth only). */
  listInstallationRepos(): Promise<RunnerTarget[]> {
    return listInstallationRepos(this.octokits);
  }

  /**
   * Redelivers failed `workflow_job` deliveries since `since`: the App's hook's, or with a PAT
   * those of the organization and repository hooks at WEBHOOK_URL; oldest first, at most `max`.
   */
  redeliverFailedDeliveries(since: number, max?: number): Promise<Redelivered> {
    return redeliverFailedDeliveries(this.octokits, since, this.hooks, max);
  }

  /**
   * Runs `fn` and reports the GitHub points spent on reads (GETs) meanwhile: the reconciler paces
   * its polling by this. Reads made by anything else at the same time count too, which only
   * errs on the side of polling less. (Not AsyncLocalStorage: on Node 20 it puts a hook on
   * every promise of the process.)
   */
  async metered<T>(fn: () => Promise<T>): Promise<{ result: T; points: number }> {
    const before = this.budgets.readPoints;
    const result = await fn();
    return { result, points: this.budgets.readPoints - before };
  }

  /** Which budget a target's calls draw from: targets with the same key share one. */
  budgetKey(target: Pick<RunnerTarget, "installationId">): string {
    return authKey(this.opts.auth, target);
  }

  /** Every budget in use and how full it is. */
  budgetUsage(): BudgetUsage[] {
    return this.budgets.usage();
  }

  /** The budget a target's calls draw from (one per PAT, one per App installation). */
  budgetFor(target: Pick<RunnerTarget, "installationId">): Budget {
    return this.budgets.get(this.budgetKey(target));
  }

  /**
   * Shutdown: requests waiting for rate-limit budget fail now rather than in up to a minute, and
   * so does any request made from now on.
   */
  close(): void {
    this.budgets.close();
  }
}
