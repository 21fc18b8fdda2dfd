import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { type ServerType, serve } from "@hono/node-server";
import { Hono } from "hono";
import { configSummary } from "./config/summary.js";
import type { Config } from "./config.js";
import { DependencyError, errorMessage } from "./core/errors.js";
import { statusLabel } from "./core/replay-guard.js";
import { githubHealth, RecentFailures, type StatusReport } from "./core/status.js";
import type { WaitingSummary } from "./core/waiting.js";
import { poolTargets } from "./core/warm-pool.js";
import { createDeps, type ServiceDeps, servePolicy } from "./deps.js";
import { paceMs } from "./github/budget.js";
import { WebhookVerifier } from "./github/webhook.js";
import { createApp, type ReadinessReport } from "./http/app.js";
import { guardIdleConnections, listenerOptions } from "./http/listener.js";
import { renderStatusPage } from "./http/status-page.js";
import { JobEventHandler } from "./intake/event-handler.js";
import type { Logger } from "./log.js";
import { Metrics, resultLabel } from "./metrics.js";
import { CapacityGate } from "./provisioning/capacity-gate.js";
import { DEFAULT_DISPATCH_QUEUE, DispatchQueue } from "./provisioning/dispatch-queue.js";
import { Provisioner } from "./provisioning/provisioner.js";
import { SharedCapacityGate } from "./provisioning/shared-capacity.js";
import { type ReconcileReport, Reconciler } from "./reconciling/reconciler.js";
import { RunnerBoard } from "./runner-board.js";
import { type ClosableListener, shutDown } from "./shutdown.js";
import { readinessProbe, StartupError, startupChecks } from "./startup.js";
import { CloudflaredSupervisor } from "./tunnel/cloudflared.js";
import { tunnelTargetFor } from "./tunnel/settings.js";
import { serviceVersion } from "./version.js";

// The composition root: adapters (src/deps.ts) wired to the workflows' ports.
export { createDeps, type ServiceDeps } from "./deps.js";
export { StartupError, startupChecks } from "./startup.js";

export interface RunningService {
  /** Base URL the HTTP server listens on. */
  url: string;
  /** Where /metrics is served, unless METRICS_PORT=off. */
  metricsUrl: string | undefined;
  deps: ServiceDeps;
  reconciler: Reconciler;
  /**
   * SIGTERM: stops taking deliveries (the tunnel first), lets those in flight and the dispatches
   * started finish, then stops background work; bounded by SHUTDOWN_BUDGET_MS. Idempotent.
   */
  close(): Promise<void>;
}

/** Share of the GitHub budget the reconciler's periodic reads may use; the rest is for runners. */
export const RECONCILE_POLL_SHARE = 0.1;

/**
 * How often failed webhook deliveries are looked for between passes: one listing per hook (4
 * points a minute each), so a webhook lost while the tunnel was down is served within seconds.
 */
const REDELIVER_EVERY_MS = 15_000;

export async function startService(config: Config, log: Logger): Promise<RunningService> {
  // With METRICS_PORT=off nobody can read them: process metrics (an event-loop monitor and a GC
  // hook) are not collected at all; the service's own counters stay for tests and doctor.
  const metrics = new Metrics({ defaultMetrics: config.metricsPort !== undefined });
  const deps = createDeps(config, log, metrics);
  log.info({ version: serviceVersion(), config: configSummary(config) }, "starting nomad-gha-dispatcher");
  if (config.runner.scope === "org" && config.runner.registration !== "jit") {
    log.warn(
      { registration: config.runner.registration },
      "RUNNER_ALLOW_ORG_REGISTRATION_TOKEN=true: each runner's prestart gets an organization registration token, with which it could register runners for every repository of the organization",
    );
  }
  if (config.github.auth.kind === "token" && config.github.webhookUrl === undefined) {
    log.warn(
      "WEBHOOK_URL is not set: failed deliveries of the organization and repository webhooks are not redelivered, so a lost webhook waits for the paced per-repository scan",
    );
  }
  await startupChecks(config, deps);

  const policy = servePolicy(config);
  // The live runners by class and state, for the status page and the gauges: each pass's look, moved on by what is heard between passes.
  const board = new RunnerBoard(poolTargets(config.runner.classes, config.runner.scope, []));
  // Jobs accepted from webhooks (and found by the reconciler) wait in the queue for GitHub's rate limit.
  // What failed lately, for the status page: the logs say more, this says what to look for.
  const failures = new RecentFailures();
  const failed = (source: string, err: unknown) =>
    failures.add({ at: Date.now(), source, dependency: err instanceof DependencyError ? err.dependency : undefined, message: errorMessage(err) });
  // The limits hold across replicas through a slot ledger in Nomad Variables, unless told per process.
  const shared = config.capacityScope === "cluster" ? new SharedCapacityGate(deps, deps.variables, config.limits) : undefined;
  await shared?.start();
  const gate = shared ?? new CapacityGate(deps, config.limits);
  const provisioner = new Provisioner(deps, gate, new DispatchQueue(deps, DEFAULT_DISPATCH_QUEUE), {
    dispatched: ({ sinceQueued, ownSeconds }, cls, runner) => {
      if (sinceQueued !== undefined) metrics.dispatchLatency.observe({ class: cls }, sinceQueued);
      if (ownSeconds !== undefined) metrics.ownDispatchLatency.observe({ class: cls }, ownSeconds);
      board.heard({ at: Date.now(), kind: "dispatched", runner, cls });
    },
    notQueued: (jobStatus) => metrics.replaysRefused.inc({ job_status: statusLabel(jobStatus) }),
    failed: (err) => failed("dispatch", err),
  });
  const queue = provisioner.queue;
  metrics.watchWaiting((limit) => provisioner.waiting(limit));
  metrics.watchRunners(() => board.counts());
  const pollPointsPerMinute = config.github.budget.pointsPerMinute * RECONCILE_POLL_SHARE;
  const reconciler = new Reconciler(
    deps,
    policy,
    {
      intervalMs: config.reconcile.intervalSeconds * 1000,
      minGapMs: Math.min(5_000, config.reconcile.intervalSeconds * 1000),
      retentionMs: config.reconcile.retentionSeconds * 1000,
      graceMs: config.reconcile.graceSeconds * 1000,
      classes: config.runner.classes,
      registrationScope: config.runner.scope,
      staticRepos: config.allowedRepos,
      owners: config.allowedOwners,
      redeliverWindowMs: 60 * 60_000,
      redeliverEveryMs: Math.min(REDELIVER_EVERY_MS, config.reconcile.intervalSeconds * 1000),
      readPaceMs: (points) => paceMs(points, pollPointsPerMinute),
      // The same share bounds the per-repository scan within any minute, the first one included.
      scanPointsPerMinute: pollPointsPerMinute,
      ...config.limits,
    },
    provisioner,
    (report) => {
      recordReconcile(metrics, report);
      if (report.runners) board.passed(report.runners.board, report.runners.lookedAt, report.runners.poolTargets);
      for (const message of report.errors.slice(0, 5)) failures.add({ at: Date.now(), source: "reconcile", message });
    },
  );
  // What provisioning cannot serve now, the reconciler finds again at GitHub.
  provisioner.followUpWith(reconciler);
  const handler = new JobEventHandler(deps, policy, provisioner, {
    notServed: (reason) => metrics.notServed.inc({ reason }),
    started: (cls, seconds, runner) => {
      metrics.jobsStarted.inc({ class: cls });
      if (seconds !== undefined) metrics.jobStartup.observe({ class: cls }, seconds);
      board.heard({ at: Date.now(), kind: "busy", runner: runner.name, cls: runner.cls });
    },
    completed: (cls, conclusion, runner) => {
      metrics.jobsCompleted.inc({ class: cls, result: resultLabel(conclusion) });
      board.heard({ at: Date.now(), kind: "gone", runner });
    },
  });
  let tunnel: CloudflaredSupervisor | undefined;
  const readiness = readinessProbe(deps, () => tunnel?.status());
  metrics.buildInfo.set({ version: serviceVersion(), node: process.version }, 1);
  const app = createApp({
    verifier: new WebhookVerifier(config.github.webhookSecrets),
    handle: (event) => handler.handle(event),
    readiness,
    bodyLimitBytes: config.webhookBodyLimit,
    log,
    metrics: {
      delivery: (event, outcome) => metrics.deliveries.inc({ event, outcome }),
      handled: (seconds) => metrics.handlingLatency.observe(seconds),
      failed: (err) => {
        metrics.dependencyErrors.inc({ dependency: err instanceof DependencyError ? err.dependency : "internal" });
        failed("webhook", err);
      },
    },
  });
  const server = await listen(app.fetch, config.host, config.port);
  const url = urlOf(server, config.host);
  log.info({ url }, "listening for GitHub webhooks");
  let metricsServer: ServerType | undefined;
  let metricsUrl: string | undefined;
  if (config.metricsPort !== undefined) {
    const status = async (): Promise<StatusReport> => {
      const now = Date.now();
      const [report, budgets] = [await readiness(), deps.github.budgetUsage()];
      const recent = failures.list();
      // Rejected credentials (readiness) say more than what the service saw of GitHub lately.
      const seen = githubHealth(recent, budgets, now);
      const credentials = report.checks.github;
      const github = credentials && !credentials.ok ? credentials : { ok: seen.ok, detail: [credentials?.detail, seen.detail].filter(Boolean).join("; ") };
      const health = { ...report.checks, github };
      return { generatedAt: now, ready: report.ready, health, waiting: provisioner.waiting(), runners: board.counts(), budgets, failures: recent };
    };
    metricsServer = await listen(metricsApp(metrics, readiness, () => provisioner.waiting(), status).fetch, config.host, config.metricsPort);
    metricsUrl = `${urlOf(metricsServer, config.host)}/metrics`;
    log.info({ url: metricsUrl }, "serving Prometheus metrics");
  }
  const target = tunnelTargetFor(config.tunnel, { host: config.host, port: portOf(server) });
  if (target) {
    tunnel = new CloudflaredSupervisor({ tunnel: target, binPath: config.tunnel.cloudflaredBin, logger: log });
    try {
      metrics.watchTunnel(() => tunnel?.status().connected === true);
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
      })
        // Its reservations and heartbeat go back at once, rather than after the heartbeat TTL.
        .then(() => shared?.close(1_000))
        .then(() => log.info("stopped"));
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

/**
 * The operators' listener, never behind the tunnel: metrics, and readiness with its reasons and
 * the jobs waiting for a runner (waiting jobs do not make the service unready: they are not lost).
 */
function metricsApp(metrics: Metrics, readiness: () => Promise<ReadinessReport>, waiting: () => WaitingSummary, status: () => Promise<StatusReport>): Hono {
  const app = new Hono();
  app.get("/status.json", async (c) => c.json(await status()));
  app.get("/status", async (c) => c.html(renderStatusPage(await status())));
  app.get("/metrics", async (c) => c.text(await metrics.registry.metrics(), 200, { "content-type": metrics.registry.contentType }));
  app.get("/readyz", async (c) => {
    const report = await readiness();
    return c.json({ ...report, waiting: waiting() }, report.ready ? 200 : 503);
  });
  return app;
}

function recordReconcile(metrics: Metrics, report: ReconcileReport): void {
  metrics.runners.set({ state: "queued" }, report.queued);
  metrics.runners.set({ state: "alive" }, report.alive);
  for (const [action, count] of Object.entries(report.actions)) if (count > 0) metrics.reconcileActions.inc({ action }, count);
  if (report.errors.length > 0) metrics.reconcileErrors.inc(report.errors.length);
  if (report.credentialsRefused > 0) metrics.credentialsRefused.inc(report.credentialsRefused);
}

function listen(fetch: (req: Request) => Response | Promise<Response>, hostname: string, port: number): Promise<ServerType> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch, hostname, port, serverOptions: listenerOptions() }, () => resolve(server));
    guardIdleConnections(server as Server);
    server.once("error", reject);
  });
}
