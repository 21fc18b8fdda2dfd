/**
 * Reading cloudflared's console output.
 *
 * cloudflared logs through zerolog's console writer, one event per line:
 *
 *   2026-08-14T11:22:33Z INF Registered tunnel connection connIndex=0 connection=<uuid> event=0 ip=198.41.200.13 location=ams01 protocol=quic
 *   2026-08-14T11:22:40Z ERR Connection terminated error="timeout: no recent network activity" connIndex=0
 *
 * Its output is the only interface it offers for connection state (its metrics server
 * listens on a random port unless told otherwise), so the supervisor derives readiness from
 * these lines. Parsing is pure so it can be tested against captured output; logCloudflaredLine
 * relays a parsed line to our log.
 */

import type { Logger } from "../log.js";

export type CloudflaredLevel = "debug" | "info" | "warn" | "error" | "fatal";

export type CloudflaredEvent =
  /** The edge accepted connection `connIndex` (named tunnels hold 4, quick tunnels 1). */
  | {
      kind: "connected";
      connIndex: number;
      connectionId?: string;
      location?: string;
      ip?: string;
      protocol?: string;
    }
  /** Connection `connIndex` is gone; without an index, every connection is (shutdown). */
  | { kind: "disconnected"; connIndex?: number; reason: string }
  /** A quick tunnel's public URL, from the box cloudflared prints after creating it. */
  | { kind: "quick-url"; url: string };

export interface CloudflaredLine {
  /** Level from the console writer; absent for unformatted lines such as usage errors. */
  level?: CloudflaredLevel;
  /** The message without timestamp, level and key=value fields. */
  message: string;
  /** Trailing key=value fields, quoted values unquoted. */
  fields: Record<string, string>;
  event?: CloudflaredEvent;
  /** A one-line description when the line reports an error (ERR/FTL), suitable for status. */
  error?: string;
}

const LEVELS: Record<string, CloudflaredLevel> = {
  TRC: "debug",
  DBG: "debug",
  INF: "info",
  WRN: "warn",
  ERR: "error",
  FTL: "fatal",
  PNC: "fatal",
};

const LINE_PATTERN = /^(?:\d{4}-\d{2}-\d{2}T\S+\s+)?(TRC|DBG|INF|WRN|ERR|FTL|PNC)\s+(.*)$/;
/** The first ` key=` starts the fields; zerolog never puts one inside a message it formats itself. */
const FIRST_FIELD = /\s[A-Za-z_][\w.-]*=/;
const FIELD = /([A-Za-z_][\w.-]*)=("(?:[^"\\]|\\.)*"|\S*)/g;
/** Same shape the `cloudflared` npm wrapper matches, so both agree on what a quick-tunnel URL is. */
const QUICK_URL = /https:\/\/[a-z0-9-]+\.trycloudflare\.com/;

/**
 * Messages that mean a connection to the edge is down. Sources (cloudflared 2026.8):
 * connection/control.go, connection/http2.go, supervisor/supervisor.go, supervisor/tunnel.go.
 */
const CONNECTION_LOST = [
  "Unregistered tunnel connection",
  "Connection terminated",
  "Lost connection with the edge",
  "Serve tunnel error",
  "Retrying connection in",
];
/** Process-wide: after these no connection serves requests any more. */
const SHUTTING_DOWN = ["Initiating graceful shutdown", "Tunnel server stopped"];

export function parseCloudflaredLine(line: string): CloudflaredLine {
  const trimmed = line.trimEnd();
  const match = LINE_PATTERN.exec(trimmed);
  if (!match) return { message: trimmed.trim(), fields: {}, ...quickUrlEvent(trimmed) };

  const level = LEVELS[match[1] ?? ""];
  const rest = match[2] ?? "";
  const fieldsAt = rest.search(FIRST_FIELD);
  const message = (fieldsAt === -1 ? rest : rest.slice(0, fieldsAt)).trim();
  const fields = fieldsAt === -1 ? {} : parseFields(rest.slice(fieldsAt));

  const parsed: CloudflaredLine = { level, message, fields };
  const event = connectionEvent(message, fields) ?? quickUrlEvent(trimmed).event;
  if (event) parsed.event = event;
  if (level === "error" || level === "fatal") {
    parsed.error = fields.error ? `${message}: ${fields.error}` : message;
  }
  return parsed;
}

function connectionEvent(message: string, fields: Record<string, string>): CloudflaredEvent | undefined {
  const connIndex = fields.connIndex === undefined ? undefined : Number(fields.connIndex);
  const index = connIndex !== undefined && Number.isInteger(connIndex) ? connIndex : undefined;

  if (message.startsWith("Registered tunnel connection") && index !== undefined) {
    return {
      kind: "connected",
      connIndex: index,
      connectionId: fields.connection,
      location: fields.location,
      ip: fields.ip,
      protocol: fields.protocol,
    };
  }
  if (CONNECTION_LOST.some((m) => message.startsWith(m))) {
    // Without an index we cannot tell which connection went; assume all did, so readiness
    // errs towards "not ready" until the next registration.
    return index === undefined ? { kind: "disconnected", reason: message } : { kind: "disconnected", connIndex: index, reason: message };
  }
  if (SHUTTING_DOWN.some((m) => message.startsWith(m))) return { kind: "disconnected", reason: message };
  return undefined;
}

function quickUrlEvent(line: string): { event?: CloudflaredEvent } {
  const url = QUICK_URL.exec(line)?.[0];
  return url ? { event: { kind: "quick-url", url } } : {};
}

function parseFields(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const [, key, raw] of text.matchAll(FIELD)) {
    if (key === undefined || raw === undefined) continue;
    fields[key] = raw.startsWith('"') ? unquote(raw) : raw;
  }
  return fields;
}

/** zerolog quotes with Go's strconv.Quote, which JSON reads except for a few rare escapes. */
function unquote(quoted: string): string {
  try {
    return JSON.parse(quoted) as string;
  } catch {
    return quoted.slice(1, -1).replace(/\\(.)/g, "$1");
  }
}

/** What to paste into GitHub for a quick tunnel, one setting per line. Never contains the secret. */
export function webhookSettingsFor(publicUrl: string): {
  payloadUrl: string;
  contentType: "application/json";
  secretFrom: string;
  events: string[];
} {
  return {
    payloadUrl: `${publicUrl.replace(/\/+$/, "")}/webhook`,
    contentType: "application/json",
    secretFrom: "the value of GITHUB_WEBHOOK_SECRET in the dispatcher's environment",
    events: ["Workflow jobs"],
  };
}

export function formatWebhookSettings(publicUrl: string): string {
  const s = webhookSettingsFor(publicUrl);
  return [
    "Quick tunnel is up. Add a webhook in GitHub (repository or organization Settings -> Webhooks -> Add webhook):",
    `  Payload URL:    ${s.payloadUrl}`,
    `  Content type:   ${s.contentType}`,
    `  Secret:         ${s.secretFrom}`,
    "  SSL verification: enabled",
    `  Events:         "Let me select individual events" -> ${s.events.map((e) => `"${e}"`).join(", ")} only`,
    "A quick tunnel gets a new URL every time cloudflared starts; use TUNNEL=named for anything that must keep working.",
  ].join("\n");
}

/** Relays one cloudflared line to our log at a matching level (INF, which is chatty, at debug). */
export function logCloudflaredLine(log: Logger, line: CloudflaredLine): void {
  const fields = Object.keys(line.fields).length > 0 ? { fields: line.fields } : {};
  switch (line.level) {
    case "error":
    case "fatal":
      log.error(fields, line.message);
      break;
    case "warn":
      log.warn(fields, line.message);
      break;
    case "info":
      // cloudflared is chatty at INF; state changes are logged by the supervisor at info.
      log.debug(fields, line.message);
      break;
    case "debug":
      log.trace(fields, line.message);
      break;
    default:
      log.warn(line.message);
  }
}
