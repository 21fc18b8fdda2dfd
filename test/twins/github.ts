// The GitHub twin: an HTTP server on 127.0.0.1 laid out like GitHub Enterprise Server (web host
// at the root, REST API under /api/v3) that behaves like GitHub for what nomad-gha-dispatcher
// uses (self-hosted runners, JIT configs, runner tokens, workflow runs and jobs, GitHub App
// installations and tokens, webhook deliveries, actions/runner releases), plus the Actions
// services as a runner sees them: over HTTP for the runner image stand-in (runner-image.ts), and
// in-process (ActionsService) for the Nomad twin's runner player until it runs the stand-in.
//
// Pieces: github-model (state and job matching), github-auth (credentials), github-ratelimit,
// github-shapes (JSON representations), github-webhooks (deliveries), github-routes and
// github-releases (REST handlers), github-http (REST pipeline), github-runner-side (runner
// surface: github-runner-admin, github-broker, github-runners), openapi (contract).

import { generateKeyPairSync } from "node:crypto";
import { setMaxListeners } from "node:events";
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { ActionsService, FaultPlan, RecordedRequest, RunnerExit, RunnerProcessRecord, RunnerStart } from "./contract.js";
import { Credentials } from "./github-auth.js";
import { GHES_PREFIX, GitHubHttpFront, isApiPath } from "./github-http.js";
import type { Assignment, Job, TwinJob, TwinRunner } from "./github-model.js";
import { GitHubState, jobSnapshot, runnerSnapshot } from "./github-model.js";
import { DEFAULT_SECONDARY_LIMIT, RateLimiter, type SecondaryLimitOptions } from "./github-ratelimit.js";
import { releaseRoutes } from "./github-releases.js";
import { GitHubRestApi } from "./github-routes.js";
import { RunnerSide } from "./github-runner-side.js";
import { GitHubShapes, type TwinUrls } from "./github-shapes.js";
import { type TwinDelivery, WebhookSender } from "./github-webhooks.js";
import { gitHubOperation } from "./openapi.js";

export type { TwinJob, TwinRunner } from "./github-model.js";
export type { TwinDelivery } from "./github-webhooks.js";

export interface GitHubTwinOptions {
  /** How long a runner takes to run a job (default 50 ms). */
  jobDurationMs?: number;
  /**
   * Which queued job an idle runner takes: "oldest" (default, like GitHub: any eligible job,
   * oldest first) or "own" (only the job whose id the runner's name ends with).
   */
  assignment?: Assignment;
  /** Default { pointsPerMinute: 900, maxConcurrent: 100 }; false disables the secondary limit. */
  secondaryRateLimit?: SecondaryLimitOptions | false;
  /** Validate every request/response against the OpenAPI and record violations (default true). */
  validate?: boolean;
  /** Extension: requests per hour for authenticated callers (default 5000, like GitHub). */
  primaryRateLimit?: number;
  /** Extension: the twin's clock (ms since epoch) for token and JWT expiry and runner versions' age (default Date.now). */
  clock?: () => number;
  /** How long a runner's self-update takes (downloading the release; default 50 ms). */
  runnerUpdateDelayMs?: number;
  /** A listener that stopped polling the broker for this long is gone (default 5000 ms). */
  runnerLostAfterMs?: number;
  /** How long the broker holds a long poll without a message (default 50 s, like GitHub's). */
  brokerPollTimeoutMs?: number;
}

export interface TwinApp {
  appId: number;
  privateKeyPem: string;
  slug: string;
}

export class GitHubTwin implements ActionsService {
  readonly requests: RecordedRequest[] = [];
  readonly contractViolations: string[] = [];
  readonly faults: FaultPlan = {};
  /** Every credential the twin ever issued (PATs, installation tokens, JIT configs, runner tokens). */
  readonly issuedSecrets: string[] = [];
  private readonly urls: TwinUrls = { api: "", web: "" };
  private readonly state: GitHubState;
  private readonly credentials: Credentials;
  private readonly limiter: RateLimiter;
  private readonly shapes: GitHubShapes;
  private readonly webhooks: WebhookSender;
  private readonly runnerSide: RunnerSide;
  private readonly lifetime = new AbortController();
  private readonly server: Server;
  private patUsers = 0;

  private constructor(opts: GitHubTwinOptions) {
    // Every delivery and delayed request in flight listens for the twin's end: many at once is normal.
    setMaxListeners(0, this.lifetime.signal);
    const clock = opts.clock ?? Date.now;
    // Every component shares `this.urls`; both are filled in once the server listens.
    const urls = this.urls;
    this.state = new GitHubState(clock, opts.assignment ?? "oldest");
    this.credentials = new Credentials(this.state, this.issuedSecrets);
    this.limiter = new RateLimiter(clock, opts.secondaryRateLimit ?? DEFAULT_SECONDARY_LIMIT, opts.primaryRateLimit);
    this.shapes = new GitHubShapes(urls, this.state);
    // The user who "pushed": every workflow_job event names a sender.
    const sender = this.state.account("github-twin-actor", "User");
    this.webhooks = new WebhookSender(this.state, this.shapes, sender, this.lifetime.signal);
    this.runnerSide = new RunnerSide({
      state: this.state,
      credentials: this.credentials,
      shapes: this.shapes,
      webhooks: this.webhooks,
      urls,
      clock,
      lifetime: this.lifetime.signal,
      jobDurationMs: opts.jobDurationMs ?? 50,
      updateDelayMs: opts.runnerUpdateDelayMs ?? 50,
      pollTimeoutMs: opts.brokerPollTimeoutMs ?? 50_000,
      lostAfterMs: opts.runnerLostAfterMs ?? 5000,
    });
    const api = new GitHubRestApi({ state: this.state, shapes: this.shapes, credentials: this.credentials, webhooks: this.webhooks, limiter: this.limiter });
    const front = new GitHubHttpFront({
      routes: [...api.routes(), ...releaseRoutes(urls, clock)],
      credentials: this.credentials,
      limiter: this.limiter,
      faults: this.faults,
      requests: this.requests,
      contractViolations: this.contractViolations,
      validate: opts.validate ?? true,
      clock,
      lifetime: this.lifetime.signal,
      baseUrl: () => this.urls.web,
    });
    const surface = this.runnerSide.surface;
    this.server = createServer((req, res) => {
      const path = new URL(req.url ?? "/", "http://twin").pathname;
      const handling = surface.claims(req) ? surface.handle(req, res) : isApiPath(path) ? front.handle(req, res) : webPage(res);
      handling.catch((error: unknown) => {
        // A bug of the twin, not GitHub behaviour: make it visible to every test.
        this.contractViolations.push(`twin: internal error on ${req.method} ${req.url}: ${String(error)}`);
        if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" });
        res.end(JSON.stringify({ message: `twin error: ${String(error)}` }));
      });
    });
  }

  static async start(opts: GitHubTwinOptions = {}): Promise<GitHubTwin> {
    const twin = new GitHubTwin(opts);
    // Parse the ~70 MB OpenAPI now rather than inside the first request.
    if (opts.validate ?? true) gitHubOperation("GET", "/rate_limit");
    await new Promise<void>((resolve, reject) => {
      twin.server.once("error", reject);
      twin.server.listen(0, "127.0.0.1", () => resolve());
    });
    // Laid out like GitHub Enterprise Server: the web host at the root, the REST API under /api/v3.
    twin.urls.web = `http://127.0.0.1:${(twin.server.address() as AddressInfo).port}`;
    twin.urls.api = `${twin.urls.web}${GHES_PREFIX}`;
    return twin;
  }

  /** REST API base, e.g. http://127.0.0.1:1234/api/v3 (GITHUB_API_URL). */
  get url(): string {
    return this.urls.api;
  }

  /** Web host, e.g. http://127.0.0.1:1234 (GITHUB_URL): html_url and runner scope URLs live here. */
  get webUrl(): string {
    return this.urls.web;
  }

  /** Runner-side exchanges (registration, OAuth, broker, run service, downloads), apart from `requests`. */
  get runnerRequests(): readonly RecordedRequest[] {
    return this.runnerSide.requests;
  }

  /** Faults for runner-side requests (`faults` covers the REST API only). */
  get runnerFaults(): FaultPlan {
    return this.runnerSide.faults;
  }

  /** Every runner process GitHub saw: broker sessions of runner listeners, and in-process runRunner calls. */
  get runnerProcesses(): readonly RunnerProcessRecord[] {
    return this.runnerSide.processes;
  }

  /** Runner self-updates performed (a runner image pinned to the latest release causes none). */
  get runnerUpdates(): number {
    return this.runnerSide.updatesDone;
  }

  get secondaryLimitHits(): number {
    return this.limiter.secondaryLimitHits;
  }

  /** Points spent per caller key: `user:<login>`, `installation:<id>`, `app:<id>`, `ip:<address>`. */
  get pointsSpent(): ReadonlyMap<string, number> {
    return this.limiter.pointsSpent;
  }

  /** Requests of a caller key being handled right now (for concurrency tests). */
  inFlight(key: string): number {
    return this.limiter.concurrent(key);
  }

  // ---- setup -------------------------------------------------------------------------------------------

  /** A classic PAT (scopes repo, admin:org) of a new user; rate limits count per user. */
  createPat(): string {
    const user = this.state.account(`pat-user-${++this.patUsers}`, "User");
    return this.credentials.createPat(user);
  }

  createApp(): TwinApp {
    const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const id = this.state.nextId("app");
    const slug = `twin-dispatcher-${id}`;
    const owner = this.state.account("twin-apps", "Organization");
    this.state.addApp({ id, slug, name: `Twin dispatcher ${id}`, clientId: `Iv23li${id.toString(16)}`, publicKey, owner, createdAt: this.state.nowIso() });
    // GitHub hands out PKCS#1 PEMs ("BEGIN RSA PRIVATE KEY").
    const privateKeyPem = privateKey.export({ type: "pkcs1", format: "pem" }).toString();
    // Logs are JSON lines (newlines escaped), so a whole PEM would never match a leak search; a
    // line from its middle (private key material) does.
    const pemLines = privateKeyPem.trim().split("\n");
    this.issuedSecrets.push(pemLines[Math.floor(pemLines.length / 2)] ?? privateKeyPem);
    return { appId: id, privateKeyPem, slug };
  }

  /**
   * Creates the owner (an organization unless `ownerType: "User"`) and the repository. With
   * `installationId` the repository belongs to that installation (created on first use, owned by
   * the first app, or by `appId`).
   */
  addRepo(
    fullName: string,
    opts: { installationId?: number; ownerType?: "Organization" | "User"; appId?: number } = {},
  ): { id: number; owner: string; name: string } {
    const repo = this.state.addRepo(fullName, opts.ownerType ?? "Organization", opts.installationId);
    if (opts.appId !== undefined && opts.installationId !== undefined) {
      const installation = this.state.installations.get(opts.installationId);
      if (installation) installation.appId = opts.appId;
    }
    return { id: repo.id, owner: repo.owner.login, name: repo.name };
  }

  /**
   * Webhook deliveries go to `url`. With `appId` it is that app's webhook (installation events
   * only); with `org` an organization webhook, with `repo` (`owner/repo`) a repository webhook,
   * each getting that scope's events and listed under its REST routes.
   */
  addWebhook(hook: { url: string; secret: string; appId?: number; org?: string; repo?: string }): number {
    return this.webhooks.addHook({ url: hook.url, secret: hook.secret, appId: hook.appId, org: hook.org?.toLowerCase(), repo: hook.repo?.toLowerCase() });
  }

  // ---- workflow jobs --------------------------------------------------------------------------------

  /**
   * Creates a workflow run (or adds to `runId`) with one job, queued (or waiting for approval),
   * sends its webhook unless `deliver === false`, and resolves once the deliveries are answered.
   */
  async queueJob(input: { repo: string; labels: string[]; runId?: number; deliver?: boolean; waiting?: boolean }): Promise<TwinJob> {
    const [owner = "", name = ""] = input.repo.split("/");
    const repo = this.state.findRepo(owner, name);
    if (!repo) throw new Error(`unknown repository ${input.repo}: addRepo() it first`);
    const job = this.state.createJob(repo, input.labels, input.waiting ? "waiting" : "queued", input.runId);
    const delivery = input.deliver === false ? Promise.resolve() : this.webhooks.sendJobEvent(job, input.waiting ? "waiting" : "queued");
    this.state.matchJobs();
    await delivery;
    return jobSnapshot(job);
  }

  /** waiting -> queued (+ `queued` webhook). */
  async approveJob(jobId: number): Promise<void> {
    const job = this.job(jobId);
    if (job.status !== "waiting") throw new Error(`job ${jobId} is ${job.status}, not waiting`);
    job.status = "queued";
    const delivery = this.webhooks.sendJobEvent(job, "queued");
    this.state.matchJobs();
    await delivery;
  }

  /** -> completed/cancelled (+ `completed` webhook) unless already completed; its runner stops the job. */
  async cancelJob(jobId: number): Promise<void> {
    const job = this.job(jobId);
    if (job.status === "completed") return;
    const stopRunner = job.onCancel;
    this.state.completeJob(job, "cancelled");
    stopRunner?.();
    await this.webhooks.sendJobEvent(job, "completed");
  }

  private job(jobId: number): Job {
    const job = this.state.jobs.get(jobId);
    if (!job) throw new Error(`unknown job ${jobId}`);
    return job;
  }

  jobs(): TwinJob[] {
    return [...this.state.jobs.values()].map(jobSnapshot);
  }

  runners(): TwinRunner[] {
    return [...this.state.runners.values()].map(runnerSnapshot);
  }

  deliveries(): TwinDelivery[] {
    return this.webhooks.deliveries();
  }

  /** Sends a recorded delivery again (same GUID, `redelivery: true`); resolves with the new attempt. */
  async redeliverWebhook(deliveryId: number): Promise<TwinDelivery> {
    const attempt = this.webhooks.redeliver(deliveryId);
    if (!attempt) throw new Error(`unknown delivery ${deliveryId}`);
    return attempt;
  }

  /** Resolves when every webhook delivery started so far (runner events, REST redeliveries) finished. */
  deliveriesSettled(): Promise<void> {
    return this.webhooks.settled();
  }

  // ---- ActionsService -------------------------------------------------------------------------------

  runRunner(start: RunnerStart, signal: AbortSignal): Promise<RunnerExit> {
    return this.runnerSide.service.runRunner(start, signal);
  }

  removeRunner(start: RunnerStart, removeToken: string): Promise<{ removed: boolean }> {
    return this.runnerSide.service.removeRunner(start, removeToken);
  }

  // ---- lifecycle --------------------------------------------------------------------------------------

  /** Stops the server; runner processes end ("stopped") and deliveries in flight are aborted. */
  async close(): Promise<void> {
    this.lifetime.abort();
    this.state.stopAllWaiting();
    this.runnerSide.close();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
    await this.webhooks.settled();
    await this.webhooks.close();
  }
}

/** The web host serves no pages: anything not a runner service is GitHub's 404 page. */
async function webPage(res: ServerResponse): Promise<void> {
  res.writeHead(404, { "content-type": "text/html; charset=utf-8" });
  res.end("<!DOCTYPE html><title>Page not found · GitHub</title>");
}
