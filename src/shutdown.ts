import { errorMessage } from "./core/errors.js";
import type { Logger } from "./log.js";
import { DEFAULT_STOP_TIMEOUT_MS, KILL_WAIT_MS } from "./tunnel/cloudflared.js";

/**
 * How long each step of a SIGTERM shutdown may take. Nomad SIGKILLs the task `kill_timeout` after
 * SIGTERM, and its client clamps kill_timeout to `max_kill_timeout`, 30 s by default
 * (hashicorp/nomad client/allocrunner/taskrunner/driver_handle.go, command/agent/config.go):
 * the steps together, plus SHUTDOWN_MARGIN_MS, stay below that (jobs/dispatcher.nomad.hcl sets
 * kill_timeout, and test/unit/deploy-files.test.ts checks the sum against it).
 */
export interface ShutdownBudget {
  readonly tunnel: number;
  readonly webhooks: number;
  readonly dispatchQueue: number;
  readonly reconciler: number;
  readonly metrics: number;
}

export const SHUTDOWN_BUDGET_MS: ShutdownBudget = {
  /** cloudflared: its --grace-period for requests in flight through it, time to exit, SIGKILL. */
  tunnel: DEFAULT_STOP_TIMEOUT_MS + KILL_WAIT_MS,
  /** Webhooks still being handled once the tunnel is gone (most finished during its grace period). */
  webhooks: 5_000,
  /** Dispatches already started (credential, Vault, Nomad); those not started stay queued at GitHub. */
  dispatchQueue: 5_000,
  /** A reconcile pass in progress; it cannot dispatch any more (the queue is closed). */
  reconciler: 2_000,
  /** The metrics listener (a Prometheus scrape holds a keep-alive connection). */
  metrics: 1_000,
};

/** Left between the last step and Nomad's SIGKILL: the process exiting, tini, a busy node. */
export const SHUTDOWN_MARGIN_MS = 3_000;

/** The longest a shutdown takes, every step using its whole budget. */
export function shutdownBudgetTotalMs(): number {
  return Object.values(SHUTDOWN_BUDGET_MS).reduce((sum, ms) => sum + ms, 0);
}

/** An HTTP listener as shutdown sees it. */
export interface ClosableListener {
  /** Stops accepting; resolves once every connection is gone. */
  close(): Promise<void>;
  /** Drops the connections still open. */
  forceClose(): void;
}

/** What a shutdown stops. */
export interface ShutdownParts {
  log: Logger;
  /** The cloudflared supervisor, when a tunnel runs. */
  tunnel?: { stop(): Promise<void> };
  /** The webhook listener. */
  listener: ClosableListener;
  /** The webhook handler: drain() resolves once no event is being handled. */
  webhooks: { drain(): Promise<void> };
  dispatchQueue: { close(timeoutMs: number): Promise<void> };
  /** Fails requests still waiting for rate-limit budget at once. */
  github: { close(): void };
  reconciler: { stop(): Promise<void> };
  metrics?: ClosableListener;
}

/**
 * Stops taking deliveries first, then lets the work already taken finish, each step within its
 * budget:
 * 1. the tunnel: cloudflared unregisters from the edge, so deliveries go to the other replica,
 *    and lets requests in flight through it finish (the listener still serves them meanwhile);
 * 2. the listener: no new connections; webhooks in flight finish;
 * 3. the dispatch queue: jobs not started are left queued at GitHub for the next process;
 * 4. the reconciler (told to stop at once, so no pass starts during the shutdown);
 * 5. the metrics listener.
 * A step that overruns its budget is cut short and logged; shutdown goes on.
 */
export async function shutDown(parts: ShutdownParts, budget: ShutdownBudget = SHUTDOWN_BUDGET_MS): Promise<void> {
  const { log } = parts;
  const reconcilerStopped = parts.reconciler.stop();
  if (parts.tunnel) await step(log, "stop the tunnel", parts.tunnel.stop(), budget.tunnel);

  const listenerClosed = parts.listener.close();
  const drained = Promise.all([listenerClosed, parts.webhooks.drain()]).then(() => undefined);
  if (!(await step(log, "finish the webhooks in flight", drained, budget.webhooks))) parts.listener.forceClose();

  const queueClosed = parts.dispatchQueue.close(budget.dispatchQueue);
  parts.github.close();
  await step(log, "finish the dispatches started", queueClosed, budget.dispatchQueue);

  await step(log, "stop the reconciler", reconcilerStopped, budget.reconciler);
  if (parts.metrics) {
    const metrics = parts.metrics;
    if (!(await step(log, "close the metrics listener", metrics.close(), budget.metrics))) metrics.forceClose();
  }
}

/** Waits for `work` up to `ms`; false (and a warning) when it took longer or failed. */
async function step(log: Logger, what: string, work: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const overrun = new Promise<"overrun">((resolve) => (timer = setTimeout(() => resolve("overrun"), ms)));
  try {
    const outcome = await Promise.race([work.then(() => "done" as const), overrun]);
    if (outcome === "overrun") log.warn({ budgetMs: ms }, `shutdown: could not ${what} within its budget; going on`);
    return outcome === "done";
  } catch (err) {
    log.warn({ err: errorMessage(err) }, `shutdown: could not ${what}; going on`);
    return false;
  } finally {
    clearTimeout(timer);
  }
}
