import { createAppAuth } from "@octokit/auth-app";
import { Octokit } from "@octokit/rest";
import { RequestError } from "@octokit/request-error";
import { Agent } from "undici";
import type { GitHubAuthConfig, RunnerScope } from "../config.js";
import { DependencyError, isNetworkError } from "../core/errors.js";
import { Budget, GITHUB_SECONDARY_LIMITS, pointsFor, type BudgetLimits, type Claim, type Priority } from "./budget.js";
import { octokitFetch } from "./fetch.js";
import { PAGE_SIZE, readAllPages } from "./pages.js";
import type { WorkflowJob } from "../core/job-event.js";

/** Where a runner is registered: a repository, or its owner organisation for org-scoped runners. */
export interface RunnerTarget {
  owner: string;
  repo: string;
  installationId?: number;
}

export interface GitHubRunner {
  id: number;
  name: string;
  status: string;
  busy: boolean;
  labels: string[];
}

export interface GitHubClientOptions {
  auth: GitHubAuthConfig;
  apiUrl: string;
  webUrl: string;
  scope: RunnerScope;
  runnerGroupId: number;
  userAgent?: string;
  /** Sees every response's headers (rate-limit metrics). */
  onResponse?: (headers: Record<string, string | number | undefined>) => void;
  /** Our side of GitHub's secondary rate limit, per token or installation. */
  budget?: BudgetLimits;
}

/**
 * The REST API version every request asks for (X-GitHub-Api-Version). Without it GitHub answers
 * with its default version, which moves when GitHub changes the default; with it, a request keeps
 * the shapes this code was written against (REST docs, "API Versions").
 */
export const GITHUB_API_VERSION = "2022-11-28";

/** Refresh cached registration/remove tokens this long before GitHub expires them (1 h). */
const TOKEN_REFRESH_MARGIN_MS = 10 * 60_000;

/**
 * GitHub lists at most 1,000 workflow runs when the listing is filtered by `status` (REST docs,
 * "List workflow runs for a repository"): pages past the tenth are never asked for.
 */
const MAX_FILTERED_RUN_PAGES = 1_000 / PAGE_SIZE;

/** Conditional listings remembered (validator + what was kept of the body), least recently used out. */
const CONDITIONAL_CACHE_ENTRIES = 2_048;

/** The GitHub calls the dispatcher makes, for a PAT or a GitHub App installation. */
export class GitHubClient {
  private readonly octokits = new Map<string, Octokit>();
  private readonly tokenCache = new Map<string, Promise<{ token: string; expiresAt: number }>>();
  private readonly budgets = new Map<string, Budget>();
  private readonly conditional = new Map<string, { etag: string; value: unknown }>();
  /** Points spent on reads (GETs) since start, all budgets. */
  private readPoints = 0;
  private closed: DependencyError | undefined;

  /**
   * Octokit's requests go through the same undici as Nomad's and Vault's, over a keep-alive
   * agent, rather than Node's built-in fetch: a second HTTP stack costs some 10 MB resident.
   */
  private readonly fetch = octokitFetch(new Agent({ keepAliveTimeout: 30_000, connections: 128 })) as unknown as typeof globalThis.fetch;

  constructor(private readonly opts: GitHubClientOptions) {}

  /** App auth: every call needs the installation the repository belongs to. */
  get usesApp(): boolean {
    return this.opts.auth.kind === "app";
  }

  /** The URL `config.sh --url` takes for this target's scope. */
  scopeUrl(target: RunnerTarget): string {
    return this.opts.scope === "org" ? `${this.opts.webUrl}/${target.owner}` : `${this.opts.webUrl}/${target.owner}/${target.repo}`;
  }

  scopeKey(target: RunnerTarget): string {
    return this.opts.scope === "org" ? target.owner.toLowerCase() : `${target.owner}/${target.repo}`.toLowerCase();
  }

  /**
   * Creates the runner and its single-use JIT config. Throws RunnerExistsError on a name clash.
   * A `claim` on the target's budget (see Budget.claim) pays for the request.
   */
  async createJitRunner(target: RunnerTarget, name: string, labels: string[], claim?: Claim): Promise<{ runnerId: number; jitconfig: string }> {
    const body = { name, runner_group_id: this.opts.runnerGroupId, labels, work_folder: "_work", request: { budgetClaim: claim } };
    try {
      const res = await this.call(target, "generate JIT runner config", (o) =>
        this.opts.scope === "org"
          ? o.rest.actions.generateRunnerJitconfigForOrg({ org: target.owner, ...body })
          : o.rest.actions.generateRunnerJitconfigForRepo({ owner: target.owner, repo: target.repo, ...body }),
      );
      return { runnerId: res.data.runner.id, jitconfig: res.data.encoded_jit_config };
    } catch (err) {
      if (err instanceof DependencyError && err.status === 409) throw new RunnerExistsError(name);
      throw err;
    }
  }

  /** A registration token for the target's scope, reused until shortly before it expires. */
  registrationToken(target: RunnerTarget): Promise<string> {
    return this.cachedToken("registration", target, (o) =>
      this.opts.scope === "org"
        ? o.rest.actions.createRegistrationTokenForOrg({ org: target.owner })
        : o.rest.actions.createRegistrationTokenForRepo({ owner: target.owner, repo: target.repo }),
    );
  }

  async findRunner(target: RunnerTarget, name: string): Promise<GitHubRunner | undefined> {
    const res = await this.call(target, "find runner", (o) =>
      this.opts.scope === "org"
        ? o.rest.actions.listSelfHostedRunnersForOrg({ org: target.owner, name, per_page: 100 })
        : o.rest.actions.listSelfHostedRunnersForRepo({ owner: target.owner, repo: target.repo, name, per_page: 100 }),
    );
    const runner = res.data.runners.find((r) => r.name === name);
    return runner && toRunner(runner);
  }

  /** Deregisters a runner; a busy runner is left alone ("busy"), a missing one is "gone". */
  async deleteRunner(target: RunnerTarget, runnerId: number): Promise<"deleted" | "busy" | "gone"> {
    try {
      await this.call(target, "delete runner", (o) =>
        this.opts.scope === "org"
          ? o.rest.actions.deleteSelfHostedRunnerFromOrg({ org: target.owner, runner_id: runnerId })
          : o.rest.actions.deleteSelfHostedRunnerFromRepo({ owner: target.owner, repo: target.repo, runner_id: runnerId }),
      );
      return "deleted";
    } catch (err) {
      if (err instanceof DependencyError && err.status === 404) return "gone";
      // GitHub refuses to delete a runner that is running a job (422).
      if (err instanceof DependencyError && err.status === 422) return "busy";
      throw err;
    }
  }

  async getJob(target: RunnerTarget, jobId: number): Promise<WorkflowJob | undefined> {
    try {
      const res = await this.call(target, "read job", (o) =>
        o.rest.actions.getJobForWorkflowRun({ owner: target.owner, repo: target.repo, job_id: jobId }),
      );
      return jobFromRest(target, res.data);
    } catch (err) {
      if (err instanceof DependencyError && err.status === 404) return undefined;
      throw err;
    }
  }

  /**
   * Who our credentials are and what they may do (doctor). A PAT reports its OAuth scopes
   * (fine-grained tokens report none); an App reports each installation's permissions.
   */
  async identity(): Promise<
    | { kind: "token"; login: string; scopes: string[] | undefined }
    | { kind: "app"; slug: string; installations: Array<{ id: number; account: string; permissions: Record<string, string> }> }
  > {
    if (this.opts.auth.kind === "token") {
      const res = await this.call({ owner: "", repo: "" }, "read authenticated user", (o) => o.rest.users.getAuthenticated());
      const header = res.headers["x-oauth-scopes"];
      return { kind: "token", login: res.data.login, scopes: header === undefined ? undefined : String(header).split(/,\s*/).filter(Boolean) };
    }
    const app = this.appOctokit();
    try {
      const me = await app.rest.apps.getAuthenticated();
      const installations = await app.paginate(app.rest.apps.listInstallations, { per_page: 100 });
      return {
        kind: "app",
        slug: me.data?.slug ?? String(this.opts.auth.appId),
        installations: installations.map((i) => ({
          id: i.id,
          account: accountName(i.account) ?? String(i.id),
          permissions: Object.fromEntries(
            Object.entries(i.permissions as Record<string, unknown>).filter((e): e is [string, string] => typeof e[1] === "string"),
          ),
        })),
      };
    } catch (err) {
      throw toDependencyError("read GitHub App", err);
    }
  }

  /**
   * The newest actions/runner release (`GET /repos/actions/runner/releases/latest`: the latest
   * that is neither a draft nor a prerelease), read through the budget of `via` (with App auth
   * any installation: the repository is public). undefined when GitHub has no such repository
   * (404, e.g. GitHub Enterprise Server without it).
   */
  async latestRunnerRelease(via: Pick<RunnerTarget, "installationId"> = {}): Promise<RunnerRelease | undefined> {
    const target = { owner: "actions", repo: "runner", installationId: via.installationId };
    try {
      const res = await this.call(target, "read the latest actions/runner release", (o) => o.rest.repos.getLatestRelease({ owner: "actions", repo: "runner" }));
      return { tag: res.data.tag_name, publishedAt: res.data.published_at ?? undefined, url: res.data.html_url };
    } catch (err) {
      if (err instanceof DependencyError && err.status === 404) return undefined;
      throw err;
    }
  }

  /**
   * Jobs still waiting for a runner in one repository (queued runs and queued jobs of running ones),
   * every page of every listing. Each page is a conditional request of its own: unchanged ones come
   * back 304, free under the primary rate limit (not the secondary one: GitHub charges a GET its
   * point either way, so every page counts against the budget).
   */
  async listQueuedJobs(target: RunnerTarget): Promise<WorkflowJob[]> {
    const jobs = new Map<number, WorkflowJob>();
    const repoKey = `${target.owner}/${target.repo}`.toLowerCase();
    // A run that moved from queued to in_progress between the two listings shows up in both.
    const seenRuns = new Set<number>();
    for (const status of ["queued", "in_progress"] as const) {
      const runIds = await readAllPages(
        (page) =>
          this.conditionalGet(
            target,
            `list ${status} runs`,
            `runs:${repoKey}:${status}:${page}`,
            (o, headers) =>
              o.rest.actions.listWorkflowRunsForRepo({ owner: target.owner, repo: target.repo, status, per_page: PAGE_SIZE, page, headers }),
            (data) => ({ items: data.workflow_runs.map((run) => run.id), count: data.workflow_runs.length }),
          ),
        MAX_FILTERED_RUN_PAGES,
      );
      for (const runId of runIds) {
        if (seenRuns.has(runId)) continue;
        seenRuns.add(runId);
        for (const job of await this.listQueuedJobsOfRun(target, repoKey, runId)) jobs.set(job.id, job);
      }
    }
    return [...jobs.values()];
  }

  private listQueuedJobsOfRun(target: RunnerTarget, repoKey: string, runId: number): Promise<WorkflowJob[]> {
    return readAllPages((page) =>
      this.conditionalGet(
        target,
        "list run jobs",
        `jobs:${repoKey}:${runId}:${page}`,
        (o, headers) =>
          o.rest.actions.listJobsForWorkflowRun({
            owner: target.owner,
            repo: target.repo,
            run_id: runId,
            filter: "latest",
            per_page: PAGE_SIZE,
            page,
            headers,
          }),
        // Shortness is judged on what GitHub sent, before keeping only the queued jobs.
        (data) => ({ items: data.jobs.filter((job) => job.status === "queued").map((job) => jobFromRest(target, job)), count: data.jobs.length }),
      ),
    );
  }

  /** Runners registered in the target's scope whose names start with `prefix` (conditional requests). */
  async listRunners(target: RunnerTarget, prefix: string): Promise<GitHubRunner[]> {
    const runners = await readAllPages((page) =>
      this.conditionalGet(
        target,
        "list runners",
        `runners:${this.scopeKey(target)}:${page}`,
        (o, headers) =>
          this.opts.scope === "org"
            ? o.rest.actions.listSelfHostedRunnersForOrg({ org: target.owner, per_page: PAGE_SIZE, page, headers })
            : o.rest.actions.listSelfHostedRunnersForRepo({ owner: target.owner, repo: target.repo, per_page: PAGE_SIZE, page, headers }),
        (data) => ({ items: data.runners.map(toRunner), count: data.runners.length }),
      ),
    );
    return runners.filter((r) => r.name.startsWith(prefix));
  }

  /**
   * Runs `fn` and reports the GitHub points spent on reads (GETs) meanwhile: the reconciler paces
   * its polling by this. Reads made by anything else at the same time count too, which only
   * errs on the side of polling less. (Not AsyncLocalStorage: on Node 20 it puts a hook on
   * every promise of the process.)
   */
  async metered<T>(fn: () => Promise<T>): Promise<{ result: T; points: number }> {
    const before = this.readPoints;
    const result = await fn();
    return { result, points: this.readPoints - before };
  }

  /**
   * A GET with If-None-Match when an earlier answer is remembered: a 304 reuses what was kept of
   * that answer (`keep`), so only the parts we use stay in memory.
   */
  private async conditionalGet<D, V>(
    target: RunnerTarget,
    what: string,
    key: string,
    get: (o: Octokit, headers: Record<string, string>) => Promise<{ data: D; headers: { etag?: string } }>,
    keep: (data: D) => V,
  ): Promise<V> {
    const cached = this.conditional.get(key) as { etag: string; value: V } | undefined;
    try {
      const res = await this.call(target, what, (o) => get(o, cached ? { "if-none-match": cached.etag } : {}));
      const value = keep(res.data);
      this.conditional.delete(key);
      if (res.headers.etag) this.remember(key, { etag: res.headers.etag, value });
      return value;
    } catch (err) {
      if (!cached || !(err instanceof DependencyError && err.status === 304)) throw err;
      this.remember(key, cached);
      return cached.value;
    }
  }

  private remember(key: string, entry: { etag: string; value: unknown }): void {
    this.conditional.delete(key);
    this.conditional.set(key, entry);
    if (this.conditional.size > CONDITIONAL_CACHE_ENTRIES) this.conditional.delete(this.conditional.keys().next().value!);
  }

  /** The repositories of an organisation or user (ALLOWED_OWNERS with a PAT), archived ones left out. */
  async listOwnerRepos(owner: string): Promise<RunnerTarget[]> {
    const probe = { owner, repo: "" };
    const list = async (kind: "org" | "user") =>
      this.call(probe, `list repositories of ${owner}`, (o) =>
        kind === "org"
          ? o.paginate(o.rest.repos.listForOrg, { org: owner, per_page: 100 })
          : o.paginate(o.rest.repos.listForUser, { username: owner, per_page: 100 }),
      );
    let repos;
    try {
      repos = await list("org");
    } catch (err) {
      if (!(err instanceof DependencyError && err.status === 404)) throw err;
      repos = await list("user");
    }
    return repos.filter((r) => !r.archived).map((r) => ({ owner: r.owner.login, repo: r.name }));
  }

  /** Every repository the App's installations can access (App auth only). */
  async listInstallationRepos(): Promise<RunnerTarget[]> {
    if (this.opts.auth.kind !== "app") return [];
    const app = this.appOctokit();
    const installations = await app.paginate(app.rest.apps.listInstallations, { per_page: 100 }).catch((err: unknown) => {
      throw toDependencyError("list installations", err);
    });
    const targets: RunnerTarget[] = [];
    for (const installation of installations) {
      const probe = { owner: "", repo: "", installationId: installation.id };
      const repos = await this.call(probe, "list installation repositories", (o) =>
        o.paginate(o.rest.apps.listReposAccessibleToInstallation, { per_page: 100 }),
      );
      for (const repo of repos) targets.push({ owner: repo.owner.login, repo: repo.name, installationId: installation.id });
    }
    return targets;
  }

  /**
   * Redelivers the App's failed webhook deliveries of `workflow_job` since `since` (App only);
   * GitHub does not retry failed deliveries by itself. Returns how many were redelivered.
   */
  async redeliverFailedDeliveries(since: number): Promise<number> {
    if (this.opts.auth.kind !== "app") return 0;
    const app = this.appOctokit();
    const seen = new Set<string>();
    const failed: Array<{ id: number; guid: string }> = [];
    const delivered = new Set<string>();
    try {
      for await (const page of app.paginate.iterator(app.rest.apps.listWebhookDeliveries, { per_page: 100 })) {
        for (const d of page.data) {
          if (Date.parse(d.delivered_at) < since) return this.redeliver(app, failed, delivered);
          if (d.event !== "workflow_job") continue;
          // Newest first: a later success for the same GUID means it already got through.
          if (d.status_code >= 200 && d.status_code < 300) delivered.add(d.guid);
          else if (!seen.has(d.guid)) failed.push({ id: d.id, guid: d.guid });
          seen.add(d.guid);
        }
      }
    } catch (err) {
      throw toDependencyError("list webhook deliveries", err);
    }
    return this.redeliver(app, failed, delivered);
  }

  private async redeliver(app: Octokit, failed: Array<{ id: number; guid: string }>, delivered: Set<string>): Promise<number> {
    let count = 0;
    for (const d of failed) {
      if (delivered.has(d.guid)) continue;
      await app.rest.apps.redeliverWebhookDelivery({ delivery_id: d.id }).catch((err: unknown) => {
        throw toDependencyError("redeliver webhook", err);
      });
      count += 1;
    }
    return count;
  }

  private appOctokit(): Octokit {
    let octokit = this.octokits.get("app");
    if (!octokit) {
      if (this.opts.auth.kind !== "app") throw new Error("not a GitHub App");
      octokit = this.observed(
        new Octokit({
          baseUrl: this.opts.apiUrl,
          userAgent: this.opts.userAgent ?? "nomad-gha-dispatcher",
          log: silentLog,
          request: { fetch: this.fetch },
          authStrategy: createAppAuth,
          auth: { appId: this.opts.auth.appId, privateKey: this.opts.auth.privateKey },
        }),
        "app",
      );
      this.octokits.set("app", octokit);
    }
    return octokit;
  }

  private cachedToken(
    kind: "registration",
    target: RunnerTarget,
    create: (o: Octokit) => Promise<{ data: { token: string; expires_at: string } }>,
  ): Promise<string> {
    const key = `${kind}:${this.scopeKey(target)}`;
    const cached = this.tokenCache.get(key);
    const fresh = async () => {
      const res = await this.call(target, `create ${kind} token`, create);
      return { token: res.data.token, expiresAt: Date.parse(res.data.expires_at) };
    };
    const pending = (async () => {
      if (cached) {
        try {
          const value = await cached;
          if (value.expiresAt - Date.now() > TOKEN_REFRESH_MARGIN_MS) return value;
        } catch {
          // a failed earlier attempt is simply retried below
        }
      }
      return fresh();
    })();
    // One in-flight request per scope: a burst for one repository shares it.
    this.tokenCache.set(key, pending);
    pending.catch(() => this.tokenCache.get(key) === pending && this.tokenCache.delete(key));
    return pending.then((v) => v.token);
  }

  private async call<T>(target: RunnerTarget, what: string, fn: (o: Octokit) => Promise<T>): Promise<T> {
    try {
      return await fn(this.octokitFor(target));
    } catch (err) {
      throw toDependencyError(what, err);
    }
  }

  private octokitFor(target: RunnerTarget): Octokit {
    const key = this.opts.auth.kind === "app" ? `installation:${target.installationId ?? "?"}` : "pat";
    let octokit = this.octokits.get(key);
    if (!octokit) {
      octokit = this.createOctokit(target.installationId);
      this.octokits.set(key, octokit);
    }
    return octokit;
  }

  private createOctokit(installationId: number | undefined): Octokit {
    const base = { baseUrl: this.opts.apiUrl, userAgent: this.opts.userAgent ?? "nomad-gha-dispatcher", log: silentLog, request: { fetch: this.fetch } };
    if (this.opts.auth.kind === "token") return this.observed(new Octokit({ ...base, auth: this.opts.auth.token }), "pat");
    if (installationId === undefined) {
      throw new DependencyError("github", "GitHub App auth needs an installation id (webhook payload has none)", undefined, false);
    }
    return this.observed(
      new Octokit({
        ...base,
        authStrategy: createAppAuth,
        auth: { appId: this.opts.auth.appId, privateKey: this.opts.auth.privateKey, installationId },
      }),
      `installation:${installationId}`,
    );
  }

  /** The budget a target's calls draw from (one per PAT, one per App installation). */
  budgetFor(target: Pick<RunnerTarget, "installationId">): Budget {
    return this.budget(this.budgetKey(target));
  }

  /**
   * Shutdown: requests waiting for rate-limit budget fail now rather than in up to a minute, and
   * so does any request made from now on.
   */
  close(): void {
    this.closed = new DependencyError("github", "shutting down: request not sent", undefined, false);
    for (const budget of this.budgets.values()) budget.close(this.closed);
  }

  /** Which budget a target's calls draw from: targets with the same key share one. */
  budgetKey(target: Pick<RunnerTarget, "installationId">): string {
    return this.opts.auth.kind === "app" ? `installation:${target.installationId ?? "?"}` : "pat";
  }

  private budget(key: string): Budget {
    let budget = this.budgets.get(key);
    if (!budget) {
      budget = new Budget(this.opts.budget ?? GITHUB_SECONDARY_LIMITS);
      if (this.closed) budget.close(this.closed);
      this.budgets.set(key, budget);
    }
    return budget;
  }

  /**
   * Every request carries the API version, waits for budget first, and a secondary-limit answer
   * pauses the whole budget until its retry-after: GitHub blocks integrations that keep pushing
   * past it.
   */
  private observed(octokit: Octokit, budgetKey: string): Octokit {
    const onResponse = this.opts.onResponse;
    const budget = this.budget(budgetKey);
    octokit.hook.wrap("request", async (request, options) => {
      // Here rather than per call: this hook sees every request of the instance, including the
      // installation-token requests the App auth strategy makes on its own.
      options.headers["x-github-api-version"] = GITHUB_API_VERSION;
      const points = pointsFor(options.method);
      if (points === 1) this.readPoints += points;
      const claim = (options.request as { budgetClaim?: Claim } | undefined)?.budgetClaim;
      const release = await budget.acquire(points, priorityOf(options.method, options.url), claim);
      try {
        const res = await request(options);
        onResponse?.(res.headers);
        return res;
      } catch (err) {
        const headers = err instanceof RequestError ? err.response?.headers : undefined;
        if (headers) onResponse?.(headers);
        const retryAfter = Number(headers?.["retry-after"]);
        if (err instanceof RequestError && (err.status === 403 || err.status === 429) && Number.isFinite(retryAfter)) {
          budget.pause(retryAfter);
        }
        throw err;
      } finally {
        release();
      }
    });
    return octokit;
  }
}

/** A release of the runner (actions/runner) as GitHub lists it. */
export interface RunnerRelease {
  /** e.g. "v2.336.0". */
  tag: string;
  /** ISO 8601; absent for a release never published. */
  publishedAt: string | undefined;
  url: string;
}

export class RunnerExistsError extends Error {
  constructor(readonly runnerName: string) {
    super(`a runner named ${runnerName} already exists`);
    this.name = "RunnerExistsError";
  }
}

/** Credentials first (a runner waits on them), then clean-up, then polling. */
function priorityOf(method: string, url: string): Priority {
  if (/generate-jitconfig|registration-token|remove-token|access_tokens/.test(url)) return "credential";
  return method.toUpperCase() === "GET" ? "poll" : "cleanup";
}

function accountName(account: unknown): string | undefined {
  const a = account as { login?: string; name?: string; slug?: string } | null | undefined;
  return a?.login ?? a?.slug ?? a?.name;
}

const silentLog = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

interface RestRunner {
  id: number;
  name: string;
  status: string;
  busy: boolean;
  labels: Array<{ name: string }>;
}

function toRunner(r: RestRunner): GitHubRunner {
  return { id: r.id, name: r.name, status: r.status, busy: r.busy, labels: r.labels.map((l) => l.name) };
}

interface RestJob {
  id: number;
  run_id: number;
  status: string;
  conclusion: string | null;
  labels: string[];
  runner_name: string | null;
  created_at: string;
}

export function jobFromRest(target: RunnerTarget, j: RestJob): WorkflowJob {
  return {
    id: j.id,
    runId: j.run_id,
    owner: target.owner,
    repo: target.repo,
    labels: j.labels,
    status: j.status as WorkflowJob["status"],
    conclusion: j.conclusion,
    runnerName: j.runner_name,
    createdAt: j.created_at,
    installationId: target.installationId,
  };
}

/** GitHub signals both primary and secondary rate limits with 403 or 429. */
function toDependencyError(what: string, err: unknown): DependencyError {
  if (err instanceof DependencyError) return err;
  if (err instanceof RequestError) {
    const headers = err.response?.headers ?? {};
    const retryAfter = Number(headers["retry-after"] ?? NaN);
    const remaining = headers["x-ratelimit-remaining"];
    const reset = Number(headers["x-ratelimit-reset"] ?? NaN);
    const rateLimited =
      err.status === 429 || (err.status === 403 && (remaining === "0" || /rate limit/i.test(err.message)));
    const waitSeconds = Number.isFinite(retryAfter)
      ? retryAfter
      : rateLimited && Number.isFinite(reset)
        ? Math.max(1, reset - Math.floor(Date.now() / 1000))
        : undefined;
    const transient = rateLimited || err.status >= 500;
    return new DependencyError("github", `GitHub ${what}: ${err.status} ${err.message}`, err.status, transient, waitSeconds);
  }
  const message = err instanceof Error ? err.message : String(err);
  return new DependencyError("github", `GitHub ${what}: ${message}`, undefined, isNetworkError(err));
}
