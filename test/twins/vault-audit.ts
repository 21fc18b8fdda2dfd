// Audit devices: every request and response written as Vault's JSON audit format, with secrets
// and tokens HMAC'd per device (`hmac-sha256:<hex>`) and paths, operations and addresses clear.
import { createHmac } from "node:crypto";
import type { TokenEntry } from "./vault-tokens.js";
import type { LogicalRequest, LogicalResponse, WrapInfo } from "./vault-types.js";
import type { Clock, JsonObject, JsonValue } from "./vault-util.js";
import { newUuid, rfc3339, rfc3339Nano, VaultRequestError } from "./vault-util.js";

export interface AuditPolicyResults {
  allowed: boolean;
  granting_policies?: { name: string; namespace_id: string; type: "acl" }[];
}

export interface AuditAuth {
  client_token?: string;
  accessor?: string;
  display_name?: string;
  policies?: string[];
  token_policies?: string[];
  metadata?: Record<string, string>;
  entity_id?: string;
  policy_results?: AuditPolicyResults;
  token_type?: string;
  token_ttl?: number;
  token_issue_time?: string;
}

export interface AuditRequest {
  id: string;
  client_token?: string;
  client_token_accessor?: string;
  operation: string;
  mount_point?: string;
  mount_type?: string;
  mount_accessor?: string;
  mount_running_version?: string;
  /** The request's namespace; `path` only outside the root namespace. */
  namespace: { id: string; path?: string };
  /** Relative to the request's namespace. */
  path: string;
  data?: JsonObject;
  remote_address?: string;
  remote_port?: number;
  wrap_ttl?: number;
}

export interface AuditWrapInfo {
  token: string;
  accessor: string;
  ttl: number;
  creation_time: string;
  creation_path: string;
  wrapped_accessor?: string;
}

export interface AuditResponse {
  mount_point?: string;
  mount_type?: string;
  mount_accessor?: string;
  mount_running_plugin_version?: string;
  auth?: AuditAuth;
  data?: JsonObject;
  warnings?: string[];
  wrap_info?: AuditWrapInfo;
}

/** One line of a file audit device, parsed. */
export interface AuditEntry {
  time: string;
  type: "request" | "response";
  auth: AuditAuth;
  request: AuditRequest;
  response?: AuditResponse;
  error?: string;
}

// A type alias rather than an interface, so that it also counts as a JSON object.
export type AuditDeviceInfo = {
  type: string;
  description: string;
  options: Record<string, string>;
  local: boolean;
  path: string;
};

/** Who made a request, as far as the core could tell. */
export interface AuditIdentity {
  /** The valid token the request used. */
  token?: TokenEntry;
  /** A token string that could not be (or was not yet) resolved. */
  rawClientToken?: string;
  /** `namespaceId`: where the granting policies live (the token's namespace); "root" when absent. */
  policyResults?: { allowed: boolean; grantingPolicies: string[]; namespaceId?: string };
}

export interface AuditRecord {
  request: LogicalRequest;
  identity: AuditIdentity;
  error?: string;
}

export interface AuditResponseRecord extends AuditRecord {
  response: LogicalResponse | null;
  /** An error response's data (`{error: "..."}`), logged in place of `response.data`. */
  errorData?: JsonObject | null;
  wrapInfo?: WrapInfo;
}

const SUPPORTED_DEVICE_TYPES = new Set(["file", "socket", "syslog"]);

interface AuditDevice extends AuditDeviceInfo {
  hasher: Hasher;
}

/** HMACs values with a device's salt, as Vault's salt.GetIdentifiedHMAC does. */
class Hasher {
  constructor(
    private readonly salt: string,
    private readonly hmacAccessor: boolean,
    private readonly logRaw: boolean,
  ) {}

  value(input: string): string {
    if (this.logRaw) return input;
    return `hmac-sha256:${createHmac("sha256", this.salt).update(input).digest("hex")}`;
  }

  accessor(input: string): string {
    return this.hmacAccessor ? this.value(input) : input;
  }

  /**
   * Vault's HashStructure: every string value is HMAC'd, keys are not. Numbers a client sent
   * are json.Number in Vault (a string kind), so they are HMAC'd too; numbers Vault computes
   * itself (versions, TTLs) and booleans stay clear.
   */
  structure(value: JsonValue, hashNumbers: boolean): JsonValue {
    if (typeof value === "string") return this.value(value);
    if (typeof value === "number") return hashNumbers && !this.logRaw ? this.value(String(value)) : value;
    if (Array.isArray(value)) return value.map((item) => this.structure(item, hashNumbers));
    if (value !== null && typeof value === "object") {
      return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, this.structure(item, hashNumbers)]));
    }
    return value;
  }
}

export class AuditBroker {
  private readonly devices = new Map<string, AuditDevice>();
  /** Lines per device path; kept after a device is disabled, as a file would be. */
  private readonly logs = new Map<string, string[]>();

  constructor(private readonly clock: Clock) {}

  enable(rawPath: string, type: string, options: Record<string, string>, description = "", local = false): void {
    const path = devicePath(rawPath);
    if (this.devices.has(path)) throw VaultRequestError.invalidRequest("path already in use");
    if (!SUPPORTED_DEVICE_TYPES.has(type)) throw VaultRequestError.invalidRequest(`unknown backend type: "${type}"`);
    if (type === "file" && !options["file_path"]) throw VaultRequestError.invalidRequest("file_path is required");
    const hasher = new Hasher(newUuid(), options["hmac_accessor"] !== "false", options["log_raw"] === "true");
    this.devices.set(path, { type, description, options, local, path, hasher });
    if (!this.logs.has(path)) this.logs.set(path, []);
  }

  disable(rawPath: string): void {
    this.devices.delete(devicePath(rawPath));
  }

  list(): Record<string, AuditDeviceInfo> {
    return Object.fromEntries(
      [...this.devices.values()].map(({ type, description, options, local, path }) => [path, { type, description, options, local, path }]),
    );
  }

  /** sys/audit-hash: what `input` looks like in that device's log. */
  hash(rawPath: string, input: string): string {
    const device = this.devices.get(devicePath(rawPath));
    if (device === undefined) throw VaultRequestError.invalidRequest("unknown audit backend");
    return device.hasher.value(input);
  }

  logRequest(record: AuditRecord): void {
    for (const device of this.devices.values()) {
      this.write(device, {
        time: rfc3339Nano(this.clock()),
        type: "request",
        auth: formatAuth(device.hasher, record.identity),
        request: formatRequest(device.hasher, record.request),
        ...(record.error === undefined ? {} : { error: record.error }),
      });
    }
  }

  logResponse(record: AuditResponseRecord): void {
    for (const device of this.devices.values()) {
      this.write(device, {
        time: rfc3339Nano(this.clock()),
        type: "response",
        auth: formatAuth(device.hasher, record.identity),
        request: formatRequest(device.hasher, record.request),
        response: formatResponse(device.hasher, record),
        ...(record.error === undefined ? {} : { error: record.error }),
      });
    }
  }

  /** Parsed lines of one device's log (default: the first device ever enabled). */
  entries(rawPath?: string): AuditEntry[] {
    const path = rawPath ?? [...this.logs.keys()][0];
    const lines = path === undefined ? [] : (this.logs.get(devicePath(path)) ?? []);
    return lines.map((line) => JSON.parse(line) as AuditEntry);
  }

  private write(device: AuditDevice, entry: AuditEntry): void {
    this.logs.get(device.path)?.push(JSON.stringify(entry));
  }
}

/** Device paths are stored with a trailing slash ("file/"), however they were given. */
function devicePath(raw: string): string {
  return raw.endsWith("/") ? raw : `${raw}/`;
}

function formatAuth(hasher: Hasher, identity: AuditIdentity): AuditAuth {
  const policyResults = identity.policyResults && {
    allowed: identity.policyResults.allowed,
    ...(identity.policyResults.grantingPolicies.length === 0
      ? {}
      : {
          granting_policies: identity.policyResults.grantingPolicies.map((name) => ({
            name,
            namespace_id: identity.policyResults?.namespaceId ?? "root",
            type: "acl" as const,
          })),
        }),
  };
  const token = identity.token;
  if (token === undefined) {
    // Vault formats a missing logical.Auth as an empty one, whose token type prints "default".
    return dropEmpty({
      client_token: identity.rawClientToken ? hasher.value(identity.rawClientToken) : undefined,
      policy_results: policyResults,
      token_type: "default",
    });
  }
  return dropEmpty({
    ...describeToken(hasher, token),
    policy_results: policyResults,
    token_type: "service",
    token_ttl: token.ttlSeconds || undefined,
    token_issue_time: rfc3339(token.creationTimeMs),
  });
}

function describeToken(hasher: Hasher, token: TokenEntry): AuditAuth {
  return {
    client_token: hasher.value(token.id),
    accessor: hasher.accessor(token.accessor),
    display_name: token.displayName || undefined,
    policies: token.policies,
    token_policies: token.policies,
    metadata: token.meta ?? undefined,
    entity_id: token.entityId || undefined,
  };
}

function formatRequest(hasher: Hasher, request: LogicalRequest): AuditRequest {
  return dropEmpty({
    id: request.id,
    client_token: request.clientToken ? hasher.value(request.clientToken) : undefined,
    client_token_accessor: request.token ? hasher.accessor(request.token.accessor) : undefined,
    operation: request.operation,
    mount_point: request.mount?.path,
    mount_type: request.mount?.type,
    mount_accessor: request.mount?.accessor,
    mount_running_version: request.mount?.runningVersion,
    namespace: request.namespace.path === "" ? { id: "root" } : { id: request.namespace.id, path: request.namespace.path },
    path: request.path,
    data: request.data ? (hasher.structure(request.data, true) as JsonObject) : undefined,
    remote_address: request.remoteAddress,
    remote_port: request.remotePort || undefined,
    wrap_ttl: request.wrapTtlSeconds || undefined,
  });
}

function formatResponse(hasher: Hasher, record: AuditResponseRecord): AuditResponse {
  const { request, response, wrapInfo } = record;
  const data = responseData(record);
  return dropEmpty({
    mount_point: request.mount?.path,
    mount_type: request.mount?.type,
    mount_accessor: request.mount?.accessor,
    mount_running_plugin_version: request.mount?.runningVersion,
    auth: response?.auth
      ? dropEmpty({
          ...describeToken(hasher, response.auth),
          token_type: "service",
          token_ttl: response.auth.ttlSeconds || undefined,
          token_issue_time: rfc3339(response.auth.creationTimeMs),
        })
      : undefined,
    data: data === null ? undefined : hashResponseData(hasher, data),
    warnings: response?.warnings ?? undefined,
    wrap_info: wrapInfo && formatWrapInfo(hasher, wrapInfo),
  });
}

/** What Vault had in logical.Response.Data: raw responses keep their status/body/type there. */
function responseData(record: AuditResponseRecord): JsonObject | null {
  if (record.errorData) return record.errorData;
  const raw = record.response?.raw;
  if (raw !== undefined) {
    return { http_content_type: raw.contentType, http_raw_body: raw.body, http_status_code: raw.status };
  }
  return record.response?.data ?? null;
}

/** A KV read's `data.data` is the secret as the client wrote it, numbers included. */
function hashResponseData(hasher: Hasher, data: JsonObject): JsonObject {
  return Object.fromEntries(Object.entries(data).map(([key, value]) => [key, hasher.structure(value, key === "data")]));
}

function formatWrapInfo(hasher: Hasher, wrapInfo: WrapInfo): AuditWrapInfo {
  return dropEmpty({
    token: hasher.value(wrapInfo.token),
    accessor: hasher.accessor(wrapInfo.accessor),
    ttl: wrapInfo.ttlSeconds,
    creation_time: wrapInfo.creationTime,
    creation_path: wrapInfo.creationPath,
    wrapped_accessor: wrapInfo.wrappedAccessor ? hasher.accessor(wrapInfo.wrappedAccessor) : undefined,
  });
}

/** Go's `omitempty`: drop undefined fields so they do not appear in the JSON line. */
function dropEmpty<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, item]) => item !== undefined)) as T;
}
