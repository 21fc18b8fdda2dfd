// The token store: service tokens (root, created, logged-in) and response-wrapping tokens.
import type { Clock, JsonObject } from "./vault-util.js";
import { newAccessor, newServiceToken, rfc3339Nano, unixSeconds } from "./vault-util.js";

/** Vault's default and maximum token TTL (768h). */
export const DEFAULT_TOKEN_TTL_SECONDS = 768 * 3600;

export const RESPONSE_WRAPPING_POLICY = "response-wrapping";

/** What a wrapping token's cubbyhole holds: the original response, to be handed out once. */
export interface WrappedResponse {
  /** The HTTP envelope exactly as the unwrap call will return it. */
  body: string;
  creationPath: string;
  creationTimeMs: number;
  ttlSeconds: number;
}

/** Which namespace something lives in: Vault's namespace.Namespace (helper/namespace/namespace.go). */
export interface NamespaceRef {
  /** "root" for the root namespace, otherwise a short random ID. */
  id: string;
  /** "" for the root namespace, otherwise its full path with a trailing slash ("ns1/ns2/"). */
  path: string;
}

export const ROOT_NAMESPACE: NamespaceRef = { id: "root", path: "" };

/**
 * Whether `inner` is `outer` or lies below it (Namespace.HasParent, helper/namespace/namespace.go):
 * a token is usable in its own namespace and in the namespaces below it, never above or beside.
 */
export function isWithinNamespace(inner: NamespaceRef, outer: NamespaceRef): boolean {
  return outer.path === "" || inner.path.startsWith(outer.path);
}

export interface TokenEntry {
  id: string;
  /** The namespace the token was created in. */
  namespace: NamespaceRef;
  accessor: string;
  /** Sorted, as Vault stores them ("default" included unless left out on purpose). */
  policies: string[];
  displayName: string;
  meta: Record<string, string> | null;
  path: string;
  creationTimeMs: number;
  /** TTL the token was created with; 0 = never expires (root). */
  ttlSeconds: number;
  /** null = never expires. */
  expireAtMs: number | null;
  lastRenewalMs: number | null;
  numUses: number;
  orphan: boolean;
  renewable: boolean;
  entityId: string;
  /** The entity alias the login created (auth methods only): what ACL templates can name. */
  alias: EntityAlias | null;
  wrapped: WrappedResponse | null;
}

/** logical.Alias as an auth method returns it: the mount it came through, a name, metadata. */
export interface EntityAlias {
  mountAccessor: string;
  name: string;
  metadata: Record<string, string>;
}

export interface NewTokenOptions {
  policies: string[];
  ttlSeconds?: number;
  displayName?: string;
  meta?: Record<string, string> | null;
  path?: string;
  numUses?: number;
  orphan?: boolean;
  noDefaultPolicy?: boolean;
  entityId?: string;
  alias?: EntityAlias;
}

/** Vault's policyutil.SanitizePolicies: trimmed, de-duplicated, sorted, "default" added. */
export function sanitizePolicies(policies: string[], addDefault: boolean): string[] {
  const names = new Set(policies.map((p) => p.trim()).filter((p) => p !== ""));
  if (names.has("root")) return ["root"];
  if (addDefault) names.add("default");
  return [...names].sort();
}

/**
 * The token store as one namespace sees it: tokens it creates belong to that namespace, and it
 * finds only tokens of that namespace or of the namespaces above it. All views share one table.
 */
export class TokenStore {
  constructor(
    private readonly clock: Clock,
    readonly namespace: NamespaceRef = ROOT_NAMESPACE,
    private readonly byId = new Map<string, TokenEntry>(),
  ) {}

  /** The same tokens as `namespace` sees them. */
  scopedTo(namespace: NamespaceRef): TokenStore {
    return new TokenStore(this.clock, namespace, this.byId);
  }

  /** Revokes every token created in `namespace` or below it (the namespace is being deleted). */
  revokeNamespace(namespace: NamespaceRef): void {
    for (const [id, entry] of this.byId) if (isWithinNamespace(entry.namespace, namespace)) this.byId.delete(id);
  }

  createRoot(id: string): TokenEntry {
    return this.store({
      ...this.blankEntry(id),
      policies: ["root"],
      displayName: "root",
      path: "auth/token/root",
      orphan: true,
      renewable: false,
    });
  }

  create(options: NewTokenOptions): TokenEntry {
    return this.store({
      ...this.blankEntry(this.newTokenId()),
      policies: sanitizePolicies(options.policies, options.noDefaultPolicy !== true),
      displayName: options.displayName ?? "token",
      meta: options.meta ?? null,
      path: options.path ?? "auth/token/create",
      ttlSeconds: options.ttlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS,
      numUses: options.numUses ?? 0,
      orphan: options.orphan ?? false,
      renewable: true,
      entityId: options.entityId ?? "",
      alias: options.alias ?? null,
    });
  }

  /** A single-use token whose only power is to unwrap `wrapped` before its TTL runs out. */
  createWrapping(wrapped: WrappedResponse): TokenEntry {
    return this.store({
      ...this.blankEntry(this.newTokenId()),
      policies: [RESPONSE_WRAPPING_POLICY],
      displayName: "",
      path: wrapped.creationPath,
      creationTimeMs: wrapped.creationTimeMs,
      ttlSeconds: wrapped.ttlSeconds,
      numUses: 1,
      orphan: true,
      renewable: false,
      wrapped,
    });
  }

  /**
   * The live entry for a token ID, if this namespace may use it; expired entries are revoked on
   * sight. A token of another namespace (a sibling, a child) is as unknown here as a made-up one.
   */
  lookup(id: string): TokenEntry | undefined {
    const entry = this.byId.get(id);
    if (entry === undefined || !isWithinNamespace(this.namespace, entry.namespace)) return undefined;
    if (entry.expireAtMs !== null && this.clock() >= entry.expireAtMs) {
      this.byId.delete(id);
      return undefined;
    }
    return entry;
  }

  revoke(id: string): void {
    this.byId.delete(id);
  }

  /**
   * Counts one use of a limited-use token. Returns true when that was its last use: Vault lets
   * the request finish and revokes the token afterwards.
   */
  spendUse(entry: TokenEntry): boolean {
    if (entry.numUses === 0) return false;
    entry.numUses -= 1;
    return entry.numUses === 0;
  }

  /** Extends the lease from now by `incrementSeconds`, never by more than the token's TTL. */
  renew(entry: TokenEntry, incrementSeconds: number): void {
    entry.lastRenewalMs = this.clock();
    const extension = incrementSeconds > 0 ? Math.min(incrementSeconds, entry.ttlSeconds) : entry.ttlSeconds;
    entry.expireAtMs = entry.lastRenewalMs + extension * 1000;
  }

  remainingTtlSeconds(entry: TokenEntry): number {
    if (entry.expireAtMs === null) return 0;
    return Math.max(0, Math.floor((entry.expireAtMs - this.clock()) / 1000));
  }

  /** `data` of auth/token/lookup-self, as Vault 1.15 shapes it. */
  describe(entry: TokenEntry): JsonObject {
    const expiry = entry.expireAtMs;
    const described: JsonObject = {
      accessor: entry.accessor,
      creation_time: unixSeconds(entry.creationTimeMs),
      creation_ttl: entry.ttlSeconds,
      display_name: entry.displayName,
      entity_id: entry.entityId,
      expire_time: expiry === null ? null : rfc3339Nano(expiry),
      explicit_max_ttl: 0,
      id: entry.id,
      issue_time: rfc3339Nano(entry.creationTimeMs),
      meta: entry.meta,
      num_uses: entry.numUses,
      orphan: entry.orphan,
      path: entry.path,
      policies: entry.policies,
      renewable: entry.renewable,
      ttl: this.remainingTtlSeconds(entry),
      type: "service",
    };
    if (entry.lastRenewalMs !== null) {
      described["last_renewal"] = rfc3339Nano(entry.lastRenewalMs);
      described["last_renewal_time"] = unixSeconds(entry.lastRenewalMs);
    }
    return described;
  }

  /** The `auth` block of a response that hands out this token. */
  authBlock(entry: TokenEntry): JsonObject {
    return {
      client_token: entry.id,
      accessor: entry.accessor,
      policies: entry.policies,
      token_policies: entry.policies,
      metadata: entry.meta,
      lease_duration: this.remainingTtlSeconds(entry),
      renewable: entry.renewable,
      entity_id: entry.entityId,
      token_type: "service",
      orphan: entry.orphan,
      mfa_requirement: null,
      num_uses: entry.numUses,
    };
  }

  /**
   * Vault appends the namespace's ID to tokens made outside the root namespace
   * ("hvs.<random>.<namespace id>"; helper/namespace/namespace.go, SplitIDFromString).
   */
  private newTokenId(): string {
    const id = newServiceToken();
    return this.namespace.path === "" ? id : `${id}.${this.namespace.id}`;
  }

  private blankEntry(id: string): TokenEntry {
    return {
      id,
      namespace: this.namespace,
      accessor: newAccessor(),
      policies: [],
      displayName: "",
      meta: null,
      path: "",
      creationTimeMs: this.clock(),
      ttlSeconds: 0,
      expireAtMs: null,
      lastRenewalMs: null,
      numUses: 0,
      orphan: false,
      renewable: false,
      entityId: "",
      alias: null,
      wrapped: null,
    };
  }

  private store(entry: TokenEntry): TokenEntry {
    entry.expireAtMs = entry.ttlSeconds === 0 ? null : entry.creationTimeMs + entry.ttlSeconds * 1000;
    this.byId.set(entry.id, entry);
    return entry;
  }
}
