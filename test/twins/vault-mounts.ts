// What a Vault namespace (the root one included) is made of: its mount table with the built-in
// sys/ and auth/token/ mounts, KV v2 and JWT mounts added to it, and its own policy store with
// the built-in policies (every namespace gets its own default policy in Vault Enterprise).
import { PolicyStore } from "./vault-acl.js";
import type { AuditBroker } from "./vault-audit.js";
import { JwtAuthBackend, TokenAuthBackend } from "./vault-auth.js";
import { KvV2Backend } from "./vault-kv.js";
import { canonicalNamespacePath, describeNamespace, type NamespaceRegistry, VaultNamespace } from "./vault-namespaces.js";
import { type NamespaceAdmin, SystemBackend, VAULT_VERSION } from "./vault-sys.js";
import type { NamespaceRef, TokenStore } from "./vault-tokens.js";
import type { MountEntry } from "./vault-types.js";
import type { Clock } from "./vault-util.js";
import { newMountAccessor, newUuid } from "./vault-util.js";

/** Versions Vault 1.15.0 reports for its built-in plugins. */
const RUNNING_VERSION = {
  kv: "v0.16.1+builtin",
  jwt: "v0.17.0+builtin",
  vault: `v${VAULT_VERSION}+builtin.vault`,
};

interface MountSpec {
  path: string;
  type: string;
  description: string;
  runningVersion: string;
  options?: Record<string, string>;
}

function mountEntry(spec: MountSpec): MountEntry {
  const accessorPrefix = spec.path.startsWith("auth/") ? `auth_${spec.type}` : spec.type;
  return {
    ...spec,
    options: spec.options ?? null,
    accessor: newMountAccessor(accessorPrefix),
    uuid: newUuid(),
    local: false,
  };
}

export interface MountContext {
  clock: Clock;
  audit: AuditBroker;
  /** The registry the namespace belongs to (known once it exists: read when a request comes). */
  registry: () => NamespaceRegistry;
}

/**
 * A namespace with its built-in mounts and policies. The policies are installed in the
 * background; every ACL decision awaits the store's settled() first.
 */
export function newNamespace(ref: NamespaceRef, customMetadata: Record<string, string>, tokens: TokenStore, ctx: MountContext): VaultNamespace {
  const namespace = new VaultNamespace(ref, tokens, new PolicyStore(), customMetadata);
  void namespace.policies.installBuiltIns();
  const sys = mountEntry({
    path: "sys/",
    type: "system",
    description: "system endpoints used for control, policy and debugging",
    runningVersion: RUNNING_VERSION.vault,
  });
  namespace.mount(
    new SystemBackend(sys, {
      clock: ctx.clock,
      tokens,
      policies: namespace.policies,
      audit: ctx.audit,
      secretMounts: () =>
        namespace
          .mounts()
          .map((backend) => backend.mount)
          .filter((mount) => !mount.path.startsWith("auth/")),
      mountFor: (path) => namespace.route(path)?.mount,
      aclFor: async (token) => {
        await ctx.registry().of(token).policies.settled();
        return ctx.registry().aclFor(token, namespace);
      },
      isRootNamespace: namespace.isRoot,
      namespaces: namespaceAdmin(namespace, ctx),
    }),
  );
  const token = mountEntry({ path: "auth/token/", type: "token", description: "token based credentials", runningVersion: RUNNING_VERSION.vault });
  namespace.mount(new TokenAuthBackend(token, tokens));
  return namespace;
}

/** `vault secrets enable -path=<name> kv-v2` in a namespace. */
export function mountKv(namespace: VaultNamespace, name: string, clock: Clock): void {
  const path = `${name.replace(/\/$/, "")}/`;
  if (namespace.route(path)?.mount.path === path) return;
  const entry = mountEntry({ path, type: "kv", description: "key/value secret storage", runningVersion: RUNNING_VERSION.kv, options: { version: "2" } });
  namespace.mount(new KvV2Backend(entry, clock));
}

/** The KV v2 engine mounted at `name` in a namespace. */
export function kvMount(namespace: VaultNamespace, name: string): KvV2Backend | undefined {
  const path = `${name.replace(/\/$/, "")}/`;
  const backend = namespace.route(path);
  return backend instanceof KvV2Backend && backend.mount.path === path ? backend : undefined;
}

/** `vault auth enable -path=<mount> jwt` in a namespace (once). */
export function jwtMount(namespace: VaultNamespace, mount: string, clock: Clock): JwtAuthBackend {
  const path = `auth/${mount}/`;
  const existing = namespace.route(path);
  if (existing instanceof JwtAuthBackend && existing.mount.path === path) return existing;
  const backend = new JwtAuthBackend(mountEntry({ path, type: "jwt", description: "", runningVersion: RUNNING_VERSION.jwt }), namespace.tokens, clock);
  namespace.mount(backend);
  return backend;
}

/** sys/namespaces as seen from `namespace`: paths relative to it. */
function namespaceAdmin(namespace: VaultNamespace, ctx: MountContext): NamespaceAdmin {
  const below = (relativePath: string) => ctx.registry().get(`${namespace.ref.path}${canonicalNamespacePath(relativePath)}`);
  return {
    list: () =>
      ctx
        .registry()
        .children(namespace)
        .map((child) => ({ key: child.ref.path.slice(namespace.ref.path.length), ...describeNamespace(child) })),
    read: (relativePath) => {
      const found = below(relativePath);
      return found && describeNamespace(found);
    },
    create: (relativePath, customMetadata) => describeNamespace(ctx.registry().add(namespace, relativePath, customMetadata)),
    remove: (relativePath) => {
      const found = below(relativePath);
      if (found) ctx.registry().remove(found);
      return found !== undefined;
    },
  };
}
