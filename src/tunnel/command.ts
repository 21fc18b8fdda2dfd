import { TUNNEL_GRACE_PERIOD_MS, type TunnelTarget } from "./target.js";

// cloudflared's command line and environment for a tunnel target.

/**
 * Arguments for each mode. The token is deliberately absent: it travels in the child's
 * TUNNEL_TOKEN environment variable (cloudflared reads it there), so `ps` never shows it.
 * --no-autoupdate: the image pins cloudflared; a self-replacing binary would defeat that.
 * --grace-period on the command line, where it overrides a TUNNEL_GRACE_PERIOD passed through
 * the environment: the service's shutdown budget counts on it.
 */
export function cloudflaredArgs(tunnel: TunnelTarget): string[] {
  const common = ["tunnel", "--no-autoupdate", "--grace-period", `${TUNNEL_GRACE_PERIOD_MS / 1000}s`];
  if (tunnel.mode === "quick") return [...common, "--url", tunnel.originUrl];
  if ("token" in tunnel) return [...common, "run"];
  return [...common, "--config", tunnel.configFile, "run"];
}

/** Parent variables cloudflared may need: finding things, proxies, CA bundles, locale. */
const INHERITED = [
  "PATH",
  "HOME",
  "USER",
  "TZ",
  "LANG",
  "LC_ALL",
  "TMPDIR",
  "SSL_CERT_FILE",
  "SSL_CERT_DIR",
  "HTTP_PROXY",
  "HTTPS_PROXY",
  "NO_PROXY",
  "http_proxy",
  "https_proxy",
  "no_proxy",
];
/** Credentials are set explicitly per mode, never inherited by accident. */
const NEVER_INHERITED = new Set(["TUNNEL_TOKEN", "TUNNEL_TOKEN_FILE"]);

/**
 * The child's environment. Allow-listed rather than inherited: the dispatcher's own
 * environment holds GitHub, Vault and Nomad credentials that cloudflared has no use for.
 * TUNNEL_* variables pass through so operators can tune cloudflared (TUNNEL_LOGLEVEL,
 * TUNNEL_TRANSPORT_PROTOCOL, TUNNEL_EDGE_IP_VERSION, ...) without code changes.
 */
export function cloudflaredEnvironment(
  tunnel: TunnelTarget,
  parentEnv: Record<string, string | undefined>,
  extra: Record<string, string | undefined> = {},
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(parentEnv)) {
    if (value === undefined || NEVER_INHERITED.has(key)) continue;
    if (INHERITED.includes(key) || key.startsWith("TUNNEL_")) env[key] = value;
  }
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined || NEVER_INHERITED.has(key)) continue;
    env[key] = value;
  }
  if (tunnel.mode === "named" && "token" in tunnel) env.TUNNEL_TOKEN = tunnel.token;
  return env;
}
