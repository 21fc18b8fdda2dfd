// The runner side of GitHub Actions (the twin's ActionsService): what `run.sh` and
// `config.sh remove` do against GitHub. JIT configs are encoded like GitHub's (base64 JSON of the
// runner's settings files) and are single-use; registration-token runners are created like
// `config.sh --replace`. An online runner waits for a matching job without polling.

import { randomBytes, randomUUID } from "node:crypto";
import type { ActionsService, RunnerExit, RunnerStart } from "./contract.js";
import type { Credentials } from "./github-auth.js";
import type { GitHubState, Job, Runner, RunnerScope } from "./github-model.js";
import { scopeName } from "./github-model.js";
import type { TwinUrls } from "./github-shapes.js";
import type { WebhookSender } from "./github-webhooks.js";

export const RUNNER_VERSION = "2.329.0";
const REGISTRATION_DELETED =
  "The runner registration has been deleted from the server, please re-configure. Runner registrations are automatically deleted for runners that have not connected to the service recently.";
const SHUTDOWN = "The runner has received a shutdown signal.";

export interface RunnerServiceContext {
  state: GitHubState;
  credentials: Credentials;
  webhooks: WebhookSender;
  urls: TwinUrls;
  jobDurationMs: number;
  /** Aborts when the twin closes: every runner process ends. */
  lifetime: AbortSignal;
}

interface JitIdentity {
  agentId: number;
  gitHubUrl: string;
  secret: string;
}

/** The runner's `.runner`, `.credentials` and `.credentials_rsaparams`, base64 each, in base64 JSON. */
export function encodeJitConfig(runner: Runner, urls: TwinUrls, workFolder: string): string {
  if (!runner.jit) throw new Error(`runner ${runner.id} is not a JIT runner`);
  const poolUrl = `https://pipelines.actions.githubusercontent.com/${randomBytes(12).toString("base64url")}`;
  const files = {
    ".runner": {
      AgentId: runner.id,
      AgentName: runner.name,
      PoolId: runner.groupId,
      PoolName: "Default",
      DisableUpdate: false,
      Ephemeral: true,
      ServerUrl: poolUrl,
      GitHubUrl: `${urls.web}/${scopeName(runner.scope)}`,
      WorkFolder: workFolder,
      UseV2Flow: true,
    },
    ".credentials": {
      Scheme: "OAuth",
      Data: { clientId: randomUUID(), authorizationUrl: `${poolUrl}/_apis/oauth2/token`, requireFipsCryptography: "False" },
    },
    // The private key of the runner's OAuth client: the twin keeps its secret part as `d`.
    ".credentials_rsaparams": { d: runner.jit.secret, exponent: "AQAB", modulus: randomBytes(256).toString("base64") },
  };
  const encodedFiles = Object.fromEntries(
    Object.entries(files).map(([name, content]) => [name, Buffer.from(JSON.stringify(content)).toString("base64")]),
  );
  return Buffer.from(JSON.stringify(encodedFiles)).toString("base64");
}

export function decodeJitConfig(encoded: string): JitIdentity | undefined {
  try {
    const files = JSON.parse(Buffer.from(encoded, "base64").toString("utf8")) as Record<string, unknown>;
    const file = (name: string) => JSON.parse(Buffer.from(String(files[name]), "base64").toString("utf8")) as Record<string, unknown>;
    const settings = file(".runner");
    const rsa = file(".credentials_rsaparams");
    const { AgentId: agentId, GitHubUrl: gitHubUrl } = settings;
    const secret = rsa["d"];
    if (typeof agentId !== "number" || typeof gitHubUrl !== "string" || typeof secret !== "string") return undefined;
    return { agentId, gitHubUrl, secret };
  } catch {
    return undefined;
  }
}

export function newJitSecret(): string {
  return randomBytes(32).toString("base64");
}

export class RunnerService implements ActionsService {
  constructor(private readonly ctx: RunnerServiceContext) {}

  async runRunner(start: RunnerStart, signal: AbortSignal): Promise<RunnerExit> {
    const activated = start.kind === "jit" ? this.activateJit(start.jitconfig) : this.configure(start);
    if ("error" in activated) return { ok: false, message: activated.error };
    const runner = activated.runner;
    const stop = AbortSignal.any([signal, this.ctx.lifetime]);
    runner.status = "online";
    runner.version = RUNNER_VERSION;
    let lastJob: number | undefined;
    for (;;) {
      const outcome = await this.ctx.state.waitForJob(runner, stop);
      const ran = lastJob === undefined ? {} : { jobId: lastJob };
      if (outcome.kind === "deleted") return { ok: false, message: REGISTRATION_DELETED, ...ran };
      if (outcome.kind === "stopped") {
        // A runner that is stopped while idle stays registered (offline), as on GitHub.
        runner.status = "offline";
        return { ok: lastJob !== undefined, message: "stopped", ...ran };
      }
      const exit = await this.runJob(runner, outcome.job, stop);
      if (runner.ephemeral || !exit.ok) return exit;
      lastJob = outcome.job.id;
    }
  }

  async removeRunner(start: RunnerStart, removeToken: string): Promise<{ removed: boolean }> {
    const target = this.removalTarget(start);
    if ("error" in target) throw new Error(target.error);
    if (!this.ctx.credentials.runnerTokenValid(removeToken, "remove", target.scope)) {
      throw new Error(`Failed: Removing runner from the server. Http response code: NotFound (the remove token is invalid or expired for ${target.url})`);
    }
    const runner = target.find();
    if (!runner) return { removed: false };
    if (runner.busy) throw new Error(`Bad request - Runner "${runner.name}" is still running a job"`);
    this.ctx.state.deleteRunner(runner);
    return { removed: true };
  }

  // ---- activation -------------------------------------------------------------------------------

  private activateJit(jitconfig: string): { runner: Runner } | { error: string } {
    const identity = decodeJitConfig(jitconfig);
    if (!identity) return { error: "Invalid JIT configuration: it does not decode to runner settings." };
    const runner = this.ctx.state.runners.get(identity.agentId);
    if (!runner) return { error: REGISTRATION_DELETED };
    if (!runner.jit || runner.jit.secret !== identity.secret) return { error: "Invalid JIT configuration: the runner credentials do not match." };
    if (runner.jit.used) return { error: "The JIT configuration has already been used; a JIT runner runs once." };
    runner.jit.used = true;
    return { runner };
  }

  /** `config.sh --url <scope> --token <registration token> --name ... --labels ... --replace`. */
  private configure(start: Extract<RunnerStart, { kind: "token" }>): { runner: Runner } | { error: string } {
    const scope = this.scopeFromUrl(start.url);
    if (!scope) return { error: `Failed to configure the runner: ${start.url} is not a repository or organization URL of ${this.ctx.urls.web}.` };
    if (!this.ctx.credentials.runnerTokenValid(start.registrationToken, "registration", scope)) {
      return { error: `Failed to configure the runner: Http response code: NotFound (the registration token is invalid or expired for ${start.url}).` };
    }
    const existing = this.ctx.state.runnerNamed(scope, start.name);
    if (existing?.busy) return { error: `Failed to configure the runner: a runner named "${start.name}" is running a job.` };
    if (existing) this.ctx.state.deleteRunner(existing);
    const runner = this.ctx.state.createRunner({
      name: start.name,
      scope,
      labels: [...start.labels],
      ephemeral: start.ephemeral,
      groupId: 1,
      registration: "token",
      jit: undefined,
    });
    return { runner };
  }

  /** `${webUrl}/${owner}/${repo}` or `${webUrl}/${org}`, with or without a trailing slash. */
  scopeFromUrl(url: string): RunnerScope | undefined {
    const base = this.ctx.urls.web.replace(/\/+$/, "");
    if (!url.toLowerCase().startsWith(`${base.toLowerCase()}/`)) return undefined;
    const parts = url.slice(base.length + 1).replace(/\/+$/, "").split("/");
    if (parts.length === 2) {
      const repo = this.ctx.state.findRepo(parts[0] ?? "", parts[1] ?? "");
      return repo && { kind: "repo", repo };
    }
    const org = parts.length === 1 ? this.ctx.state.findOrg(parts[0] ?? "") : undefined;
    return org && { kind: "org", org };
  }

  private removalTarget(start: RunnerStart): { scope: RunnerScope; url: string; find: () => Runner | undefined } | { error: string } {
    if (start.kind === "jit") {
      const identity = decodeJitConfig(start.jitconfig);
      const scope = identity && this.scopeFromUrl(identity.gitHubUrl);
      if (!identity || !scope) return { error: "Failed: the runner is not configured (invalid JIT configuration)." };
      return { scope, url: identity.gitHubUrl, find: () => this.ctx.state.runners.get(identity.agentId) };
    }
    const scope = this.scopeFromUrl(start.url);
    if (!scope) return { error: `Failed: ${start.url} is not a repository or organization URL.` };
    return { scope, url: start.url, find: () => this.ctx.state.runnerNamed(scope, start.name) };
  }

  // ---- running a job ------------------------------------------------------------------------------

  private async runJob(runner: Runner, job: Job, stop: AbortSignal): Promise<RunnerExit> {
    const { state, webhooks } = this.ctx;
    // Deliveries are not awaited: the runner process does not wait for GitHub's webhooks (and a
    // receiver that waits for the runner to exit must not deadlock). They stay ordered per job.
    void webhooks.sendJobEvent(job, "in_progress");
    const ending = await this.jobEnding(job, stop);
    if (ending === "cancelled") {
      // cancelJob() already completed the job and sent its webhook.
      this.release(runner);
      return { ok: true, jobId: job.id, message: "job cancelled" };
    }
    state.completeJob(job, ending === "finished" ? "success" : "failure");
    this.release(runner);
    void webhooks.sendJobEvent(job, "completed");
    return ending === "finished" ? { ok: true, jobId: job.id, message: "job completed" } : { ok: false, jobId: job.id, message: SHUTDOWN };
  }

  /** Ephemeral runners are deregistered by GitHub once their job is done; others go idle. */
  private release(runner: Runner): void {
    runner.busy = false;
    runner.jobId = null;
    if (runner.ephemeral) this.ctx.state.deleteRunner(runner);
  }

  private jobEnding(job: Job, stop: AbortSignal): Promise<"finished" | "cancelled" | "shutdown"> {
    if (job.status === "completed") return Promise.resolve("cancelled");
    return new Promise((resolve) => {
      const finish = (how: "finished" | "cancelled" | "shutdown") => {
        clearTimeout(timer);
        stop.removeEventListener("abort", onStop);
        job.onCancel = undefined;
        resolve(how);
      };
      const onStop = () => finish("shutdown");
      const timer = setTimeout(() => finish("finished"), this.ctx.jobDurationMs);
      job.onCancel = () => finish("cancelled");
      if (stop.aborted) finish("shutdown");
      else stop.addEventListener("abort", onStop, { once: true });
    });
  }
}
