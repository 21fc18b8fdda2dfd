import { readFileSync } from "node:fs";
import type { JwtRole, VaultTwin } from "../twins/vault.js";

const shipped = (file: string) => readFileSync(new URL(`../../policies/${file}`, import.meta.url), "utf8");

/**
 * What policies/README.md has an operator do so that runner allocations log in to Vault with
 * their workload identity: the jwt-nomad auth mount, the runner policy with the mount's accessor
 * filled in, and the runner role, all from the shipped files (a test that copied them would prove
 * nothing about them). `nomadNamespace` is the runner jobs' namespace the role is bound to (the
 * shipped role names `github-runners`).
 */
export async function grantRunnerIdentity(
  vault: VaultTwin,
  opts: { vaultNamespace?: string; nomadNamespace?: string; runnerJob?: string | string[] } = {},
): Promise<void> {
  const { accessor } = vault.enableJwtAuth("jwt-nomad", opts.vaultNamespace);
  await vault.writePolicy("nomad-gha-runner", shipped("vault-runner.policy.hcl").replaceAll("AUTH_METHOD_ACCESSOR", accessor), opts.vaultNamespace);
  // A list of job IDs (one per runner class) is any of them, as Vault's bound_claims lists are.
  const role = JSON.parse(shipped("vault-runner-jwt-role.json")) as JwtRole & { bound_claims: Record<string, string | string[]> };
  if (opts.nomadNamespace) role.bound_claims.nomad_namespace = opts.nomadNamespace;
  if (opts.runnerJob) role.bound_claims.nomad_job_id = opts.runnerJob;
  vault.configureJwtRole("nomad-gha-runner", role, "jwt-nomad", opts.vaultNamespace);
}
