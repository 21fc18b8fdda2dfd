// A digital twin of HashiCorp Vault 1.15 (Community Edition) for tests and the demo: a real HTTP
// server speaking Vault's API for what nomad-gha-dispatcher needs — token auth and ACL policies,
// KV v2, response wrapping, audit devices, health, and JWT login for Nomad workload identities.
// The parts live in vault-*.ts; this file wires them together and is the only public surface.
import { holdUntil, type FaultPlan, type RecordedRequest } from "./contract.js";
import { PolicyStore } from "./vault-acl.js";
import type { AuditEntry } from "./vault-audit.js";
import { AuditBroker } from "./vault-audit.js";
import type { JwtRole } from "./vault-auth.js";
import { JwtAuthBackend, TokenAuthBackend } from "./vault-auth.js";
import { VaultCore } from "./vault-core.js";
import type { HttpReply, IncomingHttpRequest, RunningHttpServer } from "./vault-http.js";
import { startHttpServer } from "./vault-http.js";
import { KvV2Backend } from "./vault-kv.js";
import type { ServerState } from "./vault-sys.js";
import { SystemBackend, VAULT_VERSION } from "./vault-sys.js";
import { TokenStore } from "./vault-tokens.js";
import type { MountEntry } from "./vault-types.js";
import type { Clock } from "./vault-util.js";
import { newMountAccessor, newServiceToken, newUuid } from "./vault-util.js";

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
}

export const DEFAULT_AUDIT_FILE_PATH = "/var/log/vault/audit.log";

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

export class VaultTwin {
  readonly requests: RecordedRequest[] = [];
  readonly faults: FaultPlan = {};

  private readonly clock: Clock;
  private readonly state: ServerState;
  private readonly tokens: TokenStore;
  private readonly policies = new PolicyStore();
  private readonly audit: AuditBroker;
  private readonly core: VaultCore;
  private readonly kv = new Map<string, KvV2Backend>();
  private readonly jwt = new Map<string, JwtAuthBackend>();
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
    this.tokens = new TokenStore(this.clock);
    this.audit = new AuditBroker(this.clock);
    this.core = new VaultCore({
      clock: this.clock,
      state: this.state,
      tokens: this.tokens,
      policies: this.policies,
      audit: this.audit,
    });
    this.tokens.createRoot(rootToken);
    this.mountBuiltIns();
    for (const mount of options.kvMounts ?? ["secret"]) this.mountKv(mount);
    if (options.audit !== false) this.audit.enable("file/", "file", { file_path: DEFAULT_AUDIT_FILE_PATH });
  }

  static async start(options: VaultTwinOptions = {}): Promise<VaultTwin> {
    const twin = new VaultTwin(options.rootToken ?? newServiceToken(), options);
    await twin.policies.installBuiltIns();
    twin.server = await startHttpServer((request) => twin.serve(request));
    twin.address = twin.server.url;
    return twin;
  }

  /** http://127.0.0.1:<port> (still answers after close(), for messages and logs). */
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
   * A service token with these policies (plus "default"). TTL defaults to Vault's 768h; with
   * `numUses` the token is revoked after that many requests.
   */
  createToken(options: {
    policies: string[];
    ttlSeconds?: number;
    numUses?: number;
    meta?: Record<string, string>;
  }): string {
    return this.tokens.create(options).id;
  }

  /**
   * Stores a policy written in Vault's HCL (or JSON) policy language. Parsing is asynchronous;
   * requests made afterwards wait for it, so there is no need to await. The promise rejects if
   * the policy does not parse.
   */
  writePolicy(name: string, hcl: string): Promise<void> {
    return this.policies.write(name, hcl);
  }

  /**
   * `vault auth enable -path=<mount> jwt`: roles can then also be written over HTTP
   * (`auth/<mount>/role/<name>`), and tokens log in at `auth/<mount>/login`.
   */
  enableJwtAuth(mount = "jwt-nomad"): void {
    if (this.jwt.has(mount)) return;
    const entry = mountEntry({ path: `auth/${mount}/`, type: "jwt", description: "", runningVersion: RUNNING_VERSION.jwt });
    const backend = new JwtAuthBackend(entry, this.tokens, this.clock);
    this.jwt.set(mount, backend);
    this.core.mount(backend);
  }

  /** A JWT role (enabling the mount if need be) whose matching tokens may log in. */
  configureJwtRole(name: string, role: JwtRole, mount = "jwt-nomad"): void {
    this.enableJwtAuth(mount);
    this.jwt.get(mount)?.configureRole(name, role);
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

  /** Every key in a KV v2 mount that still has metadata — for "no secret left behind" checks. */
  kvKeys(mount = "secret"): string[] {
    const backend = this.kv.get(mount.replace(/\/$/, ""));
    if (backend === undefined) throw new Error(`no KV v2 mount at "${mount}"`);
    return backend.keys();
  }

  async close(): Promise<void> {
    await this.server?.close();
    this.server = undefined;
  }

  private mountBuiltIns(): void {
    const sys = mountEntry({
      path: "sys/",
      type: "system",
      description: "system endpoints used for control, policy and debugging",
      runningVersion: RUNNING_VERSION.vault,
    });
    this.core.mount(
      new SystemBackend(sys, {
        clock: this.clock,
        tokens: this.tokens,
        policies: this.policies,
        audit: this.audit,
        secretMounts: () => [sys, ...[...this.kv.values()].map((backend) => backend.mount)],
        mountFor: (path) => this.core.route(path)?.mount,
      }),
    );
    const token = mountEntry({
      path: "auth/token/",
      type: "token",
      description: "token based credentials",
      runningVersion: RUNNING_VERSION.vault,
    });
    this.core.mount(new TokenAuthBackend(token, this.tokens));
  }

  private mountKv(name: string): void {
    const path = `${name.replace(/\/$/, "")}/`;
    const entry = mountEntry({
      path,
      type: "kv",
      description: "key/value secret storage",
      runningVersion: RUNNING_VERSION.kv,
      options: { version: "2" },
    });
    const backend = new KvV2Backend(entry, this.clock);
    this.kv.set(path.slice(0, -1), backend);
    this.core.mount(backend);
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
