// Workload identity, and the client's Vault login with it.
//
// Claims as hashicorp/nomad nomad/structs/workload_id.go (WorkloadIdentityClaimsBuilder.Build)
// makes them: nomad_namespace, nomad_job_id (Job.GetIDforWorkloadIdentity in
// nomad/structs/structs.go: the PARENT's ID for a dispatched child), nomad_allocation_id,
// nomad_task, plus aud/iat/nbf/exp/jti and sub "<region>:<namespace>:<job>:<group>:<task>:<name>"
// (setWorkloadSubject). Signed with the keyring's key (RS256, `kid` header), published at
// /.well-known/jwks.json.
//
// The login follows client/allocrunner/taskrunner/vault_hook.go (deriveVaultTokenJWT: the role of
// the task's vault block, else the client's default; its namespace) and client/vaultclient
// (`auth/<jwt_auth_backend_path>/login`, default path "jwt-nomad" in
// nomad/structs/config/vault.go). writeToken puts the token in private/vault_token (0600) and,
// unless disable_file, secrets/vault_token (0666).

import { createSign, generateKeyPairSync, type KeyObject, randomUUID } from "node:crypto";
import { Agent, fetch as undiciFetch } from "undici";
import type { JsonObject, TwinAllocation, TwinNomadJob, TwinTask } from "./nomad-types.js";

export class IdentitySigner {
  private readonly privateKey: KeyObject;
  private readonly publicKey: KeyObject;
  readonly keyId = randomUUID();

  constructor() {
    const pair = generateKeyPairSync("rsa", { modulusLength: 2048 });
    this.privateKey = pair.privateKey;
    this.publicKey = pair.publicKey;
  }

  /** The JWKS Nomad serves at /.well-known/jwks.json (nomad/keyring_endpoint.go ListPublic). */
  jwks(): { keys: JsonObject[] } {
    const jwk = this.publicKey.export({ format: "jwk" }) as JsonObject;
    return { keys: [{ ...jwk, kid: this.keyId, alg: "RS256", use: "sig" }] };
  }

  sign(claims: JsonObject): string {
    const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
    const head = `${encode({ alg: "RS256", kid: this.keyId, typ: "JWT" })}.${encode(claims)}`;
    const signature = createSign("RSA-SHA256").update(head).sign(this.privateKey).toString("base64url");
    return `${head}.${signature}`;
  }
}

export interface IdentityBlock {
  Name: string;
  Audience: string[] | null;
  TTL: number;
}

/** The task's identity blocks as the jobspec decodes them (`identity { name aud ttl }`). */
export function identitiesOf(task: TwinTask): IdentityBlock[] {
  const raw = Array.isArray(task.Identities) ? (task.Identities as JsonObject[]) : [];
  return raw.map((identity) => ({
    Name: typeof identity.Name === "string" && identity.Name !== "" ? identity.Name : "default",
    Audience: Array.isArray(identity.Audience) ? identity.Audience.map(String) : null,
    TTL: typeof identity.TTL === "number" ? identity.TTL : 0,
  }));
}

export function identityClaims(job: TwinNomadJob, alloc: TwinAllocation, task: TwinTask, identity: IdentityBlock, now = Date.now()): JsonObject {
  const seconds = Math.floor(now / 1000);
  const jobId = job.ParentID !== "" ? job.ParentID : job.ID;
  const claims: JsonObject = {
    nomad_namespace: alloc.Namespace,
    nomad_job_id: jobId,
    nomad_allocation_id: alloc.ID,
    nomad_task: task.Name,
    sub: `${job.Region}:${alloc.Namespace}:${jobId}:${alloc.TaskGroup}:${task.Name}:${identity.Name}`,
    iat: seconds,
    nbf: seconds,
    jti: randomUUID(),
  };
  if (identity.Audience) claims.aud = identity.Audience;
  if (identity.TTL > 0) claims.exp = seconds + Math.ceil(identity.TTL / 1e9);
  return claims;
}

/** The Nomad client's Vault configuration (the agent's `vault` block). */
export interface ClientVaultConfig {
  addr: string;
  /** jwt_auth_backend_path, default "jwt-nomad". */
  jwtAuthPath?: string;
  /** The agent's default role (create_from_role), used when a task's vault block names none. */
  role?: string;
  /** ca_file (nomad/structs/config/vault.go VaultConfig.TLSCaFile): the CA Vault's certificate is checked against. */
  caPem?: string;
}

/** fetch with the vault block's CA, as the client's Vault API client is configured with it. */
function vaultFetch(config: Pick<ClientVaultConfig, "caPem">, url: string, init: Parameters<typeof undiciFetch>[1]) {
  return undiciFetch(url, config.caPem ? { ...init, dispatcher: new Agent({ connect: { ca: config.caPem } }) } : init);
}

export async function vaultLogin(config: ClientVaultConfig, role: string, jwt: string, namespace: string | undefined): Promise<string> {
  const res = await vaultFetch(config, `${config.addr}/v1/auth/${config.jwtAuthPath ?? "jwt-nomad"}/login`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(namespace ? { "x-vault-namespace": namespace } : {}) },
    body: JSON.stringify({ role, jwt }),
  });
  const body = (await res.json().catch(() => ({}))) as { auth?: { client_token?: string }; errors?: string[] };
  const token = body.auth?.client_token;
  if (!res.ok || !token) throw new Error(`failed to derive Vault token: ${res.status} ${(body.errors ?? []).join("; ")}`);
  return token;
}

/** consul-template's vault read: the whole response (`.Data` is Vault's `data`); undefined on 404. */
export async function vaultRead(
  config: Pick<ClientVaultConfig, "addr" | "caPem">,
  token: string,
  path: string,
  namespace: string | undefined,
): Promise<JsonObject | undefined> {
  const res = await vaultFetch(config, `${config.addr}/v1/${path.replace(/^\/+/, "")}`, {
    headers: { "x-vault-token": token, ...(namespace ? { "x-vault-namespace": namespace } : {}) },
  });
  if (res.status === 404) return undefined;
  const body = (await res.json().catch(() => ({}))) as JsonObject & { errors?: string[] };
  if (!res.ok) throw new Error(`vault.read(${path}): ${res.status} ${(body.errors ?? []).join("; ")}`);
  return {
    LeaseID: body.lease_id ?? "",
    LeaseDuration: body.lease_duration ?? 0,
    Renewable: body.renewable ?? false,
    Data: body.data ?? null,
    Warnings: body.warnings ?? null,
  };
}
