// Nomad ACL tokens and policies: namespace rules with `policy = "read"|"write"|...` shorthands
// (expanded as acl/policy.go does), fine-grained `capabilities`, glob namespaces, deny winning.

import { randomUUID } from "node:crypto";
import { isObject, parseHcl } from "./nomad-hcl.js";
import type { AclToken, Json } from "./nomad-types.js";

const READ_CAPABILITIES = [
  "list-jobs",
  "parse-job",
  "read-job",
  "csi-list-volume",
  "csi-read-volume",
  "read-job-scaling",
  "list-scaling-policies",
  "read-scaling-policy",
  "host-volume-read",
];

const WRITE_CAPABILITIES = [
  ...READ_CAPABILITIES,
  "scale-job",
  "submit-job",
  "dispatch-job",
  "read-logs",
  "read-fs",
  "alloc-exec",
  "alloc-lifecycle",
  "csi-mount-volume",
  "csi-write-volume",
  "submit-recommendation",
  "host-volume-create",
];

const SCALE_CAPABILITIES = ["list-scaling-policies", "read-scaling-policy", "read-job-scaling", "scale-job", "read-job", "submit-recommendation"];

/** expandNamespacePolicy */
function expandNamespacePolicy(policy: string | undefined): string[] {
  switch (policy) {
    case "deny":
      return ["deny"];
    case "read":
      return READ_CAPABILITIES;
    case "write":
      return WRITE_CAPABILITIES;
    case "scale":
      return SCALE_CAPABILITIES;
    default:
      return [];
  }
}

interface NamespaceRule {
  pattern: string;
  capabilities: Set<string>;
}

/**
 * A `variables { path "<spec>" { capabilities = [...] } }` block inside a namespace rule, keyed as
 * acl/acl.go NewACL keys it: `<namespace rule>\0<path spec>`, a glob when either part has `*`.
 */
interface VariableRule {
  key: string;
  glob: boolean;
  capabilities: Set<string>;
}

/** A compiled policy; `coarse` holds the agent/node/operator levels (`read`/`write`/`deny`). */
export interface CompiledPolicy {
  namespaces: NamespaceRule[];
  variables: VariableRule[];
  coarse: Record<string, string>;
}

/** acl/policy.go expandVariablesCapabilities: deny alone wins; read implies list. */
function expandVariablesCapabilities(caps: string[]): string[] {
  if (caps.includes("deny")) return ["deny"];
  return caps.includes("read") && !caps.includes("list") ? [...caps, "list"] : caps;
}

const VARIABLE_CAPABILITIES = new Set(["read", "write", "list", "destroy", "deny"]);

export async function compilePolicy(rules: string): Promise<CompiledPolicy> {
  const parsed = await parseHcl("policy.hcl", rules);
  const namespaces = new Map<string, Set<string>>();
  const coarse: Record<string, string> = {};
  const variables: VariableRule[] = [];
  for (const [pattern, body] of labeledBodies(parsed.namespace)) {
    const varsBody = firstBody(body.variables);
    if (body.variables !== undefined) {
      // acl/policy.go Parse: a variables block needs paths, without a leading `/`, and known capabilities.
      const paths = labeledBodies(varsBody?.path);
      if (paths.length === 0) throw new Error(`Invalid variable policy: no variable paths in namespace ${pattern}`);
      for (const [spec, pathBody] of paths) {
        if (spec.startsWith("/")) throw new Error(`Invalid variable path "${spec}" in namespace ${pattern}: cannot start with a leading '/'\``);
        const caps = (Array.isArray(pathBody.capabilities) ? pathBody.capabilities : []).filter((c): c is string => typeof c === "string");
        for (const cap of caps) if (!VARIABLE_CAPABILITIES.has(cap)) throw new Error(`Invalid variable capability '${cap}' in namespace ${pattern}`);
        const key = `${pattern}\u0000${spec}`;
        const existing = variables.find((v) => v.key === key);
        const rule = existing ?? { key, glob: pattern.includes("*") || spec.includes("*"), capabilities: new Set<string>() };
        for (const cap of expandVariablesCapabilities(caps)) rule.capabilities.add(cap);
        if (!existing) variables.push(rule);
      }
    }
    const caps = namespaces.get(pattern) ?? new Set<string>();
    const policy = typeof body.policy === "string" ? body.policy : undefined;
    for (const cap of expandNamespacePolicy(policy)) caps.add(cap);
    for (const cap of Array.isArray(body.capabilities) ? body.capabilities : []) if (typeof cap === "string") caps.add(cap);
    namespaces.set(pattern, caps);
  }
  for (const scope of ["agent", "node", "operator", "quota", "plugin"]) {
    const body = firstBody(parsed[scope]);
    if (body && typeof body.policy === "string") coarse[scope] = body.policy;
  }
  return { namespaces: [...namespaces].map(([pattern, capabilities]) => ({ pattern, capabilities })), variables, coarse };
}

function labeledBodies(value: Json | undefined): Array<[string, Record<string, Json>]> {
  if (!isObject(value)) return [];
  return Object.entries(value).flatMap(([label, bodies]) =>
    (Array.isArray(bodies) ? bodies : [bodies]).filter(isObject).map((body): [string, Record<string, Json>] => [label, body]),
  );
}

function firstBody(value: Json | undefined): Record<string, Json> | undefined {
  const first = Array.isArray(value) ? value[0] : value;
  return isObject(first) ? first : undefined;
}

/** An exact namespace rule wins; otherwise the closest matching glob (acl.findClosestMatchingGlob). */
function ruleFor(policy: CompiledPolicy, namespace: string): NamespaceRule | undefined {
  const exact = policy.namespaces.find((rule) => rule.pattern === namespace);
  if (exact) return exact;
  let best: { rule: NamespaceRule; distance: number } | undefined;
  for (const rule of policy.namespaces) {
    if (!rule.pattern.includes("*") || !globMatches(rule.pattern, namespace)) continue;
    const distance = namespace.length - rule.pattern.replaceAll("*", "").length;
    if (!best || distance < best.distance) best = { rule, distance };
  }
  return best?.rule;
}

function globMatches(pattern: string, value: string): boolean {
  const source = pattern
    .split("*")
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
    .join(".*");
  return new RegExp(`^${source}$`).test(value);
}

/**
 * acl/acl.go matchingVariablesCapabilitySet over the policies' merged rules: a concrete
 * `<namespace>\0<path>` first, else the closest matching glob (findClosestMatchingGlob: smallest
 * len(name) - len(glob) + count(glob, "*")); then capabilitySet.Check(op).
 */
function allowVariable(policies: CompiledPolicy[], namespace: string, path: string, op: string): boolean {
  const name = `${namespace}\u0000${path}`;
  const merged = new Map<string, { glob: boolean; capabilities: Set<string> }>();
  for (const rule of policies.flatMap((p) => p.variables)) {
    const entry = merged.get(rule.key) ?? { glob: rule.glob, capabilities: new Set<string>() };
    for (const cap of rule.capabilities) entry.capabilities.add(cap);
    merged.set(rule.key, entry);
  }
  const exact = merged.get(name);
  if (exact && !exact.glob) return exact.capabilities.has(op);
  let best: { capabilities: Set<string>; difference: number } | undefined;
  for (const [key, rule] of merged) {
    if (!rule.glob || !globMatches(key, name)) continue;
    const difference = name.length - key.length + (key.split("*").length - 1);
    if (!best || difference < best.difference) best = { capabilities: rule.capabilities, difference };
  }
  return best?.capabilities.has(op) ?? false;
}

/** What a resolved token may do. */
export interface AclSubject {
  token: AclToken | undefined;
  management: boolean;
  allowNamespace(namespace: string, capability: string): boolean;
  /** acl.ACL.AllowNamespace: any capability (and no deny) there; what Namespace.ListNamespaces filters by. */
  allowNamespaceAny(namespace: string): boolean;
  allowCoarse(scope: string, level: "read" | "write"): boolean;
  /** acl.ACL.AllowVariableOperation: `op` is read, write, list or destroy. */
  allowVariable(namespace: string, path: string, op: string): boolean;
}

export const UNRESTRICTED: AclSubject = {
  token: undefined,
  management: true,
  allowNamespace: () => true,
  allowNamespaceAny: () => true,
  allowCoarse: () => true,
  allowVariable: () => true,
};

function subjectFor(token: AclToken | undefined, policies: CompiledPolicy[]): AclSubject {
  const capabilitiesIn = (namespace: string): Set<string> => {
    const caps = new Set<string>();
    for (const policy of policies) for (const cap of ruleFor(policy, namespace)?.capabilities ?? []) caps.add(cap);
    return caps;
  };
  return {
    token,
    management: false,
    allowNamespace(namespace, capability) {
      const caps = capabilitiesIn(namespace);
      return !caps.has("deny") && caps.has(capability);
    },
    allowNamespaceAny(namespace) {
      const caps = capabilitiesIn(namespace);
      return caps.size > 0 && !caps.has("deny");
    },
    allowCoarse(scope, level) {
      const levels = policies.map((policy) => policy.coarse[scope]).filter((l): l is string => l !== undefined);
      if (levels.includes("deny")) return false;
      return levels.includes("write") || (level === "read" && levels.includes("read"));
    },
    allowVariable: (namespace, path, op) => allowVariable(policies, namespace, path, op),
  };
}

export class AclTokenNotFound extends Error {
  constructor() {
    super("ACL token not found");
  }
}

interface StoredToken {
  token: AclToken;
  policies: string[];
}

/** Tokens and policies of an ACL-enabled twin. Policy rules compile lazily (the HCL parser is async). */
export class AclRegistry {
  private readonly tokens = new Map<string, StoredToken>();
  private readonly policies = new Map<string, { rules: string; compiled?: Promise<CompiledPolicy> }>();
  private nextIndex = 1;
  readonly managementToken: string;

  constructor() {
    this.managementToken = this.addToken("Bootstrap Token", "management", []).SecretID;
  }

  createToken(rules: string, name?: string): string {
    const policyName = `twin-policy-${this.policies.size + 1}`;
    this.policies.set(policyName, { rules });
    return this.addToken(name ?? `twin-token-${this.tokens.size}`, "client", [policyName]).SecretID;
  }

  private addToken(name: string, type: AclToken["Type"], policies: string[]): AclToken {
    const index = this.nextIndex++;
    const token: AclToken = {
      AccessorID: randomUUID(),
      SecretID: randomUUID(),
      Name: name,
      Type: type,
      Policies: type === "management" ? null : policies,
      Roles: null,
      Global: false,
      CreateTime: new Date().toISOString(),
      ExpirationTime: null,
      CreateIndex: index,
      ModifyIndex: index,
    };
    this.tokens.set(token.SecretID, { token, policies });
    return token;
  }

  /** An empty secret is the anonymous token, which has no policies here. */
  async resolve(secret: string | undefined): Promise<AclSubject> {
    if (!secret) return subjectFor(undefined, []);
    const stored = this.tokens.get(secret);
    if (!stored) throw new AclTokenNotFound();
    if (stored.token.Type === "management") return { ...UNRESTRICTED, token: stored.token };
    const compiled = await Promise.all(stored.policies.map((name) => this.compiled(name)));
    return subjectFor(stored.token, compiled);
  }

  private compiled(name: string): Promise<CompiledPolicy> {
    const entry = this.policies.get(name);
    if (!entry) return Promise.resolve({ namespaces: [], variables: [], coarse: {} });
    entry.compiled ??= compilePolicy(entry.rules);
    return entry.compiled;
  }
}
