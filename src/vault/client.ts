import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import nodeVault from "node-vault";
import { DependencyError, isNetworkError } from "../core/errors.js";

/** What a runner allocation gets after unwrapping: exactly one way to become a runner. */
export type RunnerSecret =
  | { kind: "jit"; jitconfig: string; remove_token?: string }
  | { kind: "token"; registration_token: string; remove_token?: string };

export interface VaultStoreOptions {
  addr: string;
  token: string;
  namespace?: string;
  kvMount: string;
  kvPrefix: string;
  timeoutMs?: number;
}

export interface VaultHealth {
  initialized: boolean;
  sealed: boolean;
  standby: boolean;
}

/**
 * Runner credentials in Vault KV v2, one secret per runner under `<mount>/data/<prefix>/runners/`.
 * Allocations never read the KV path: they get a single-use wrapping token for one read of it.
 */
export class VaultStore {
  private readonly client: nodeVault.client;
  private readonly requestOptions: Record<string, unknown>;

  constructor(private readonly opts: VaultStoreOptions) {
    this.requestOptions = {
      timeout: opts.timeoutMs ?? 10_000,
      httpAgent: new HttpAgent({ keepAlive: true, maxSockets: 32 }),
      httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets: 32 }),
    };
    this.client = nodeVault({
      endpoint: opts.addr,
      token: opts.token,
      namespace: opts.namespace,
      requestOptions: this.requestOptions,
    });
  }

  /** `<prefix>/runners/<name>` relative to the mount, as Vault's CLI and policies name it. */
  secretPath(runnerName: string): string {
    return `${this.opts.kvPrefix}/runners/${runnerName}`;
  }

  async health(): Promise<VaultHealth> {
    // node-vault returns the body of sys/health for every status (standby 429, sealed 503).
    const res = (await this.run("health", () => this.client.health())) as Partial<VaultHealth> | undefined;
    return { initialized: res?.initialized ?? false, sealed: res?.sealed ?? true, standby: res?.standby ?? false };
  }

  /** Enabled audit devices (needs `sudo` on sys/audit). */
  async auditDevices(): Promise<string[]> {
    const res = (await this.run("list audit devices", () => this.client.read("sys/audit"))) as Record<string, unknown>;
    const devices = (res.data as Record<string, unknown> | undefined) ?? res;
    return Object.keys(devices).filter((k) => k.endsWith("/") && typeof devices[k] === "object");
  }

  async putRunnerSecret(runnerName: string, secret: RunnerSecret): Promise<void> {
    await this.run("write runner secret", () =>
      this.client.write(`${this.opts.kvMount}/data/${this.secretPath(runnerName)}`, { data: secret }),
    );
  }

  async hasRunnerSecret(runnerName: string): Promise<boolean> {
    try {
      await this.run("read runner secret metadata", () =>
        this.client.read(`${this.opts.kvMount}/metadata/${this.secretPath(runnerName)}`),
      );
      return true;
    } catch (err) {
      if (err instanceof DependencyError && err.status === 404) return false;
      throw err;
    }
  }

  /** A single-use token that unwraps to one read of the runner's secret, valid for `ttl`. */
  async wrapRunnerSecret(runnerName: string, ttl: string): Promise<string> {
    const res = (await this.run("wrap runner secret", () =>
      this.client.read(`${this.opts.kvMount}/data/${this.secretPath(runnerName)}`, {
        ...this.requestOptions,
        headers: { "X-Vault-Wrap-TTL": ttl },
      }),
    )) as { wrap_info?: { token?: string } };
    const token = res.wrap_info?.token;
    if (!token) throw new DependencyError("vault", "Vault returned no wrap_info for a wrapped read", 200, false);
    return token;
  }

  /** Removes every version and the metadata; absent secrets are fine (idempotent). */
  async deleteRunnerSecret(runnerName: string): Promise<void> {
    await this.run("delete runner secret", () =>
      this.client.delete(`${this.opts.kvMount}/metadata/${this.secretPath(runnerName)}`),
    );
  }

  async listRunnerSecrets(): Promise<string[]> {
    try {
      const res = (await this.run("list runner secrets", () =>
        this.client.list(`${this.opts.kvMount}/metadata/${this.opts.kvPrefix}/runners`),
      )) as { data?: { keys?: string[] } };
      return (res.data?.keys ?? []).filter((k) => !k.endsWith("/"));
    } catch (err) {
      if (err instanceof DependencyError && err.status === 404) return [];
      throw err;
    }
  }

  /** Capabilities of our token on each path (doctor). */
  async capabilities(paths: string[]): Promise<Record<string, string[]>> {
    const res = (await this.run("check capabilities", () =>
      this.client.write("sys/capabilities-self", { paths }),
    )) as Record<string, unknown>;
    const data = (res.data as Record<string, unknown> | undefined) ?? res;
    return Object.fromEntries(paths.map((p) => [p, (data[p] as string[] | undefined) ?? []]));
  }

  private async run<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toDependencyError(what, err);
    }
  }
}

function toDependencyError(what: string, err: unknown): DependencyError {
  const status = (err as { response?: { statusCode?: number } }).response?.statusCode;
  const message = err instanceof Error ? err.message : String(err);
  if (status === undefined) {
    return new DependencyError("vault", `Vault ${what}: ${message}`, undefined, isNetworkError(err));
  }
  // Sealed (503), standby or rate limited (429) and gateway errors pass; 4xx are our fault.
  const transient = status === 429 || status >= 500;
  return new DependencyError("vault", `Vault ${what}: ${status} ${message}`, status, transient);
}
