// The KV version 2 secrets engine: versioned secrets with check-and-set, soft delete, destroy,
// metadata (max_versions, delete_version_after, cas_required, custom_metadata) and listing.
import type { Backend, HandlerResult, LogicalRequest, MountEntry, Operation } from "./vault-types.js";
import type { Clock, JsonObject, JsonValue } from "./vault-util.js";
import { durationParameter, envelope, formatGoDuration, isJsonObject, rfc3339Nano, VaultRequestError } from "./vault-util.js";

/** The engine's built-in cap on kept versions when neither key nor mount sets one. */
const DEFAULT_MAX_VERSIONS = 10;

interface VersionMeta {
  createdMs: number;
  deletionMs: number | null;
  destroyed: boolean;
}

interface KeyMeta {
  createdMs: number;
  updatedMs: number;
  currentVersion: number;
  oldestVersion: number;
  maxVersions: number;
  casRequired: boolean;
  deleteVersionAfterSeconds: number;
  customMetadata: Record<string, string> | null;
  versions: Map<number, VersionMeta>;
}

interface MountConfig {
  maxVersions: number;
  casRequired: boolean;
  deleteVersionAfterSeconds: number;
}

/** The engine's sub-APIs: `<mount>/<area>/<key>`. */
type Area = "data" | "metadata" | "delete" | "undelete" | "destroy" | "config";
const AREAS: ReadonlySet<string> = new Set<Area>(["data", "metadata", "delete", "undelete", "destroy", "config"]);

interface Route {
  area: Area;
  key: string;
}

const CLI_VERB: Record<Operation, string> = {
  read: "get",
  create: "put",
  update: "put",
  list: "list",
  delete: "delete",
  patch: "patch",
};

export class KvV2Backend implements Backend {
  private readonly metadata = new Map<string, KeyMeta>();
  private readonly secrets = new Map<string, Map<number, JsonObject>>();
  private readonly config: MountConfig = { maxVersions: 0, casRequired: false, deleteVersionAfterSeconds: 0 };

  constructor(
    readonly mount: MountEntry,
    private readonly clock: Clock,
  ) {}

  /** Only data/ and metadata/ have existence checks; delete/, destroy/ and the rest are updates. */
  exists(req: LogicalRequest): boolean | undefined {
    const route = parseRoute(req.relativePath);
    if (route?.area !== "data" && route?.area !== "metadata") return undefined;
    return this.metadata.has(route.key);
  }

  /** Every key that still has metadata (versions, even deleted or destroyed ones, keep it). */
  keys(): string[] {
    return [...this.metadata.keys()].sort();
  }

  handle(req: LogicalRequest): HandlerResult {
    const route = parseRoute(req.relativePath);
    if (route === undefined) return invalidPath(req);
    const data = req.data ?? {};
    const { key } = route;
    switch (`${route.area}:${req.operation}`) {
      case "data:read":
        return this.readVersion(req, key);
      case "data:create":
      case "data:update":
        return this.writeVersion(key, data, undefined);
      case "data:patch":
        return this.patchVersion(key, data);
      case "data:delete":
        return this.softDelete(key, undefined);
      case "metadata:read":
        return this.readMetadata(key);
      case "metadata:list":
        return { data: { keys: this.listChildren(key) } };
      case "metadata:create":
      case "metadata:update":
        return this.writeMetadata(key, data);
      case "metadata:delete":
        this.metadata.delete(key);
        this.secrets.delete(key);
        return null;
      case "delete:create":
      case "delete:update":
        return this.softDelete(key, requiredVersions(data));
      case "undelete:create":
      case "undelete:update":
        return this.undelete(key, requiredVersions(data));
      case "destroy:create":
      case "destroy:update":
        return this.destroy(key, requiredVersions(data));
      case "config:read":
        return { data: this.describeConfig() };
      case "config:create":
      case "config:update":
        return this.writeConfig(data);
      default:
        throw VaultRequestError.unsupportedOperation();
    }
  }

  private readVersion(req: LogicalRequest, key: string): HandlerResult {
    const meta = this.metadata.get(key);
    if (meta === undefined) return null;
    const requested = parseVersionParameter(req.data?.["version"]);
    const version = requested === 0 ? meta.currentVersion : requested;
    const versionMeta = meta.versions.get(version);
    if (versionMeta === undefined) return null;
    const gone = this.isDeleted(versionMeta) || versionMeta.destroyed;
    const body: JsonObject = {
      data: gone ? null : (this.secrets.get(key)?.get(version) ?? null),
      metadata: describeVersion(meta, version, versionMeta),
    };
    if (!gone) return { data: body };
    // A deleted or destroyed version is a 404 that still carries the envelope and metadata.
    return {
      raw: {
        status: 404,
        contentType: "application/json",
        body: JSON.stringify(envelope({ requestId: req.id, data: body })),
      },
    };
  }

  private writeVersion(key: string, body: JsonObject, base: JsonObject | undefined): HandlerResult {
    const payload = body["data"];
    if (payload === undefined) throw VaultRequestError.invalidRequest("no data provided");
    if (!isJsonObject(payload)) {
      throw VaultRequestError.invalidRequest(`error converting input ${JSON.stringify(payload)} for field "data"`);
    }
    const meta = this.metadata.get(key) ?? this.newMeta();
    this.checkAndSet(meta, body);
    const now = this.clock();
    const version = meta.currentVersion + 1;
    const expiresAfter = meta.deleteVersionAfterSeconds || this.config.deleteVersionAfterSeconds;
    const versionMeta: VersionMeta = {
      createdMs: now,
      deletionMs: expiresAfter > 0 ? now + expiresAfter * 1000 : null,
      destroyed: false,
    };
    meta.versions.set(version, versionMeta);
    meta.currentVersion = version;
    meta.updatedMs = now;
    this.metadata.set(key, meta);
    const stored = this.secrets.get(key) ?? new Map<number, JsonObject>();
    stored.set(version, base === undefined ? payload : mergePatch(base, payload));
    this.secrets.set(key, stored);
    this.pruneVersions(key, meta);
    return { data: describeVersion(meta, version, versionMeta) };
  }

  /** PATCH: a JSON merge patch (RFC 7396) onto the current version, written as a new version. */
  private patchVersion(key: string, body: JsonObject): HandlerResult {
    const meta = this.metadata.get(key);
    const current = meta?.versions.get(meta.currentVersion);
    if (meta === undefined || current === undefined || this.isDeleted(current) || current.destroyed) {
      // kv-v2 answers a patch of nothing with a bare 404 and no body.
      return { raw: { status: 404, contentType: "application/json", body: "" } };
    }
    return this.writeVersion(key, body, this.secrets.get(key)?.get(meta.currentVersion) ?? {});
  }

  private checkAndSet(meta: KeyMeta, body: JsonObject): void {
    const options = body["options"];
    const rawCas = isJsonObject(options) ? options["cas"] : undefined;
    if (rawCas === undefined || rawCas === null) {
      if (this.config.casRequired || meta.casRequired) {
        throw VaultRequestError.invalidRequest("check-and-set parameter required for this call");
      }
      return;
    }
    const cas = Number(rawCas);
    if (!Number.isInteger(cas)) throw VaultRequestError.invalidRequest("error parsing check-and-set parameter");
    if (cas !== meta.currentVersion) {
      throw VaultRequestError.invalidRequest("check-and-set parameter did not match the current version");
    }
  }

  private pruneVersions(key: string, meta: KeyMeta): void {
    const limit = meta.maxVersions || this.config.maxVersions || DEFAULT_MAX_VERSIONS;
    const kept = [...meta.versions.keys()].sort((a, b) => a - b);
    while (kept.length > limit) {
      const oldest = kept.shift() ?? 0;
      meta.versions.delete(oldest);
      this.secrets.get(key)?.delete(oldest);
      meta.oldestVersion = kept[0] ?? 0;
    }
  }

  /** Soft delete: the latest version (DELETE data/) or the listed ones (POST delete/). */
  private softDelete(key: string, versions: number[] | undefined): HandlerResult {
    const meta = this.metadata.get(key);
    if (meta === undefined) return null;
    const now = this.clock();
    for (const version of versions ?? [meta.currentVersion]) {
      const versionMeta = meta.versions.get(version);
      if (versionMeta && !versionMeta.destroyed && !this.isDeleted(versionMeta)) versionMeta.deletionMs = now;
    }
    meta.updatedMs = now;
    return null;
  }

  private undelete(key: string, versions: number[]): HandlerResult {
    const meta = this.metadata.get(key);
    for (const version of versions) {
      const versionMeta = meta?.versions.get(version);
      if (versionMeta && !versionMeta.destroyed) versionMeta.deletionMs = null;
    }
    return null;
  }

  private destroy(key: string, versions: number[]): HandlerResult {
    const meta = this.metadata.get(key);
    for (const version of versions) {
      const versionMeta = meta?.versions.get(version);
      if (versionMeta === undefined) continue;
      versionMeta.destroyed = true;
      this.secrets.get(key)?.delete(version);
    }
    return null;
  }

  private readMetadata(key: string): HandlerResult {
    const meta = this.metadata.get(key);
    if (meta === undefined) return null;
    const versions: JsonObject = {};
    for (const [version, versionMeta] of meta.versions) {
      versions[String(version)] = {
        created_time: rfc3339Nano(versionMeta.createdMs),
        deletion_time: versionMeta.deletionMs === null ? "" : rfc3339Nano(versionMeta.deletionMs),
        destroyed: versionMeta.destroyed,
      };
    }
    return {
      data: {
        cas_required: meta.casRequired,
        created_time: rfc3339Nano(meta.createdMs),
        current_version: meta.currentVersion,
        custom_metadata: meta.customMetadata,
        delete_version_after: formatGoDuration(meta.deleteVersionAfterSeconds),
        max_versions: meta.maxVersions,
        oldest_version: meta.oldestVersion,
        updated_time: rfc3339Nano(meta.updatedMs),
        versions,
      },
    };
  }

  /** Immediate children of a folder: leaf keys, and sub-folders with a trailing "/". */
  private listChildren(folder: string): string[] {
    const children = new Set<string>();
    for (const key of this.metadata.keys()) {
      if (!key.startsWith(folder)) continue;
      const rest = key.slice(folder.length);
      const slash = rest.indexOf("/");
      children.add(slash === -1 ? rest : rest.slice(0, slash + 1));
    }
    return [...children].filter((child) => child !== "").sort();
  }

  private writeMetadata(key: string, body: JsonObject): HandlerResult {
    const meta = this.metadata.get(key) ?? this.newMeta();
    if (body["max_versions"] !== undefined) meta.maxVersions = Number(body["max_versions"]);
    if (body["cas_required"] !== undefined) meta.casRequired = isTrue(body["cas_required"]);
    if (body["delete_version_after"] !== undefined) {
      meta.deleteVersionAfterSeconds = durationParameter("delete_version_after", body["delete_version_after"]);
    }
    if (body["custom_metadata"] !== undefined) meta.customMetadata = parseCustomMetadata(body["custom_metadata"]);
    meta.updatedMs = this.clock();
    this.metadata.set(key, meta);
    return null;
  }

  private describeConfig(): JsonObject {
    return {
      cas_required: this.config.casRequired,
      delete_version_after: formatGoDuration(this.config.deleteVersionAfterSeconds),
      max_versions: this.config.maxVersions,
    };
  }

  private writeConfig(body: JsonObject): HandlerResult {
    if (body["max_versions"] !== undefined) this.config.maxVersions = Number(body["max_versions"]);
    if (body["cas_required"] !== undefined) this.config.casRequired = isTrue(body["cas_required"]);
    if (body["delete_version_after"] !== undefined) {
      this.config.deleteVersionAfterSeconds = durationParameter("delete_version_after", body["delete_version_after"]);
    }
    return null;
  }

  private isDeleted(versionMeta: VersionMeta): boolean {
    return versionMeta.deletionMs !== null && versionMeta.deletionMs <= this.clock();
  }

  private newMeta(): KeyMeta {
    const now = this.clock();
    return {
      createdMs: now,
      updatedMs: now,
      currentVersion: 0,
      oldestVersion: 0,
      maxVersions: 0,
      casRequired: false,
      deleteVersionAfterSeconds: 0,
      customMetadata: null,
      versions: new Map(),
    };
  }
}

function parseRoute(relativePath: string): Route | undefined {
  const slash = relativePath.indexOf("/");
  const area = slash === -1 ? relativePath : relativePath.slice(0, slash);
  if (!AREAS.has(area)) return undefined;
  if (area === "config") return slash === -1 ? { area: "config", key: "" } : undefined;
  if (slash === -1) return undefined;
  return { area: area as Area, key: relativePath.slice(slash + 1) };
}

/** What kv-v2 says to paths outside its API (typically a KV v1-style path): a 404 with a hint. */
function invalidPath(req: LogicalRequest): HandlerResult {
  const hint =
    "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. " +
    `If using the Vault CLI, use 'vault kv ${CLI_VERB[req.operation]}' for this operation.`;
  return {
    raw: {
      status: 404,
      contentType: "application/json",
      body: JSON.stringify(envelope({ requestId: req.id, warnings: [hint] })),
    },
  };
}

function describeVersion(meta: KeyMeta, version: number, versionMeta: VersionMeta): JsonObject {
  return {
    created_time: rfc3339Nano(versionMeta.createdMs),
    custom_metadata: meta.customMetadata,
    deletion_time: versionMeta.deletionMs === null ? "" : rfc3339Nano(versionMeta.deletionMs),
    destroyed: versionMeta.destroyed,
    version,
  };
}

function parseVersionParameter(raw: JsonValue | undefined): number {
  if (raw === undefined || raw === null || raw === "") return 0;
  const version = Number(raw);
  if (!Number.isInteger(version) || version < 0) {
    throw VaultRequestError.invalidRequest(`error converting input ${String(raw)} for field "version"`);
  }
  return version;
}

function requiredVersions(body: JsonObject): number[] {
  const raw = body["versions"];
  const listed = Array.isArray(raw) ? raw : typeof raw === "string" ? raw.split(",") : raw === undefined ? [] : [raw];
  const versions = listed.map(Number).filter((version) => Number.isInteger(version) && version > 0);
  if (versions.length === 0) throw VaultRequestError.invalidRequest("no version number provided");
  return versions;
}

function parseCustomMetadata(raw: JsonValue): Record<string, string> | null {
  if (raw === null) return null;
  if (!isJsonObject(raw)) throw VaultRequestError.invalidRequest(`error converting input for field "custom_metadata"`);
  return Object.fromEntries(Object.entries(raw).map(([key, value]) => [key, String(value)]));
}

/** Vault's bool fields also take their string forms. */
function isTrue(value: JsonValue): boolean {
  return value === true || value === "true";
}

function mergePatch(target: JsonObject, patch: JsonObject): JsonObject {
  const merged: JsonObject = { ...target };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete merged[key];
    else {
      const existing = merged[key];
      merged[key] = isJsonObject(value) && isJsonObject(existing) ? mergePatch(existing, value) : value;
    }
  }
  return merged;
}
