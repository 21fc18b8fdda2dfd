// Vault Enterprise namespaces: isolated "Vaults within a Vault", each with its own mounts
// (secrets engines, auth methods), policies and tokens (hashicorp/vault
// website/content/docs/enterprise/namespaces/index.mdx). A request reaches a namespace through
// the X-Vault-Namespace header, a namespace prefix on its path, or both put together: with
// namespace ns1/ns2, the paths `ns1/ns2/secret/foo`, `secret/foo` with `X-Vault-Namespace:
// ns1/ns2/`, and `ns2/secret/foo` with `X-Vault-Namespace: ns1/` are the same (same page, "Vault
// API and namespaces"). Without either, a request is in the root namespace, as with Vault CE.
import type { Acl, PolicyStore } from "./vault-acl.js";
import type { TokenEntry, TokenStore } from "./vault-tokens.js";
import { isWithinNamespace, type NamespaceRef } from "./vault-tokens.js";
import type { Backend } from "./vault-types.js";
import { newNamespaceId, VaultRequestError } from "./vault-util.js";

/**
 * Names a namespace may not have (namespaces/index.mdx, "Namespace naming restrictions"); they
 * would be taken for the system paths of the parent.
 */
const RESERVED_NAMES = new Set(["root", "sys", "audit", "auth", "cubbyhole", "identity"]);

/** One namespace: its mount table, policies and view of the token store. */
export class VaultNamespace {
  private readonly backends: Backend[] = [];

  constructor(
    readonly ref: NamespaceRef,
    readonly tokens: TokenStore,
    readonly policies: PolicyStore,
    readonly customMetadata: Record<string, string>,
  ) {}

  get isRoot(): boolean {
    return this.ref.path === "";
  }

  mount(backend: Backend): void {
    this.backends.push(backend);
    // Longest mount path first, so routing is a first-match scan.
    this.backends.sort((a, b) => b.mount.path.length - a.mount.path.length);
  }

  /** The backend serving a path relative to this namespace. */
  route(path: string): Backend | undefined {
    return this.backends.find((backend) => path.startsWith(backend.mount.path) || `${path}/` === backend.mount.path);
  }

  mounts(): Backend[] {
    return [...this.backends];
  }
}

/** namespace.Canonicalize: no leading "/", one trailing "/"; "" stays "" (the root). */
export function canonicalNamespacePath(path: string): string {
  const trimmed = path.trim().replace(/^\/+/, "");
  if (trimmed === "") return "";
  return trimmed.endsWith("/") ? trimmed : `${trimmed}/`;
}

/** Every namespace of the server, the root one included. */
export class NamespaceRegistry {
  private readonly byPath = new Map<string, VaultNamespace>();

  constructor(
    readonly root: VaultNamespace,
    private readonly create: (ref: NamespaceRef, customMetadata: Record<string, string>) => VaultNamespace,
  ) {
    this.byPath.set("", root);
  }

  /** A namespace by its full path ("ns1/ns2" or "ns1/ns2/"; "" is the root). */
  get(path: string): VaultNamespace | undefined {
    return this.byPath.get(canonicalNamespacePath(path));
  }

  /** The namespace a token was created in. */
  of(token: TokenEntry): VaultNamespace {
    return this.byPath.get(token.namespace.path) ?? this.root;
  }

  /** The namespaces directly below `parent`. */
  children(parent: VaultNamespace): VaultNamespace[] {
    return [...this.byPath.values()].filter((ns) => ns !== parent && parentPath(ns.ref.path) === parent.ref.path);
  }

  /**
   * `vault namespace create`: `relativePath` below `parent`, whose own parents must exist. Throws
   * a VaultRequestError with Vault's wording for a bad name or a taken one.
   */
  add(parent: VaultNamespace, relativePath: string, customMetadata: Record<string, string> = {}): VaultNamespace {
    const relative = canonicalNamespacePath(relativePath);
    if (relative === "") throw VaultRequestError.invalidRequest("namespace path must not be empty");
    for (const name of relative.slice(0, -1).split("/")) {
      if (name === "" || /\s/.test(name) || RESERVED_NAMES.has(name)) throw VaultRequestError.invalidRequest(`"${name}" is not a valid namespace name`);
    }
    const path = `${parent.ref.path}${relative}`;
    if (this.byPath.has(path)) throw VaultRequestError.invalidRequest(`namespace "${path}" already exists`);
    const above = this.byPath.get(parentPath(path));
    if (!above) throw VaultRequestError.invalidRequest(`parent namespace "${parentPath(path)}" does not exist`);
    const first = path.slice(above.ref.path.length).split("/")[0] ?? "";
    if (above.route(`${first}/`)?.mount.path === `${first}/`) throw VaultRequestError.invalidRequest(`path "${first}/" is already in use by a mount`);
    const namespace = this.create({ id: newNamespaceId(), path }, customMetadata);
    this.byPath.set(path, namespace);
    return namespace;
  }

  /** `vault namespace delete`: refused while it has namespaces below it; its tokens go with it. */
  remove(namespace: VaultNamespace): void {
    if (namespace.isRoot) throw VaultRequestError.invalidRequest("cannot delete the root namespace");
    if (this.children(namespace).length > 0)
      throw VaultRequestError.invalidRequest(`cannot delete namespace "${namespace.ref.path}" containing child namespaces`);
    namespace.tokens.revokeNamespace(namespace.ref);
    this.byPath.delete(namespace.ref.path);
  }

  /**
   * Where a request goes: the namespace named by the header (an absolute path; absent or empty
   * means the root), then further down by as many leading path segments as name namespaces below
   * it. Undefined when the header names a namespace that does not exist.
   */
  resolve(header: string | undefined, logicalPath: string): { namespace: VaultNamespace; path: string } | undefined {
    let namespace = this.byPath.get(canonicalNamespacePath(header ?? ""));
    if (!namespace) return undefined;
    let path = logicalPath;
    for (;;) {
      const slash = path.indexOf("/");
      if (slash <= 0) break;
      const below = this.byPath.get(`${namespace.ref.path}${path.slice(0, slash + 1)}`);
      if (!below) break;
      namespace = below;
      path = path.slice(slash + 1);
    }
    return { namespace, path };
  }

  /**
   * What a token may do in `namespace`: its own namespace's policies, over the path as seen from
   * that namespace (a policy in the root namespace grants `ns1/secret/...` for ns1's `secret/`).
   * Undefined when the token cannot act there at all.
   */
  aclFor(token: TokenEntry, namespace: VaultNamespace): { acl: Acl; pathPrefix: string } | undefined {
    if (!isWithinNamespace(namespace.ref, token.namespace)) return undefined;
    const home = this.of(token);
    return {
      acl: home.policies.aclFor(token.policies, { entityId: token.entityId, alias: token.alias }),
      pathPrefix: namespace.ref.path.slice(home.ref.path.length),
    };
  }
}

function parentPath(path: string): string {
  const trimmed = path.replace(/\/$/, "");
  const slash = trimmed.lastIndexOf("/");
  return slash === -1 ? "" : trimmed.slice(0, slash + 1);
}

/** `id`/`path` as sys/namespaces and audit entries show them. */
export function describeNamespace(namespace: VaultNamespace): { id: string; path: string; custom_metadata: Record<string, string> } {
  return { id: namespace.ref.id, path: namespace.ref.path, custom_metadata: { ...namespace.customMetadata } };
}
