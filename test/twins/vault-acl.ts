// ACL policies: parsing real Vault policy HCL (or its JSON form) and deciding, path by path and
// capability by capability, what a token may do — with Vault's matching and priority rules.
import hcl2json from "@cdktf/hcl2json";
import { type EntityAlias, RESPONSE_WRAPPING_POLICY } from "./vault-tokens.js";
import type { Operation } from "./vault-types.js";
import { isJsonObject } from "./vault-util.js";

export type Capability = "create" | "read" | "update" | "delete" | "list" | "patch" | "sudo" | "deny";

const CAPABILITIES: ReadonlySet<string> = new Set<Capability>(["create", "read", "update", "delete", "list", "patch", "sudo", "deny"]);

/** Pre-0.9 `policy = "..."` shorthands, still accepted by Vault. */
const LEGACY_POLICY_CAPABILITIES: Record<string, Capability[]> = {
  deny: ["deny"],
  read: ["read", "list"],
  write: ["create", "read", "update", "delete", "list"],
  sudo: ["create", "read", "update", "delete", "list", "sudo"],
};

export interface PolicyRule {
  pattern: string;
  capabilities: Capability[];
}

export interface Policy {
  name: string;
  text: string;
  rules: PolicyRule[];
}

/**
 * Vault 1.15's built-in `default` policy, minus the two identity paths that are templated on
 * the token's entity (the twin's tokens have none, so Vault would skip them as well).
 */
export const DEFAULT_POLICY_HCL = `
path "auth/token/lookup-self" { capabilities = ["read"] }
path "auth/token/renew-self" { capabilities = ["update"] }
path "auth/token/revoke-self" { capabilities = ["update"] }
path "sys/capabilities-self" { capabilities = ["update"] }
path "sys/internal/ui/resultant-acl" { capabilities = ["read"] }
path "sys/renew" { capabilities = ["update"] }
path "sys/leases/renew" { capabilities = ["update"] }
path "sys/leases/lookup" { capabilities = ["update"] }
path "cubbyhole/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "sys/wrapping/wrap" { capabilities = ["update"] }
path "sys/wrapping/lookup" { capabilities = ["update"] }
path "sys/wrapping/unwrap" { capabilities = ["update"] }
path "sys/tools/hash" { capabilities = ["update"] }
path "sys/tools/hash/*" { capabilities = ["update"] }
path "sys/control-group/request" { capabilities = ["update"] }
path "identity/oidc/provider/+/authorize" { capabilities = ["read", "update"] }
`;

/** The only policy a response-wrapping token carries. */
export const RESPONSE_WRAPPING_POLICY_HCL = `
path "cubbyhole/response" { capabilities = ["create", "read"] }
path "sys/wrapping/unwrap" { capabilities = ["update"] }
`;

export async function parsePolicy(name: string, text: string): Promise<Policy> {
  const document = await parsePolicyDocument(name, text);
  const paths = document["path"];
  if (paths === undefined) return { name, text, rules: [] };
  if (!isJsonObject(paths)) throw new Error(`failed to parse policy: "path" must be a block`);
  const rules = Object.entries(paths).flatMap(([pattern, blocks]) => (Array.isArray(blocks) ? blocks : [blocks]).map((block) => parseRule(pattern, block)));
  return { name, text, rules };
}

async function parsePolicyDocument(name: string, text: string): Promise<Record<string, unknown>> {
  try {
    // Vault accepts policies written as JSON as well as HCL; hcl2json only reads the latter.
    const parsed: unknown = text.trim().startsWith("{") ? JSON.parse(text) : await hcl2json.parse(`${name}.hcl`, text);
    if (!isJsonObject(parsed)) throw new Error("not an object");
    return parsed;
  } catch (error) {
    throw new Error(`failed to parse policy: ${(error as Error).message}`);
  }
}

function parseRule(pattern: string, block: unknown): PolicyRule {
  if (!isJsonObject(block)) throw new Error(`failed to parse policy: path "${pattern}" must be a block`);
  const capabilities = new Set<Capability>();
  const listed = block["capabilities"] ?? [];
  if (!Array.isArray(listed)) throw new Error(`failed to parse policy: path "${pattern}": capabilities must be a list`);
  for (const capability of listed) {
    if (typeof capability !== "string" || !CAPABILITIES.has(capability)) {
      throw new Error(`failed to parse policy: path "${pattern}": invalid capability "${String(capability)}"`);
    }
    capabilities.add(capability as Capability);
  }
  const legacy = block["policy"];
  if (typeof legacy === "string") {
    for (const capability of LEGACY_POLICY_CAPABILITIES[legacy] ?? []) capabilities.add(capability);
  }
  return { pattern, capabilities: [...capabilities] };
}

/** One policy path after merging every policy's block for it (deny wins over everything). */
interface MergedRule {
  pattern: string;
  capabilities: Set<Capability>;
  /** Which policies granted each capability (for the audit log's granting_policies). */
  grantedBy: Map<Capability, string[]>;
}

/** How a non-exact pattern matched a path, in the terms Vault ranks matches by. */
interface WildcardMatch {
  rule: MergedRule;
  firstWildcardIndex: number;
  isPrefix: boolean;
  plusSegments: number;
  /** The pattern without its trailing `*`. */
  stem: string;
}

export interface AclDecision {
  allowed: boolean;
  grantingPolicies: string[];
}

/** What ACL templates may name about the token's owner (sdk/helper/identitytpl). */
export interface TemplateIdentity {
  entityId: string;
  alias: EntityAlias | null;
}

export class Acl {
  private readonly exactRules = new Map<string, MergedRule>();
  private readonly wildcardRules: MergedRule[] = [];

  constructor(
    readonly isRoot: boolean,
    policies: Policy[],
    identity?: TemplateIdentity,
  ) {
    const merged = new Map<string, MergedRule>();
    for (const policy of policies) {
      for (const rule of policy.rules) {
        // hashicorp/vault vault/policy.go parsePaths: a templated path is filled in for the
        // requesting entity, and a path whose template cannot be filled is skipped.
        const pattern = rule.pattern.includes("{{") ? populateTemplate(rule.pattern, identity) : rule.pattern;
        if (pattern !== undefined) mergeRule(merged, policy.name, { ...rule, pattern });
      }
    }
    for (const rule of merged.values()) {
      if (isWildcardPattern(rule.pattern)) this.wildcardRules.push(rule);
      else this.exactRules.set(rule.pattern, rule);
    }
  }

  /** Whether `operation` on `path` is allowed; root-protected paths also need "sudo". */
  check(path: string, operation: Operation, needsSudo: boolean): AclDecision {
    if (this.isRoot) return { allowed: true, grantingPolicies: ["root"] };
    const rule = this.ruleFor(path, operation === "list");
    const capabilities = rule?.capabilities ?? new Set<Capability>();
    const allowed = !capabilities.has("deny") && capabilities.has(operation) && (!needsSudo || capabilities.has("sudo"));
    return { allowed, grantingPolicies: allowed ? (rule?.grantedBy.get(operation) ?? []) : [] };
  }

  /** sys/capabilities-self's answer: sorted capability names, ["deny"] for none, ["root"] for root. */
  capabilities(path: string): string[] {
    if (this.isRoot) return ["root"];
    const capabilities = this.ruleFor(path, true)?.capabilities;
    if (capabilities === undefined || capabilities.size === 0 || capabilities.has("deny")) return ["deny"];
    return [...capabilities].sort();
  }

  /** Vault's hasMountAccess: any non-deny capability on the mount path or anything below it. */
  hasAccessUnder(prefix: string): boolean {
    if (this.isRoot) return true;
    if (this.capabilities(prefix)[0] !== "deny") return true;
    const grants = (rule: MergedRule) => rule.capabilities.size > 0 && !rule.capabilities.has("deny");
    const below = [...this.exactRules.values(), ...this.wildcardRules].filter((rule) => rule.pattern.startsWith(prefix));
    return below.some(grants) || this.wildcardRules.some((rule) => grants(rule) && matchWildcard(rule, prefix));
  }

  private ruleFor(path: string, isList: boolean): MergedRule | undefined {
    const exact = this.exactRules.get(path) ?? (isList ? this.exactRules.get(path.replace(/\/$/, "")) : undefined);
    if (exact !== undefined) return exact;
    let best: WildcardMatch | undefined;
    for (const rule of this.wildcardRules) {
      const match = matchWildcard(rule, path);
      if (match !== undefined && (best === undefined || ranksBelow(best, match))) best = match;
    }
    return best?.rule;
  }
}

function mergeRule(merged: Map<string, MergedRule>, policyName: string, rule: PolicyRule): void {
  let target = merged.get(rule.pattern);
  if (target === undefined) {
    target = { pattern: rule.pattern, capabilities: new Set(), grantedBy: new Map() };
    merged.set(rule.pattern, target);
  }
  for (const capability of rule.capabilities) {
    target.capabilities.add(capability);
    target.grantedBy.set(capability, [...(target.grantedBy.get(capability) ?? []), policyName]);
  }
  if (target.capabilities.has("deny")) target.capabilities = new Set(["deny"]);
}

function isWildcardPattern(pattern: string): boolean {
  return pattern.endsWith("*") || pattern.split("/").includes("+");
}

/** Vault's CheckAllowedFromNonExactPaths for one pattern: `*` only at the end, `+` per segment. */
function matchWildcard(rule: MergedRule, path: string): WildcardMatch | undefined {
  const isPrefix = rule.pattern.endsWith("*");
  const stem = isPrefix ? rule.pattern.slice(0, -1) : rule.pattern;
  const patternParts = stem.split("/");
  const pathParts = path.split("/");
  const plusSegments = patternParts.filter((part) => part === "+").length;
  if (plusSegments === 0) {
    if (!path.startsWith(stem)) return undefined;
    return { rule, firstWildcardIndex: stem.length, isPrefix, plusSegments, stem };
  }
  if (isPrefix ? patternParts.length > pathParts.length : patternParts.length !== pathParts.length) return undefined;
  const segmentsMatch = patternParts.every((part, index) => {
    const actual = pathParts[index] ?? "";
    if (part === "+" || part === actual) return true;
    return isPrefix && index === patternParts.length - 1 && actual.startsWith(part);
  });
  if (!segmentsMatch) return undefined;
  return { rule, firstWildcardIndex: stem.indexOf("+"), isPrefix, plusSegments, stem };
}

/**
 * Vault's priority between two matching wildcard patterns (true when `a` loses to `b`):
 * the first wildcard appearing later wins, then non-prefix over prefix, then fewer `+`
 * segments, then the longer pattern, then the lexicographically larger one.
 */
function ranksBelow(a: WildcardMatch, b: WildcardMatch): boolean {
  if (a.firstWildcardIndex !== b.firstWildcardIndex) return a.firstWildcardIndex < b.firstWildcardIndex;
  if (a.isPrefix !== b.isPrefix) return a.isPrefix;
  if (a.plusSegments !== b.plusSegments) return a.plusSegments > b.plusSegments;
  if (a.stem.length !== b.stem.length) return a.stem.length < b.stem.length;
  return a.stem < b.stem;
}

const BUILT_IN_READ_ONLY = new Set(["root", RESPONSE_WRAPPING_POLICY]);

/**
 * Named policies. Parsing HCL is asynchronous (hcl2json is WebAssembly), so writes are
 * registered at once and parsed in the background; the core awaits `settled()` before any
 * ACL decision, so a policy written just before a request always applies to it.
 */
export class PolicyStore {
  private readonly policies = new Map<string, Policy>();
  private readonly pending = new Set<Promise<void>>();
  private readonly latestWrite = new Map<string, number>();
  private writes = 0;

  /** Rejects when the text does not parse (the previous version, if any, stays in force). */
  write(name: string, text: string): Promise<void> {
    const policyName = name.trim().toLowerCase();
    if (BUILT_IN_READ_ONLY.has(policyName)) return Promise.reject(new Error(`cannot update "${policyName}" policy`));
    return this.install(policyName, text);
  }

  delete(name: string): void {
    const policyName = name.trim().toLowerCase();
    if (policyName === "default" || BUILT_IN_READ_ONLY.has(policyName)) {
      throw new Error(`cannot delete "${policyName}" policy`);
    }
    this.latestWrite.delete(policyName);
    this.policies.delete(policyName);
  }

  get(name: string): Policy | undefined {
    return this.policies.get(name.toLowerCase());
  }

  /** Policy names as sys/policies/acl lists them. */
  names(): string[] {
    return [...this.policies.keys(), "root"].filter((name) => name !== RESPONSE_WRAPPING_POLICY).sort();
  }

  /** Installs the built-ins (default and response-wrapping) exactly as Vault ships them. */
  async installBuiltIns(): Promise<void> {
    await Promise.all([this.install("default", DEFAULT_POLICY_HCL), this.install(RESPONSE_WRAPPING_POLICY, RESPONSE_WRAPPING_POLICY_HCL)]);
  }

  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  aclFor(policyNames: string[], identity?: TemplateIdentity): Acl {
    const policies = policyNames.flatMap((name) => this.policies.get(name) ?? []);
    return new Acl(policyNames.includes("root"), policies, identity);
  }

  private install(name: string, text: string): Promise<void> {
    const sequence = ++this.writes;
    this.latestWrite.set(name, sequence);
    const parsing = parsePolicy(name, text).then((policy) => {
      // A later write of the same name may have finished first; only the latest counts.
      if (this.latestWrite.get(name) === sequence) this.policies.set(name, policy);
    });
    const tracked = parsing.finally(() => this.pending.delete(tracked));
    this.pending.add(tracked);
    return tracked;
  }
}

/**
 * ACL templating as hashicorp/vault sdk/helper/identitytpl/templating.go (ACLTemplating mode)
 * does it for the parameters this project's policies use: `identity.entity.id`,
 * `identity.entity.name` and `identity.entity.aliases.<mount accessor>.{id,name,metadata.<key>}`.
 * Undefined when any parameter has no value (no entity, another mount's alias, missing key),
 * which is when Vault drops the path.
 */
export function populateTemplate(pattern: string, identity: TemplateIdentity | undefined): string | undefined {
  let unresolved = false;
  const out = pattern.replace(/\{\{\s*([^}\s]+)\s*\}\}/g, (_whole, parameter: string) => {
    const value = identity === undefined || identity.entityId === "" ? undefined : templateValue(parameter, identity);
    if (value === undefined || value === "") unresolved = true;
    return value ?? "";
  });
  return unresolved ? undefined : out;
}

function templateValue(parameter: string, identity: TemplateIdentity): string | undefined {
  if (parameter === "identity.entity.id") return identity.entityId;
  if (parameter === "identity.entity.name") return `entity_${identity.entityId.slice(0, 8)}`;
  const match = /^identity\.entity\.aliases\.([^.]+)\.(id|name|metadata\.(.+))$/.exec(parameter);
  const alias = identity.alias;
  if (!match || alias === null || alias.mountAccessor !== match[1]) return undefined;
  if (match[2] === "name") return alias.name;
  if (match[2] === "id") return `${identity.entityId}-alias`;
  return alias.metadata[match[3] ?? ""];
}
