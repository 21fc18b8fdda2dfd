// The Actions services a runner listener talks to once configured, served by the twin on its web
// host (GHES style, see actionsServiceUrls). Modelled on the real clients in actions/runner:
//  - OAuth token exchange with the runner's key (src/Sdk/WebApi/WebApi/OAuth/*): an unknown
//    client gets `invalid_client`, which the listener reports as a deleted registration
//    (src/Runner.Listener/BrokerMessageListener.cs, CreateSessionAsync).
//  - Broker (src/Sdk/WebApi/WebApi/BrokerHttpClient.cs): POST session, GET message (long poll
//    carrying the runner's version and DisableUpdate), POST acknowledge, DELETE session; errors
//    as BrokerError bodies (src/Sdk/RSWebApi/Contracts/BrokerError*.cs).
//  - Run service (src/Sdk/RSWebApi/RunServiceHttpClient.cs): acquirejob, completejob, renewjob.
// A JIT runner may connect again after its session ended (nothing in the runner treats a JIT
// config as single-use); a second session while one lives is a 409, which the listener retries
// for 4 minutes (TaskAgentSessionConflictException in BrokerMessageListener.cs).
// Simplifications, all in the twin's favour of being runnable by bash: the client assertion is a
// SHA-256 over the assertion and the runner's key instead of an RS256 signature (the image has no
// openssl), and the job message carries one script step that stands for the workflow job.

import { createHash, randomBytes, randomUUID } from "node:crypto";
import type { RunnerProcessRecord } from "./contract.js";
import type { Credentials } from "./github-auth.js";
import type { GitHubState, Job, JobConclusion, Runner } from "./github-model.js";
import { assetName, assetSha256, RUNNER_PLATFORM, versionVerdict } from "./github-releases.js";
import type { RunnerCall, RunnerReply, RunnerRoute } from "./github-runner-http.js";
import { jsonBody } from "./github-runner-http.js";
import type { TwinUrls } from "./github-shapes.js";
import type { WebhookSender } from "./github-webhooks.js";

export interface BrokerOptions {
  state: GitHubState;
  credentials: Credentials;
  webhooks: WebhookSender;
  urls: TwinUrls;
  processes: RunnerProcessRecord[];
  jobDurationMs: number;
  /** How long the broker holds a long poll open without a message (the real one ~50 s). */
  pollTimeoutMs: number;
  /** A session whose listener stops polling for this long is gone (its process died). */
  lostAfterMs: number;
  lifetime: AbortSignal;
}

interface Message {
  messageId: number;
  messageType: string;
  body: string;
}

interface Session {
  id: string;
  runner: Runner;
  record: RunnerProcessRecord;
  polls: number;
  lostTimer: NodeJS.Timeout | undefined;
  mailbox: Message[];
  wake: (() => void) | undefined;
  job: { job: Job; requestId: string; acquired: boolean } | undefined;
}

const TOKEN_TTL_MS = 60 * 60 * 1000;
const BROKER_SOURCE = "actions-broker-listener";
const LOST = "The self-hosted runner lost communication with the server. Verify the machine is running and has a healthy network connection.";

function brokerError(status: number, errorKind: string, errorMessage: string): RunnerReply {
  return { status, body: { source: BROKER_SOURCE, errorKind, statusCode: status, errorMessage } };
}

export class Broker {
  private readonly tokens = new Map<string, { runnerId: number; expiresAt: number }>();
  private readonly sessions = new Map<string, Session>();
  private nextMessageId = 1;

  constructor(private readonly o: BrokerOptions) {
    // A deregistered runner has no session any more: its listener learns on its next poll
    // (RunnerNotFound), and GitHub no longer counts it, whether or not its process still runs.
    o.state.runnerDeleted.push((runner) => {
      const session = this.sessionOf(runner);
      if (session) this.endSession(session, true, "runner deleted");
    });
  }

  routes(): RunnerRoute[] {
    return [
      { method: "POST", template: "/_services/vstoken/_apis/oauth2/token", handle: (c) => this.issueToken(c) },
      { method: "POST", template: "/_services/broker/session", handle: (c) => this.authed(c, (r) => this.createSession(r, c)) },
      { method: "DELETE", template: "/_services/broker/session", handle: (c) => this.deleteSession(c) },
      { method: "GET", template: "/_services/broker/message", handle: (c) => this.authed(c, (r) => this.nextMessage(r, c)) },
      { method: "POST", template: "/_services/broker/acknowledge", handle: (c) => this.authed(c, (r) => this.acknowledge(r, c)) },
      { method: "POST", template: "/_services/pipelines/acquirejob", handle: (c) => this.authed(c, (r) => this.acquireJob(r, c)) },
      { method: "POST", template: "/_services/pipelines/completejob", handle: (c) => this.authed(c, (r) => this.completeJob(r, c)) },
      {
        method: "POST",
        template: "/_services/pipelines/renewjob",
        handle: (c) => this.authed(c, () => ({ status: 200, body: { lockedUntil: new Date(Date.now() + 600_000).toISOString() } })),
      },
    ];
  }

  /** Ends every session (the twin is closing). */
  close(): void {
    for (const session of [...this.sessions.values()]) this.endSession(session, true, "the twin closed");
  }

  // ---- OAuth ---------------------------------------------------------------------------------------

  /** `client_assertion` = base64url(header).base64url({sub: clientId, exp}).sha256hex(those two + "." + key). */
  private issueToken(call: RunnerCall): RunnerReply {
    const assertion = new URLSearchParams(call.text).get("client_assertion") ?? "";
    const [header = "", payload = "", signature = ""] = assertion.split(".");
    let claims: { sub?: unknown; exp?: unknown } = {};
    try {
      claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as typeof claims;
    } catch {
      // An unreadable assertion is an unknown client.
    }
    const runner = [...this.o.state.runners.values()].find((r) => r.clientId === claims.sub);
    const key = runner && (runner.jit?.secret ?? runner.secret);
    const expected = key && createHash("sha256").update(`${header}.${payload}.${key}`).digest("hex");
    if (!runner || !expected || expected !== signature) {
      return { status: 400, body: { error: "invalid_client", error_description: "The client is not registered." } };
    }
    if (typeof claims.exp === "number" && claims.exp * 1000 < this.o.state.clock()) {
      return {
        status: 400,
        body: {
          error: "invalid_client",
          error_description: `The client assertion expired. Current server time is ${new Date(this.o.state.clock()).toISOString()}.`,
        },
      };
    }
    const token = `twin_runner_${randomBytes(24).toString("base64url")}`;
    this.o.credentials.recordSecret(token);
    this.tokens.set(token, { runnerId: runner.id, expiresAt: this.o.state.clock() + TOKEN_TTL_MS });
    return { status: 200, body: { access_token: token, token_type: "bearer", expires_in: TOKEN_TTL_MS / 1000 } };
  }

  private tokenRunnerId(call: RunnerCall): number | undefined {
    const token = /^Bearer\s+(\S+)/i.exec(call.headers["authorization"] ?? "")?.[1] ?? "";
    const entry = this.tokens.get(token);
    return entry && entry.expiresAt > this.o.state.clock() ? entry.runnerId : undefined;
  }

  private authed(call: RunnerCall, fn: (runner: Runner) => RunnerReply | Promise<RunnerReply>): RunnerReply | Promise<RunnerReply> {
    const runnerId = this.tokenRunnerId(call);
    if (runnerId === undefined) return { status: 401, body: { message: "The access token is invalid or expired." } };
    const runner = this.o.state.runners.get(runnerId);
    if (!runner) return brokerError(404, "RunnerNotFound", `Runner ${runnerId} not found.`);
    return fn(runner);
  }

  // ---- sessions --------------------------------------------------------------------------------

  private sessionOf(runner: Runner | number): Session | undefined {
    const id = typeof runner === "number" ? runner : runner.id;
    return [...this.sessions.values()].find((s) => s.runner.id === id);
  }

  private createSession(runner: Runner, call: RunnerCall): RunnerReply {
    if (this.sessionOf(runner)) return { status: 409, body: { message: `A session for runner ${runner.name} already exists.` } };
    const agent = (jsonBody(call)?.["agent"] ?? {}) as { version?: unknown };
    const record: RunnerProcessRecord = {
      name: runner.name,
      agentId: runner.id,
      startedAt: Date.now(),
      endedAt: undefined,
      jobId: undefined,
      ok: undefined,
      message: undefined,
    };
    this.o.processes.push(record);
    const session: Session = { id: randomUUID(), runner, record, polls: 0, lostTimer: undefined, mailbox: [], wake: undefined, job: undefined };
    this.sessions.set(session.id, session);
    runner.status = "online";
    if (typeof agent.version === "string") runner.version = agent.version;
    this.armLostTimer(session);
    return { status: 200, body: { sessionId: session.id, ownerName: "RUNNER", agent: { id: runner.id, name: runner.name, version: runner.version } } };
  }

  /** Also for a runner GitHub already deleted (an ephemeral one after its job): the process ends. */
  private deleteSession(call: RunnerCall): RunnerReply {
    const runnerId = this.tokenRunnerId(call);
    if (runnerId === undefined) return { status: 401, body: { message: "The access token is invalid or expired." } };
    const session = this.sessionOf(runnerId);
    if (session) this.endSession(session, true, "session deleted");
    return { status: 200 };
  }

  /** The listener is gone: the runner goes offline, a job it was running fails. */
  private endSession(session: Session, ok: boolean, message: string): void {
    if (!this.sessions.delete(session.id)) return;
    clearTimeout(session.lostTimer);
    session.wake?.();
    const running = session.job;
    if (running && running.job.status !== "completed") {
      this.o.state.completeJob(running.job, "failure");
      void this.o.webhooks.sendJobEvent(running.job, "completed");
      this.o.state.releaseRunner(session.runner);
      Object.assign(session.record, { ok: false, message: LOST });
    } else {
      session.record.ok ??= ok;
      session.record.message ??= message;
    }
    session.runner.status = "offline";
    session.record.endedAt = Date.now();
  }

  /** No poll in flight: the session is lost unless the listener comes back within `lostAfterMs`. */
  private armLostTimer(session: Session): void {
    clearTimeout(session.lostTimer);
    session.lostTimer = undefined;
    if (session.polls > 0 || !this.sessions.has(session.id)) return;
    session.lostTimer = setTimeout(() => this.endSession(session, false, LOST), this.o.lostAfterMs);
    session.lostTimer.unref();
  }

  // ---- messages ----------------------------------------------------------------------------------

  private message(messageType: string, body: unknown): Message {
    return { messageId: this.nextMessageId++, messageType, body: JSON.stringify(body) };
  }

  private async nextMessage(runner: Runner, call: RunnerCall): Promise<RunnerReply> {
    const session = this.sessions.get(call.query.get("sessionId") ?? "");
    if (!session || session.runner.id !== runner.id) return brokerError(404, "RunnerSessionInvalid", "The runner session is invalid or expired.");
    session.polls += 1;
    clearTimeout(session.lostTimer);
    try {
      return await this.pollFor(session, call);
    } finally {
      session.polls -= 1;
      this.armLostTimer(session);
    }
  }

  private async pollFor(session: Session, call: RunnerCall): Promise<RunnerReply> {
    const verdict = versionVerdict(call.query.get("runnerVersion") ?? "0.0.0", call.query.get("disableUpdate") === "true", this.o.state.clock());
    if (verdict.kind === "refuse") return brokerError(403, "RunnerVersionTooOld", verdict.message);
    // An update waits until the runner is idle (SelfUpdaterV2 waits for the running job too).
    if (verdict.kind === "update" && !session.runner.busy) {
      const name = assetName(verdict.target, RUNNER_PLATFORM);
      const update = {
        target_version: verdict.target,
        download_url: `${this.o.urls.web}/actions/runner/releases/download/v${verdict.target}/${name}`,
        sha256_checksum: assetSha256(verdict.target, RUNNER_PLATFORM),
        os: RUNNER_PLATFORM,
      };
      return { status: 200, body: this.message("RunnerRefresh", update) };
    }
    const pending = session.mailbox.shift();
    if (pending) return { status: 200, body: pending };
    const wait = AbortSignal.any([call.signal, AbortSignal.timeout(this.o.pollTimeoutMs)]);
    if (session.runner.busy) {
      // Busy: only a cancellation comes through; the poll is the listener's heartbeat.
      await new Promise<void>((resolve) => {
        session.wake = resolve;
        wait.addEventListener("abort", () => resolve(), { once: true });
      });
      session.wake = undefined;
      const cancel = session.mailbox.shift();
      return { status: 200, body: cancel ?? "" };
    }
    const outcome = await this.o.state.waitForJob(session.runner, wait);
    if (outcome.kind === "deleted") return brokerError(404, "RunnerNotFound", `Runner ${session.runner.name} not found.`);
    if (outcome.kind === "stopped") return { status: 200, body: "" };
    return this.offerJob(session, outcome.job);
  }

  /** A RunnerJobRequest for the assigned job; it goes back to the queue if the listener missed it. */
  private offerJob(session: Session, job: Job): RunnerReply {
    const requestId = randomUUID();
    const body = this.message("RunnerJobRequest", {
      id: String(job.id),
      runner_request_id: requestId,
      should_acknowledge: true,
      run_service_url: `${this.o.urls.web}/_services/pipelines/`,
      billing_owner_id: "",
    });
    return {
      status: 200,
      body,
      after: (delivered) => {
        if (!delivered || !this.sessions.has(session.id)) return this.o.state.unassign(job, session.runner);
        // Cancelled while the message was on its way: the runner's acknowledge will find no job.
        if (job.status === "completed") return this.o.state.releaseRunner(session.runner);
        session.job = { job, requestId, acquired: false };
        job.onCancel = () => this.cancelled(session);
        void this.o.webhooks.sendJobEvent(job, "in_progress");
      },
    };
  }

  /** The job was cancelled on GitHub (already completed there): tell the runner, or free it. */
  private cancelled(session: Session): void {
    const running = session.job;
    if (!running) return;
    if (!running.acquired) {
      session.job = undefined;
      this.o.state.releaseRunner(session.runner);
      return;
    }
    session.mailbox.push(this.message("JobCancellation", { jobId: running.requestId, timeout: "00:05:00" }));
    session.wake?.();
  }

  private acknowledge(runner: Runner, call: RunnerCall): RunnerReply {
    const session = this.sessionOf(runner);
    const requestId = jsonBody(call)?.["runnerRequestId"];
    if (!session?.job || session.job.requestId !== requestId || session.job.job.status === "completed") {
      return brokerError(404, "AcknowledgeJobNotFound", `Runner request ${String(requestId)} not found.`);
    }
    return { status: 200 };
  }

  // ---- run service -------------------------------------------------------------------------------

  private acquireJob(runner: Runner, call: RunnerCall): RunnerReply {
    const session = this.sessionOf(runner);
    const running = session?.job;
    if (!session || !running || running.requestId !== jsonBody(call)?.["jobMessageId"] || running.job.status === "completed") {
      return { status: 404, body: { message: "Job not found." } };
    }
    running.acquired = true;
    session.record.jobId = running.job.id;
    const seconds = (this.o.jobDurationMs / 1000).toFixed(3);
    return {
      status: 200,
      body: {
        messageType: "PipelineAgentJobRequest",
        plan: { planId: randomUUID() },
        jobId: running.requestId,
        jobDisplayName: running.job.name,
        jobName: "__default",
        requestId: running.job.id,
        // The workflow job, as one script step the stand-in's worker runs.
        steps: [{ type: "action", name: "Run build", reference: { type: "script" }, inputs: { script: `sleep ${seconds}` } }],
      },
    };
  }

  private completeJob(runner: Runner, call: RunnerCall): RunnerReply {
    const session = this.sessionOf(runner);
    const running = session?.job;
    const body = jsonBody(call);
    if (!session || !running || running.requestId !== body?.["jobId"]) return { status: 404, body: { message: "Job not found." } };
    const conclusion = String(body["conclusion"] ?? "").toLowerCase();
    const result: JobConclusion = conclusion === "succeeded" ? "success" : conclusion === "canceled" ? "cancelled" : "failure";
    session.job = undefined;
    running.job.onCancel = undefined;
    if (running.job.status !== "completed") {
      this.o.state.completeJob(running.job, result);
      void this.o.webhooks.sendJobEvent(running.job, "completed");
    }
    session.record.ok = result === "success";
    session.record.message = `job ${result}`;
    this.o.state.releaseRunner(runner);
    this.armLostTimer(session);
    return { status: 200 };
  }
}
