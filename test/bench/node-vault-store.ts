// The service's Vault store (src/vault/client.ts) written with node-vault 0.12 instead of plain
// undici, for the vault-client bench scenario only: same paths, same headers, same error
// classification, so the two clients can be compared call for call on the dispatch path.
//
// What node-vault offers for it (node_modules/node-vault/src/index.js, index.d.ts):
// - headers: `requestOptions.headers` reach the request as given (X-Vault-Wrap-TTL on a read);
// - namespace: `namespace` (or VAULT_NAMESPACE) sets X-Vault-Namespace on every request, with no
//   way to leave it off one: root-only paths (sys/health, sys/audit) need a second client;
// - TLS: `requestOptions` ca/cert/key/passphrase/pfx/strictSSL/agentOptions build one https.Agent
//   (a plain `new https.Agent`, so keepAlive is off unless agentOptions says keepAlive: true);
// - timeout: `requestOptions.timeout` is axios' timeout;
// - pooling: no agent of its own over http: axios' http adapter uses Node's global agent
//   (keep-alive since Node 19, maxSockets Infinity) unless `requestOptions.httpAgent` is given;
// - errors: non-200/204 answers reject with ApiResponseError { response: { statusCode, body } }
//   and Vault's first error as the message; network errors are axios errors.
import NodeVault from "node-vault";
import { DependencyError } from "../../src/core/errors.js";
import type { RunnerSecret, VaultHealth, VaultStore, VaultStoreOptions } from "../../src/vault/client.js";

/** Every public method of the service's store. */
export type RunnerSecretStore = Pick<
  VaultStore,
  | "secretPath"
  | "health"
  | "auditDevices"
  | "putRunnerSecret"
  | "hasRunnerSecret"
  | "wrapRunnerSecret"
  | "deleteRunnerSecret"
  | "listRunnerSecrets"
  | "capabilities"
>;

export class NodeVaultStore implements RunnerSecretStore {
  private readonly client: NodeVault.client;
  /** For sys/health and sys/audit, which are served in the root namespace only. */
  private readonly root: NodeVault.client;

  constructor(private readonly opts: VaultStoreOptions) {
    const skipVerify = envFlag(process.env.VAULT_SKIP_VERIFY);
    const requestOptions: NodeVault.VaultOptions["requestOptions"] = {
      timeout: 10_000,
      ...(skipVerify ? { strictSSL: false, agentOptions: { keepAlive: true } } : {}),
    };
    const base = { endpoint: opts.addr, token: opts.token, requestOptions };
    this.client = NodeVault({ ...base, ...(opts.namespace ? { namespace: opts.namespace } : {}) });
    this.root = opts.namespace ? NodeVault(base) : this.client;
  }

  secretPath(runnerName: string): string {
    return `${this.opts.kvPrefix}/runners/${runnerName}`;
  }

  async health(): Promise<VaultHealth> {
    // node-vault resolves sys/health with its body whatever the status.
    const res = (await this.call("health", () => this.root.health())) as Partial<VaultHealth> | undefined;
    return { initialized: res?.initialized ?? false, sealed: res?.sealed ?? true, standby: res?.standby ?? false };
  }

  async auditDevices(): Promise<string[]> {
    const res = ((await this.call("list audit devices", () => this.root.read("sys/audit"))) ?? {}) as Record<string, unknown>;
    const devices = (res.data as Record<string, unknown> | undefined) ?? res;
    return Object.keys(devices).filter((k) => k.endsWith("/") && typeof devices[k] === "object");
  }

  async putRunnerSecret(runnerName: string, secret: RunnerSecret): Promise<void> {
    await this.call("write runner secret", () => this.client.write(`${this.opts.kvMount}/data/${this.secretPath(runnerName)}`, { data: secret }));
  }

  async hasRunnerSecret(runnerName: string): Promise<boolean> {
    try {
      await this.call("read runner secret metadata", () => this.client.read(`${this.opts.kvMount}/metadata/${this.secretPath(runnerName)}`));
      return true;
    } catch (err) {
      if (err instanceof DependencyError && err.status === 404) return false;
      throw err;
    }
  }

  async wrapRunnerSecret(runnerName: string, ttl: string): Promise<string> {
    const body = await this.call("wrap runner secret", () =>
      this.client.read(`${this.opts.kvMount}/data/${this.secretPath(runnerName)}`, { headers: { "X-Vault-Wrap-TTL": ttl } }),
    );
    const token = (body as { wrap_info?: { token?: string } } | undefined)?.wrap_info?.token;
    if (!token) throw new DependencyError("vault", "Vault returned no wrap_info for a wrapped read", 200, false);
    return token;
  }

  async deleteRunnerSecret(runnerName: string): Promise<void> {
    await this.call("delete runner secret", () => this.client.delete(`${this.opts.kvMount}/metadata/${this.secretPath(runnerName)}`));
  }

  async listRunnerSecrets(): Promise<string[]> {
    try {
      const body = await this.call("list runner secrets", () => this.client.list(`${this.opts.kvMount}/metadata/${this.opts.kvPrefix}/runners`));
      return ((body as { data?: { keys?: string[] } } | undefined)?.data?.keys ?? []).filter((k) => !k.endsWith("/"));
    } catch (err) {
      if (err instanceof DependencyError && err.status === 404) return [];
      throw err;
    }
  }

  async capabilities(paths: string[]): Promise<Record<string, string[]>> {
    const res = ((await this.call("check capabilities", () => this.client.write("sys/capabilities-self", { paths }))) ?? {}) as Record<string, unknown>;
    const data = (res.data as Record<string, unknown> | undefined) ?? res;
    return Object.fromEntries(paths.map((p) => [p, (data[p] as string[] | undefined) ?? []]));
  }

  /** The plain client's classification: 429 and 5xx transient, other 4xx permanent, no answer transient. */
  private async call(what: string, request: () => Promise<unknown>): Promise<unknown> {
    try {
      return await request();
    } catch (err) {
      const status = (err as { response?: { statusCode?: unknown } }).response?.statusCode;
      if (typeof status !== "number") throw new DependencyError("vault", `Vault ${what}: ${(err as Error).message}`, undefined, true);
      const reason =
        String((err as Error).message)
          .replace(/\s+/g, " ")
          .trim() || `status ${status}`;
      throw new DependencyError("vault", `Vault ${what}: ${status} ${reason}`, status, status === 429 || status >= 500);
    }
  }
}

function envFlag(value: string | undefined): boolean {
  return value !== undefined && value !== "" && !["0", "false", "no"].includes(value.toLowerCase());
}
