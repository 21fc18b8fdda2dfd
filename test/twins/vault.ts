// A digital twin of HashiCorp Vault 1.15 for tests and the demo: a real HTTP server speaking
// Vault's API for what nomad-gha-dispatcher needs — token auth and ACL policies, KV v2, response
// wrapping, audit devices, health, JWT login for Nomad workload identities, and Vault
// Enterprise namespaces (X-Vault-Namespace; see vault-namespaces.ts).
// The parts live in vault-*.ts; this file wires them together and is the only public surface.
import { type FaultPlan, holdUntil, type RecordedRequest } from "./contract.js";
import type { AuditEntry } from "./vault-audit.js";
import { AuditBroker } from "./vault-audit.js";
import type { JwtRole } from "./vault-auth.js";
import { VaultCore } from "./vault-core.js";
import type { HttpReply, IncomingHttpRequest, ListenerTls, RunningHttpServer } from "./vault-http.js";
import { startHttpServer } from "./vault-http.js";
import { jwtMount, kvMount, type MountContext, mountKv, newNamespace } from "./vault-mounts.js";
import { NamespaceRegistry, type VaultNamespace } from "./vault-namespaces.js";
import type { ServerState } from "./vault-sys.js";
import { ROOT_NAMESPACE, TokenStore } from "./vault-tokens.js";
import type { Clock } from "./vault-util.js";
import { newServiceToken, newUuid } from "./vault-util.js";

export type { AuditAuth, AuditEntry, AuditRequest, AuditResponse, AuditWrapInfo } from "./vault-audit.js";
export type { JwtRole } from "./vault-auth.js";

export interface VaultTwinOptions {
  /** Default: a random `hvs.` token. */
  rootToken?: string;
  /** Start with a file audit device enabled at "file/" (default true). */
  audit?: boolean;
  /** KV v2 mounts, default ["secret"]. */
  kvMounts?: string[];
  /**
   * Milliseconds since the epoch, consulted for every TTL and timestamp (tokens, wrapping,
   * delete_version_after). Default Date.now; pass a fake to expire things without waiting.
   */
  now?: () => number;
  /** Serve HTTPS, as a `listener "tcp"` with these TLS settings does (vault-http.ts). */
  tls?: ListenerTls;
}

export const DEFAULT_AUDIT_FILE_PATH = "/var/log/vault/audit.log";

export class VaultTwin {
  readonly requests: RecordedRequest[] = [];
  readonly faults: FaultPlan = {};

  private readonly clock: Clock;
  private readonly state: ServerState;
  private readonly audit: AuditBroker;
  private readonly namespaces: NamespaceRegistry;
  private readonly core: VaultCore;
  private server: RunningHttpServer | undefined;
  private address: string | undefined;

  private constructor(
    readonly rootToken: string,
    options: VaultTwinOptions,
  ) {
    this.clock = options.now ?? Date.now;
    this.state = {
      sealed: false,
      standby: false,
      clusterName: `vault-cluster-${newUuid().slice(0, 8)}`,
      clusterId: newUuid(),
    };
    this.audit = new AuditBroker(this.clock);
    const context: MountContext = { clock: this.clock, audit: this.audit, registry: () => this.namespaces };
    const tokens = new TokenStore(this.clock);
    this.namespaces = new NamespaceRegistry(newNamespace(ROOT_NAMESPACE, {}, tokens, context), (ref, metadata) =>
      newNamespace(ref, metadata, tokens.scopedTo(ref), context),
    );
    this.core = new VaultCore({ clock: this.clock, state: this.state, audit: this.audit, namespaces: this.namespaces });
    tokens.createRoot(rootToken);
    for (const mount of options.kvMounts ?? ["secret"]) mountKv(this.namespaces.root, mount, this.clock);
    if (options.audit !== false) this.audit.enable("file/", "file", { file_path: DEFAULT_AUDIT_FILE_PATH });
  }

  static async start(options: VaultTwinOptions = {}): Promise<VaultTwin> {
    const twin = new VaultTwin(options.rootToken ?? newServiceToken(), options);
    await twin.namespaces.root.policies.settled();
    twin.server = await startHttpServer((request) => twin.serve(request), options.tls);
    twin.address = twin.server.url;
    return twin;
  }

  /** http(s)://127.0.0.1:<port> (still answers after close(), for messages and logs). */
  get url(): string {
    if (this.address === undefined) throw new Error("VaultTwin is not started");
    return this.address;
  }

  /** Parsed lines of an audit device's log (default: the first device ever enabled, "file/"). */
  auditLog(devicePath?: string): AuditEntry[] {
    return this.audit.entries(devicePath);
  }

  /** What `input` looks like in a device's log, as sys/audit-hash would answer. */
  auditHash(input: string, devicePath = "file/"): string {
    return this.audit.hash(devicePath, input);
  }

  /**
   * `vault namespace create <path>` (Vault Enterprise): `path` is absolute ("ns1", or "ns1/ns2"
   * once ns1 exists). Unlike Vault, which mounts nothing in a new namespace, the twin mounts KV
   * v2 at each of `kvMounts` (default ["secret"], as in the root namespace) to spare each test the
   * `vault secrets enable`. Requests reach it with `X-Vault-Namespace: <path>` or a path prefix.
   */
  createNamespace(path: string, options: { kvMounts?: string[]; customMetadata?: Record<string, string> } = {}): { id: string; path: string } {
    const namespace = this.namespaces.add(this.namespaces.root, path, options.customMetadata);
    for (const mount of options.kvMounts ?? ["secret"]) mountKv(namespace, mount, this.clock);
    return { ...namespace.ref };
  }

  /**
   * A service token with these policies (plus "default"). TTL defaults to Vault's 768h; with
   * `numUses` the token is revoked after that many requests. With `namespace` the token belongs
   * to that namespace: its policies are that namespace's, and it works there and below only.
   */
  createToken(options: { policies: string[]; ttlSeconds?: number; numUses?: number; meta?: Record<string, string>; namespace?: string }): string {
    const { namespace, ...token } = options;
    return this.namespace(namespace).tokens.create(token).id;
  }

  /**
   * Stores a policy written in Vault's HCL (or JSON) policy language, in the root namespace or
   * in `namespace`. Parsing is asynchronous; requests made afterwards wait for it, so there is no
   * need to await. The promise rejects if the policy does not parse.
   */
  writePolicy(name: string, hcl: string, namespace?: string): Promise<void> {
    return this.namespace(namespace).policies.write(name, hcl);
  }

  /**
   * `vault auth enable -path=<mount> jwt` (in `namespace`, or the root one): roles can then also
   * be written over HTTP (`auth/<mount>/role/<name>`), and tokens log in at `auth/<mount>/login`.
   */
  enableJwtAuth(mount = "jwt-nomad", namespace?: string): { accessor: string } {
    return { accessor: jwtMount(this.namespace(namespace), mount, this.clock).mount.accessor };
  }

  /** A JWT role (enabling the mount if need be) whose matching tokens may log in. */
  configureJwtRole(name: string, role: JwtRole, mount = "jwt-nomad", namespace?: string): void {
    jwtMount(this.namespace(namespace), mount, this.clock).configureRole(name, role);
  }

  seal(): void {
    this.state.sealed = true;
  }

  unseal(): void {
    this.state.sealed = false;
  }

  /** A standby answers sys/health with 429 (and forwards everything else to the active node). */
  setStandby(on: boolean): void {
    this.state.standby = on;
  }

  /** Every key in a KV v2 mount (of `namespace`, or the root one) that still has metadata — for "no secret left behind" checks. */
  kvKeys(mount = "secret", namespace?: string): string[] {
    const backend = kvMount(this.namespace(namespace), mount);
    if (backend === undefined) throw new Error(`no KV v2 mount at "${mount}"${namespace ? ` in namespace "${namespace}"` : ""}`);
    return backend.keys();
  }

  async close(): Promise<void> {
    await this.server?.close();
    this.server = undefined;
  }

  /** A namespace by its path; the root one when none is given. */
  private namespace(path: string | undefined): VaultNamespace {
    const namespace = this.namespaces.get(path ?? "");
    if (!namespace) throw new Error(`no Vault namespace "${path ?? ""}": createNamespace() it first`);
    return namespace;
  }

  /** Fault plan first, then Vault; every exchange is recorded as it went over the wire. */
  private async serve(request: IncomingHttpRequest): Promise<HttpReply> {
    const reply = await this.replyTo(request);
    this.requests.push({
      method: request.method,
      url: request.url,
      headers: request.headers,
      body: request.body,
      status: reply.status,
      response: reply.body,
      at: this.clock(),
    });
    return reply;
  }

  /** An injected delay is a fixed latency: the answer leaves that long after the request arrived. */
  private async replyTo(request: IncomingHttpRequest): Promise<HttpReply> {
    const arrived = performance.now();
    const path = new URL(request.url, "http://vault.invalid").pathname;
    const fault = this.faults.intercept?.({ method: request.method, path });
    const reply =
      fault !== undefined && "status" in fault
        ? { status: fault.status, headers: { "content-type": "application/json", ...fault.headers }, body: fault.body }
        : await this.core.handle(request);
    if (fault?.delayMs !== undefined && fault.delayMs > 0) await holdUntil(arrived + fault.delayMs);
    return reply;
  }
}
