import { access, constants } from "node:fs/promises";
import type { RunnerClassConfig } from "./config/runner-classes.js";
import type { Config } from "./config.js";
import { errorMessage } from "./core/errors.js";
import type { ServiceDeps } from "./deps.js";
import { createDeps } from "./deps.js";
import { checkNomadTokens, checkRunnerNamespace } from "./doctor-nomad-token.js";
import { checkPlacement } from "./doctor-placement.js";
import { checkRunnerImage } from "./doctor-runner-image.js";
import { createLogger } from "./log.js";
import { parsedRunnerJob, runnerJobProblems } from "./nomad/runner-job.js";
import type { NomadJob } from "./nomad/types.js";
import { runnerJobSource } from "./startup.js";

/** "warn": works today, but needs attention (doctor still exits 0). */
export type CheckLevel = "ok" | "warn" | "fail";

export interface CheckResult {
  name: string;
  level: CheckLevel;
  detail: string;
  /** What to do about a failure or a warning. */
  fix?: string;
}

export type CheckOutcome = Omit<CheckResult, "name">;

/** One line, or several named lines when one probe answers for several findings. */
type Check = () => Promise<CheckOutcome | CheckResult[]>;

/** Every dependency checked for real; one line per check, a fix under each failure. */
export async function doctorChecks(config: Config, deps: ServiceDeps): Promise<CheckResult[]> {
  const kvData = `${config.vault.kvMount}/data/${config.vault.kvPrefix}/runners/doctor-probe`;
  const kvMeta = `${config.vault.kvMount}/metadata/${config.vault.kvPrefix}/runners/doctor-probe`;
  // Asked once: the GitHub credentials check and the runner image check both need it.
  let identity: ReturnType<ServiceDeps["github"]["identity"]> | undefined;
  const gitHubIdentity = () => (identity ??= deps.github.identity());
  const checks: Array<[string, Check]> = [
    ["webhook secret", async () => checkWebhookSecrets(config.github.webhookSecrets)],
    ["Nomad reachable", async () => ({ level: "ok", detail: `leader ${await deps.nomad.leader()} at ${config.nomad.addr}` })],
    ["Nomad token", () => checkNomadTokens(config, deps.nomad, deps.nomadRegistrar)],
    ["Nomad runner namespace", async () => checkRunnerNamespace(config)],
    ["Nomad runner job", () => checkRunnerJobs(config, deps)],
    ["Nomad node pool", () => perClass(config, "Nomad node pool", (cls) => checkClassPlacement(config, deps, cls))],
    ["Vault reachable and unsealed", () => checkVaultHealth(deps)],
    ["Vault token capabilities", () => checkVaultCapabilities(deps, kvData, kvMeta)],
    ["Vault audit device", () => checkAudit(config, deps)],
    ["GitHub credentials", () => checkGitHub(config, gitHubIdentity)],
    [
      "runner image",
      () => perClass(config, "runner image", (cls) => checkRunnerImage(config, cls, { nomad: deps.nomad, github: deps.github, identity: gitHubIdentity })),
    ],
    ["cloudflared", () => checkCloudflared(config)],
  ];
  const results: CheckResult[] = [];
  for (const [name, check] of checks) {
    try {
      const outcome = await check();
      results.push(...(Array.isArray(outcome) ? outcome : [{ name, ...outcome }]));
    } catch (err) {
      results.push({ name, level: "fail", detail: errorMessage(err), fix: FIX_ON_ERROR[name] });
    }
  }
  return results;
}

const FIX_ON_ERROR: Record<string, string> = {
  "Nomad reachable": "check NOMAD_ADDR (and NOMAD_TOKEN); `curl $NOMAD_ADDR/v1/status/leader` must answer",
  "Nomad token": "check NOMAD_TOKEN: `nomad acl token self` with it must work",
  "Nomad runner job": "start the service once (it registers the job) or `nomad job run jobs/github-runner.nomad.hcl`",
  "Vault reachable and unsealed": "check VAULT_ADDR; `vault status` must show Sealed false",
  "Vault token capabilities": "check VAULT_TOKEN: `vault token lookup` must work",
  "Vault audit device": "grant read+sudo on sys/audit (policies/vault-dispatcher.policy.hcl) or set VAULT_REQUIRE_AUDIT=false",
  "GitHub credentials": "check GITHUB_TOKEN or GITHUB_APP_ID/GITHUB_APP_PRIVATE_KEY and GITHUB_API_URL",
};

function checkWebhookSecrets(secrets: string[]): CheckOutcome {
  const weak = secrets.filter((s) => s.length < 20);
  if (weak.length > 0) {
    return {
      level: "fail",
      detail: `${weak.length} webhook secret(s) shorter than 20 characters`,
      fix: "use `openssl rand -hex 32` for GITHUB_WEBHOOK_SECRET",
    };
  }
  return { level: "ok", detail: `${secrets.length} secret(s) configured` };
}

/** One line per runner class (named by its class when there are several). */
async function perClass(config: Config, name: string, check: (cls: RunnerClassConfig) => Promise<CheckOutcome>): Promise<CheckResult[]> {
  const { classes } = config.runner;
  return Promise.all(
    classes.map(async (cls) => {
      const named = classes.length > 1 ? `${name} (class ${cls.name})` : name;
      try {
        return { name: named, ...(await check(cls)) };
      } catch (err) {
        return { name: named, level: "fail" as const, detail: errorMessage(err), fix: FIX_ON_ERROR[name] };
      }
    }),
  );
}

function checkRunnerJobs(config: Config, deps: ServiceDeps): Promise<CheckResult[]> {
  return perClass(config, "Nomad runner job", (cls) => checkRunnerJob(config, deps, cls));
}

/**
 * A class with a job file: does Nomad parse it with the class's variables into a usable runner
 * job (what start-up registers)? Without one: is its job registered and usable?
 */
async function checkRunnerJob(config: Config, deps: ServiceDeps, cls: RunnerClassConfig): Promise<CheckOutcome> {
  const job = await classJob(config, deps, cls);
  if (!job) {
    return {
      level: "fail",
      detail: `job ${cls.job} not found`,
      fix: "`nomad job run jobs/github-runner.nomad.hcl`, or give the class a job_file (NOMAD_REGISTER_RUNNER_JOB=true)",
    };
  }
  const problems = runnerJobProblems(job, config.vault.credentialDelivery);
  if (cls.jobFile === undefined) {
    if (problems.length > 0) return { level: "fail", detail: problems.join("; "), fix: "re-register jobs/github-runner.nomad.hcl" };
    return { level: "ok", detail: `${cls.job} is a parameterized job with prestart, main and poststop tasks` };
  }
  if (problems.length > 0)
    return { level: "fail", detail: `${cls.jobFile}: ${problems.join("; ")}`, fix: "fix the job file; the service registers it at start" };
  const registered = await deps.nomad.readJob(cls.job);
  return { level: "ok", detail: `${cls.jobFile} parses into a usable runner job ${cls.job}${registered ? "" : " (registered at start)"}` };
}

/** The class's runner job as it is (or will be, from its job file) registered. */
async function classJob(config: Config, deps: ServiceDeps, cls: RunnerClassConfig): Promise<NomadJob | undefined> {
  return cls.jobFile !== undefined ? parsedRunnerJob(deps.nomadRegistrar, runnerJobSource(config, cls, cls.jobFile)) : deps.nomad.readJob(cls.job);
}

async function checkClassPlacement(config: Config, deps: ServiceDeps, cls: RunnerClassConfig): Promise<CheckOutcome> {
  const job = await classJob(config, deps, cls);
  if (!job) return { level: "warn", detail: `not checked: job ${cls.job} is not registered` };
  return checkPlacement(deps.nomad, job);
}

async function checkVaultHealth(deps: ServiceDeps): Promise<CheckOutcome> {
  const h = await deps.vault.health();
  if (!h.initialized) return { level: "fail", detail: "Vault is not initialised", fix: "`vault operator init`" };
  if (h.sealed) return { level: "fail", detail: "Vault is sealed", fix: "`vault operator unseal`" };
  if (h.standby) return { level: "fail", detail: "this Vault node is a standby", fix: "point VAULT_ADDR at the active node or the cluster address" };
  return { level: "ok", detail: "active and unsealed" };
}

async function checkVaultCapabilities(deps: ServiceDeps, data: string, meta: string): Promise<CheckOutcome> {
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

async function checkAudit(config: Config, deps: ServiceDeps): Promise<CheckOutcome> {
  const devices = await deps.vault.auditDevices();
  if (devices.length > 0) return { level: "ok", detail: `enabled: ${devices.join(", ")}` };
  if (!config.vault.requireAudit) return { level: "ok", detail: "none enabled (allowed by VAULT_REQUIRE_AUDIT=false)" };
  return { level: "fail", detail: "no audit device enabled", fix: "`vault audit enable file file_path=/var/log/vault_audit.log`" };
}

async function checkGitHub(config: Config, identity: () => ReturnType<ServiceDeps["github"]["identity"]>): Promise<CheckOutcome> {
  const id = await identity();
  if (id.kind === "token") {
    const needed = config.runner.scope === "org" ? "admin:org" : "repo";
    if (id.scopes && !id.scopes.includes(needed)) {
      return {
        level: "fail",
        detail: `token of ${id.login} lacks the ${needed} scope (has ${id.scopes.join(", ") || "none"})`,
        fix: `create a token with the ${needed} scope`,
      };
    }
    return { level: "ok", detail: `token of ${id.login}${id.scopes ? ` with scopes ${id.scopes.join(", ")}` : " (fine-grained)"}` };
  }
  if (id.installations.length === 0)
    return { level: "fail", detail: `App ${id.slug} is not installed anywhere`, fix: "install the App on the repositories or organisation" };
  const permission = config.runner.scope === "org" ? "organization_self_hosted_runners" : "administration";
  const lacking = id.installations.filter((i) => i.permissions[permission] !== "write");
  if (lacking.length > 0) {
    return {
      level: "fail",
      detail: `App ${id.slug} lacks ${permission}: write on ${lacking.map((i) => i.account).join(", ")}`,
      fix: `grant "${permission}: write" in the App settings and accept it on each installation`,
    };
  }
  return { level: "ok", detail: `App ${id.slug}, ${id.installations.length} installation(s) with ${permission}: write` };
}

async function checkCloudflared(config: Config): Promise<CheckOutcome> {
  if (config.tunnel.mode === "off") return { level: "ok", detail: "TUNNEL=off: bring your own ingress to POST /webhook" };
  try {
    await access(config.tunnel.cloudflaredBin, constants.X_OK);
  } catch {
    return { level: "fail", detail: `no executable at ${config.tunnel.cloudflaredBin}`, fix: "install cloudflared and set CLOUDFLARED_BIN" };
  }
  if (config.tunnel.mode === "named" && !config.tunnel.token) {
    try {
      await access(config.tunnel.configFile, constants.R_OK);
    } catch {
      return {
        level: "fail",
        detail: `named tunnel without TUNNEL_TOKEN and no config at ${config.tunnel.configFile}`,
        fix: "set TUNNEL_TOKEN or TUNNEL_CONFIG",
      };
    }
  }
  return { level: "ok", detail: `${config.tunnel.cloudflaredBin} (${config.tunnel.mode} tunnel)` };
}

const LEVEL_TAGS: Record<CheckLevel, string> = { ok: "[ok]  ", warn: "[warn]", fail: "[FAIL]" };

export function formatChecklist(results: CheckResult[]): string {
  const lines = results.flatMap((r) => {
    const line = `${LEVEL_TAGS[r.level]} ${r.name}: ${r.detail}`;
    return r.level === "ok" || !r.fix ? [line] : [line, `       fix: ${r.fix}`];
  });
  const failed = results.filter((r) => r.level === "fail").length;
  const warnings = results.filter((r) => r.level === "warn").length;
  if (failed > 0) lines.push(`${failed} check(s) failed`);
  else lines.push(warnings === 0 ? "all checks passed" : `all checks passed, ${warnings} warning(s)`);
  return lines.join("\n");
}

export async function runDoctor(config: Config, out: (text: string) => void = (t) => console.log(t)): Promise<number> {
  const deps = createDeps(config, createLogger({ level: "silent" }));
  const results = await doctorChecks(config, deps);
  out(formatChecklist(results));
  // Warnings do not fail: what they point at works today.
  return results.some((r) => r.level === "fail") ? 1 : 0;
}
