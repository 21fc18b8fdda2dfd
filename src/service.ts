import type { AddressInfo } from "node:net";
import { serve, type ServerType } from "@hono/node-server";
import { Hono } from "hono";
import type { Config } from "./config.js";
import type { ServePolicy } from "./core/decide.js";
import { DependencyError, errorMessage, isTransient } from "./core/errors.js";
import { GitHubClient } from "./github/client.js";
import { WebhookVerifier } from "./github/webhook.js";
import { createApp, type ReadinessReport } from "./http/app.js";
import type { Logger } from "./log.js";
import { NomadClient } from "./nomad/client.js";
import { ensureRunnerJob } from "./nomad/runner-job.js";
import type { RunnerDeps } from "./runners/deps.js";
import { CapacityGate } from "./runners/capacity.js";
import { DEFAULT_DISPATCH_QUEUE, DispatchQueue } from "./runners/dispatch-queue.js";
import { JobEventHandler } from "./runners/handle-event.js";
import { Reconciler, type ReconcileReport } from "./runners/reconciler.js";
import { RunnerIndex } from "./runners/runner-index.js";
import { Metrics } from "./metrics.js";
import { shutDown, type ClosableListener } from "./shutdown.js";
import { CloudflaredSupervisor, type TunnelStatus } from "./tunnel/cloudflared.js";
import { tunnelTargetFor } from "./tunnel/settings.js";
import { VaultStore } from "./vault/client.js";

export class StartupError extends Error {
  override name = "StartupError";
}

export interface RunningService {
  /** Base URL the HTTP server listens on. */
  url: string;
  /** Where /metrics is served, unless METRICS_PORT=off. */
  metricsUrl: string | undefined;
  deps: RunnerDeps;
  reconciler: Reconciler;
  /**
   * SIGTERM: stops taking deliveries (the tunnel first), lets those in flight and the dispatches
   * started finish, then stops background work; bounded by SHUTDOWN_BUDGET_MS. Idempotent.
   */
  close(): Promise<void>;
}

export function servePolicy(config: Config): ServePolicy {
  return {
    labels: config.runner.labels,
    allowedOwners: config.allowedOwners,
    allowedRepos: config.allowedRepos,
    runnerNamePrefix: config.runner.namePrefix,
  };
}

export function createDeps(config: Config, log: Logger, metrics?: Metrics): RunnerDeps {
  return {
    log,
    runnerIndex: new RunnerIndex(),
    github: new GitHubClient({
      onResponse: (headers) => {
        const remaining = Number(headers["x-ratelimit-remaining"]);
        if (metrics && Number.isFinite(remaining)) metrics.rateLimitRemaining.set(remaining);
      },
      auth: config.github.auth,
      budget: config.github.budget,
      apiUrl: config.github.apiUrl,
      webUrl: config.github.webUrl,
      scope: config.runner.scope,
      runnerGroupId: config.runner.groupId,
    }),
    vault: new VaultStore({
      addr: config.vault.addr,
      token: config.vault.token,
      namespace: config.vault.namespace,
      kvMount: config.vault.kvMount,
      kvPrefix: config.vault.kvPrefix,
    }),
    nomad: new NomadClient({
      addr: config.nomad.addr,
      token: config.nomad.token,
      namespace: config.nomad.namespace,
      region: config.nomad.region,
    }),
    settings: {
      runnerJob: config.nomad.runnerJob,
      registration: config.runner.registration,
      dispatcherId: config.dispatcherId,
      runnerNamePrefix: config.runner.namePrefix,
      runnerLabels: config.runner.labels,
      wrapTtl: config.vault.wrapTtl,
      retry: { retries: 4, minTimeoutMs: 200, maxTimeoutMs: 2_000 },
    },
  };
}

/**
 * Checks that must pass before we accept a single webhook. Users are promised an audited
 * credential flow, so a Vault without an audit device is refused unless explicitly allowed.
 */
export async function startupChecks(config: Config, deps: RunnerDeps, waitMs = STARTUP_WAIT_MS): Promise<void> {
  const available = <T>(what: string, fn: () => Promise<T>) => whenAvailable(what, fn, deps.log, waitMs);
  if (config.vault.requireAudit) {
    let devices: string[];
    try {
      devices = await available("Vault", () => deps.vault.auditDevices());
    } catch (err) {
      throw new StartupError(`cannot list Vault audit devices at ${config.vault.addr} (needs sudo on sys/audit): ${errorMessage(err)}`);
    }
    if (devices.length === 0) {
      throw new StartupError(
        `Vault at ${config.vault.addr} has no audit device enabled, so runner credential access would not be audited. ` +
          "Enable one (vault audit enable file file_path=/var/log/vault_audit.log) or set VAULT_REQUIRE_AUDIT=false.",
      );
    }
  }
  if (config.nomad.registerRunnerJob) {
    try {
      const result = await available("Nomad", () =>
        ensureRunnerJob(deps.nomad, {
          jobId: config.nomad.runnerJob,
          file: config.nomad.runnerJobFile,
          varsFile: config.nomad.runnerJobVarsFile,
          vault: { addr: config.vault.runnerAddr, namespace: config.vault.namespace },
        }),
      );
      deps.log.info({ job: config.nomad.runnerJob, result }, "runner job checked");
    } catch (err) {
      throw new StartupError(`cannot register Nomad job ${config.nomad.runnerJob}: ${errorMessage(err)}`);
    }
  } else {
    const job = await available("Nomad", () => deps.nomad.readJob(config.nomad.runnerJob)).catch((err: unknown) => {
      throw new StartupError(`cannot read Nomad job ${config.nomad.runnerJob}: ${errorMessage(err)}`);
    });
    if (!job) throw new StartupError(`Nomad job ${config.nomad.runnerJob} does not exist and NOMAD_REGISTER_RUNNER_JOB=false`);
  }
}

/**
 * How long start-up waits for Vault or Nomad to come back from a passing outage (sealed, no
 * leader, restarting) before it gives up: a replica restarted during a Vault restart then starts
 * once Vault is back instead of failing, while a wrong address still fails within a minute.
 */
export const STARTUP_WAIT_MS = 60_000;

/** Runs `fn` until it succeeds, retrying transient dependency failures for up to `waitMs`. */
async function whenAvailable<T>(what: string, fn: () => Promise<T>, log: Logger, waitMs: number): Promise<T> {
  const deadline = Date.now() + waitMs;
  let said = "";
  for (let delay = 250; ; delay = Math.min(delay * 2, 5_000)) {
    try {
      return await fn();
    } catch (err) {
      if (!isTransient(err) || Date.now() + delay > deadline) throw err;
      const message = errorMessage(err);
      if (message !== said) log.warn({ err: message }, `${what} is not available yet; start-up waits for it`);
      said = message;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

/** Nomad and Vault reachable and able to serve; cached briefly so probes do not hammer them. */
export function readinessProbe(deps: RunnerDeps, tunnel?: () => TunnelStatus | undefined, cacheMs = 2_000): () => Promise<ReadinessReport> {
  let cached: { at: number; report: Promise<ReadinessReport> } | undefined;
  const check = async (): Promise<ReadinessReport> => {
    const [nomad, vault] = await Promise.all([
      deps.nomad.leader().then(
        (leader) => ({ ok: leader !== "", detail: leader ? `leader ${leader}` : "no leader" }),
        (err: unknown) => ({ ok: false, detail: errorMessage(err) }),
      ),
      deps.vault.health().then(
        (h) => ({ ok: h.initialized && !h.sealed && !h.standby, detail: h.sealed ? "sealed" : h.standby ? "standby" : "active" }),
        (err: unknown) => ({ ok: false, detail: errorMessage(err) }),
      ),
    ]);
    const checks: ReadinessReport["checks"] = { nomad, vault };
    const t = tunnel?.();
    if (t) {
      checks.tunnel = { ok: t.connected, detail: t.connected ? `${t.connections} edge connection(s)` : (t.lastError ?? "not connected") };
    }
    return { ready: Object.values(checks).every((c) => c.ok), checks };
  };
  return () => {
    if (!cached || Date.now() - cached.at > cacheMs) cached = { at: Date.now(), report: check() };
    return cached.report;
  };
}

export interface ServiceOptions {
  metrics?: Metrics;
  deps?: RunnerDeps;
}

/** Share of the GitHub budget the reconciler's periodic reads may use; the rest is for runners. */
export const RECONCILE_POLL_SHARE = 0.1;

export async function startService(config: Config, log: Logger, opts: ServiceOptions = {}): Promise<RunningService> {
  // With METRICS_PORT=off nobody can read them: process metrics (an event-loop monitor and a GC
  // observer) are not collected at all; the service's own counters stay for tests and doctor.
  const metrics = opts.metrics ?? new Metrics({ defaultMetrics: config.metricsPort !== undefined });
  const deps = opts.deps ?? createDeps(config, log, metrics);
  await startupChecks(config, deps);

  const policy = servePolicy(config);
  const gate = new CapacityGate(deps, config.limits);
  // Jobs accepted from webhooks (and found by the reconciler) wait here for GitHub's rate limit.
  const queue = new DispatchQueue(deps, DEFAULT_DISPATCH_QUEUE);
  const reconciler = new Reconciler(deps, policy, {
    intervalMs: config.reconcile.intervalSeconds * 1000,
    minGapMs: Math.min(5_000, config.reconcile.intervalSeconds * 1000),
    retentionMs: config.reconcile.retentionSeconds * 1000,
    graceMs: config.reconcile.graceSeconds * 1000,
    runnerNamePrefix: config.runner.namePrefix,
    staticRepos: config.allowedRepos,
    owners: config.allowedOwners,
    redeliverWindowMs: 60 * 60_000,
    pollPointsPerMinute: config.github.budget.pointsPerMinute * RECONCILE_POLL_SHARE,
    ...config.limits,
  }, (report) => recordReconcile(metrics, report), async (job, runnerName) => {
    if (!queue.enqueue(job, runnerName)) throw new Error(`dispatch queue full or closed (${queue.size.waiting} waiting); next pass`);
    return { status: "queued" };
  });
  const handler = new JobEventHandler(deps, policy, gate, reconciler, (s) => metrics.dispatchLatency.observe(s), queue);
  let tunnel: CloudflaredSupervisor | undefined;
  const app = createApp({
    verifier: new WebhookVerifier(config.github.webhookSecrets),
    handle: (event) => handler.handle(event),
    readiness: readinessProbe(deps, () => tunnel?.status()),
    bodyLimitBytes: config.webhookBodyLimit,
    log,
    observer: {
      delivery: (event, outcome) => metrics.deliveries.inc({ event, outcome }),
      handled: (seconds) => metrics.handlingLatency.observe(seconds),
      failed: (err) => metrics.dependencyErrors.inc({ dependency: err instanceof DependencyError ? err.dependency : "internal" }),
    },
  });
  const server = await listen(app.fetch, config.host, config.port);
  const url = urlOf(server, config.host);
  log.info({ url }, "listening for GitHub webhooks");
  let metricsServer: ServerType | undefined;
  let metricsUrl: string | undefined;
  if (config.metricsPort !== undefined) {
    metricsServer = await listen(metricsApp(metrics).fetch, config.host, config.metricsPort);
    metricsUrl = `${urlOf(metricsServer, config.host)}/metrics`;
    log.info({ url: metricsUrl }, "serving Prometheus metrics");
  }
  const target = tunnelTargetFor(config.tunnel, { host: config.host, port: portOf(server) });
  if (target) {
    tunnel = new CloudflaredSupervisor({ tunnel: target, binPath: config.tunnel.cloudflaredBin, logger: log });
    try {
      await tunnel.start();
    } catch (err) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      throw new StartupError(errorMessage(err));
    }
  }
  reconciler.start();

  let closing: Promise<void> | undefined;
  return {
    url,
    metricsUrl,
    deps,
    reconciler,
    close() {
      closing ??= shutDown({
        log,
        tunnel,
        listener: closableListener(server),
        webhooks: handler,
        // Jobs not started yet stay queued at GitHub for the next process; those started may
        // finish, unless they wait for GitHub's rate limit (up to a minute): those give up now.
        dispatchQueue: queue,
        github: deps.github,
        reconciler,
        metrics: metricsServer && closableListener(metricsServer),
      }).then(() => log.info("stopped"));
      return closing;
    },
  };
}

/** Stops accepting; idle keep-alive connections would hold close() open, busy ones finish their request. */
function closableListener(server: ServerType): ClosableListener {
  const http = server as ServerType & { closeIdleConnections?: () => void; closeAllConnections?: () => void };
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        http.closeIdleConnections?.();
      }),
    forceClose: () => http.closeAllConnections?.(),
  };
}

function portOf(server: ServerType): number {
  return (server.address() as AddressInfo).port;
}

function urlOf(server: ServerType, host: string): string {
  return `http://${host.includes(":") ? `[${host}]` : host}:${portOf(server)}`;
}

function metricsApp(metrics: Metrics): Hono {
  const app = new Hono();
  app.get("/metrics", async (c) => c.text(await metrics.registry.metrics(), 200, { "content-type": metrics.registry.contentType }));
  return app;
}

function recordReconcile(metrics: Metrics, report: ReconcileReport): void {
  metrics.runners.set({ state: "queued" }, report.queued);
  metrics.runners.set({ state: "alive" }, report.alive);
  for (const [action, count] of Object.entries(report.actions)) if (count > 0) metrics.reconcileActions.inc({ action }, count);
  if (report.errors.length > 0) metrics.reconcileErrors.inc(report.errors.length);
}

function listen(fetch: (req: Request) => Response | Promise<Response>, hostname: string, port: number): Promise<ServerType> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch, hostname, port }, () => resolve(server));
    server.once("error", reject);
  });
}
