// Tests of the GitHub twin itself: it must behave like api.github.com (OpenAPI conformance,
// authentication, runner/job state machine, webhooks, rate limits) or the service tests built on
// it prove nothing.

import { createSign } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createAppAuth } from "@octokit/auth-app";
import { Octokit } from "@octokit/rest";
import { verify as verifySignature } from "@octokit/webhooks-methods";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { RunnerStart } from "./contract.js";
import { GitHubTwin, type GitHubTwinOptions, type TwinDelivery } from "./github.js";
import { GitHubRestApi, type RestDependencies } from "./github-routes.js";
import {
  gitHubOperation,
  gitHubResponseExamples,
  matchGitHubPath,
  openApiToJsonSchema,
  validateGitHubRequest,
  validateGitHubResponse,
  validateGitHubWebhook,
} from "./openapi.js";

// ---------------------------------------------------------------------------------------------
// Helpers

interface ApiResponse {
  status: number;
  headers: Headers;
  text: string;
  json: unknown;
}

type Obj = Record<string, unknown>;

async function call(
  twin: GitHubTwin,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<ApiResponse> {
  const headers: Record<string, string> = { accept: "application/vnd.github+json", ...opts.headers };
  if (opts.token) headers["authorization"] = `Bearer ${opts.token}`;
  if (opts.body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(`${twin.url}${path}`, {
    method,
    headers,
    body: opts.body === undefined ? undefined : typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body),
    signal: opts.signal,
  });
  const text = await response.text();
  const isJson = response.headers.get("content-type")?.startsWith("application/json") ?? false;
  return { status: response.status, headers: response.headers, text, json: isJson ? (JSON.parse(text) as unknown) : undefined };
}

function obj(value: unknown): Obj {
  expect(value).toBeTypeOf("object");
  return value as Obj;
}

/** RS256 app JWT, signed like universal-github-app-jwt does (claims overridable for tests). */
function appJwt(appId: number, privateKeyPem: string, claims: { iat?: number; exp?: number } = {}): string {
  const now = Math.floor(Date.now() / 1000);
  const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const unsigned = `${encode({ alg: "RS256", typ: "JWT" })}.${encode({ iat: now - 30, exp: now + 540, iss: appId, ...claims })}`;
  const signature = createSign("RSA-SHA256").update(unsigned).sign(privateKeyPem).toString("base64url");
  return `${unsigned}.${signature}`;
}

interface ReceivedHook {
  headers: IncomingMessage["headers"];
  body: string;
  payload: Obj;
}

/** A webhook receiver answering `status()` (default 200) and keeping what it got. */
async function startReceiver(status: () => number = () => 200) {
  const received: ReceivedHook[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      received.push({ headers: req.headers, body, payload: JSON.parse(body) as Obj });
      res.writeHead(status(), { "content-type": "text/plain" }).end("thanks");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  const close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return { url, received, close };
}

function workflowJob(hook: ReceivedHook): Obj {
  return obj(hook.payload["workflow_job"]);
}

/** Events the receiver got for one job, as "action/status". */
function eventsFor(received: ReceivedHook[], jobId: number): string[] {
  return received.filter((h) => workflowJob(h)["id"] === jobId).map((h) => `${String(h.payload["action"])}/${String(workflowJob(h)["status"])}`);
}

async function jitRunner(twin: GitHubTwin, token: string, path: string, name: string, labels: string[]) {
  const res = await call(twin, "POST", `${path}/actions/runners/generate-jitconfig`, { token, body: { name, runner_group_id: 1, labels } });
  expect(res.status).toBe(201);
  const body = obj(res.json);
  return { runner: obj(body["runner"]), start: { kind: "jit", jitconfig: String(body["encoded_jit_config"]) } satisfies RunnerStart };
}

const twins: GitHubTwin[] = [];
async function startTwin(opts?: GitHubTwinOptions): Promise<GitHubTwin> {
  const twin = await GitHubTwin.start(opts);
  twins.push(twin);
  return twin;
}
afterAll(async () => {
  await Promise.all(twins.map((t) => t.close()));
});

// ---------------------------------------------------------------------------------------------

describe("openapi validator", () => {
  it("turns OpenAPI nullable into JSON Schema unions", () => {
    expect(openApiToJsonSchema({ type: "string", nullable: true, enum: ["a"] })).toEqual({ type: ["string", "null"], enum: ["a", null] });
    expect(openApiToJsonSchema({ allOf: [{ type: "object" }], nullable: true })).toEqual({ anyOf: [{ allOf: [{ type: "object" }] }, { type: "null" }] });
    // A property called "nullable" is a property, not the keyword.
    expect(openApiToJsonSchema({ properties: { nullable: { type: "boolean" } } })).toEqual({ properties: { nullable: { type: "boolean" } } });
  });

  it("matches concrete paths to templates, literal segments first, also under /api/v3", () => {
    expect(matchGitHubPath("POST", "/repos/o/r/actions/runners/generate-jitconfig")?.template).toBe("/repos/{owner}/{repo}/actions/runners/generate-jitconfig");
    expect(matchGitHubPath("GET", "/api/v3/orgs/acme/actions/runners/7")).toEqual({
      template: "/orgs/{org}/actions/runners/{runner_id}",
      params: { org: "acme", runner_id: "7" },
    });
    expect(gitHubOperation("GET", "/nothing/here")).toBeUndefined();
  });

  it("reports wrong types, missing required fields, bad parameters and undocumented statuses", () => {
    const runner = { id: 1, name: "r", os: "Linux", status: "online", busy: false, labels: [{ name: "x" }] };
    expect(validateGitHubResponse("GET", "/repos/o/r/actions/runners/1", 200, runner)).toEqual([]);
    expect(validateGitHubResponse("GET", "/repos/o/r/actions/runners/1", 200, { ...runner, busy: "no" }).join()).toMatch(/\/busy must be boolean/);
    expect(validateGitHubResponse("DELETE", "/repos/o/r/actions/runners/1", 200, "").join()).toMatch(/status not documented/);
    expect(validateGitHubResponse("GET", "/repos/o/r/actions/runners/1", 404, { nope: 1 }).join()).toMatch(/message/);
    expect(validateGitHubRequest("POST", "/orgs/o/actions/runners/generate-jitconfig", { name: "x", labels: [] }).join()).toMatch(/runner_group_id/);
    expect(validateGitHubRequest("GET", "/repos/o/r/actions/runs?status=bogus").join()).toMatch(/query parameter status/);
    expect(validateGitHubRequest("GET", "/repos/o/r/actions/runners/abc").join()).toMatch(/path parameter runner_id must be integer/);
  });

  it("accepts the spec's own examples for every twin route (incl. the corrected GET /app/installations)", () => {
    // Defects of the examples themselves (the schemas are right; real responses have these fields).
    const exampleDefects: Record<string, RegExp> = {
      "GET /repos/{owner}/{repo}/actions/jobs/{job_id}": /required property 'created_at'/,
      "GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs": /required property 'created_at'/,
      "GET /repos/{owner}/{repo}": /required property 'language'/,
      "POST /app/hook/deliveries/{delivery_id}/attempts": /body must be object/,
      "POST /orgs/{org}/hooks/{hook_id}/deliveries/{delivery_id}/attempts": /body must be object/,
      "POST /repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}/attempts": /body must be object/,
    };
    const routes = new GitHubRestApi({} as RestDependencies).routes();
    let checked = 0;
    for (const route of routes) {
      const name = `${route.method} ${route.template}`;
      const status = route.method === "POST" ? (route.template.endsWith("/attempts") ? 202 : 201) : route.method === "DELETE" ? 204 : 200;
      for (const example of gitHubResponseExamples(route.method, route.template, status)) {
        const problems = validateGitHubResponse(route.method, route.template, status, example);
        expect(
          problems.filter((p) => !exampleDefects[name]?.test(p)),
          name,
        ).toEqual([]);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(20);
  });

  it("validates webhook payloads against @octokit/openapi-webhooks", () => {
    expect(validateGitHubWebhook("workflow_job", "queued", { action: "queued" }).join()).toMatch(/repository/);
    expect(validateGitHubWebhook("workflow_job", "exploded", {})).toEqual(["no webhook schema webhook-workflow-job-exploded in @octokit/openapi-webhooks"]);
  });

  it("every twin route exists in the spec with the documentation_url GitHub uses", () => {
    // Route definitions only: no handler runs, so no dependencies are needed.
    const routes = new GitHubRestApi({} as RestDependencies).routes();
    expect(routes.length).toBeGreaterThanOrEqual(26);
    for (const route of routes) expect(gitHubOperation(route.method, route.template)?.docsUrl, `${route.method} ${route.template}`).toBe(route.docs);
  });
});

// ---------------------------------------------------------------------------------------------

describe("GitHub twin", () => {
  let twin: GitHubTwin;
  let pat: string;
  let app: ReturnType<GitHubTwin["createApp"]>;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  const secret = "It's a Secret to Everybody";

  beforeAll(async () => {
    twin = await startTwin({ jobDurationMs: 20 });
    receiver = await startReceiver();
    pat = twin.createPat();
    twin.addRepo("octo-org/app", { installationId: 4242 });
    twin.addRepo("octo-org/other", { installationId: 4242 });
    twin.addRepo("octo-org/private");
    twin.addRepo("solo/tool", { ownerType: "User" });
    app = twin.createApp();
    twin.addWebhook({ url: receiver.url, secret });
  });
  afterAll(async () => {
    await receiver.close();
  });
  afterEach(() => {
    twin.faults.intercept = undefined;
  });

  describe("authentication", () => {
    it("accepts a PAT as `token` and as `Bearer`, and rejects anything else with GitHub's errors", async () => {
      for (const scheme of ["token", "Bearer"]) {
        const res = await call(twin, "GET", "/repos/octo-org/app", { headers: { authorization: `${scheme} ${pat}` } });
        expect(res.status).toBe(200);
        expect(obj(res.json)["full_name"]).toBe("octo-org/app");
      }
      const bad = await call(twin, "GET", "/repos/octo-org/app/actions/runners", { token: "ghp_notatoken" });
      expect(bad.status).toBe(401);
      expect(bad.json).toEqual({ message: "Bad credentials", documentation_url: "https://docs.github.com/rest", status: "401" });
      const anonymous = await call(twin, "GET", "/repos/octo-org/app/actions/runners");
      expect(anonymous.status).toBe(401);
      expect(obj(anonymous.json)["message"]).toBe("Requires authentication");
      const user = await call(twin, "GET", "/user", { token: pat });
      expect(obj(user.json)["login"]).toMatch(/^pat-user-/);
    });

    it("sends GitHub's headers on every response", async () => {
      const res = await call(twin, "GET", "/repos/octo-org/app/actions/runners", { token: pat });
      for (const name of [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "x-ratelimit-used",
        "x-ratelimit-resource",
        "x-github-request-id",
        "etag",
      ]) {
        expect(res.headers.get(name), name).toBeTruthy();
      }
      expect(res.headers.get("x-ratelimit-limit")).toBe("5000");
      const unauthorized = await call(twin, "GET", "/repos/octo-org/app", { token: "nope" });
      expect(unauthorized.headers.get("x-github-request-id")).toMatch(/^[0-9A-F]{4}:/);
      expect(unauthorized.headers.get("x-ratelimit-limit")).toBe("60");
    });

    it("verifies app JWTs like GitHub, with the messages octokit's clock-skew retry looks for", async () => {
      const now = Math.floor(Date.now() / 1000);
      const ok = await call(twin, "GET", "/app", { token: appJwt(app.appId, app.privateKeyPem) });
      expect(ok.status).toBe(200);
      expect(obj(ok.json)["slug"]).toBe(app.slug);
      const cases: [string, string][] = [
        [appJwt(app.appId, app.privateKeyPem, { exp: now + 3600 }), "'Expiration time' claim ('exp') is too far in the future"],
        [
          appJwt(app.appId, app.privateKeyPem, { iat: now - 700, exp: now - 100 }),
          "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires",
        ],
        [
          appJwt(app.appId, app.privateKeyPem, { iat: now + 120 }),
          "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued",
        ],
        [appJwt(app.appId + 1, app.privateKeyPem), "A JSON web token could not be decoded"],
        [appJwt(app.appId, twin.createApp().privateKeyPem), "A JSON web token could not be decoded"],
      ];
      for (const [jwt, message] of cases) {
        const res = await call(twin, "GET", "/app", { token: jwt });
        expect(res.status).toBe(401);
        expect(obj(res.json)["message"]).toBe(message);
      }
      // A PAT is not an app credential, and a JWT only works on /app endpoints.
      expect(obj((await call(twin, "GET", "/app/installations", { token: pat })).json)["message"]).toBe("A JSON web token could not be decoded");
      expect((await call(twin, "GET", "/repos/octo-org/app/actions/runners", { token: appJwt(app.appId, app.privateKeyPem) })).status).toBe(401);
    });

    it("issues installation tokens scoped to the installation's repositories", async () => {
      const jwt = appJwt(app.appId, app.privateKeyPem);
      const installation = await call(twin, "GET", "/repos/octo-org/app/installation", { token: jwt });
      expect(obj(installation.json)["id"]).toBe(4242);
      expect((await call(twin, "GET", "/repos/octo-org/private/installation", { token: jwt })).status).toBe(404);
      const created = await call(twin, "POST", "/app/installations/4242/access_tokens", { token: jwt });
      expect(created.status).toBe(201);
      const body = obj(created.json);
      expect(body["token"]).toMatch(/^ghs_[A-Za-z0-9]{36}$/);
      expect(body["repository_selection"]).toBe("selected");
      expect(Date.parse(String(body["expires_at"])) - Date.now()).toBeGreaterThan(59 * 60 * 1000);
      const token = String(body["token"]);
      expect(twin.issuedSecrets).toContain(token);
      expect((await call(twin, "GET", "/repos/octo-org/app/actions/runners", { token })).status).toBe(200);
      expect((await call(twin, "GET", "/repos/octo-org/private/actions/runners", { token })).status).toBe(404);
      const repos = obj((await call(twin, "GET", "/installation/repositories", { token })).json);
      expect(repos["total_count"]).toBe(2);
      expect(obj((await call(twin, "GET", "/user", { token })).json)["message"]).toBe("Resource not accessible by integration");
      // Narrowed to one repository and read-only actions: runner administration is refused.
      const narrow = obj(
        (await call(twin, "POST", "/app/installations/4242/access_tokens", { token: jwt, body: { repositories: ["other"], permissions: { actions: "read" } } }))
          .json,
      );
      expect((await call(twin, "GET", "/repos/octo-org/app/actions/runs", { token: String(narrow["token"]) })).status).toBe(404);
      expect((await call(twin, "GET", "/repos/octo-org/other/actions/runs", { token: String(narrow["token"]) })).status).toBe(200);
      expect((await call(twin, "POST", "/repos/octo-org/other/actions/runners/registration-token", { token: String(narrow["token"]) })).status).toBe(403);
      const foreign = await call(twin, "POST", "/app/installations/4242/access_tokens", { token: jwt, body: { repositories: ["private"] } });
      expect(foreign.status).toBe(422);
    });

    it("works with @octokit/auth-app and @octokit/rest as a GitHub App", async () => {
      const octokit = new Octokit({
        baseUrl: twin.url,
        authStrategy: createAppAuth,
        auth: { appId: app.appId, privateKey: app.privateKeyPem, installationId: 4242 },
      });
      const { data } = await octokit.rest.actions.listSelfHostedRunnersForRepo({ owner: "octo-org", repo: "app" });
      expect(data.total_count).toBeGreaterThanOrEqual(0);
      const { data: runs } = await octokit.rest.actions.listWorkflowRunsForRepo({ owner: "octo-org", repo: "app", status: "queued" });
      expect(Array.isArray(runs.workflow_runs)).toBe(true);
    });

    it("expires installation tokens after an hour and runner tokens too", async () => {
      let now = Date.now();
      const clocked = await startTwin({ clock: () => now });
      clocked.addRepo("acme/api", { installationId: 7 });
      const clockedApp = clocked.createApp();
      const created = obj(
        (await call(clocked, "POST", "/app/installations/7/access_tokens", { token: appJwt(clockedApp.appId, clockedApp.privateKeyPem) })).json,
      );
      const token = String(created["token"]);
      const registration = String(obj((await call(clocked, "POST", "/repos/acme/api/actions/runners/registration-token", { token })).json)["token"]);
      expect((await call(clocked, "GET", "/repos/acme/api", { token })).status).toBe(200);
      now += 61 * 60 * 1000;
      expect((await call(clocked, "GET", "/repos/acme/api", { token })).status).toBe(401);
      const exit = await clocked.runRunner(
        { kind: "token", registrationToken: registration, url: `${clocked.webUrl}/acme/api`, name: "late", labels: ["x"], ephemeral: true },
        AbortSignal.abort(),
      );
      expect(exit.ok).toBe(false);
      expect(exit.message).toMatch(/registration token is invalid or expired/);
    });
  });

  describe("self-hosted runners", () => {
    it("creates a JIT runner that exists at once, offline, and refuses duplicates and invalid bodies", async () => {
      const { runner, start } = await jitRunner(twin, pat, "/repos/octo-org/app", "jit-one", ["self-hosted", "linux"]);
      expect(runner).toMatchObject({ name: "jit-one", status: "offline", busy: false, ephemeral: true, runner_group_id: 1 });
      expect(twin.issuedSecrets).toContain(start.jitconfig);
      const files = JSON.parse(Buffer.from(start.jitconfig, "base64").toString()) as Record<string, string>;
      expect(Object.keys(files).sort()).toEqual([".credentials", ".credentials_rsaparams", ".runner"]);
      const settings = JSON.parse(Buffer.from(files[".runner"] ?? "", "base64").toString()) as Obj;
      expect(settings).toMatchObject({
        AgentId: runner["id"],
        AgentName: "jit-one",
        PoolId: 1,
        GitHubUrl: `${twin.webUrl}/octo-org/app`,
        WorkFolder: "_work",
        Ephemeral: true,
      });
      expect(settings["ServerUrl"]).toBeTypeOf("string");

      const again = await call(twin, "POST", "/repos/octo-org/app/actions/runners/generate-jitconfig", {
        token: pat,
        body: { name: "jit-one", runner_group_id: 1, labels: ["x"] },
      });
      expect(again.status).toBe(409);
      expect(obj(again.json)["message"]).toBe("Already exists - A runner with the name jit-one already exists.");
      for (const body of [
        { name: "n", runner_group_id: 1, labels: [] },
        { name: "n", runner_group_id: 1, labels: Array.from({ length: 101 }, (_, i) => `l${i}`) },
        { runner_group_id: 1, labels: ["x"] },
      ]) {
        const res = await call(twin, "POST", "/repos/octo-org/app/actions/runners/generate-jitconfig", { token: pat, body });
        expect(res.status, JSON.stringify(body).slice(0, 60)).toBe(422);
        expect(obj(res.json)["message"]).toMatch(/^Invalid request\.\n\n/);
      }
      const got = await call(twin, "GET", `/repos/octo-org/app/actions/runners/${String(runner["id"])}`, { token: pat });
      expect(obj(got.json)["name"]).toBe("jit-one");
      expect((await call(twin, "DELETE", `/repos/octo-org/app/actions/runners/${String(runner["id"])}`, { token: pat })).status).toBe(204);
      expect((await call(twin, "GET", `/repos/octo-org/app/actions/runners/${String(runner["id"])}`, { token: pat })).status).toBe(404);
      expect((await call(twin, "DELETE", `/repos/octo-org/app/actions/runners/${String(runner["id"])}`, { token: pat })).status).toBe(404);
      // Its config no longer works once the registration is gone.
      expect((await twin.runRunner(start, AbortSignal.abort())).message).toMatch(/registration has been deleted/);
    });

    it("runs a queued job on a JIT runner: in_progress, completed, runner deregistered, config single-use", async () => {
      const queued = await twin.queueJob({ repo: "octo-org/app", labels: ["self-hosted", "gpu"] });
      expect(queued.status).toBe("queued");
      const { runner, start } = await jitRunner(twin, pat, "/repos/octo-org/app", `runner-${queued.id}`, ["self-hosted", "GPU"]);
      const exit = await twin.runRunner(start, new AbortController().signal);
      expect(exit).toEqual({ ok: true, jobId: queued.id, message: "job completed" });
      await twin.deliveriesSettled();
      expect(eventsFor(receiver.received, queued.id)).toEqual(["queued/queued", "in_progress/in_progress", "completed/completed"]);
      const job = obj((await call(twin, "GET", `/repos/octo-org/app/actions/jobs/${queued.id}`, { token: pat })).json);
      expect(job).toMatchObject({
        status: "completed",
        conclusion: "success",
        runner_id: runner["id"],
        runner_name: `runner-${queued.id}`,
        runner_group_name: "Default",
      });
      expect(twin.runners().some((r) => r.id === runner["id"])).toBe(false);
      const reuse = await twin.runRunner(start, new AbortController().signal);
      expect(reuse.ok).toBe(false);
    });

    it("keeps a JIT config single-use even when the runner never got a job", async () => {
      const { start } = await jitRunner(twin, pat, "/repos/octo-org/app", "idle-jit", ["never-matches"]);
      const stopped = await twin.runRunner(start, AbortSignal.abort());
      expect(stopped).toEqual({ ok: false, message: "stopped" });
      expect(twin.runners().find((r) => r.name === "idle-jit")).toMatchObject({ status: "offline" });
      expect((await twin.runRunner(start, new AbortController().signal)).message).toMatch(/already been used/);
    });

    it("gives a job queued later to a runner that is already waiting", async () => {
      const { start } = await jitRunner(twin, pat, "/repos/octo-org/app", "early-bird", ["early"]);
      const running = twin.runRunner(start, new AbortController().signal);
      await expect.poll(() => twin.runners().find((r) => r.name === "early-bird")?.status).toBe("online");
      const job = await twin.queueJob({ repo: "octo-org/app", labels: ["early"] });
      expect(await running).toMatchObject({ ok: true, jobId: job.id });
    });

    it("registers classic runners with a registration token (reusable, --replace) and removes them with a remove token", async () => {
      const registration = obj((await call(twin, "POST", "/repos/octo-org/app/actions/runners/registration-token", { token: pat })).json);
      expect(registration["token"]).toMatch(/^[A-Z0-9]{29}$/);
      expect(Date.parse(String(registration["expires_at"]))).toBeGreaterThan(Date.now() + 59 * 60 * 1000);
      const start: RunnerStart = {
        kind: "token",
        registrationToken: String(registration["token"]),
        url: `${twin.webUrl}/octo-org/app`,
        name: "classic",
        labels: ["classic"],
        ephemeral: true,
      };
      expect(await twin.runRunner(start, AbortSignal.abort())).toEqual({ ok: false, message: "stopped" });
      const first = twin.runners().find((r) => r.name === "classic");
      expect(first).toMatchObject({ status: "offline", registration: "token", scope: "octo-org/app" });
      // Same token, same name: the registration is replaced.
      await twin.runRunner(start, AbortSignal.abort());
      const second = twin.runners().filter((r) => r.name === "classic");
      expect(second).toHaveLength(1);
      expect(second[0]?.id).not.toBe(first?.id);

      const orgRemove = String(obj((await call(twin, "POST", "/orgs/octo-org/actions/runners/remove-token", { token: pat })).json)["token"]);
      await expect(twin.removeRunner(start, orgRemove)).rejects.toThrow(/remove token is invalid/);
      const remove = String(obj((await call(twin, "POST", "/repos/octo-org/app/actions/runners/remove-token", { token: pat })).json)["token"]);
      expect(await twin.removeRunner(start, remove)).toEqual({ removed: true });
      expect(await twin.removeRunner(start, remove)).toEqual({ removed: false });
      const wrongScope = await twin.runRunner({ ...start, url: `${twin.webUrl}/octo-org/other` }, AbortSignal.abort());
      expect(wrongScope.message).toMatch(/registration token is invalid/);
    });

    it("serves jobs of every repository of an organization from an org runner, only with all labels", async () => {
      const job = await twin.queueJob({ repo: "octo-org/other", labels: ["org-wide", "big"] });
      const partial = await jitRunner(twin, pat, "/orgs/octo-org", "org-partial", ["org-wide"]);
      const waiting = new AbortController();
      const partialRun = twin.runRunner(partial.start, waiting.signal);
      const { start } = await jitRunner(twin, pat, "/orgs/octo-org", "org-full", ["org-wide", "big", "extra"]);
      expect(await twin.runRunner(start, new AbortController().signal)).toMatchObject({ ok: true, jobId: job.id });
      waiting.abort();
      expect(await partialRun).toEqual({ ok: false, message: "stopped" });
      const orgRunners = obj((await call(twin, "GET", "/orgs/octo-org/actions/runners?name=org-partial", { token: pat })).json);
      expect(orgRunners["total_count"]).toBe(1);
      expect((await call(twin, "GET", "/orgs/solo/actions/runners", { token: pat })).status).toBe(404);
    });

    it("refuses to delete a busy runner; deleting an idle one ends its runner process", async () => {
      const slow = await startTwin({ jobDurationMs: 60_000 });
      slow.addRepo("acme/slow");
      const slowPat = slow.createPat();
      const slowJob = await slow.queueJob({ repo: "acme/slow", labels: ["slow"] });
      const { runner, start } = await jitRunner(slow, slowPat, "/repos/acme/slow", "busy-runner", ["slow"]);
      const running = slow.runRunner(start, new AbortController().signal);
      await expect.poll(() => slow.jobs().find((j) => j.id === slowJob.id)?.status).toBe("in_progress");
      const refused = await call(slow, "DELETE", `/repos/acme/slow/actions/runners/${String(runner["id"])}`, { token: slowPat });
      expect(refused.status).toBe(422);
      expect(obj(refused.json)["message"]).toBe('Bad request - Runner "busy-runner" is still running a job"');
      await slow.cancelJob(slowJob.id);
      expect(await running).toMatchObject({ ok: true, jobId: slowJob.id });
      expect(slow.jobs().find((j) => j.id === slowJob.id)).toMatchObject({ status: "completed", conclusion: "cancelled" });

      const idle = await jitRunner(twin, pat, "/repos/octo-org/app", "idle-then-deleted", ["nothing-queued"]);
      const idleRun = twin.runRunner(idle.start, new AbortController().signal);
      await expect.poll(() => twin.runners().find((r) => r.name === "idle-then-deleted")?.status).toBe("online");
      expect((await call(twin, "DELETE", `/repos/octo-org/app/actions/runners/${String(idle.runner["id"])}`, { token: pat })).status).toBe(204);
      expect((await idleRun).message).toMatch(/registration has been deleted/);
    });

    it("fails the job when the runner is shut down while running it", async () => {
      const slow = await startTwin({ jobDurationMs: 60_000 });
      slow.addRepo("acme/shutdown");
      const token = slow.createPat();
      const job = await slow.queueJob({ repo: "acme/shutdown", labels: ["x"] });
      const { start } = await jitRunner(slow, token, "/repos/acme/shutdown", "doomed", ["x"]);
      const stop = new AbortController();
      const running = slow.runRunner(start, stop.signal);
      await expect.poll(() => slow.jobs()[0]?.status).toBe("in_progress");
      stop.abort();
      expect(await running).toMatchObject({ ok: false, jobId: job.id });
      expect(slow.jobs()[0]).toMatchObject({ status: "completed", conclusion: "failure" });
      expect(slow.runners()).toEqual([]);
    });
  });

  describe("assignment", () => {
    async function twoJobsOneRunner(assignment: "oldest" | "own") {
      const t = await startTwin({ assignment });
      t.addRepo("acme/assign");
      const token = t.createPat();
      const older = await t.queueJob({ repo: "acme/assign", labels: ["same"] });
      const newer = await t.queueJob({ repo: "acme/assign", labels: ["same"] });
      const { start } = await jitRunner(t, token, "/repos/acme/assign", `runner-${newer.id}`, ["same"]);
      const exit = await t.runRunner(start, new AbortController().signal);
      return { exit, older, newer };
    }

    it('"oldest" gives an idle runner the oldest eligible job, whatever its name says', async () => {
      const { exit, older } = await twoJobsOneRunner("oldest");
      expect(exit.jobId).toBe(older.id);
    });

    it('"own" gives a runner the job its name ends with', async () => {
      const { exit, newer } = await twoJobsOneRunner("own");
      expect(exit.jobId).toBe(newer.id);
    });
  });

  describe("jobs, runs and webhooks", () => {
    it("delivers signed webhooks with GitHub's headers and a payload built from the twin's state", async () => {
      const job = await twin.queueJob({ repo: "octo-org/app", labels: ["hooks"] });
      const hook = receiver.received.find((h) => workflowJob(h)["id"] === job.id);
      expect(hook).toBeDefined();
      if (!hook) return;
      expect(hook.headers["x-github-event"]).toBe("workflow_job");
      expect(hook.headers["x-github-delivery"]).toMatch(/^[0-9a-f-]{36}$/);
      expect(hook.headers["x-github-hook-id"]).toMatch(/^\d+$/);
      expect(hook.headers["user-agent"]).toMatch(/^GitHub-Hookshot\/[0-9a-f]{7}$/);
      expect(hook.headers["content-type"]).toBe("application/json");
      expect(await verifySignature(secret, hook.body, String(hook.headers["x-hub-signature-256"]))).toBe(true);
      expect(await verifySignature("wrong", hook.body, String(hook.headers["x-hub-signature-256"]))).toBe(false);
      expect(hook.headers["x-hub-signature"]).toMatch(/^sha1=[0-9a-f]{40}$/);
      const repository = obj(hook.payload["repository"]);
      expect(repository).toMatchObject({ full_name: "octo-org/app", name: "app", html_url: `${twin.webUrl}/octo-org/app` });
      expect(obj(repository["owner"])["login"]).toBe("octo-org");
      expect(obj(hook.payload["installation"])["id"]).toBe(4242);
      expect(obj(hook.payload["organization"])["login"]).toBe("octo-org");
      expect(workflowJob(hook)).toMatchObject({
        id: job.id,
        run_id: job.run_id,
        labels: ["hooks"],
        status: "queued",
        conclusion: null,
        runner_id: null,
        steps: [],
      });
      expect(String(workflowJob(hook)["run_url"])).toBe(`${twin.url}/repos/octo-org/app/actions/runs/${job.run_id}`);
      await twin.cancelJob(job.id);
    });

    it("omits installation for repositories without one and organization for user-owned ones", async () => {
      const job = await twin.queueJob({ repo: "solo/tool", labels: ["x"] });
      const hook = receiver.received.find((h) => workflowJob(h)["id"] === job.id);
      expect(hook?.payload).not.toHaveProperty("installation");
      expect(hook?.payload).not.toHaveProperty("organization");
      await twin.cancelJob(job.id);
    });

    it("sends payloads that conform to the workflow_job webhook schemas, for every action", async () => {
      const waiting = await twin.queueJob({ repo: "octo-org/app", labels: ["schema"], waiting: true });
      expect(waiting.status).toBe("waiting");
      await twin.approveJob(waiting.id);
      const { start } = await jitRunner(twin, pat, "/repos/octo-org/app", "schema-runner", ["schema"]);
      await twin.runRunner(start, new AbortController().signal);
      const cancelled = await twin.queueJob({ repo: "solo/tool", labels: ["never"] });
      await twin.cancelJob(cancelled.id);
      await twin.deliveriesSettled();
      expect(eventsFor(receiver.received, waiting.id)).toEqual(["waiting/waiting", "queued/queued", "in_progress/in_progress", "completed/completed"]);
      expect(eventsFor(receiver.received, cancelled.id)).toEqual(["queued/queued", "completed/completed"]);
      const hooks = receiver.received.filter((h) => [waiting.id, cancelled.id].includes(Number(workflowJob(h)["id"])));
      for (const hook of hooks) expect(validateGitHubWebhook("workflow_job", String(hook.payload["action"]), hook.payload)).toEqual([]);
      const done = hooks.find((h) => workflowJob(h)["id"] === waiting.id && h.payload["action"] === "completed");
      expect(workflowJob(done ?? { headers: {}, body: "", payload: {} })).toMatchObject({ conclusion: "success", runner_name: "schema-runner" });
      expect(twin.jobs().find((j) => j.id === cancelled.id)).toMatchObject({ status: "completed", conclusion: "cancelled", runner_id: null });
    });

    it("does not deliver when asked not to, and lists runs by status with pagination", async () => {
      twin.addRepo("octo-org/paged");
      const before = receiver.received.length;
      const jobs = [];
      for (let i = 0; i < 3; i++) jobs.push(await twin.queueJob({ repo: "octo-org/paged", labels: ["paged"], deliver: false }));
      const second = await twin.queueJob({ repo: "octo-org/paged", labels: ["paged"], runId: jobs[0]?.run_id, deliver: false });
      expect(receiver.received.length).toBe(before);
      expect(second.run_id).toBe(jobs[0]?.run_id);
      const page1 = await call(twin, "GET", "/repos/octo-org/paged/actions/runs?status=queued&per_page=2", { token: pat });
      const body = obj(page1.json);
      expect(body["total_count"]).toBe(3);
      expect((body["workflow_runs"] as Obj[]).map((r) => r["id"])).toEqual([jobs[2]?.run_id, jobs[1]?.run_id]);
      expect(page1.headers.get("link")).toMatch(/page=2>; rel="next"/);
      const page2 = obj((await call(twin, "GET", "/repos/octo-org/paged/actions/runs?status=queued&per_page=2&page=2", { token: pat })).json);
      expect((page2["workflow_runs"] as Obj[]).map((r) => r["id"])).toEqual([jobs[0]?.run_id]);
      const runJobs = obj((await call(twin, "GET", `/repos/octo-org/paged/actions/runs/${jobs[0]?.run_id}/jobs?filter=all`, { token: pat })).json);
      expect((runJobs["jobs"] as Obj[]).map((j) => j["id"])).toEqual([jobs[0]?.id, second.id]);
      for (const job of [...jobs, second]) await twin.cancelJob(job.id);
      const cancelled = obj((await call(twin, "GET", "/repos/octo-org/paged/actions/runs?status=cancelled", { token: pat })).json);
      expect(cancelled["total_count"]).toBe(3);
      expect(obj((await call(twin, "GET", "/repos/octo-org/paged/actions/runs?status=queued", { token: pat })).json)["total_count"]).toBe(0);
    });

    it("answers 304 to a matching If-None-Match without spending the primary limit", async () => {
      const first = await call(twin, "GET", "/repos/octo-org/app/actions/runners", { token: pat });
      const etag = first.headers.get("etag") ?? "";
      expect(etag).toMatch(/^W\/".+"$/);
      const used = Number(first.headers.get("x-ratelimit-used"));
      const cached = await call(twin, "GET", "/repos/octo-org/app/actions/runners", { token: pat, headers: { "if-none-match": etag } });
      expect(cached.status).toBe(304);
      expect(cached.text).toBe("");
      expect(Number(cached.headers.get("x-ratelimit-used"))).toBe(used);
      await jitRunner(twin, pat, "/repos/octo-org/app", "etag-buster", ["x"]);
      const changed = await call(twin, "GET", "/repos/octo-org/app/actions/runners", { token: pat, headers: { "if-none-match": etag } });
      expect(changed.status).toBe(200);
    });
  });

  describe("app webhook deliveries", () => {
    it("lists, shows and redelivers deliveries of the app's webhook; failures are recorded, not retried", async () => {
      const t = await startTwin();
      let answer = 500;
      const appReceiver = await startReceiver(() => answer);
      const hookApp = t.createApp();
      t.addRepo("acme/hooks", { installationId: 99 });
      t.addRepo("acme/uninstalled");
      t.addWebhook({ url: appReceiver.url, secret: "s", appId: hookApp.appId });
      t.addWebhook({ url: "http://127.0.0.1:1/refused", secret: "s" });
      const jwt = appJwt(hookApp.appId, hookApp.privateKeyPem);

      const job = await t.queueJob({ repo: "acme/hooks", labels: ["x"] });
      await t.queueJob({ repo: "acme/uninstalled", labels: ["x"] });
      await t.cancelJob(job.id);
      // The app hook only hears about its installation's repository; it failed both times, once.
      expect(appReceiver.received).toHaveLength(2);
      const refused = t.deliveries().filter((d) => d.url.endsWith("/refused"));
      expect(refused.map((d) => [d.status, d.status_code])).toEqual([
        ["failed to connect to host", 0],
        ["failed to connect to host", 0],
        ["failed to connect to host", 0],
      ]);

      const list = await call(t, "GET", "/app/hook/deliveries?per_page=1", { token: jwt });
      expect(list.status).toBe(200);
      const [newest] = list.json as Obj[];
      expect(newest).toMatchObject({
        event: "workflow_job",
        action: "completed",
        status: "Invalid HTTP Response: 500",
        status_code: 500,
        redelivery: false,
        installation_id: 99,
      });
      const next = /<([^>]+)>; rel="next"/.exec(list.headers.get("link") ?? "")?.[1] ?? "";
      const older = (await call(t, "GET", next.replace(t.url, ""), { token: jwt })).json as Obj[];
      expect(older.map((d) => d["action"])).toEqual(["queued"]);
      const detail = obj((await call(t, "GET", `/app/hook/deliveries/${String(newest?.["id"])}`, { token: jwt })).json);
      expect(obj(obj(detail["request"])["headers"])["X-GitHub-Event"]).toBe("workflow_job");
      expect(obj(detail["response"])["payload"]).toBe("thanks");

      answer = 200;
      const attempt = await call(t, "POST", `/app/hook/deliveries/${String(newest?.["id"])}/attempts`, { token: jwt });
      expect(attempt.status).toBe(202);
      await t.deliveriesSettled();
      const redelivered = t.deliveries().at(-1) as TwinDelivery;
      expect(redelivered).toMatchObject({ guid: newest?.["guid"], redelivery: true, status: "OK", status_code: 200 });
      expect(appReceiver.received.at(-1)?.headers["x-github-delivery"]).toBe(newest?.["guid"]);
      // `payload` is the body byte for byte: its signature checks out.
      expect(await verifySignature("s", redelivered.payload, String(redelivered.request.headers["X-Hub-Signature-256"]))).toBe(true);
      const again = await t.redeliverWebhook(redelivered.id);
      expect(again.redelivery).toBe(true);
      expect(((await call(t, "GET", "/app/hook/deliveries?status=success", { token: jwt })).json as unknown[]).length).toBe(2);
      await appReceiver.close();
      expect(t.contractViolations).toEqual([]);
    });
  });

  describe("rate limits and faults", () => {
    it("enforces the secondary limit in points per minute with retry-after", async () => {
      const t = await startTwin({ secondaryRateLimit: { pointsPerMinute: 12, maxConcurrent: 100 } });
      t.addRepo("acme/limited");
      const token = t.createPat();
      expect((await call(t, "POST", "/repos/acme/limited/actions/runners/registration-token", { token })).status).toBe(201);
      expect((await call(t, "POST", "/repos/acme/limited/actions/runners/remove-token", { token })).status).toBe(201);
      expect((await call(t, "GET", "/repos/acme/limited/actions/runners", { token })).status).toBe(200);
      expect((await call(t, "GET", "/repos/acme/limited/actions/runners", { token })).status).toBe(200);
      const limited = await call(t, "POST", "/repos/acme/limited/actions/runners/registration-token", { token });
      expect(limited.status).toBe(403);
      expect(obj(limited.json)["message"]).toMatch(
        /^You have exceeded a secondary rate limit\. Please wait a few minutes before you try again\. If you reach out to GitHub Support for help, please include the request ID [0-9A-F:]+\.$/,
      );
      expect(obj(limited.json)["documentation_url"]).toBe("https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits");
      const retryAfter = Number(limited.headers.get("retry-after"));
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(t.secondaryLimitHits).toBe(1);
      expect(t.pointsSpent.get("user:pat-user-1")).toBe(12);
      // Another caller has its own budget.
      expect((await call(t, "GET", "/repos/acme/limited/actions/runners", { token: t.createPat() })).status).toBe(200);
    });

    it("caps concurrent requests per caller", async () => {
      const t = await startTwin({ secondaryRateLimit: { pointsPerMinute: 900, maxConcurrent: 2 } });
      t.addRepo("acme/busy");
      const token = t.createPat();
      t.faults.intercept = ({ path }) => (path === "/repos/acme/busy" ? { delayMs: 30_000 } : undefined);
      const abort = new AbortController();
      const slow = [call(t, "GET", "/repos/acme/busy", { token, signal: abort.signal }), call(t, "GET", "/repos/acme/busy", { token, signal: abort.signal })];
      await expect.poll(() => t.inFlight("user:pat-user-1")).toBe(2);
      const refused = await call(t, "GET", "/repos/acme/busy/actions/runners", { token });
      expect(refused.status).toBe(403);
      expect(refused.headers.get("retry-after")).toBe("1");
      expect((await call(t, "GET", "/repos/acme/busy/actions/runners", { token: t.createPat() })).status).toBe(200);
      abort.abort();
      await Promise.allSettled(slow);
    });

    it("enforces the primary limit and reports it in the headers and /rate_limit", async () => {
      const t = await startTwin({ primaryRateLimit: 3 });
      t.addRepo("acme/primary");
      const token = t.createPat();
      for (let i = 0; i < 3; i++) expect((await call(t, "GET", "/repos/acme/primary", { token })).status).toBe(200);
      const over = await call(t, "GET", "/repos/acme/primary", { token });
      expect(over.status).toBe(403);
      expect(obj(over.json)["message"]).toMatch(/^API rate limit exceeded for user ID \d+\.$/);
      expect(over.headers.get("x-ratelimit-remaining")).toBe("0");
      const status = obj((await call(t, "GET", "/rate_limit", { token })).json);
      expect(obj(obj(status["resources"])["core"])).toMatchObject({ limit: 3, used: 3, remaining: 0 });
    });

    it("injects faults and delays through faults.intercept, and records every request", async () => {
      const t = await startTwin();
      t.addRepo("acme/faulty");
      const token = t.createPat();
      t.faults.intercept = ({ method, path }) =>
        method === "POST" && path.endsWith("/generate-jitconfig") ? { status: 503, body: "upstream unavailable", headers: { "x-chaos": "1" } } : undefined;
      const failed = await call(t, "POST", "/repos/acme/faulty/actions/runners/generate-jitconfig", {
        token,
        body: { name: "a", runner_group_id: 1, labels: ["x"] },
      });
      expect(failed.status).toBe(503);
      expect(failed.text).toBe("upstream unavailable");
      expect(failed.headers.get("x-chaos")).toBe("1");
      expect(t.runners()).toEqual([]);
      t.faults.intercept = () => ({ delayMs: 1 });
      // twin.url is the GHES API base: requests arrive (and are recorded) under /api/v3.
      expect((await call(t, "GET", "/repos/acme/faulty/actions/runners?per_page=5", { token })).status).toBe(200);
      const last = t.requests.at(-1);
      expect(last).toMatchObject({ method: "GET", url: "/api/v3/repos/acme/faulty/actions/runners?per_page=5", status: 200, body: "" });
      expect(last?.headers["authorization"]).toBe(`Bearer ${token}`);
      expect(JSON.parse(last?.response ?? "{}")).toEqual({ total_count: 0, runners: [] });
      expect(t.requests[0]).toMatchObject({ status: 503, response: "upstream unavailable" });
    });
  });

  describe("contract", () => {
    it("records request violations of the caller", async () => {
      const t = await startTwin();
      t.addRepo("acme/strict");
      const token = t.createPat();
      await call(t, "POST", "/repos/acme/strict/actions/runners/generate-jitconfig", { token, body: { name: "x", labels: ["a"] } });
      await call(t, "GET", "/repos/acme/strict/actions/runs?status=bogus", { token });
      await call(t, "GET", "/repos/acme/strict/actions/artifacts", { token });
      await call(t, "GET", "/definitely/not/github", { token });
      expect(t.contractViolations.join("\n")).toMatch(/request: POST .*generate-jitconfig: request body must have required property 'runner_group_id'/);
      expect(t.contractViolations.join("\n")).toMatch(/request: GET .*actions\/runs: query parameter status/);
      expect(t.contractViolations.join("\n")).toMatch(
        /twin: GET \/repos\/\{owner\}\/\{repo\}\/actions\/artifacts exists in GitHub's API but the twin does not implement it/,
      );
      expect(t.contractViolations.join("\n")).toMatch(/request: GET \/definitely\/not\/github: no such operation/);
    });

    it("exercised every endpoint above without a single contract violation", async () => {
      // Touch the remaining endpoints, then check everything this twin answered.
      const jwt = appJwt(app.appId, app.privateKeyPem);
      expect((await call(twin, "GET", "/app/installations", { token: jwt })).status).toBe(200);
      expect((await call(twin, "GET", "/app/installations/4242", { token: jwt })).status).toBe(200);
      expect((await call(twin, "GET", "/app/installations/1", { token: jwt })).status).toBe(404);
      twin.addWebhook({ url: receiver.url, secret, appId: app.appId });
      const job = await twin.queueJob({ repo: "octo-org/app", labels: ["contract"] });
      const [delivery] = (await call(twin, "GET", "/app/hook/deliveries", { token: jwt })).json as Obj[];
      expect(delivery).toMatchObject({ action: "queued", status: "OK", installation_id: 4242 });
      expect((await call(twin, "GET", `/app/hook/deliveries/${String(delivery?.["id"])}`, { token: jwt })).status).toBe(200);
      expect((await call(twin, "POST", `/app/hook/deliveries/${String(delivery?.["id"])}/attempts`, { token: jwt })).status).toBe(202);
      await twin.cancelJob(job.id);
      await twin.deliveriesSettled();
      // Organization and repository webhooks (a PAT's way to its own deliveries).
      for (const [scope, base] of [
        [{ org: "octo-org" }, "/orgs/octo-org"],
        [{ repo: "octo-org/app" }, "/repos/octo-org/app"],
      ] as const) {
        const hookId = twin.addWebhook({ url: receiver.url, secret, ...scope });
        const hooks = (await call(twin, "GET", `${base}/hooks`, { token: pat })).json as Obj[];
        expect(hooks.map((h) => [h["id"], obj(h["config"])["url"]])).toEqual([[hookId, receiver.url]]);
        const scoped = await twin.queueJob({ repo: "octo-org/app", labels: ["contract"] });
        const [hookDelivery] = (await call(twin, "GET", `${base}/hooks/${hookId}/deliveries?per_page=1`, { token: pat })).json as Obj[];
        expect(hookDelivery).toMatchObject({ action: "queued", status: "OK" });
        expect((await call(twin, "POST", `${base}/hooks/${hookId}/deliveries/${String(hookDelivery?.["id"])}/attempts`, { token: pat })).status).toBe(202);
        expect((await call(twin, "GET", `${base}/hooks/${hookId + 1000}/deliveries`, { token: pat })).status).toBe(404);
        await twin.cancelJob(scoped.id);
        await twin.deliveriesSettled();
      }
      expect((await call(twin, "GET", "/rate_limit")).status).toBe(200);
      const orgRepos = await call(twin, "GET", "/orgs/octo-org/repos?per_page=2", { token: pat });
      expect((orgRepos.json as Obj[]).map((r) => r["full_name"])).toEqual(["octo-org/app", "octo-org/other"]);
      expect(((await call(twin, "GET", "/users/solo/repos", { token: pat })).json as Obj[]).map((r) => r["full_name"])).toEqual(["solo/tool"]);
      expect((await call(twin, "GET", "/users/octo-org/repos", { token: pat })).status).toBe(404);
      expect((await call(twin, "POST", "/orgs/octo-org/actions/runners/registration-token", { token: pat })).status).toBe(201);
      const orgRunner = (await jitRunner(twin, pat, "/orgs/octo-org", "org-contract", ["c"])).runner;
      expect((await call(twin, "GET", `/orgs/octo-org/actions/runners/${String(orgRunner["id"])}`, { token: pat })).status).toBe(200);
      expect((await call(twin, "DELETE", `/orgs/octo-org/actions/runners/${String(orgRunner["id"])}`, { token: pat })).status).toBe(204);
      expect((await call(twin, "GET", "/repos/octo-org/app/actions/jobs/1", { token: pat })).status).toBe(404);
      expect((await call(twin, "POST", "/repos/octo-org/app/actions/runners/generate-jitconfig", { token: pat, body: "{not json" })).status).toBe(400);
      const used = new Set(twin.requests.map((r) => `${r.method} ${gitHubOperation(r.method, r.url)?.template ?? r.url}`));
      const routes = new GitHubRestApi({} as RestDependencies).routes();
      for (const route of routes) expect(used, `${route.method} ${route.template} was exercised`).toContain(`${route.method} ${route.template}`);
      // The bodies sent on purpose to provoke 422/400 are the caller's violations; nothing else may appear.
      const unexpected = twin.contractViolations.filter(
        (v) => !/^request: POST \/repos\/octo-org\/app\/actions\/runners\/generate-jitconfig: request (body|body is not valid JSON)/.test(v),
      );
      expect(unexpected.join("\n")).toBe("");
    });

    it("remembers every secret it issued", async () => {
      expect(twin.issuedSecrets.some((s) => s.startsWith("ghp_"))).toBe(true);
      expect(twin.issuedSecrets.some((s) => s.startsWith("ghs_"))).toBe(true);
      expect(twin.issuedSecrets.some((s) => /^[A-Z0-9]{29}$/.test(s))).toBe(true);
      expect(twin.issuedSecrets.some((s) => Buffer.from(s, "base64").toString().startsWith(`{".runner"`))).toBe(true);
    });
  });
});
