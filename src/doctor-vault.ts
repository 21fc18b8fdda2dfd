import { tlsSummary } from "./config/tls.js";
import type { Config } from "./config.js";
import { kvMountProblem } from "./core/kv-mount.js";
import type { ServiceDeps } from "./deps.js";
import type { CheckOutcome } from "./doctor.js";

// doctor's Vault checks: each runs only once "Vault reachable and unsealed" passed (doctor.ts).

export async function checkVaultHealth(config: Config, deps: ServiceDeps): Promise<CheckOutcome> {
  const h = await deps.vault.health();
  if (!h.initialized) return { level: "fail", detail: "Vault is not initialised", fix: "`vault operator init`" };
  if (h.sealed) return { level: "fail", detail: "Vault is sealed", fix: "`vault operator unseal`" };
  if (h.standby) return { level: "fail", detail: "this Vault node is a standby", fix: "point VAULT_ADDR at the active node or the cluster address" };
  const tls = config.vault.addr.startsWith("https:") ? ` (TLS: ${tlsSummary(config.vault.tls)})` : "";
  return { level: "ok", detail: `active and unsealed${tls}` };
}

export async function checkKvMount(config: Config, deps: ServiceDeps): Promise<CheckOutcome> {
  const mount = config.vault.kvMount;
  const problem = kvMountProblem(mount, await deps.vault.kvMountInfo(mount));
  if (problem) {
    return {
      level: "fail",
      detail: problem,
      fix: `\`vault secrets enable -path=${mount} kv-v2\` (or set VAULT_KV_MOUNT to your KV v2 mount and the policies' paths with it)`,
    };
  }
  return { level: "ok", detail: `${mount}/ is KV version 2` };
}

export async function checkVaultCapabilities(deps: ServiceDeps, data: string, meta: string): Promise<CheckOutcome> {
  const caps = await deps.vault.capabilities([data, meta]);
  const has = (path: string, wanted: string[]) => {
    const got = caps[path] ?? [];
    return got.includes("root") || wanted.every((c) => got.includes(c));
  };
  const missing: string[] = [];
  if (!has(data, ["create", "read", "update"])) missing.push(`create, read, update on ${data.replace(/doctor-probe$/, "*")}`);
  if (!has(meta, ["delete"])) missing.push(`delete on ${meta.replace(/doctor-probe$/, "*")}`);
  if (missing.length > 0) {
    return {
      level: "fail",
      detail: `token lacks ${missing.join("; ")}`,
      fix: "`vault policy write nomad-gha-dispatcher policies/vault-dispatcher.policy.hcl` and attach it to the token",
    };
  }
  return { level: "ok", detail: `can write, read and delete runner secrets under ${data.replace(/\/doctor-probe$/, "")}` };
}

export async function checkAudit(config: Config, deps: ServiceDeps): Promise<CheckOutcome> {
  const devices = await deps.vault.auditDevices();
  if (devices.length > 0) return { level: "ok", detail: `enabled: ${devices.join(", ")}` };
  if (!config.vault.requireAudit) return { level: "ok", detail: "none enabled (allowed by VAULT_REQUIRE_AUDIT=false)" };
  return { level: "fail", detail: "no audit device enabled", fix: "`vault audit enable file file_path=/var/log/vault_audit.log`" };
}
