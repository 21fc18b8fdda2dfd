import type { Logger } from "../log.js";

// What the supervisor runs and reports: the tunnel target, its status, restart and stop timing.

/**
 * Which tunnel to run.
 * - quick: an account-less trycloudflare.com tunnel to `originUrl`; its URL changes on every start.
 * - named + token: a tunnel managed in the Cloudflare dashboard (ingress rules live there).
 * - named + configFile: a locally managed tunnel (`cloudflared tunnel create`) whose ingress
 *   rules are in the file, e.g. wrangler-free-tunnel.yml.
 */
export type TunnelTarget = { mode: "quick"; originUrl: string } | { mode: "named"; token: string } | { mode: "named"; configFile: string };

export type TunnelMode = TunnelTarget["mode"];

export interface TunnelStatus {
  mode: TunnelMode;
  /** At least one connection to the Cloudflare edge is registered, so webhooks can arrive. */
  connected: boolean;
  /** Registered edge connections (a named tunnel holds 4, a quick tunnel 1). */
  connections: number;
  /** Public URL of a quick tunnel once cloudflared printed it. */
  url?: string;
  /** How often cloudflared was started again after dying on its own. */
  restarts: number;
  lastError?: string;
}

export interface BackoffPolicy {
  /** Delay before the first restart. */
  initialMs: number;
  /** The delay doubles per consecutive failure up to this. */
  maxMs: number;
  /** A run at least this long counts as healthy and resets the doubling. */
  stableAfterMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 1_000, maxMs: 60_000, stableAfterMs: 60_000 };

/**
 * The `--grace-period` cloudflared is started with. On SIGTERM cloudflared unregisters its
 * connections from the edge (new requests go to other connectors, i.e. the other replica) and
 * lets requests in flight through it finish for this long; over QUIC it waits the whole period
 * (cloudflare/cloudflared cmd/cloudflared/tunnel/cmd.go, waitToShutdown;
 * connection/quic_connection.go). Its own default is 30 s (the GracePeriod flag in
 * cmd/cloudflared/tunnel/cmd.go), which alone would fill Nomad's default max_kill_timeout.
 * 10 s is GitHub's own timeout for a webhook delivery: a delivery still running after that has
 * been given up by GitHub anyway.
 */
export const TUNNEL_GRACE_PERIOD_MS = 10_000;
/** What stop() gives cloudflared after SIGTERM before SIGKILL: its grace period, then time to exit. */
export const DEFAULT_STOP_TIMEOUT_MS = TUNNEL_GRACE_PERIOD_MS + 2_000;
/** How long stop() waits for the process to go after SIGKILL (it cannot ignore that one). */
export const KILL_WAIT_MS = 1_000;

export interface CloudflaredSupervisorOptions {
  tunnel: TunnelTarget;
  /** Path to the cloudflared executable (CLOUDFLARED_BIN), or a bare name looked up on PATH. */
  binPath: string;
  logger: Logger;
  /** Extra environment for cloudflared, over the allow-listed parent environment. */
  env?: Record<string, string | undefined>;
  backoff?: Partial<BackoffPolicy>;
  /** How long stop() waits after SIGTERM before SIGKILL. */
  stopTimeoutMs?: number;
  /** Environment to take PATH, proxy and TUNNEL_* settings from; process.env by default. */
  parentEnv?: Record<string, string | undefined>;
}

export interface TunnelEvents {
  url: [url: string];
  connected: [connIndex: number];
  disconnected: [connIndex: number | undefined];
  exit: [info: { code: number | null; signal: NodeJS.Signals | null; expected: boolean }];
}
