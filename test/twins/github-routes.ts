// The REST endpoints the GitHub twin serves, as api.github.com does: self-hosted runners (JIT
// configs, registration/remove tokens, list/get/delete), workflow runs and jobs, GitHub Apps
// (installations, installation tokens, webhook deliveries), rate limit, user and repository.

import { hookRoutes } from "./github-hook-routes.js";
import type { Installation, Repo, Runner, RunnerScope } from "./github-model.js";
import { DEFAULT_RUNNER_GROUP } from "./github-model.js";
import type { Reply, RestDependencies, Route, RouteContext } from "./github-rest.js";
import { deliveryPage, deliverySummary, gitHubError, isReply, jitRequest, notFound, paginate, permits, tokenRequest } from "./github-rest.js";
import { encodeJitConfig, newJitSecret } from "./github-runners.js";
import { APP_PERMISSIONS } from "./github-shapes.js";
import type { TwinDelivery } from "./github-webhooks.js";

export type { Reply, RestDependencies, Route, RouteContext } from "./github-rest.js";

const RUNNERS_DOCS = "https://docs.github.com/rest/actions/self-hosted-runners";
const APPS_DOCS = "https://docs.github.com/rest/apps/apps";
const WEBHOOKS_DOCS = "https://docs.github.com/rest/apps/webhooks";

export class GitHubRestApi {
  constructor(private readonly deps: RestDependencies) {}

  routes(): Route[] {
    return [...this.runnerRoutes(), ...this.actionsRoutes(), ...this.appRoutes(), ...hookRoutes(this.deps), ...this.miscRoutes()];
  }

  // ---- scope resolution and access -----------------------------------------------------------

  private repoIn(ctx: RouteContext, docs: string): Repo | Reply {
    const repo = this.deps.state.findRepo(ctx.params["owner"] ?? "", ctx.params["repo"] ?? "");
    if (!repo) return notFound(docs);
    const principal = ctx.principal;
    if (principal.kind === "user") return repo;
    if (principal.kind === "installation" && principal.repoIds.has(repo.id)) return repo;
    // GitHub hides repositories the caller cannot see.
    return notFound(docs);
  }

  private orgIn(ctx: RouteContext, docs: string): RunnerScope | Reply {
    const org = this.deps.state.findOrg(ctx.params["org"] ?? "");
    if (!org) return notFound(docs);
    const principal = ctx.principal;
    if (principal.kind === "user") return { kind: "org", org };
    if (principal.kind === "installation" && principal.installation.account.id === org.id) return { kind: "org", org };
    return gitHubError(403, "Resource not accessible by integration", docs);
  }

  private scopeOf(kind: "repo" | "org", ctx: RouteContext, docs: string): RunnerScope | Reply {
    if (kind === "org") return this.orgIn(ctx, docs);
    const repo = this.repoIn(ctx, docs);
    return isReply(repo) ? repo : { kind: "repo", repo };
  }

  // ---- self-hosted runners ---------------------------------------------------------------------

  private runnerRoutes(): Route[] {
    const routes: Route[] = [];
    for (const kind of ["repo", "org"] as const) {
      const base = kind === "repo" ? "/repos/{owner}/{repo}/actions/runners" : "/orgs/{org}/actions/runners";
      const where = kind === "repo" ? "a-repository" : "an-organization";
      const permission =
        kind === "repo" ? { name: "administration", level: "write" as const } : { name: "organization_self_hosted_runners", level: "write" as const };
      const readPermission = { ...permission, level: "read" as const };
      const scoped = (docs: string, fn: (scope: RunnerScope, ctx: RouteContext) => Reply) => (ctx: RouteContext) => {
        const scope = this.scopeOf(kind, ctx, docs);
        return isReply(scope) ? scope : fn(scope, ctx);
      };
      const jitDocs = `${RUNNERS_DOCS}#create-configuration-for-a-just-in-time-runner-for-${where}`;
      const registrationDocs = `${RUNNERS_DOCS}#create-a-registration-token-for-${where}`;
      const removeDocs = `${RUNNERS_DOCS}#create-a-remove-token-for-${where}`;
      const listDocs = `${RUNNERS_DOCS}#list-self-hosted-runners-for-${where}`;
      const getDocs = `${RUNNERS_DOCS}#get-a-self-hosted-runner-for-${where}`;
      const deleteDocs = `${RUNNERS_DOCS}#delete-a-self-hosted-runner-from-${where}`;
      routes.push(
        {
          method: "POST",
          template: `${base}/generate-jitconfig`,
          docs: jitDocs,
          auth: "token",
          permission,
          handle: scoped(jitDocs, (s, c) => this.generateJitConfig(s, c, jitDocs)),
        },
        {
          method: "POST",
          template: `${base}/registration-token`,
          docs: registrationDocs,
          auth: "token",
          permission,
          handle: scoped(registrationDocs, (s) => this.runnerToken("registration", s)),
        },
        {
          method: "POST",
          template: `${base}/remove-token`,
          docs: removeDocs,
          auth: "token",
          permission,
          handle: scoped(removeDocs, (s) => this.runnerToken("remove", s)),
        },
        {
          method: "GET",
          template: base,
          docs: listDocs,
          auth: "token",
          permission: readPermission,
          handle: scoped(listDocs, (s, c) => this.listRunners(s, c)),
        },
        {
          method: "GET",
          template: `${base}/{runner_id}`,
          docs: getDocs,
          auth: "token",
          permission: readPermission,
          handle: scoped(getDocs, (s, c) => this.getRunner(s, c, getDocs)),
        },
        {
          method: "DELETE",
          template: `${base}/{runner_id}`,
          docs: deleteDocs,
          auth: "token",
          permission,
          handle: scoped(deleteDocs, (s, c) => this.deleteRunner(s, c, deleteDocs)),
        },
      );
    }
    return routes;
  }

  private generateJitConfig(scope: RunnerScope, ctx: RouteContext, docs: string): Reply {
    const input = jitRequest(ctx.body);
    if ("problem" in input) return gitHubError(422, `Invalid request.\n\n${input.problem}`, docs);
    if (input.runnerGroupId !== DEFAULT_RUNNER_GROUP.id) return notFound(docs);
    if (this.deps.state.runnerNamed(scope, input.name)) {
      return gitHubError(409, `Already exists - A runner with the name ${input.name} already exists.`, docs);
    }
    const runner = this.deps.state.createRunner({
      name: input.name,
      scope,
      labels: input.labels,
      ephemeral: true,
      groupId: input.runnerGroupId,
      registration: "jit",
      jit: { secret: newJitSecret(), used: false },
    });
    const encoded = encodeJitConfig(runner, this.deps.shapes.urls, input.workFolder);
    this.deps.credentials.recordSecret(encoded);
    return { status: 201, body: { runner: this.deps.shapes.runner(runner), encoded_jit_config: encoded } };
  }

  private runnerToken(purpose: "registration" | "remove", scope: RunnerScope): Reply {
    const { token, expiresAt } = this.deps.credentials.issueRunnerToken(purpose, scope);
    return { status: 201, body: { token, expires_at: new Date(expiresAt).toISOString() } };
  }

  private listRunners(scope: RunnerScope, ctx: RouteContext): Reply {
    const name = ctx.query.get("name");
    const all = this.deps.state.runnersIn(scope).filter((r) => name === null || r.name === name);
    const page = paginate(all, ctx);
    return { status: 200, body: { total_count: all.length, runners: page.items.map((r) => this.deps.shapes.runner(r)) }, headers: page.headers };
  }

  private runnerById(scope: RunnerScope, ctx: RouteContext): Runner | undefined {
    const id = Number(ctx.params["runner_id"]);
    return this.deps.state.runnersIn(scope).find((r) => r.id === id);
  }

  private getRunner(scope: RunnerScope, ctx: RouteContext, docs: string): Reply {
    const runner = this.runnerById(scope, ctx);
    return runner ? { status: 200, body: this.deps.shapes.runner(runner) } : notFound(docs);
  }

  private deleteRunner(scope: RunnerScope, ctx: RouteContext, docs: string): Reply {
    const runner = this.runnerById(scope, ctx);
    if (!runner) return notFound(docs);
    if (runner.busy) return gitHubError(422, `Bad request - Runner "${runner.name}" is still running a job"`, docs);
    this.deps.state.deleteRunner(runner);
    return { status: 204 };
  }

  // ---- workflow runs and jobs --------------------------------------------------------------------

  private actionsRoutes(): Route[] {
    const jobDocs = "https://docs.github.com/rest/actions/workflow-jobs#get-a-job-for-a-workflow-run";
    const runsDocs = "https://docs.github.com/rest/actions/workflow-runs#list-workflow-runs-for-a-repository";
    const runJobsDocs = "https://docs.github.com/rest/actions/workflow-jobs#list-jobs-for-a-workflow-run";
    const permission = { name: "actions", level: "read" as const };
    return [
      {
        method: "GET",
        template: "/repos/{owner}/{repo}/actions/jobs/{job_id}",
        docs: jobDocs,
        auth: "token",
        permission,
        handle: (ctx) => this.getJob(ctx, jobDocs),
      },
      {
        method: "GET",
        template: "/repos/{owner}/{repo}/actions/runs",
        docs: runsDocs,
        auth: "token",
        permission,
        handle: (ctx) => this.listRuns(ctx, runsDocs),
      },
      {
        method: "GET",
        template: "/repos/{owner}/{repo}/actions/runs/{run_id}/jobs",
        docs: runJobsDocs,
        auth: "token",
        permission,
        handle: (ctx) => this.listRunJobs(ctx, runJobsDocs),
      },
    ];
  }

  /**
   * OpenAPI operation `actions/get-job-for-workflow-run`: the `job` schema (validated like every
   * route, github-http.ts). The spec documents only 200; like GitHub, a job that is not in this
   * repository, or a repository the caller cannot see, is a 404 with a basic-error body.
   */
  private getJob(ctx: RouteContext, docs: string): Reply {
    const repo = this.repoIn(ctx, docs);
    if (isReply(repo)) return repo;
    const job = this.deps.state.jobs.get(Number(ctx.params["job_id"]));
    if (!job || job.run.repo.id !== repo.id) return notFound(docs);
    return { status: 200, body: this.deps.shapes.job(job) };
  }

  /** `?status=` takes a status (queued, in_progress, ...) or a conclusion (success, cancelled, ...). */
  private listRuns(ctx: RouteContext, docs: string): Reply {
    const repo = this.repoIn(ctx, docs);
    if (isReply(repo)) return repo;
    const wanted = ctx.query.get("status");
    const runs = [...this.deps.state.runs.values()]
      .filter((run) => run.repo.id === repo.id)
      .filter((run) => {
        if (wanted === null) return true;
        const { status, conclusion } = this.deps.state.runStatus(run);
        return status === wanted || conclusion === wanted;
      })
      .sort((a, b) => b.id - a.id);
    const page = paginate(runs, ctx);
    return {
      status: 200,
      body: { total_count: runs.length, workflow_runs: page.items.map((run) => this.deps.shapes.workflowRun(run)) },
      headers: page.headers,
    };
  }

  /** Every job has one attempt in the twin, so `filter=latest` and `filter=all` list the same. */
  private listRunJobs(ctx: RouteContext, docs: string): Reply {
    const repo = this.repoIn(ctx, docs);
    if (isReply(repo)) return repo;
    const run = this.deps.state.runs.get(Number(ctx.params["run_id"]));
    if (!run || run.repo.id !== repo.id) return notFound(docs);
    const jobs = this.deps.state.jobsOfRun(run).sort((a, b) => a.id - b.id);
    const page = paginate(jobs, ctx);
    return { status: 200, body: { total_count: jobs.length, jobs: page.items.map((job) => this.deps.shapes.job(job)) }, headers: page.headers };
  }

  // ---- GitHub Apps -----------------------------------------------------------------------------------

  private appRoutes(): Route[] {
    const d = {
      app: `${APPS_DOCS}#get-the-authenticated-app`,
      installations: "https://docs.github.com/enterprise-server@3.9/rest/apps/apps#list-installations-for-the-authenticated-app",
      installation: `${APPS_DOCS}#get-an-installation-for-the-authenticated-app`,
      repoInstallation: `${APPS_DOCS}#get-a-repository-installation-for-the-authenticated-app`,
      token: `${APPS_DOCS}#create-an-installation-access-token-for-an-app`,
      repositories: "https://docs.github.com/rest/apps/installations#list-repositories-accessible-to-the-app-installation",
      deliveries: `${WEBHOOKS_DOCS}#list-deliveries-for-an-app-webhook`,
      delivery: `${WEBHOOKS_DOCS}#get-a-delivery-for-an-app-webhook`,
      redeliver: `${WEBHOOKS_DOCS}#redeliver-a-delivery-for-an-app-webhook`,
    };
    return [
      { method: "GET", template: "/app", docs: d.app, auth: "app", handle: (ctx) => ({ status: 200, body: this.deps.shapes.app(appOf(ctx)) }) },
      { method: "GET", template: "/app/installations", docs: d.installations, auth: "app", handle: (ctx) => this.listInstallations(ctx) },
      {
        method: "GET",
        template: "/app/installations/{installation_id}",
        docs: d.installation,
        auth: "app",
        handle: (ctx) => this.getInstallation(ctx, d.installation),
      },
      {
        method: "GET",
        template: "/repos/{owner}/{repo}/installation",
        docs: d.repoInstallation,
        auth: "app",
        handle: (ctx) => this.getRepoInstallation(ctx, d.repoInstallation),
      },
      {
        method: "POST",
        template: "/app/installations/{installation_id}/access_tokens",
        docs: d.token,
        auth: "app",
        handle: (ctx) => this.createInstallationToken(ctx, d.token),
      },
      { method: "GET", template: "/installation/repositories", docs: d.repositories, auth: "installation", handle: (ctx) => this.listInstallationRepos(ctx) },
      { method: "GET", template: "/app/hook/deliveries", docs: d.deliveries, auth: "app", handle: (ctx) => this.listDeliveries(ctx, d.deliveries) },
      { method: "GET", template: "/app/hook/deliveries/{delivery_id}", docs: d.delivery, auth: "app", handle: (ctx) => this.getDelivery(ctx, d.delivery) },
      {
        method: "POST",
        template: "/app/hook/deliveries/{delivery_id}/attempts",
        docs: d.redeliver,
        auth: "app",
        handle: (ctx) => this.redeliver(ctx, d.redeliver),
      },
    ];
  }

  private appInstallations(ctx: RouteContext): Installation[] {
    const app = appOf(ctx);
    return [...this.deps.state.installations.values()].filter((i) => i.appId === app.id).sort((a, b) => a.id - b.id);
  }

  private listInstallations(ctx: RouteContext): Reply {
    const page = paginate(this.appInstallations(ctx), ctx);
    return { status: 200, body: page.items.map((i) => this.deps.shapes.installation(i)), headers: page.headers };
  }

  private installationById(ctx: RouteContext): Installation | undefined {
    const id = Number(ctx.params["installation_id"]);
    return this.appInstallations(ctx).find((i) => i.id === id);
  }

  private getInstallation(ctx: RouteContext, docs: string): Reply {
    const installation = this.installationById(ctx);
    return installation ? { status: 200, body: this.deps.shapes.installation(installation) } : notFound(docs);
  }

  private getRepoInstallation(ctx: RouteContext, docs: string): Reply {
    const repo = this.deps.state.findRepo(ctx.params["owner"] ?? "", ctx.params["repo"] ?? "");
    const installation = repo?.installationId === undefined ? undefined : this.deps.state.installations.get(repo.installationId);
    if (!installation || installation.appId !== appOf(ctx).id) return notFound(docs);
    return { status: 200, body: this.deps.shapes.installation(installation) };
  }

  private createInstallationToken(ctx: RouteContext, docs: string): Reply {
    const installation = this.installationById(ctx);
    if (!installation) return notFound(docs);
    const request = tokenRequest(ctx.body);
    if ("problem" in request) return gitHubError(422, request.problem, docs);
    const all = this.deps.state.installationRepos(installation);
    const narrowed = request.repositories !== undefined || request.repositoryIds !== undefined;
    const unknownName = request.repositories?.some((name) => !all.some((r) => r.name.toLowerCase() === name));
    const unknownId = request.repositoryIds?.some((id) => !all.some((r) => r.id === id));
    if (unknownName || unknownId) {
      return gitHubError(422, "There is at least one repository that does not exist or is not accessible to the parent installation.", docs);
    }
    const chosen = narrowed ? all.filter((r) => request.repositories?.includes(r.name.toLowerCase()) || request.repositoryIds?.includes(r.id)) : all;
    const permissions = request.permissions ?? { ...APP_PERMISSIONS };
    if (!Object.entries(permissions).every(([name, level]) => permits(APP_PERMISSIONS[name], level))) {
      return gitHubError(422, "The permissions requested are not granted to this installation.", docs);
    }
    const { token, expiresAt } = this.deps.credentials.issueInstallationToken(installation, new Set(chosen.map((r) => r.id)), permissions);
    return {
      status: 201,
      body: {
        token,
        expires_at: new Date(expiresAt).toISOString().replace(/\.\d{3}Z$/, "Z"),
        permissions,
        repository_selection: "selected",
        ...(narrowed && { repositories: chosen.map((r) => this.deps.shapes.repository(r)) }),
      },
    };
  }

  private listInstallationRepos(ctx: RouteContext): Reply {
    if (ctx.principal.kind !== "installation") return gitHubError(403, "Resource not accessible by integration");
    const repoIds = ctx.principal.repoIds;
    const repos = this.deps.state.installationRepos(ctx.principal.installation).filter((r) => repoIds.has(r.id));
    const page = paginate(repos, ctx);
    return {
      status: 200,
      body: { total_count: repos.length, repository_selection: "selected", repositories: page.items.map((r) => this.deps.shapes.repository(r)) },
      headers: page.headers,
    };
  }

  private listDeliveries(ctx: RouteContext, docs: string): Reply {
    return deliveryPage(this.deps.webhooks.forApp(appOf(ctx).id), ctx, docs);
  }

  private appDelivery(ctx: RouteContext): TwinDelivery | undefined {
    const id = Number(ctx.params["delivery_id"]);
    return this.deps.webhooks.forApp(appOf(ctx).id).find((d) => d.id === id);
  }

  private getDelivery(ctx: RouteContext, docs: string): Reply {
    const delivery = this.appDelivery(ctx);
    if (!delivery) return notFound(docs);
    return { status: 200, body: { ...deliverySummary(delivery), request: delivery.request, response: delivery.response } };
  }

  /** Accepted at once; the redelivery happens in the background like on GitHub. */
  private redeliver(ctx: RouteContext, docs: string): Reply {
    const delivery = this.appDelivery(ctx);
    if (!delivery) return notFound(docs);
    void this.deps.webhooks.redeliver(delivery.id);
    return { status: 202, body: {} };
  }

  // ---- rate limit, user, repository ------------------------------------------------------------------

  private miscRoutes(): Route[] {
    const rateDocs = "https://docs.github.com/rest/rate-limit/rate-limit#get-rate-limit-status-for-the-authenticated-user";
    const userDocs = "https://docs.github.com/rest/users/users#get-the-authenticated-user";
    const repoDocs = "https://docs.github.com/rest/repos/repos#get-a-repository";
    const orgReposDocs = "https://docs.github.com/rest/repos/repos#list-organization-repositories";
    const userReposDocs = "https://docs.github.com/rest/repos/repos#list-repositories-for-a-user";
    return [
      {
        method: "GET",
        template: "/orgs/{org}/repos",
        docs: orgReposDocs,
        auth: "token",
        handle: (ctx) => this.listOwnerRepos(ctx, ctx.params["org"] ?? "", "Organization", orgReposDocs),
      },
      {
        method: "GET",
        template: "/users/{username}/repos",
        docs: userReposDocs,
        auth: "token",
        handle: (ctx) => this.listOwnerRepos(ctx, ctx.params["username"] ?? "", "User", userReposDocs),
      },
      { method: "GET", template: "/rate_limit", docs: rateDocs, auth: "any", free: true, handle: (ctx) => this.rateLimit(ctx) },
      {
        method: "GET",
        template: "/user",
        docs: userDocs,
        auth: "user",
        handle: (ctx) =>
          ctx.principal.kind === "user"
            ? { status: 200, body: this.deps.shapes.privateUser(ctx.principal.user) }
            : gitHubError(403, "Resource not accessible by integration", userDocs),
      },
      {
        method: "GET",
        template: "/repos/{owner}/{repo}",
        docs: repoDocs,
        auth: "token",
        permission: { name: "metadata", level: "read" },
        handle: (ctx) => {
          const repo = this.repoIn(ctx, repoDocs);
          return isReply(repo) ? repo : { status: 200, body: this.deps.shapes.repository(repo) };
        },
      },
    ];
  }

  /** Repositories of an owner (a PAT of the twin sees all of them). */
  private listOwnerRepos(ctx: RouteContext, login: string, type: "Organization" | "User", docs: string): Reply {
    const owner = [...this.deps.state.repos.values()].find((r) => r.owner.login.toLowerCase() === login.toLowerCase())?.owner;
    if (!owner || owner.type !== type) return notFound(docs);
    const repos = [...this.deps.state.repos.values()].filter((r) => r.owner.id === owner.id).sort((a, b) => a.id - b.id);
    const page = paginate(repos, ctx);
    return { status: 200, body: page.items.map((r) => this.deps.shapes.repository(r)), headers: page.headers };
  }

  private rateLimit(ctx: RouteContext): Reply {
    const core = this.deps.limiter.primaryStatus(ctx.principal.key);
    const fixed = (limit: number) => ({ limit, used: 0, remaining: limit, reset: core.reset });
    return {
      status: 200,
      body: {
        resources: {
          core,
          search: fixed(30),
          graphql: fixed(5000),
          integration_manifest: fixed(5000),
          actions_runner_registration: fixed(10000),
          code_search: fixed(10),
        },
        rate: core,
      },
    };
  }
}

function appOf(ctx: RouteContext) {
  if (ctx.principal.kind !== "app") throw new Error("app route reached without an app JWT");
  return ctx.principal.app;
}
