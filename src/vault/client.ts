import { Agent, type Dispatcher } from "undici";
import type { TlsOptions } from "../config.js";
import { DependencyError } from "../core/errors.js";
import type { KvMountInfo } from "../core/kv-mount.js";
import type { SecretSlot } from "../core/resume.js";
import { classOfRunner, type RunnerClass } from "../core/runner-class.js";
import { describeTransportFailure } from "../core/transport-failure.js";

/**
 * What a runner allocation gets after unwrapping: exactly one way to become a runner. No remove
 * token: one minted at dispatch may have expired (an hour) by the time the runner stops, and it
 * would sit where workflow code can read it; the dispatcher deregisters runners itself.
 */
export type RunnerSecret = { kind: "jit"; jitconfig: string; runner_id?: number } | { kind: "token"; registration_token: string };

/** A check-and-set write found another version than the one it was given (Vault's 400). */
export class SecretConflictError extends Error {
  constructor(readonly runnerName: string) {
    super(`the secret of ${runnerName} changed since it was read (check-and-set)`);
    this.name = "SecretConflictError";
  }
}

export interface VaultStoreOptions {
  addr: string;
  token: string;
  namespace?: string;
  kvMount: string;
  kvPrefix: string;
  /**
   * The runner job whose credentials these are: they live under its Nomad namespace and job ID,
   * the two workload identity claims the runners' Vault policy is templated on. With runner
   * classes, each class's runners live under the class's own job (a runner's name says its
   * class); `id` is the job of a name no class claims.
   */
  runnerJob: { namespace: string; id: string; classes?: readonly Pick<RunnerClass, "job" | "runnerPrefix">[] };
  timeoutMs?: number;
  /** VAULT_CACERT, VAULT_CLIENT_CERT, ... (config/tls.ts); undefined = system CAs, no client certificate. */
  tls?: TlsOptions;
}

export interface VaultHealth {
  initialized: boolean;
  sealed: boolean;
  standby: boolean;
}

/**
 * Runner credentials in Vault KV v2, one secret per runner under `<mount>/data/<prefix>/runners/`.
 * Allocations never read the KV path: they get a single-use wrapping token for one read of it.
 * Plain HTTP over a keep-alive undici pool: two of these calls sit on every dispatch.
 */
export class VaultStore {
  private readonly dispatcher: Dispatcher;
  private readonly headers: Record<string, string>;

  constructor(private readonly opts: VaultStoreOptions) {
    this.dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: 32, ...(opts.tls && { connect: { ...opts.tls } }) });
    this.headers = { "x-vault-token": opts.token, accept: "application/json" };
    if (opts.namespace) this.headers["x-vault-namespace"] = opts.namespace;
  }

  /**
   * `<prefix>/runners/<namespace>/<runner job>/<name>` relative to the mount, as Vault's CLI and
   * policies name it. The runner's prestart reads exactly this path (jobs/runner/configure-runner.sh).
   */
  secretPath(runnerName: string): string {
    const job = classOfRunner(this.opts.runnerJob.classes ?? [], runnerName)?.cls.job ?? this.opts.runnerJob.id;
    return `${this.runnersPath(job)}/${runnerName}`;
  }

  private runnersPath(job: string): string {
    return `${this.opts.kvPrefix}/runners/${this.opts.runnerJob.namespace}/${job}`;
  }

  async health(): Promise<VaultHealth> {
    // sys/health answers with its body for every state (standby 429, sealed 503, ...).
    const { body } = await this.call("health", "GET", "sys/health", { anyStatus: true, rootNamespace: true });
    const res = body as Partial<VaultHealth> | undefined;
    return { initialized: res?.initialized ?? false, sealed: res?.sealed ?? true, standby: res?.standby ?? false };
  }

  /**
   * Enabled audit devices (needs `sudo` on sys/audit). Audit devices are the server's, not a
   * namespace's: sys/audit is served in the root namespace only (hashicorp/vault
   * website/content/partials/api/restricted-endpoints.mdx), so this asks there whatever
   * VAULT_NAMESPACE says; a token of a child namespace cannot list them at all.
   */
  async auditDevices(): Promise<string[]> {
    const { body } = await this.call("list audit devices", "GET", "sys/audit", { rootNamespace: true });
    const res = (body ?? {}) as Record<string, unknown>;
    const devices = (res.data as Record<string, unknown> | undefined) ?? res;
    return Object.keys(devices).filter((k) => k.endsWith("/") && typeof devices[k] === "object");
  }

  /** With `cas`, only over version `cas` (0: no secret yet); SecretConflictError otherwise. */
  async putRunnerSecret(runnerName: string, secret: RunnerSecret, opts: { cas?: number } = {}): Promise<void> {
    await this.write(runnerName, secret, opts.cas);
  }

  /** The slot's version and whose credential it holds; the credential itself is not returned. */
  async readRunnerSecret(runnerName: string): Promise<SecretSlot | undefined> {
    let body: unknown;
    try {
      ({ body } = await this.call("read runner secret", "GET", `${this.opts.kvMount}/data/${this.secretPath(runnerName)}`));
    } catch (err) {
      // 404: never written, or deleted (a soft-deleted latest version reads as 404 too).
      if (err instanceof DependencyError && err.status === 404) return undefined;
      throw err;
    }
    const res = (body as { data?: { data?: Record<string, unknown> | null; metadata?: { version?: number } } } | undefined)?.data;
    const data = res?.data;
    const version = res?.metadata?.version ?? 0;
    if (!data) return undefined;
    if (data.kind === "reissuing") {
      return { kind: "reissuing", version, claimedAt: Number(data.claimed_at) || 0, ...(typeof data.claimant === "string" && { claimant: data.claimant }) };
    }
    return { kind: "credential", version, runnerId: typeof data.runner_id === "number" ? data.runner_id : undefined };
  }

  async claimRunnerSecret(runnerName: string, cas: number, claim: { claimedAt: number; claimant: string }): Promise<void> {
    await this.write(runnerName, { kind: "reissuing", claimed_at: claim.claimedAt, claimant: claim.claimant }, cas);
  }

  private async write(runnerName: string, data: Record<string, unknown>, cas: number | undefined): Promise<void> {
    const json = cas === undefined ? { data } : { data, options: { cas } };
    try {
      await this.call("write runner secret", "POST", `${this.opts.kvMount}/data/${this.secretPath(runnerName)}`, { json });
    } catch (err) {
      if (cas !== undefined && err instanceof DependencyError && err.status === 400 && /check-and-set/.test(err.message))
        throw new SecretConflictError(runnerName);
      throw err;
    }
  }

  async hasRunnerSecret(runnerName: string): Promise<boolean> {
    try {
      await this.call("read runner secret metadata", "GET", `${this.opts.kvMount}/metadata/${this.secretPath(runnerName)}`);
      return true;
    } catch (err) {
      if (err instanceof DependencyError && err.status === 404) return false;
      throw err;
    }
  }

  /** A single-use token that unwraps to one read of the runner's secret, valid for `ttl`. */
  async wrapRunnerSecret(runnerName: string, ttl: string): Promise<string> {
    const { body } = await this.call("wrap runner secret", "GET", `${this.opts.kvMount}/data/${this.secretPath(runnerName)}`, {
      headers: { "x-vault-wrap-ttl": ttl },
    });
    const token = (body as { wrap_info?: { token?: string } } | undefined)?.wrap_info?.token;
    if (!token) throw new DependencyError("vault", "Vault returned no wrap_info for a wrapped read", 200, false);
    return token;
  }

  /** Removes every version and the metadata; absent secrets are fine (idempotent). */
  async deleteRunnerSecret(runnerName: string): Promise<void> {
    await this.call("delete runner secret", "DELETE", `${this.opts.kvMount}/metadata/${this.secretPath(runnerName)}`);
  }

  /** Every class's runner secrets (each class's under its own job). */
  async listRunnerSecrets(): Promise<string[]> {
    const { id, classes = [] } = this.opts.runnerJob;
    const jobs = classes.length > 0 ? [...new Set(classes.map((c) => c.job))] : [id];
    return (await Promise.all(jobs.map((job) => this.listSecretsOf(job)))).flat();
  }

  private async listSecretsOf(job: string): Promise<string[]> {
    try {
      const { body } = await this.call("list runner secrets", "GET", `${this.opts.kvMount}/metadata/${this.runnersPath(job)}?list=true`);
      return ((body as { data?: { keys?: string[] } } | undefined)?.data?.keys ?? []).filter((k) => !k.endsWith("/"));
    } catch (err) {
      if (err instanceof DependencyError && err.status === 404) return [];
      throw err;
    }
  }

  /**
   * The mount's type and options as `vault kv` learns them (sys/internal/ui/mounts/<mount>);
   * undefined when Vault answers 403, which it does for a missing mount and for one the token may
   * not use alike (hashicorp/vault vault/logical_system.go, pathInternalUIMountRead). No policy
   * rule is needed: Vault checks the token's access under the mount itself.
   */
  async kvMountInfo(mount: string): Promise<KvMountInfo | undefined> {
    try {
      const { body } = await this.call("read KV mount", "GET", `sys/internal/ui/mounts/${mount}`);
      const data = (body as { data?: KvMountInfo } | undefined)?.data;
      return { type: data?.type, options: data?.options ?? null };
    } catch (err) {
      if (err instanceof DependencyError && err.status === 403) return undefined;
      throw err;
    }
  }

  /** Capabilities of our token on each path (doctor). */
  async capabilities(paths: string[]): Promise<Record<string, string[]>> {
    const { body } = await this.call("check capabilities", "POST", "sys/capabilities-self", { json: { paths } });
    const res = (body ?? {}) as Record<string, unknown>;
    const data = (res.data as Record<string, unknown> | undefined) ?? res;
    return Object.fromEntries(paths.map((p) => [p, (data[p] as string[] | undefined) ?? []]));
  }

  private async call(
    what: string,
    method: Dispatcher.HttpMethod,
    path: string,
    opts: { json?: unknown; headers?: Record<string, string>; anyStatus?: boolean; rootNamespace?: boolean } = {},
  ): Promise<{ status: number; body: unknown }> {
    const timeout = this.opts.timeoutMs ?? 10_000;
    const headers = { ...this.headers, ...opts.headers };
    // Root-only paths (sys/health, sys/audit) are not served in a namespace.
    if (opts.rootNamespace) delete headers["x-vault-namespace"];
    if (opts.json !== undefined) headers["content-type"] = "application/json";
    let res: Dispatcher.ResponseData;
    try {
      res = await this.dispatcher.request({
        origin: this.opts.addr,
        path: `/v1/${path}`,
        method,
        headers,
        body: opts.json === undefined ? undefined : JSON.stringify(opts.json),
        headersTimeout: timeout,
        bodyTimeout: timeout,
      });
    } catch (err) {
      const failure = describeTransportFailure(err, { system: "Vault", prefix: "VAULT", addr: this.opts.addr, clientCert: this.opts.tls?.cert !== undefined });
      throw new DependencyError("vault", `Vault ${what}: ${failure.message}`, undefined, failure.transient, undefined, failure.fix);
    }
    const text = await res.body.text();
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    if (res.statusCode < 400 || opts.anyStatus) return { status: res.statusCode, body };
    const errors = (body as { errors?: unknown[] } | undefined)?.errors;
    // Vault wraps reasons as "1 error occurred:\n\t* permission denied\n\n": one line for the log.
    const raw = Array.isArray(errors) && errors.length > 0 ? String(errors[0]) : text.slice(0, 300);
    const reason = raw.replace(/\s+/g, " ").trim() || `status ${res.statusCode}`;
    // Sealed (503), standby or rate limited (429) and gateway errors pass; 4xx are our fault.
    const transient = res.statusCode === 429 || res.statusCode >= 500;
    throw new DependencyError("vault", `Vault ${what}: ${res.statusCode} ${reason}`, res.statusCode, transient);
  }
}
