import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { RunnerCounts } from "./core/status.js";
import { WAIT_REASONS, type WaitingSummary } from "./core/waiting.js";

/**
 * The service's Prometheus metrics. Served on their own listener (METRICS_PORT), never through
 * the tunnel, so the public surface stays the webhook alone.
 */
export class Metrics {
  readonly registry = new Registry();

  readonly deliveries = new Counter({
    name: "ngd_webhook_deliveries_total",
    help: "Webhook deliveries by event and outcome",
    labelNames: ["event", "outcome"] as const,
    registers: [this.registry],
  });

  readonly dispatchLatency = new Histogram({
    name: "ngd_dispatch_latency_seconds",
    help: "From the job being queued at GitHub to the Nomad dispatch being accepted, by runner class (GitHub's delivery included)",
    labelNames: ["class"] as const,
    buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900],
    registers: [this.registry],
  });

  readonly ownDispatchLatency = new Histogram({
    name: "ngd_dispatch_own_seconds",
    help:
      "The service's own share of a runner's start, by runner class: from this process first hearing of the job (its webhook, or the reconciler finding it) " +
      "to the Nomad dispatch being accepted; waits for capacity, GitHub's budget and failing systems included",
    labelNames: ["class"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });

  readonly jobsStarted = new Counter({
    name: "ngd_jobs_started_total",
    help: "Workflow jobs a runner of this service picked up (their in_progress event), by the job's runner class",
    labelNames: ["class"] as const,
    registers: [this.registry],
  });

  readonly jobsCompleted = new Counter({
    name: "ngd_jobs_completed_total",
    help:
      "Workflow jobs that ran on a runner of this service and ended (their completed event), by the job's runner class and GitHub's conclusion " +
      "(success, failure, cancelled, skipped, timed_out, neutral, action_required; other for anything else)",
    labelNames: ["class", "result"] as const,
    registers: [this.registry],
  });

  readonly jobStartup = new Histogram({
    name: "ngd_job_startup_seconds",
    help:
      "GitHub's own started_at - created_at of jobs our runners picked up (from their in_progress event), by runner class: " +
      "the figure ARC publishes as gha_job_startup_duration_seconds",
    labelNames: ["class"] as const,
    buckets: [1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 300, 600, 1800],
    registers: [this.registry],
  });

  readonly notServed = new Counter({
    name: "ngd_jobs_not_served_total",
    help: "workflow_job events of jobs this service does not serve, by reason: owner-not-allowed, repo-not-allowed, no-labels, no-class (no runner class has exactly its labels)",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });

  readonly replaysRefused = new Counter({
    name: "ngd_replayed_deliveries_refused_total",
    help: "Queued deliveries refused because GitHub says the job is not queued (replays), by the job's status",
    labelNames: ["job_status"] as const,
    registers: [this.registry],
  });

  readonly handlingLatency = new Histogram({
    name: "ngd_webhook_handling_seconds",
    help: "Time spent handling a queued webhook, from receipt to response",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10],
    registers: [this.registry],
  });

  /** Where the runner gauges read the live runners at each scrape (the service's RunnerBoard). */
  private runnerSource: (() => RunnerCounts) | undefined;

  readonly runners: Gauge<"state"> = new Gauge({
    name: "ngd_runners",
    help:
      "queued (jobs queued at GitHub that this service serves, in the repositories listed) and alive (runner jobs pending or running in Nomad) " +
      "as of the last reconcile pass; and live runner jobs by state as of the scrape (the last pass's look moved on by dispatches and " +
      "in_progress/completed events since): starting (not seen online at GitHub yet), idle (online, no job), busy (running a job)",
    labelNames: ["state"] as const,
    registers: [this.registry],
    collect: (): void => {
      const counts = this.runnerSource?.();
      if (counts) for (const [state, n] of Object.entries(counts.byState)) this.runners.set({ state }, n);
    },
  });

  readonly classRunners: Gauge<"class" | "state"> = new Gauge({
    name: "ngd_class_runners",
    help: "Live runner jobs by runner class and state (starting, idle, busy), as of the scrape, like ngd_runners",
    labelNames: ["class", "state"] as const,
    registers: [this.registry],
    collect: (): void => {
      const counts = this.runnerSource?.();
      if (!counts) return;
      this.classRunners.reset();
      for (const [cls, c] of Object.entries(counts.byClass)) for (const state of STATES) this.classRunners.set({ class: cls, state }, c[state]);
    },
  });

  readonly poolTarget: Gauge<"class"> = new Gauge({
    name: "ngd_warm_pool_target_runners",
    help: "Idle runners a runner class's warm pools keep in all: min_idle times its pools (organisations or repositories served); 0 without a pool. As of the last reconcile pass",
    labelNames: ["class"] as const,
    registers: [this.registry],
    collect: (): void => {
      const counts = this.runnerSource?.();
      if (counts) for (const [cls, c] of Object.entries(counts.byClass)) this.poolTarget.set({ class: cls }, c.poolTarget);
    },
  });

  /** The runner gauges read `source` when scraped. */
  watchRunners(source: () => RunnerCounts): void {
    this.runnerSource = source;
  }

  readonly reconcileActions = new Counter({
    name: "ngd_reconcile_actions_total",
    help: "Repairs made by the reconciler, by kind",
    labelNames: ["action"] as const,
    registers: [this.registry],
  });

  readonly reconcileErrors = new Counter({
    name: "ngd_reconcile_errors_total",
    help: "Reconcile passes or actions that failed",
    registers: [this.registry],
  });

  readonly rateLimitRemaining = new Gauge({
    name: "ngd_github_rate_limit_remaining",
    help: "GitHub primary rate limit remaining, from the last response",
    registers: [this.registry],
  });

  readonly dependencyErrors = new Counter({
    name: "ngd_dependency_errors_total",
    help: "Failed calls to GitHub, Vault and Nomad",
    labelNames: ["dependency"] as const,
    registers: [this.registry],
  });

  readonly credentialsRefused = new Counter({
    name: "ngd_runner_credentials_refused_total",
    help:
      "Runner allocations whose prestart found its single-use wrapping token spent, expired or made for another runner (exit code 97): " +
      "a possible theft; each such runner was removed at GitHub and its secret destroyed",
    registers: [this.registry],
  });

  /** Where the waiting jobs are read at each scrape (the provisioner), so the gauges are current. */
  private waitingSource: ((limit: number) => WaitingSummary) | undefined;

  readonly jobsWaiting = new Gauge({
    name: "ngd_jobs_waiting",
    help:
      "Jobs accepted (queued at GitHub, matching this service) that have no runner yet, by what they wait for: " +
      "capacity (max-runners, max-runners-per-repo, class-max-runners, class-max-runners-per-repo; capacity until the next reconcile pass names the cap), github-budget (the rate limit), " +
      "queue-full, github/vault/nomad (the last attempt failed there; retried with backoff), in-flight (another attempt is mid-way), error. As of the scrape",
    labelNames: ["reason"] as const,
    registers: [this.registry],
    collect: (): void => {
      const summary = this.waitingSource?.(0);
      for (const reason of WAIT_REASONS) this.jobsWaiting.set({ reason }, summary?.byReason[reason] ?? 0);
    },
  });

  readonly oldestWaiting: Gauge = new Gauge({
    name: "ngd_jobs_waiting_oldest_seconds",
    help: "Seconds since GitHub queued the longest-waiting job that has no runner yet (0: none waits). As of the scrape",
    registers: [this.registry],
    collect: (): void => {
      this.oldestWaiting.set(this.waitingSource?.(1).jobs[0]?.waitingSeconds ?? 0);
    },
  });

  readonly buildInfo = new Gauge({
    name: "ngd_build_info",
    help: "Always 1; its labels say which version of the service runs, on which Node.js",
    labelNames: ["version", "node"] as const,
    registers: [this.registry],
  });

  /** Where the tunnel's state is read at each scrape (undefined: the service runs no tunnel). */
  private tunnelSource: (() => boolean) | undefined;

  readonly tunnelUp: Gauge = new Gauge({
    name: "ngd_tunnel_up",
    help: "1 while cloudflared holds at least one connection to Cloudflare's edge, 0 otherwise (absent with TUNNEL=off). As of the scrape",
    registers: [this.registry],
    collect: (): void => {
      if (this.tunnelSource) this.tunnelUp.set(this.tunnelSource() ? 1 : 0);
    },
  });

  /** The tunnel gauge reads `connected` when scraped. */
  watchTunnel(connected: () => boolean): void {
    this.tunnelSource = connected;
  }

  /** The gauges of waiting jobs read `source` when scraped. */
  watchWaiting(source: (limit: number) => WaitingSummary): void {
    this.waitingSource = source;
  }

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    // Event-loop lag sampled every 100 ms, not prom-client's 10 ms: frequent wake-ups are a large
    // share of an idle service's CPU, and a stall worth alerting on lasts far longer.
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: "ngd_", eventLoopMonitoringPrecision: 100 });
  }
}

/**
 * A completed workflow_job's conclusions (@octokit/openapi-webhooks, webhook-workflow-job-completed):
 * the only values the `result` label takes, so the series stay bounded.
 */
const STATES = ["starting", "idle", "busy"] as const;

const CONCLUSIONS = new Set(["success", "failure", "cancelled", "skipped", "timed_out", "neutral", "action_required"]);

export function resultLabel(conclusion: string | null): string {
  return conclusion !== null && CONCLUSIONS.has(conclusion) ? conclusion : "other";
}
