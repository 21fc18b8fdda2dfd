import { type ChildProcess, spawn } from "node:child_process";
import { EventEmitter } from "node:events";
import { createInterface } from "node:readline";
import cloudflared from "cloudflared";
import type { Logger } from "../log.js";
import { checkTunnelConfigFile, resolveCloudflaredBinary, TunnelStartError } from "./binary.js";
import { cloudflaredArgs, cloudflaredEnvironment } from "./command.js";
import { formatWebhookSettings, logCloudflaredLine, parseCloudflaredLine, webhookSettingsFor } from "./output.js";
import {
  type BackoffPolicy,
  type CloudflaredSupervisorOptions,
  DEFAULT_BACKOFF,
  DEFAULT_STOP_TIMEOUT_MS,
  KILL_WAIT_MS,
  type TunnelEvents,
  type TunnelStatus,
  type TunnelTarget,
} from "./target.js";

export { TunnelStartError, type TunnelStartProblem } from "./binary.js";
export { cloudflaredArgs, cloudflaredEnvironment } from "./command.js";
export type { CloudflaredEvent, CloudflaredLevel, CloudflaredLine } from "./output.js";
export { formatWebhookSettings, parseCloudflaredLine, webhookSettingsFor } from "./output.js";
export * from "./target.js";

/**
 * Runs cloudflared for the lifetime of the service and keeps it running.
 *
 * The `cloudflared` npm package provides the binary location (`use()`/`bin`); its `Tunnel`
 * class is not used because it puts the token on the command line, offers no way to set the
 * child's environment and stops with SIGINT without waiting for the process to go.
 */
export class CloudflaredSupervisor extends EventEmitter<TunnelEvents> {
  private readonly tunnel: TunnelTarget;
  private readonly log: Logger;
  private readonly cloudflaredLog: Logger;
  private readonly backoff: BackoffPolicy;
  private readonly stopTimeoutMs: number;
  private readonly childEnv: Record<string, string>;
  private readonly secret: string | undefined;
  private readonly options: CloudflaredSupervisorOptions;

  private binary: string | undefined;
  private args: string[] = [];
  private child: ChildProcess | undefined;
  private childGone: Promise<void> | undefined;
  private startedAt = 0;
  private started = false;
  private stopRequested = false;
  private stopping: Promise<void> | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private failureStreak = 0;
  private restarts = 0;
  private readonly connections = new Set<number>();
  private url: string | undefined;
  /** The quick-tunnel URL last shown to the operator, kept across restarts to flag a change. */
  private announcedUrl: string | undefined;
  private lastError: string | undefined;
  /** The most telling complaint of the current run, quoted when it exits. */
  private runComplaint: string | undefined;

  constructor(options: CloudflaredSupervisorOptions) {
    super();
    this.options = options;
    this.tunnel = options.tunnel;
    this.secret = "token" in options.tunnel ? options.tunnel.token : undefined;
    this.log = options.logger.child({ component: "tunnel", tunnelMode: options.tunnel.mode });
    this.cloudflaredLog = options.logger.child({ component: "cloudflared" });
    this.backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.stopTimeoutMs = options.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
    this.childEnv = cloudflaredEnvironment(options.tunnel, options.parentEnv ?? process.env, options.env);
  }

  /**
   * Checks the binary (and config file) and starts cloudflared. Resolves once the process is
   * launched, not when it is connected: status() reports that. Throws TunnelStartError when
   * the tunnel cannot work at all, e.g. a missing binary; failures after launch are retried.
   */
  async start(): Promise<void> {
    if (this.stopRequested) throw new TunnelStartError("stopped", "tunnel supervisor was stopped; create a new one to start again");
    if (this.started) return;
    this.started = true;
    try {
      this.validateTarget();
      const binary = await resolveCloudflaredBinary(this.options.binPath, this.options.parentEnv?.PATH ?? process.env.PATH);
      const tunnel =
        this.tunnel.mode === "named" && "configFile" in this.tunnel
          ? { ...this.tunnel, configFile: await checkTunnelConfigFile(this.tunnel.configFile) }
          : this.tunnel;
      cloudflared.use(binary);
      this.binary = cloudflared.bin;
      this.args = cloudflaredArgs(tunnel);
    } catch (err) {
      this.started = false;
      this.lastError = (err as Error).message;
      throw err;
    }
    if (this.stopRequested) return; // stop() arrived while we were checking files
    this.log.info({ binary: this.binary, args: this.args }, "starting cloudflared");
    this.launch();
  }

  status(): TunnelStatus {
    const status: TunnelStatus = {
      mode: this.tunnel.mode,
      connected: this.connections.size > 0,
      connections: this.connections.size,
      restarts: this.restarts,
    };
    if (this.url !== undefined) status.url = this.url;
    if (this.lastError !== undefined) status.lastError = this.lastError;
    return status;
  }

  /** PID of the running cloudflared, if one runs right now. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /**
   * SIGTERM, so cloudflared unregisters from the edge (which then routes to other replicas)
   * and finishes in-flight requests; SIGKILL if it takes longer than stopTimeoutMs.
   * Idempotent; resolves when the process is gone.
   */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    this.stopRequested = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    const child = this.child;
    const gone = this.childGone;
    if (!child || !gone) return;

    this.log.info({ pid: child.pid }, "stopping cloudflared");
    child.kill("SIGTERM");
    if (await settlesWithin(gone, this.stopTimeoutMs)) return;
    this.log.warn({ pid: child.pid, waitedMs: this.stopTimeoutMs }, "cloudflared ignored SIGTERM; sending SIGKILL");
    child.kill("SIGKILL");
    if (!(await settlesWithin(gone, KILL_WAIT_MS))) {
      this.log.error({ pid: child.pid }, "cloudflared still running after SIGKILL; giving up waiting");
    }
  }

  private validateTarget(): void {
    const t = this.tunnel;
    if (t.mode === "quick") {
      let url: URL | undefined;
      try {
        url = new URL(t.originUrl);
      } catch {
        url = undefined;
      }
      if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) {
        throw new TunnelStartError("invalid-options", `quick tunnel origin must be an http(s) URL like http://127.0.0.1:8080, got "${t.originUrl}"`);
      }
    } else if ("token" in t && t.token.trim() === "") {
      throw new TunnelStartError("invalid-options", "TUNNEL_TOKEN is empty: copy the tunnel token from the Cloudflare dashboard");
    }
  }

  private launch(): void {
    const binary = this.binary;
    if (binary === undefined) return;
    this.connections.clear();
    this.url = undefined; // a quick tunnel gets a new URL per process
    this.runComplaint = undefined;
    this.startedAt = Date.now();

    let child: ChildProcess;
    try {
      child = spawn(binary, this.args, { env: this.childEnv, stdio: ["ignore", "pipe", "pipe"] });
    } catch (err) {
      // Synchronous spawn failures (EINVAL, EMFILE, ...) are as retryable as a crash.
      this.noteError((err as Error).message);
      this.scheduleRestart(null, null);
      return;
    }
    this.child = child;
    let resolveGone!: () => void;
    this.childGone = new Promise<void>((resolve) => (resolveGone = resolve));

    let gone = false;
    const onGone = (code: number | null, signal: NodeJS.Signals | null) => {
      if (gone) return;
      gone = true;
      this.onChildGone(child, code, signal);
      resolveGone();
    };
    child.on("error", (err) => {
      this.noteError(err.message); // e.g. "spawn /usr/local/bin/cloudflared ENOENT"
      // A process that never started emits no reliable "close" on every Node version.
      if (child.pid === undefined) onGone(null, null);
    });
    // "close" rather than "exit": by then every output line has been read, so the last
    // error cloudflared printed is known when deciding what to report.
    child.on("close", (code, signal) => onGone(code, signal));

    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream, crlfDelay: Infinity }).on("line", (line) => this.onLine(line));
    }
    this.log.debug({ pid: child.pid }, "cloudflared launched");
  }

  private onChildGone(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.child === child) this.child = undefined;
    const hadConnections = this.connections.size > 0;
    this.connections.clear();
    if (hadConnections) this.emit("disconnected", undefined);

    const expected = this.stopRequested;
    this.emit("exit", { code, signal, expected });
    if (expected) {
      this.log.info({ code, signal }, "cloudflared stopped");
      return;
    }

    this.scheduleRestart(code, signal);
  }

  private scheduleRestart(code: number | null, signal: NodeJS.Signals | null): void {
    const how = signal ? `was killed by ${signal}` : code === null ? "did not start" : `exited with code ${code}`;
    this.lastError = this.runComplaint ? `cloudflared ${how}: ${this.runComplaint}` : `cloudflared ${how}`;

    const ranForMs = Date.now() - this.startedAt;
    if (ranForMs >= this.backoff.stableAfterMs) this.failureStreak = 0;
    const delayMs = Math.min(this.backoff.initialMs * 2 ** this.failureStreak, this.backoff.maxMs);
    this.failureStreak += 1;
    this.log.warn(
      { code, signal, ranForMs, restartInMs: delayMs, restarts: this.restarts, lastError: this.lastError },
      `${this.lastError}; restarting in ${delayMs} ms`,
    );
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopRequested) return;
      this.restarts += 1;
      this.launch();
    }, delayMs);
  }

  private onLine(raw: string): void {
    if (raw.trim() === "") return;
    const line = parseCloudflaredLine(this.redact(raw));
    logCloudflaredLine(this.cloudflaredLog, line);

    if (line.error !== undefined) {
      this.noteError(line.error);
    } else if (line.level === undefined && this.runComplaint === undefined) {
      // Unformatted output is how cloudflared reports usage errors before its logger exists,
      // e.g. "Provided Tunnel token is not valid."
      this.runComplaint = line.message;
    }

    const event = line.event;
    if (!event) return;
    if (event.kind === "connected") {
      const wasConnected = this.connections.size > 0;
      this.connections.add(event.connIndex);
      if (!wasConnected) {
        this.log.info({ connIndex: event.connIndex, location: event.location, protocol: event.protocol }, "tunnel connected to the Cloudflare edge");
      }
      this.emit("connected", event.connIndex);
    } else if (event.kind === "disconnected") {
      const before = this.connections.size;
      if (event.connIndex === undefined) this.connections.clear();
      else this.connections.delete(event.connIndex);
      // cloudflared repeats itself on the way down (shutdown notice, then one line per
      // connection); only report what changed.
      if (this.connections.size === before) return;
      if (this.connections.size === 0) {
        this.log.warn({ connIndex: event.connIndex, reason: event.reason }, "tunnel has no connection to the Cloudflare edge");
      }
      this.emit("disconnected", event.connIndex);
    } else if (event.kind === "quick-url" && this.tunnel.mode === "quick" && event.url !== this.url) {
      const previous = this.announcedUrl;
      this.url = this.announcedUrl = event.url;
      if (previous !== undefined && previous !== event.url) {
        this.log.warn({ url: event.url, previousUrl: previous }, "quick tunnel URL changed after a restart: update the GitHub webhook");
      }
      this.log.info({ url: event.url, webhook: webhookSettingsFor(event.url) }, formatWebhookSettings(event.url));
      this.emit("url", event.url);
    }
  }

  private noteError(message: string): void {
    this.lastError = message;
    this.runComplaint = message;
  }

  /** cloudflared masks the token in its own settings line; this is the second line of defence. */
  private redact(text: string): string {
    return this.secret && this.secret.length >= 4 ? text.replaceAll(this.secret, "[redacted]") : text;
  }
}

async function settlesWithin(promise: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
