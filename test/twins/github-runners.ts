// The runner side of GitHub Actions, in-process (the twin's ActionsService): what `run.sh` and
// `config.sh remove` do against GitHub, for callers that do not run the runner image stand-in.
// JIT configs are encoded like GitHub's (base64 JSON of the runner's settings files) and are
// single-use here; registration-token runners are created like `config.sh --replace`. An online
// runner waits for a matching job without polling. The same configs also work over HTTP with the
// stand-in (runner-image.ts), whose traffic github-broker.ts and github-runner-admin.ts serve.

import { randomBytes } from "node:crypto";
import type { ActionsService, RunnerExit, RunnerProcessRecord, RunnerStart } from "./contract.js";
import type { Credentials } from "./github-auth.js";
import type { GitHubState, Job, Runner, RunnerScope } from "./github-model.js";
import { scopeName } from "./github-model.js";
import { LATEST_RUNNER_VERSION } from "./github-releases.js";
import { scopeFromUrl } from "./github-runner-admin.js";
import { actionsServiceUrls, type TwinUrls } from "./github-shapes.js";
import type { WebhookSender } from "./github-webhooks.js";

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
  /** Every runner process the twin saw (shared with the HTTP broker). */
  processes: RunnerProcessRecord[];
}

interface JitIdentity {
  agentId: number;
  gitHubUrl: string;
  secret: string;
}

/**
 * The runner's `.runner`, `.credentials` and `.credentials_rsaparams`, base64 each, in base64
 * JSON (the files Runner.cs writes from `--jitconfig`, actions/runner src/Runner.Listener/Runner.cs).
 * The URLs in them are the twin's own runner services, so the decoded files give a working runner.
 * The twin's JIT runners use the runner-admin flow (`UseRunnerAdminFlow`), so `config.sh remove`
 * deletes them through the same calls as a runner `config.sh` registered.
 */
export function encodeJitConfig(runner: Runner, urls: TwinUrls, workFolder: string): string {
  if (!runner.jit) throw new Error(`runner ${runner.id} is not a JIT runner`);
  const services = actionsServiceUrls(urls);
  const files = {
    ".runner": {
      AgentId: runner.id,
      AgentName: runner.name,
      PoolId: runner.groupId,
      PoolName: "Default",
      DisableUpdate: false,
      Ephemeral: true,
      ServerUrl: services.pipelines,
      ServerUrlV2: services.broker,
      GitHubUrl: `${urls.web}/${scopeName(runner.scope)}`,
      WorkFolder: workFolder,
      UseV2Flow: true,
      UseRunnerAdminFlow: true,
    },
    ".credentials": {
      Scheme: "OAuth",
      Data: { clientId: runner.clientId, authorizationUrl: services.token, requireFipsCryptography: "False" },
    },
    // The private key of the runner's OAuth client: the twin keeps its secret part as `d`.
    ".credentials_rsaparams": { d: runner.jit.secret, exponent: "AQAB", modulus: randomBytes(256).toString("base64") },
  };
  const encodedFiles = Object.fromEntries(Object.entries(files).map(([name, content]) => [name, Buffer.from(JSON.stringify(content)).toString("base64")]));
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
    const record: RunnerProcessRecord = {
      ...processIdentity(start),
      startedAt: Date.now(),
      endedAt: undefined,
      jobId: undefined,
      ok: undefined,
      message: undefined,
    };
    this.ctx.processes.push(record);
    try {
      const exit = await this.runProcess(start, signal);
      Object.assign(record, { jobId: exit.jobId, ok: exit.ok, message: exit.message });
      return exit;
    } finally {
      record.endedAt = Date.now();
    }
  }

  private async runProcess(start: RunnerStart, signal: AbortSignal): Promise<RunnerExit> {
    const activated = start.kind === "jit" ? this.activateJit(start.jitconfig) : this.configure(start);
    if ("error" in activated) return { ok: false, message: activated.error };
    const runner = activated.runner;
    const stop = AbortSignal.any([signal, this.ctx.lifetime]);
    runner.status = "online";
    runner.version = LATEST_RUNNER_VERSION;
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

  scopeFromUrl(url: string): RunnerScope | undefined {
    return scopeFromUrl(this.ctx.state, this.ctx.urls.web, url);
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
    this.ctx.state.releaseRunner(runner);
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

/** Name and id of the runner a process runs as (`.runner` AgentName/AgentId, or config.sh's `--name`). */
function processIdentity(start: RunnerStart): { name: string; agentId: number | undefined } {
  if (start.kind === "token") return { name: start.name, agentId: undefined };
  try {
    const files = JSON.parse(Buffer.from(start.jitconfig, "base64").toString("utf8")) as Record<string, string>;
    const settings = JSON.parse(Buffer.from(files[".runner"] ?? "", "base64").toString("utf8")) as { AgentName?: string; AgentId?: number };
    return { name: settings.AgentName ?? "?", agentId: settings.AgentId };
  } catch {
    return { name: "?", agentId: undefined };
  }
}
