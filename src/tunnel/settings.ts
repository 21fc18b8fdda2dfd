import type { TunnelTarget } from "./cloudflared.js";

/** Config file for TUNNEL=named without TUNNEL_TOKEN, relative to the working directory. */
export const DEFAULT_TUNNEL_CONFIG = "wrangler-free-tunnel.yml";
/** Looked up on PATH; the Docker image sets CLOUDFLARED_BIN=/usr/local/bin/cloudflared. */
export const DEFAULT_CLOUDFLARED_BIN = "cloudflared";

export interface TunnelSettings {
  binPath: string;
  tunnel: TunnelTarget;
}

/**
 * Reads the tunnel settings:
 *   TUNNEL           off (default) | quick | named
 *   TUNNEL_TOKEN     named: token of a dashboard-managed tunnel (preferred)
 *   TUNNEL_CONFIG    named without token: cloudflared config file (default wrangler-free-tunnel.yml)
 *   CLOUDFLARED_BIN  cloudflared executable (default: `cloudflared` on PATH)
 * `host`/`port` are where the webhook server listens; a quick tunnel points there.
 * Returns undefined when no tunnel is wanted (webhooks arrive some other way, or tests).
 */
export function tunnelSettingsFromEnv(
  env: Record<string, string | undefined>,
  listen: { host: string; port: number },
): TunnelSettings | undefined {
  const value = (name: string) => {
    const v = env[name]?.trim();
    return v === "" ? undefined : v;
  };
  const mode = value("TUNNEL") ?? "off";
  const token = value("TUNNEL_TOKEN");
  const binPath = value("CLOUDFLARED_BIN") ?? DEFAULT_CLOUDFLARED_BIN;

  switch (mode) {
    case "off":
      if (token) throw new Error("TUNNEL_TOKEN is set but TUNNEL is not named: set TUNNEL=named to use it, or unset TUNNEL_TOKEN");
      return undefined;
    case "quick":
      return { binPath, tunnel: { mode: "quick", originUrl: originUrlFor(listen.host, listen.port) } };
    case "named":
      return token
        ? { binPath, tunnel: { mode: "named", token } }
        : { binPath, tunnel: { mode: "named", configFile: value("TUNNEL_CONFIG") ?? DEFAULT_TUNNEL_CONFIG } };
    default:
      throw new Error(`TUNNEL must be off, quick or named, got "${mode}"`);
  }
}

/** cloudflared runs beside the server, so a wildcard listen address is reached via loopback. */
export function originUrlFor(host: string, port: number): string {
  const h = host.trim();
  if (h === "" || h === "0.0.0.0" || h === "::" || h === "[::]") return `http://127.0.0.1:${port}`;
  if (h.includes(":") && !h.startsWith("[")) return `http://[${h}]:${port}`;
  return `http://${h}:${port}`;
}
