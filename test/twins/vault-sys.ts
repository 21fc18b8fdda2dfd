// The `sys/` backend (audit devices, capabilities, response wrapping, ACL policies, mounts), plus
// the two endpoints Vault answers outside its logical layer: sys/health and sys/seal-status.
import type { Acl, PolicyStore } from "./vault-acl.js";
import type { AuditBroker } from "./vault-audit.js";
import type { HttpReply } from "./vault-http.js";
import { jsonReply } from "./vault-http.js";
import type { TokenEntry, TokenStore } from "./vault-tokens.js";
import { RESPONSE_WRAPPING_POLICY } from "./vault-tokens.js";
import type { Backend, HandlerResult, LogicalRequest, MountEntry } from "./vault-types.js";
import type { Clock, JsonObject, JsonValue } from "./vault-util.js";
import { isJsonObject, rfc3339Nano, unixSeconds, VaultRequestError } from "./vault-util.js";

export const VAULT_VERSION = "1.15.0";

/** sys routes whose data Vault's HTTP layer also copies to the top level (injectDataIntoTopRoutes). */
const TOP_LEVEL_DATA_ROUTES = [
  /^audit$/,
  /^audit\//,
  /^audit-hash\//,
  /^capabilities(-self)?$/,
  /^mounts$/,
  /^mounts\//,
  /^policy$/,
  /^policy\//,
  /^wrapping\/wrap$/,
];

export interface ServerState {
  sealed: boolean;
  standby: boolean;
  clusterName: string;
  clusterId: string;
}

/** What the sys backend reaches into: the rest of the core, as its namespace sees it. */
export interface SystemServices {
  clock: Clock;
  /** The namespace's view of the token store. */
  tokens: TokenStore;
  /** The namespace's own policies. */
  policies: PolicyStore;
  audit: AuditBroker;
  /** Secret engine mounts (sys/mounts). */
  secretMounts(): MountEntry[];
  /** The mount serving a logical path, if any. */
  mountFor(path: string): MountEntry | undefined;
  /** What a token may do here, over paths as seen from its own namespace (see NamespaceRegistry.aclFor). */
  aclFor(token: TokenEntry): Promise<{ acl: Acl; pathPrefix: string } | undefined>;
  /** The root namespace serves the root-only paths too. */
  isRootNamespace: boolean;
  /** sys/namespaces: the namespaces directly below this one. */
  namespaces: NamespaceAdmin;
}

/** sys/namespaces, relative to the namespace the request is in. */
export interface NamespaceAdmin {
  list(): JsonObject[];
  read(relativePath: string): JsonObject | undefined;
  create(relativePath: string, customMetadata: Record<string, string>): JsonObject;
  remove(relativePath: string): boolean;
}

/**
 * sys paths only the root namespace serves (hashicorp/vault
 * website/content/partials/api/restricted-endpoints.mdx, the "Root" column, for the paths this
 * twin has). How Vault answers one asked for in another namespace is not documented; the twin
 * answers as for any path the sys backend does not serve.
 */
const ROOT_ONLY_PATHS = [/^audit$/, /^audit\//, /^audit-hash\//];

export class SystemBackend implements Backend {
  constructor(
    readonly mount: MountEntry,
    private readonly services: SystemServices,
  ) {}

  /** Only the policy and namespace paths have existence checks. */
  exists(req: LogicalRequest): boolean | undefined {
    const namespace = namespacePathIn(req.relativePath);
    if (namespace !== undefined) return this.services.namespaces.read(namespace) !== undefined;
    const name = policyNameIn(req.relativePath);
    return name === undefined ? undefined : this.services.policies.get(name) !== undefined;
  }

  isUnauthenticated(req: LogicalRequest): boolean {
    // The UI mounts endpoint runs its own permission check on whatever token it is given.
    return req.relativePath === "wrapping/lookup" || req.relativePath.startsWith("internal/ui/mounts/");
  }

  isRootPath(relativePath: string): boolean {
    return relativePath === "audit" || relativePath.startsWith("audit/");
  }

  injectsDataIntoTopLevel(relativePath: string): boolean {
    return TOP_LEVEL_DATA_ROUTES.some((route) => route.test(relativePath));
  }

  async handle(req: LogicalRequest): Promise<HandlerResult> {
    const { relativePath: path, operation } = req;
    const data = req.data ?? {};
    const write = operation === "create" || operation === "update";
    if (!this.services.isRootNamespace && ROOT_ONLY_PATHS.some((p) => p.test(path))) throw VaultRequestError.unsupportedPath();
    if (path === "namespaces/" && operation === "list") return this.listNamespaces();
    const namespace = namespacePathIn(path);
    if (namespace !== undefined) return this.namespace(req, namespace);
    if (path === "audit" && operation === "read") return { data: this.services.audit.list() };
    if (path.startsWith("audit/") && write) return this.enableAudit(path.slice("audit/".length), data);
    if (path.startsWith("audit/") && operation === "delete") {
      this.services.audit.disable(path.slice("audit/".length));
      return null;
    }
    if (path.startsWith("audit-hash/") && write) return this.auditHash(path.slice("audit-hash/".length), data);
    if (path === "capabilities-self" && write) return this.capabilities(req.clientToken, data);
    if (path === "capabilities" && write) return this.capabilities(stringField(data, "token"), data);
    if (path === "wrapping/wrap" && write) return this.wrap(req);
    if (path === "wrapping/unwrap" && write) return this.unwrap(req);
    if (path === "wrapping/lookup" && write) return this.lookupWrapping(req);
    if (path.startsWith("internal/ui/mounts/") && operation === "read") return this.uiMount(req);
    if (path === "mounts" && operation === "read") return this.listMounts();
    if (path.startsWith("mounts/") && operation === "read") return this.readMount(path.slice("mounts/".length));
    if (policyNameIn(path) !== undefined) return this.policy(req, policyNameIn(path) ?? "", path.startsWith("policy/"));
    if ((path === "policies/acl/" && operation === "list") || (path === "policy" && operation === "read")) {
      const names = this.services.policies.names();
      return { data: path === "policy" ? { keys: names, policies: names } : { keys: names } };
    }
    throw VaultRequestError.unsupportedPath();
  }

  private enableAudit(path: string, data: JsonObject): HandlerResult {
    const options = isJsonObject(data["options"]) ? data["options"] : {};
    this.services.audit.enable(
      path,
      stringField(data, "type"),
      Object.fromEntries(Object.entries(options).map(([key, value]) => [key, String(value)])),
      stringField(data, "description"),
      data["local"] === true,
    );
    return null;
  }

  private auditHash(path: string, data: JsonObject): HandlerResult {
    return { data: { hash: this.services.audit.hash(path, stringField(data, "input")) } };
  }

  /** sys/capabilities(-self): per-path capabilities, and `capabilities` alone for one path. */
  private async capabilities(token: string, data: JsonObject): Promise<HandlerResult> {
    const paths = [...stringList(data["paths"]), ...stringList(data["path"])];
    if (paths.length === 0) throw VaultRequestError.invalidRequest("paths must be supplied");
    const entry = this.services.tokens.lookup(token);
    if (entry === undefined) throw VaultRequestError.invalidRequest("invalid token");
    const scope = await this.services.aclFor(entry);
    const result: JsonObject = {};
    for (const path of paths) result[path] = scope ? scope.acl.capabilities(`${scope.pathPrefix}${path}`) : ["deny"];
    if (paths.length === 1) result["capabilities"] = result[paths[0] ?? ""] ?? [];
    return { data: result };
  }

  /** Wraps the posted data; the core does the wrapping, this only insists on a TTL. */
  private wrap(req: LogicalRequest): HandlerResult {
    if (req.wrapTtlSeconds <= 0) throw VaultRequestError.invalidRequest("endpoint requires response wrapping to be used");
    return { data: req.data ?? {} };
  }

  /** Hands out the wrapped response once: the wrapping token dies with this call. */
  private unwrap(req: LogicalRequest): HandlerResult {
    const token = stringField(req.data ?? {}, "token") || req.clientToken;
    const entry = this.services.tokens.lookup(token);
    if (entry?.wrapped == null) throw VaultRequestError.invalidWrappingToken();
    this.services.tokens.revoke(entry.id);
    const body = entry.wrapped.body;
    return { raw: { status: body === "" ? 204 : 200, contentType: "application/json", body } };
  }

  private lookupWrapping(req: LogicalRequest): HandlerResult {
    const token = stringField(req.data ?? {}, "token") || req.clientToken;
    const wrapped = this.services.tokens.lookup(token)?.wrapped;
    if (wrapped == null) throw VaultRequestError.invalidWrappingToken();
    return {
      data: {
        creation_path: wrapped.creationPath,
        creation_time: rfc3339Nano(wrapped.creationTimeMs),
        creation_ttl: wrapped.ttlSeconds,
      },
    };
  }

  /**
   * What a KV-aware client (consul-template, `vault kv`) asks first to learn the mount and its
   * version. Denied unless the token can do something somewhere under that mount.
   */
  private async uiMount(req: LogicalRequest): Promise<HandlerResult> {
    const target = req.relativePath.slice("internal/ui/mounts/".length);
    const sanitized = target.endsWith("/") ? target : `${target}/`;
    const denied = VaultRequestError.forbidden(`preflight capability check returned 403, please ensure client's policies grant access to path "${sanitized}"`);
    const mount = this.services.mountFor(sanitized);
    const token = this.services.tokens.lookup(req.clientToken);
    if (mount === undefined || token === undefined) throw denied;
    const scope = await this.services.aclFor(token);
    if (!scope?.acl.hasAccessUnder(`${scope.pathPrefix}${mount.path}`)) throw denied;
    return { data: { ...describeMount(mount), path: mount.path } };
  }

  private listMounts(): HandlerResult {
    return { data: Object.fromEntries(this.services.secretMounts().map((mount) => [mount.path, describeMount(mount)])) };
  }

  private readMount(target: string): HandlerResult {
    const path = target.endsWith("/") ? target : `${target}/`;
    const mount = this.services.secretMounts().find((candidate) => candidate.path === path);
    if (mount === undefined) throw VaultRequestError.invalidRequest(`No secret engine mount at ${path}`);
    return { data: describeMount(mount) };
  }

  /**
   * LIST sys/namespaces: the namespaces directly below this one, as the sys/namespaces API docs
   * show them (`keys` and `key_info`).
   */
  private listNamespaces(): HandlerResult {
    const namespaces = this.services.namespaces.list();
    const keys = namespaces.map((ns) => String(ns["key"]));
    const keyInfo = Object.fromEntries(namespaces.map(({ key, ...info }) => [String(key), info]));
    return { data: { keys, key_info: keyInfo } };
  }

  /** sys/namespaces/<path>: create (custom_metadata), read, delete. */
  private namespace(req: LogicalRequest, relativePath: string): HandlerResult {
    const admin = this.services.namespaces;
    switch (req.operation) {
      case "read": {
        const found = admin.read(relativePath);
        return found === undefined ? null : { data: found };
      }
      case "create":
      case "update": {
        const raw = req.data?.["custom_metadata"];
        const metadata = isJsonObject(raw) ? Object.fromEntries(Object.entries(raw).map(([key, value]) => [key, String(value)])) : {};
        return { data: admin.create(relativePath, metadata) };
      }
      case "delete":
        admin.remove(relativePath);
        return null;
      default:
        throw VaultRequestError.unsupportedOperation();
    }
  }

  /** sys/policies/acl/<name> (field `policy`) and the older sys/policy/<name> (field `rules`). */
  private async policy(req: LogicalRequest, name: string, legacyRoute: boolean): Promise<HandlerResult> {
    const policies = this.services.policies;
    const textField = legacyRoute ? "rules" : "policy";
    switch (req.operation) {
      case "read": {
        const policy = policies.get(name);
        if (policy === undefined || name === RESPONSE_WRAPPING_POLICY) return null;
        return { data: { name: policy.name, [textField]: policy.text } };
      }
      case "create":
      case "update": {
        const data = req.data ?? {};
        const text = stringField(data, "policy") || stringField(data, "rules");
        if (text === "") throw VaultRequestError.invalidRequest("'policy' parameter not supplied or empty");
        try {
          await policies.write(name, text);
        } catch (error) {
          // Vault words parse failures "Failed to parse policy: ..." on this endpoint.
          throw VaultRequestError.invalidRequest((error as Error).message.replace(/^failed/, "Failed"));
        }
        return null;
      }
      case "delete":
        try {
          policies.delete(name);
        } catch (error) {
          throw VaultRequestError.invalidRequest((error as Error).message);
        }
        return null;
      default:
        throw VaultRequestError.unsupportedOperation();
    }
  }
}

/** The namespace path in sys/namespaces/<path> (which may itself have slashes). */
function namespacePathIn(relativePath: string): string | undefined {
  const match = /^namespaces\/(.+[^/])\/?$/.exec(relativePath);
  return match?.[1];
}

function policyNameIn(relativePath: string): string | undefined {
  const match = /^(?:policies\/acl|policy)\/([^/]+)$/.exec(relativePath);
  return match?.[1]?.toLowerCase();
}

function describeMount(mount: MountEntry): JsonObject {
  return {
    accessor: mount.accessor,
    config: { default_lease_ttl: 0, force_no_cache: false, max_lease_ttl: 0 },
    description: mount.description,
    external_entropy_access: false,
    local: mount.local,
    options: mount.options,
    plugin_version: "",
    running_plugin_version: mount.runningVersion,
    running_sha256: "",
    seal_wrap: false,
    type: mount.type,
    uuid: mount.uuid,
  };
}

function stringField(data: JsonObject, field: string): string {
  const value = data[field];
  return typeof value === "string" ? value : "";
}

/** Vault's TypeCommaStringSlice: a list, or a comma-separated string. */
function stringList(value: JsonValue | undefined): string[] {
  if (Array.isArray(value)) return value.map(String);
  if (typeof value === "string")
    return value
      .split(",")
      .map((item) => item.trim())
      .filter((item) => item !== "");
  return [];
}

// ---- Endpoints Vault serves before its logical layer: never audited, answered even when sealed.

const HEALTH_CODE_DEFAULTS = {
  activecode: 200,
  standbycode: 429,
  drsecondarycode: 472,
  performancestandbycode: 473,
  sealedcode: 503,
  uninitcode: 501,
};

/** GET|HEAD sys/health: status codes overridable by query, as Vault allows. */
export function healthReply(state: ServerState, query: URLSearchParams, method: string, now: number): HttpReply {
  const codes = { ...HEALTH_CODE_DEFAULTS };
  for (const name of Object.keys(codes) as (keyof typeof codes)[]) {
    const raw = query.get(name);
    if (raw === null) continue;
    if (!/^\d+$/.test(raw)) return jsonReply(400, { errors: [] });
    codes[name] = Number(raw);
  }
  const standbyOk = parseBoolParameter(query, "standbyok");
  if (standbyOk instanceof Error) return jsonReply(400, { errors: [standbyOk.message] });
  let status = codes.activecode;
  if (state.sealed) status = codes.sealedcode;
  else if (state.standby && !standbyOk) status = codes.standbycode;
  const body: JsonObject = {
    initialized: true,
    sealed: state.sealed,
    standby: state.sealed || state.standby,
    performance_standby: false,
    replication_performance_mode: state.sealed ? "unknown" : "disabled",
    replication_dr_mode: state.sealed ? "unknown" : "disabled",
    server_time_utc: unixSeconds(now),
    version: VAULT_VERSION,
    ...clusterIdentity(state),
  };
  const reply = jsonReply(status, body);
  return method === "HEAD" || status === 204 ? { ...reply, body: "" } : reply;
}

export function sealStatusReply(state: ServerState): HttpReply {
  return jsonReply(200, {
    type: "shamir",
    initialized: true,
    sealed: state.sealed,
    t: 1,
    n: 1,
    progress: 0,
    nonce: "",
    version: VAULT_VERSION,
    build_date: "2023-09-22T16:53:10Z",
    migration: false,
    ...clusterIdentity(state),
    recovery_seal: false,
    storage_type: "inmem",
  });
}

/** A sealed node does not know its cluster, so Vault leaves these out. */
function clusterIdentity(state: ServerState): JsonObject {
  return state.sealed ? {} : { cluster_name: state.clusterName, cluster_id: state.clusterId };
}

function parseBoolParameter(query: URLSearchParams, name: string): boolean | Error {
  const raw = query.get(name);
  if (raw === null) return false;
  if (/^(1|t|true)$/i.test(raw)) return true;
  if (/^(0|f|false)$/i.test(raw)) return false;
  return new Error(`bad value for ${name} parameter: strconv.ParseBool: parsing "${raw}": invalid syntax`);
}
