// Small helpers shared by the Vault twin's parts: JSON shapes, Vault-style identifiers, Go-style
// time and duration formatting, and the error type every part throws.
import { randomBytes, randomUUID } from "node:crypto";

export type JsonValue = string | number | boolean | null | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Milliseconds since the epoch; injectable so tests can move time without sleeping. */
export type Clock = () => number;

const BASE62 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

function randomBase62(length: number): string {
  const bytes = randomBytes(length);
  let out = "";
  for (const byte of bytes) out += BASE62[byte % BASE62.length];
  return out;
}

/** Service tokens since Vault 1.10 carry the `hvs.` prefix. */
export function newServiceToken(): string {
  return `hvs.${randomBase62(24)}`;
}

/** Namespace IDs are five base62 characters ("gsudj", "HWmNL" in the sys/namespaces API docs). */
export function newNamespaceId(): string {
  return randomBase62(5);
}

export function newAccessor(): string {
  return randomBase62(24);
}

export function newUuid(): string {
  return randomUUID();
}

/** Mount accessors look like `kv_1a2b3c4d`. */
export function newMountAccessor(type: string): string {
  return `${type}_${randomBytes(4).toString("hex")}`;
}

/** Go's time.RFC3339Nano in UTC: fractional seconds without trailing zeros. */
export function rfc3339Nano(ms: number): string {
  return new Date(ms).toISOString().replace(/\.?0+Z$/, "Z");
}

/** Go's time.RFC3339 in UTC (whole seconds). */
export function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d+Z$/, "Z");
}

export function unixSeconds(ms: number): number {
  return Math.floor(ms / 1000);
}

const DURATION_UNIT_SECONDS: Record<string, number> = {
  ns: 1e-9,
  us: 1e-6,
  µs: 1e-6,
  ms: 1e-3,
  s: 1,
  m: 60,
  h: 3600,
  d: 86400,
};

/**
 * Vault's parseutil.ParseDurationSecond: a bare integer is seconds, otherwise a Go duration
 * ("5m", "1h30m", "30s", "1d"). Returns whole seconds; throws on anything else.
 */
export function parseDurationSeconds(input: string | number): number {
  if (typeof input === "number") {
    if (!Number.isFinite(input) || input < 0) throw new Error(`invalid duration ${input}`);
    return Math.floor(input);
  }
  const text = input.trim();
  if (text === "") return 0;
  if (/^\d+$/.test(text)) return Number(text);
  const part = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)/gy;
  let seconds = 0;
  let consumed = 0;
  for (const match of text.matchAll(part)) {
    const [whole, amount, unit] = match;
    seconds += Number(amount) * (DURATION_UNIT_SECONDS[unit ?? "s"] ?? 1);
    consumed += whole.length;
  }
  if (consumed !== text.length || consumed === 0) throw new Error(`time: invalid duration "${text}"`);
  return Math.floor(seconds);
}

/** A duration parameter of a request: a 400 when it does not parse, as Vault's field parsing does. */
export function durationParameter(field: string, raw: JsonValue | undefined): number {
  try {
    if (typeof raw !== "string" && typeof raw !== "number") throw new Error("not a duration");
    return parseDurationSeconds(raw);
  } catch {
    throw VaultRequestError.invalidRequest(`error converting input ${String(raw)} for field "${field}"`);
  }
}

/** Go's time.Duration.String() for whole seconds: 0 -> "0s", 90 -> "1m30s", 3600 -> "1h0m0s". */
export function formatGoDuration(totalSeconds: number): string {
  if (totalSeconds === 0) return "0s";
  const hours = Math.floor(totalSeconds / 3600);
  const minutes = Math.floor((totalSeconds % 3600) / 60);
  const seconds = totalSeconds % 60;
  if (hours > 0) return `${hours}h${minutes}m${seconds}s`;
  if (minutes > 0) return `${minutes}m${seconds}s`;
  return `${seconds}s`;
}

/** How hashicorp/go-multierror prints a single error; Vault lets it leak into some messages. */
export function multierror(message: string): string {
  return `1 error occurred:\n\t* ${message}\n\n`;
}

/**
 * A failed request, carrying what Vault would put on the wire (status and `errors`) and what it
 * would write in the audit log (`auditError`, and an error response's data when there is one).
 */
export class VaultRequestError extends Error {
  constructor(
    readonly status: number,
    readonly errors: string[],
    readonly auditError: string,
    readonly responseData: JsonObject | null = null,
  ) {
    super(errors[0] ?? auditError);
  }

  /** logical.ErrorResponse(msg) + logical.ErrInvalidRequest: the common 400. */
  static invalidRequest(message: string): VaultRequestError {
    return new VaultRequestError(400, [message], "invalid request", { error: message });
  }

  /** A denial with a backend-specific message (logical.ErrPermissionDenied + an error response). */
  static forbidden(message: string): VaultRequestError {
    return new VaultRequestError(403, [message], "permission denied", { error: message });
  }

  /** ACL denial: CheckToken appends ErrPermissionDenied to a multierror, and that text is sent. */
  static aclDenied(): VaultRequestError {
    return new VaultRequestError(403, [multierror("permission denied")], multierror("permission denied"));
  }

  /** Missing, unknown or expired token: the bare sentinel error. */
  static badToken(): VaultRequestError {
    return new VaultRequestError(403, ["permission denied"], "permission denied");
  }

  static unsupportedPath(): VaultRequestError {
    return new VaultRequestError(404, [multierror("unsupported path")], "unsupported path");
  }

  static unsupportedOperation(): VaultRequestError {
    return new VaultRequestError(405, [multierror("unsupported operation")], "unsupported operation");
  }

  static noRoute(path: string): VaultRequestError {
    const message = `no handler for route "${path}". route entry not found.`;
    return new VaultRequestError(404, [message], "unsupported path", { error: message });
  }

  static invalidWrappingToken(): VaultRequestError {
    const message = "wrapping token is not valid or does not exist";
    return new VaultRequestError(400, [message], message);
  }
}

export interface EnvelopeParts {
  requestId: string;
  data?: JsonObject | null;
  auth?: JsonObject | null;
  warnings?: string[] | null;
  wrapInfo?: JsonObject | null;
  mountType?: string;
}

/** Vault's logical.HTTPResponse: the JSON envelope around every successful response. */
export function envelope(parts: EnvelopeParts): JsonObject {
  return {
    request_id: parts.requestId,
    lease_id: "",
    renewable: false,
    lease_duration: 0,
    data: parts.data ?? null,
    wrap_info: parts.wrapInfo ?? null,
    warnings: parts.warnings ?? null,
    auth: parts.auth ?? null,
    mount_type: parts.mountType ?? "",
  };
}
