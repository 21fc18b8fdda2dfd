// Runner registration as `config.sh` does it against GitHub ("runner-admin" flow), authenticated
// with `Authorization: RemoteAuth <registration or remove token>`:
//   POST {api}/actions/runner-registration        token check, tenant URL   (ConfigurationManager.GetTenantCredential)
//   GET  {api}/{scope}/actions/runner-groups      runner groups             (RunnerDotcomServer.GetRunnerGroupsAsync)
//   GET  {api}/{scope}/actions/runners?name=N     existing runner by name   (RunnerDotcomServer.GetRunnerByNameAsync)
//   POST {api}/actions/runners/register           add or replace            (RunnerDotcomServer.AddOrReplaceRunner)
//   DELETE {api}/{scope}/actions/runners/{id}     `config.sh remove`        (RunnerDotcomServer.DeleteRunnerAsync)
// ({api} is `https://api.github.com` on github.com, `https://<host>/api/v3` on GHES; {scope} is
// `repos/<owner>/<repo>` or `orgs/<org>`.) All in actions/runner src/Runner.Listener/Configuration/
// ConfigurationManager.cs and src/Runner.Common/RunnerDotcomServer.cs. A bad or expired token gets
// 404 Not Found, which the runner does not retry and prints as "Http response code: NotFound from
// 'POST .../actions/runner-registration'" (as reported in actions/runner issues, e.g. #1882).

import { randomBytes } from "node:crypto";
import type { Credentials } from "./github-auth.js";
import { GHES_PREFIX } from "./github-http.js";
import type { GitHubState, Runner, RunnerScope } from "./github-model.js";
import { DEFAULT_RUNNER_GROUP } from "./github-model.js";
import { compareVersions, MIN_REGISTRATION_VERSION } from "./github-releases.js";
import type { RunnerCall, RunnerReply, RunnerRoute } from "./github-runner-http.js";
import { jsonBody } from "./github-runner-http.js";
import { actionsServiceUrls, type GitHubShapes, type TwinUrls } from "./github-shapes.js";

const NOT_FOUND: RunnerReply = { status: 404, body: { message: "Not Found", documentation_url: "https://docs.github.com/rest" } };

export interface RunnerAdminContext {
  state: GitHubState;
  credentials: Credentials;
  shapes: GitHubShapes;
  urls: TwinUrls;
}

/** `${web}/${owner}/${repo}` or `${web}/${org}` (with or without a trailing slash) to a runner scope. */
export function scopeFromUrl(state: GitHubState, web: string, url: string): RunnerScope | undefined {
  const base = web.replace(/\/+$/, "");
  if (!url.toLowerCase().startsWith(`${base.toLowerCase()}/`)) return undefined;
  const parts = url
    .slice(base.length + 1)
    .replace(/\/+$/, "")
    .split("/");
  if (parts.length === 2) {
    const repo = state.findRepo(parts[0] ?? "", parts[1] ?? "");
    return repo && { kind: "repo", repo };
  }
  const org = parts.length === 1 ? state.findOrg(parts[0] ?? "") : undefined;
  return org && { kind: "org", org };
}

function remoteAuthToken(call: RunnerCall): string {
  return /^RemoteAuth\s+(\S+)/i.exec(call.headers["authorization"] ?? "")?.[1] ?? "";
}

export function runnerAdminRoutes(ctx: RunnerAdminContext): RunnerRoute[] {
  const api = GHES_PREFIX;
  const routes: RunnerRoute[] = [
    { method: "POST", template: `${api}/actions/runner-registration`, remoteAuth: true, handle: (call) => registration(ctx, call) },
    { method: "POST", template: `${api}/actions/runners/register`, remoteAuth: true, handle: (call) => register(ctx, call) },
  ];
  for (const base of [`${api}/repos/{owner}/{repo}/actions`, `${api}/orgs/{org}/actions`]) {
    routes.push(
      { method: "GET", template: `${base}/runner-groups`, remoteAuth: true, handle: (call) => withScope(ctx, call, "registration", () => runnerGroups()) },
      {
        method: "GET",
        template: `${base}/runners`,
        remoteAuth: true,
        handle: (call) => withScope(ctx, call, "any", (scope) => runnersNamed(ctx, scope, call)),
      },
      {
        method: "DELETE",
        template: `${base}/runners/{runner_id}`,
        remoteAuth: true,
        handle: (call) => withScope(ctx, call, "remove", (scope) => removeRunner(ctx, scope, call)),
      },
    );
  }
  return routes;
}

function pathScope(ctx: RunnerAdminContext, call: RunnerCall): RunnerScope | undefined {
  const { owner, repo, org } = call.params;
  if (org !== undefined) {
    const account = ctx.state.findOrg(org);
    return account && { kind: "org", org: account };
  }
  const found = ctx.state.findRepo(owner ?? "", repo ?? "");
  return found && { kind: "repo", repo: found };
}

function withScope(
  ctx: RunnerAdminContext,
  call: RunnerCall,
  purpose: "registration" | "remove" | "any",
  fn: (scope: RunnerScope) => RunnerReply,
): RunnerReply {
  const scope = pathScope(ctx, call);
  const token = remoteAuthToken(call);
  if (!scope) return NOT_FOUND;
  const valid = (p: "registration" | "remove") => ctx.credentials.runnerTokenValid(token, p, scope);
  const ok = purpose === "any" ? valid("registration") || valid("remove") : valid(purpose);
  return ok ? fn(scope) : NOT_FOUND;
}

/** Checks the token for the URL's scope and names the Actions service the runner talks to next. */
function registration(ctx: RunnerAdminContext, call: RunnerCall): RunnerReply {
  const body = jsonBody(call);
  const url = typeof body?.["url"] === "string" ? body["url"] : "";
  const purpose = body?.["runner_event"] === "remove" ? "remove" : "registration";
  const scope = scopeFromUrl(ctx.state, ctx.urls.web, url);
  if (!scope || !ctx.credentials.runnerTokenValid(remoteAuthToken(call), purpose, scope)) return NOT_FOUND;
  const token = `twin_tenant_${randomBytes(24).toString("base64url")}`;
  ctx.credentials.recordSecret(token);
  return { status: 200, body: { url: actionsServiceUrls(ctx.urls).pipelines, token_schema: "OAuthAccessToken", token, use_v2_flow: true } };
}

function runnerGroups(): RunnerReply {
  const group = { id: DEFAULT_RUNNER_GROUP.id, name: DEFAULT_RUNNER_GROUP.name, default: true, is_hosted: false };
  return { status: 200, body: { total_count: 1, runner_groups: [group] } };
}

function runnersNamed(ctx: RunnerAdminContext, scope: RunnerScope, call: RunnerCall): RunnerReply {
  const name = call.query.get("name");
  const runners = ctx.state.runnersIn(scope).filter((r) => name === null || r.name.toLowerCase() === name.toLowerCase());
  return { status: 200, body: { total_count: runners.length, runners: runners.map((r) => ctx.shapes.runner(r)) } };
}

/** Adds a runner, or with `replace` takes over the registration of the same name. */
function register(ctx: RunnerAdminContext, call: RunnerCall): RunnerReply {
  const body = jsonBody(call) ?? {};
  const url = typeof body["url"] === "string" ? body["url"] : "";
  const scope = scopeFromUrl(ctx.state, ctx.urls.web, url);
  if (!scope || !ctx.credentials.runnerTokenValid(remoteAuthToken(call), "registration", scope)) return NOT_FOUND;
  const name = typeof body["name"] === "string" ? body["name"] : "";
  const version = typeof body["version"] === "string" ? body["version"] : "0.0.0";
  const publicKey = typeof body["public_key"] === "string" ? body["public_key"] : "";
  const labels = Array.isArray(body["labels"]) ? body["labels"].map((l) => String((l as { name?: unknown }).name ?? "")).filter((l) => l !== "") : [];
  if (name === "" || publicKey === "") return { status: 422, body: { message: "Invalid request: name and public_key are required." } };
  if (body["group_id"] !== DEFAULT_RUNNER_GROUP.id) return NOT_FOUND;
  // GitHub's minimum for configuring a runner (community discussion 194762); the wording is the twin's.
  if (compareVersions(version, MIN_REGISTRATION_VERSION) < 0) {
    return {
      status: 422,
      body: { message: `Runner version v${version} is deprecated and cannot be registered. The minimum supported version is v${MIN_REGISTRATION_VERSION}.` },
    };
  }
  const existing = ctx.state.runnerNamed(scope, name);
  if (existing && body["replace"] !== true) return { status: 409, body: { message: `Already exists - A runner with the name ${name} already exists.` } };
  if (existing?.busy) return { status: 422, body: { message: `Bad request - Runner "${name}" is still running a job"` } };
  if (existing) ctx.state.deleteRunner(existing);
  const runner: Runner = ctx.state.createRunner({
    name,
    scope,
    labels,
    ephemeral: body["ephemeral"] === true,
    groupId: DEFAULT_RUNNER_GROUP.id,
    registration: "token",
    jit: undefined,
    secret: publicKey,
  });
  const services = actionsServiceUrls(ctx.urls);
  return {
    status: 200,
    body: { id: runner.id, name: runner.name, authorization: { authorization_url: services.token, server_url: services.broker, client_id: runner.clientId } },
  };
}

function removeRunner(ctx: RunnerAdminContext, scope: RunnerScope, call: RunnerCall): RunnerReply {
  const runner = ctx.state.runnersIn(scope).find((r) => r.id === Number(call.params["runner_id"]));
  if (!runner) return NOT_FOUND;
  if (runner.busy) return { status: 422, body: { message: `Bad request - Runner "${runner.name}" is still running a job"` } };
  ctx.state.deleteRunner(runner);
  return { status: 204 };
}
