import { readFileSync } from "node:fs";
import type { Env } from "./env-schema.js";
import { pemCertificates, type TlsOptions } from "./tls.js";

/**
 * The CA bundle a runner allocation verifies Vault with (its prestart's curl --cacert): the file
 * RUNNER_VAULT_CACERT names; else, when the runners reach Vault at VAULT_ADDR itself (no
 * RUNNER_VAULT_ADDR), the CAs the dispatcher trusts for it. A RUNNER_VAULT_ADDR of its own may sit
 * behind another CA, so it gets the image's CAs unless RUNNER_VAULT_CACERT says otherwise.
 */
export function runnerVaultCa(env: Env, vaultTls: TlsOptions, problems: string[]): string | undefined {
  const file = env.RUNNER_VAULT_CACERT;
  if (file === undefined) return env.RUNNER_VAULT_ADDR === undefined && vaultTls.ca ? `${vaultTls.ca.join("\n")}\n` : undefined;
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    problems.push(`RUNNER_VAULT_CACERT cannot be read: ${(err as Error).message}`);
    return undefined;
  }
  const certs = pemCertificates(text);
  if (certs.length === 0) {
    problems.push(`RUNNER_VAULT_CACERT: ${file} holds no PEM certificate`);
    return undefined;
  }
  return `${certs.join("\n")}\n`;
}
