import type { TunnelConfig } from "../config.js";
import type { TunnelTarget } from "./cloudflared.js";

/**
 * Which tunnel to run for the configured mode; undefined when webhooks arrive some other way
 * (TUNNEL=off). `listen` is where the webhook server listens: a quick tunnel points there.
 */
export function tunnelTargetFor(tunnel: TunnelConfig, listen: { host: string; port: number }): TunnelTarget | undefined {
  switch (tunnel.mode) {
    case "off":
      return undefined;
    case "quick":
      return { mode: "quick", originUrl: originUrlFor(listen.host, listen.port) };
    case "named":
      return tunnel.token ? { mode: "named", token: tunnel.token } : { mode: "named", configFile: tunnel.configFile };
  }
}

/** cloudflared runs beside the server, so a wildcard listen address is reached via loopback. */
export function originUrlFor(host: string, port: number): string {
  const h = host.trim();
  if (h === "" || h === "0.0.0.0" || h === "::" || h === "[::]") return `http://127.0.0.1:${port}`;
  if (h.includes(":") && !h.startsWith("[")) return `http://[${h}]:${port}`;
  return `http://${h}:${port}`;
}
