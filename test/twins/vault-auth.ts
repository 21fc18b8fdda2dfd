// Auth methods: the token store's HTTP API (auth/token/) and a JWT method such as the one Nomad
// workload identities log in with (auth/jwt-nomad/login).
import type { TokenEntry, TokenStore } from "./vault-tokens.js";
import { DEFAULT_TOKEN_TTL_SECONDS, sanitizePolicies } from "./vault-tokens.js";
import type { Backend, HandlerResult, LogicalRequest, MountEntry } from "./vault-types.js";
import type { Clock, JsonObject, JsonValue } from "./vault-util.js";
import { durationParameter, isJsonObject, newUuid, VaultRequestError } from "./vault-util.js";

export class TokenAuthBackend implements Backend {
  constructor(
    readonly mount: MountEntry,
    private readonly tokens: TokenStore,
  ) {}

  handle(req: LogicalRequest): HandlerResult {
    const caller = req.token;
    if (caller === undefined) throw VaultRequestError.badToken();
    const data = req.data ?? {};
    const write = req.operation === "create" || req.operation === "update";
    switch (req.relativePath) {
      case "lookup-self":
        if (req.operation !== "read" && !write) break;
        return { data: this.tokens.describe(caller) };
      case "lookup": {
        if (!write) break;
        const target = this.tokens.lookup(typeof data["token"] === "string" ? data["token"] : "");
        if (target === undefined) throw VaultRequestError.forbidden("bad token");
        return { data: this.tokens.describe(target) };
      }
      case "renew-self":
        if (!write) break;
        return this.renew(caller, data["increment"]);
      case "revoke-self":
        if (!write) break;
        this.tokens.revoke(caller.id);
        return null;
      case "create":
        if (!write) break;
        return { auth: this.createChild(caller, data) };
      default:
        throw VaultRequestError.unsupportedPath();
    }
    throw VaultRequestError.unsupportedOperation();
  }

  private renew(token: TokenEntry, increment: JsonValue | undefined): HandlerResult {
    if (!token.renewable || token.ttlSeconds === 0) throw VaultRequestError.invalidRequest("lease is not renewable");
    const seconds = increment === undefined ? 0 : durationParameter("increment", increment);
    this.tokens.renew(token, seconds);
    return { auth: token };
  }

  private createChild(parent: TokenEntry, data: JsonObject): TokenEntry {
    const requested = Array.isArray(data["policies"]) ? data["policies"].map(String) : parent.policies;
    const noDefault = data["no_default_policy"] === true;
    const policies = sanitizePolicies(requested, !noDefault);
    const parentIsRoot = parent.policies.includes("root");
    if (!parentIsRoot && policies.some((policy) => policy !== "default" && !parent.policies.includes(policy))) {
      throw VaultRequestError.invalidRequest("child policies must be subset of parent");
    }
    const ttl = data["ttl"];
    const displayName = typeof data["display_name"] === "string" ? data["display_name"] : "";
    return this.tokens.create({
      policies,
      noDefaultPolicy: true, // already sanitized above
      ttlSeconds: ttl === undefined ? undefined : durationParameter("ttl", ttl),
      displayName: displayName === "" ? "token" : `token-${displayName}`,
      meta: isJsonObject(data["meta"]) ? stringRecord(data["meta"]) : null,
      numUses: typeof data["num_uses"] === "number" ? data["num_uses"] : 0,
      orphan: data["no_parent"] === true,
    });
  }
}

/**
 * A JWT auth role in the fields of `vault write auth/jwt-nomad/role/<name> ...` (a role JSON file
 * such as policies/vault-jwt-role.json can be passed as it is). Fields the twin does not act on
 * (role_type, token_type, token_explicit_max_ttl, ...) are accepted and ignored.
 */
export interface JwtRole {
  token_policies?: string[];
  /** The older name of token_policies. */
  policies?: string[];
  /** Claims the token must carry, each with one allowed value or a list of them. */
  bound_claims?: Record<string, string | string[]>;
  bound_audiences?: string[];
  /** Claim -> metadata key copied onto the issued token (Nomad's docs map nomad_job_id & co). */
  claim_mappings?: Record<string, string>;
  /** Claim naming the logged-in user (default "sub"). */
  user_claim?: string;
  /** Read user_claim as a JSON pointer ("/nomad_job_id"), as Nomad's recommended role does. */
  user_claim_json_pointer?: boolean;
  /** Seconds or a duration string. */
  token_ttl?: number | string;
  /** Seconds or a duration string: a periodic token, renewable for this long each time. */
  token_period?: number | string;
  token_no_default_policy?: boolean;
  [ignored: string]: unknown;
}

/** How far past `exp` Vault's JWT method still accepts a token (expiration_leeway default). */
const EXPIRATION_LEEWAY_SECONDS = 150;

export class JwtAuthBackend implements Backend {
  private readonly roles = new Map<string, JwtRole>();

  constructor(
    readonly mount: MountEntry,
    private readonly tokens: TokenStore,
    private readonly clock: Clock,
  ) {}

  configureRole(name: string, role: JwtRole): void {
    this.roles.set(name, role);
  }

  isUnauthenticated(req: LogicalRequest): boolean {
    return req.relativePath === "login";
  }

  handle(req: LogicalRequest): HandlerResult {
    const write = req.operation === "create" || req.operation === "update";
    const roleName = /^role\/([^/]+)$/.exec(req.relativePath)?.[1];
    if (roleName !== undefined && write) {
      this.configureRole(roleName, roleFromRequest(req.data ?? {}));
      return null;
    }
    if (roleName !== undefined && req.operation === "read") {
      const role = this.roles.get(roleName);
      return role === undefined ? null : { data: JSON.parse(JSON.stringify(role)) as JsonObject };
    }
    // The twin trusts every issuer, so there is nothing to configure; accept it all the same.
    if (req.relativePath === "config" && write) return null;
    if (req.relativePath !== "login") throw VaultRequestError.unsupportedPath();
    if (!write) throw VaultRequestError.unsupportedOperation();
    return this.login(req.data ?? {});
  }

  private login(data: JsonObject): HandlerResult {
    const roleName = typeof data["role"] === "string" ? data["role"] : "";
    if (roleName === "") throw VaultRequestError.invalidRequest("missing role");
    const role = this.roles.get(roleName);
    if (role === undefined) throw VaultRequestError.invalidRequest(`role "${roleName}" could not be found`);
    const jwt = typeof data["jwt"] === "string" ? data["jwt"] : "";
    if (jwt === "") throw VaultRequestError.invalidRequest("missing token");
    const claims = this.validClaims(jwt, role);
    return { auth: this.issueToken(roleName, role, claims) };
  }

  /** Signature verification is left out on purpose: the twin trusts the issuer, checks the claims. */
  private validClaims(jwt: string, role: JwtRole): JsonObject {
    const claims = decodeJwtPayload(jwt);
    const exp = claims["exp"];
    if (typeof exp === "number" && exp + EXPIRATION_LEEWAY_SECONDS < this.clock() / 1000) {
      throw VaultRequestError.invalidRequest("error validating token: token is expired (exp)");
    }
    if (role.bound_audiences?.length && !audienceMatches(claims["aud"], role.bound_audiences)) {
      throw VaultRequestError.invalidRequest("error validating token: invalid audience (aud) claim");
    }
    for (const [claim, allowed] of Object.entries(role.bound_claims ?? {})) {
      const actual = claimValue(claims, claim);
      if (actual === undefined) {
        throw VaultRequestError.invalidRequest(`error validating claims: claim "${claim}" is missing`);
      }
      const accepted = Array.isArray(allowed) ? allowed : [allowed];
      const presented = Array.isArray(actual) ? actual.map(String) : [String(actual)];
      if (!presented.some((value) => accepted.includes(value))) {
        throw VaultRequestError.invalidRequest(`error validating claims: claim "${claim}" does not match any associated bound claim values`);
      }
    }
    return claims;
  }

  private issueToken(roleName: string, role: JwtRole, claims: JsonObject): TokenEntry {
    const userClaim = role.user_claim ?? "sub";
    const user = role.user_claim_json_pointer === true ? claimValue(claims, userClaim) : claims[userClaim];
    if (user === undefined) throw VaultRequestError.invalidRequest(`claim "${userClaim}" not found in token`);
    // hashicorp/vault-plugin-auth-jwt path_login.go: claim_mappings fill the entity alias's
    // metadata (what ACL templates read), and the token's metadata is that plus the role.
    const aliasMetadata: Record<string, string> = {};
    for (const [claim, metadataKey] of Object.entries(role.claim_mappings ?? {})) {
      const value = claimValue(claims, claim);
      if (value !== undefined) aliasMetadata[metadataKey] = String(value);
    }
    const meta: Record<string, string> = { ...aliasMetadata, role: roleName };
    // Vault names login tokens after the mount ("auth/jwt-nomad/" -> "jwt-nomad") and the user.
    const source = this.mount.path.replace(/^auth\//, "").replace(/\//g, "-");
    const ttl = role.token_period ?? role.token_ttl;
    return this.tokens.create({
      policies: role.token_policies ?? role.policies ?? [],
      noDefaultPolicy: role.token_no_default_policy === true,
      ttlSeconds: ttl === undefined ? DEFAULT_TOKEN_TTL_SECONDS : durationParameter("token_ttl", ttl),
      displayName: `${source}${String(user)}`,
      meta,
      path: `${this.mount.path}login`,
      orphan: true,
      entityId: newUuid(),
      alias: { mountAccessor: this.mount.accessor, name: String(user), metadata: aliasMetadata },
    });
  }
}

/** Vault's role fields as sent over HTTP: lists may also come as comma-separated strings. */
function roleFromRequest(data: JsonObject): JwtRole {
  const role: JwtRole = { ...data };
  for (const listField of ["token_policies", "policies", "bound_audiences"] as const) {
    const value = data[listField];
    if (typeof value === "string")
      role[listField] = value
        .split(",")
        .map((item) => item.trim())
        .filter(Boolean);
  }
  return role;
}

function decodeJwtPayload(jwt: string): JsonObject {
  const parts = jwt.split(".");
  if (parts.length !== 3) {
    throw VaultRequestError.invalidRequest("error validating token: compact JWS format must have three parts");
  }
  try {
    const payload: unknown = JSON.parse(Buffer.from(parts[1] ?? "", "base64url").toString("utf8"));
    if (!isJsonObject(payload)) throw new Error("payload is not an object");
    return payload;
  } catch (error) {
    throw VaultRequestError.invalidRequest(`error validating token: ${(error as Error).message}`);
  }
}

/** A claim by name, or by JSON pointer when it starts with "/" ("/a/b"), as Vault's getClaim. */
function claimValue(claims: JsonObject, claim: string): JsonValue | undefined {
  if (!claim.startsWith("/")) return claims[claim];
  let current: JsonValue | undefined = claims;
  for (const segment of claim.slice(1).split("/")) {
    current = isJsonObject(current) ? current[segment] : undefined;
  }
  return current;
}

function audienceMatches(aud: JsonValue | undefined, bound: string[]): boolean {
  const presented = Array.isArray(aud) ? aud.map(String) : typeof aud === "string" ? [aud] : [];
  return presented.some((value) => bound.includes(value));
}

function stringRecord(object: JsonObject): Record<string, string> {
  return Object.fromEntries(Object.entries(object).map(([key, value]) => [key, String(value)]));
}
