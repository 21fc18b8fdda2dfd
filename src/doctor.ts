import { readFile } from "node:fs/promises";
import type { RunnerClassConfig } from "./config/runner-classes.js";
import { tlsSummary } from "./config/tls.js";
import { type Config, MIN_WEBHOOK_SECRET_LENGTH } from "./config.js";
import { DependencyError, errorMessage } from "./core/errors.js";
import type { ServiceDeps } from "./deps.js";
import { createDeps } from "./deps.js";
import { checkNomadTokens, checkRunnerNamespace } from "./doctor-nomad-token.js";
import { checkPlacement } from "./doctor-placement.js";
import { checkRunnerImage } from "./doctor-runner-image.js";
import { checkAudit, checkKvMount, checkVaultCapabilities, checkVaultHealth } from "./doctor-vault.js";
import { createLogger } from "./log.js";
import { parsedRunnerJob, runnerJobProblems, varsFileProblem } from "./nomad/runner-job.js";
import type { NomadJob } from "./nomad/types.js";
import { runnerJobSource } from "./startup.js";
import { checkTunnelConfigFile, resolveCloudflaredBinary, TunnelStartError } from "./tunnel/binary.js";

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

/** A system whose first check failing makes the checks behind it say nothing new. */
type Root = "nomad" | "vault" | "github";

interface CheckSpec {
  name: string;
  run: Check;
  /** This check is the one that reaches the system: when it fails, the others that need it are not run. */
  root?: Root;
  needs?: Root[];
}

/**
 * Every dependency checked for real; one line per check, a fix under each failure. One root
 * cause gives one line: when Vault (or Nomad, or GitHub) cannot be reached, the checks that
 * need it are not run, and that line says how many were left out.
 */
export async function doctorChecks(config: Config, deps: ServiceDeps): Promise<CheckResult[]> {
  const kvData = `${config.vault.kvMount}/data/${config.vault.kvPrefix}/runners/doctor-probe`;
  const kvMeta = `${config.vault.kvMount}/metadata/${config.vault.kvPrefix}/runners/doctor-probe`;
  // Asked once: the GitHub credentials check and the runner image check both need it.
  let identity: ReturnType<ServiceDeps["github"]["identity"]> | undefined;
  const gitHubIdentity = () => (identity ??= deps.github.identity());
  const checks: CheckSpec[] = [
    { name: "webhook secret", run: async () => checkWebhookSecrets(config) },
    ...tlsChecks(config),
    { name: "Nomad reachable", root: "nomad", run: async () => checkNomadReachable(config, deps) },
    { name: "Nomad token", needs: ["nomad"], run: () => checkNomadTokens(config, deps.nomad, deps.nomadRegistrar) },
    { name: "Nomad runner namespace", run: async () => checkRunnerNamespace(config) },
    { name: "Nomad runner job variables", run: () => perClass(config, "Nomad runner job variables", checkRunnerJobVariables) },
    { name: "Nomad runner job", needs: ["nomad"], run: () => perClass(config, "Nomad runner job", (cls) => checkRunnerJob(config, deps, cls)) },
    { name: "Nomad node pool", needs: ["nomad"], run: () => perClass(config, "Nomad node pool", (cls) => checkClassPlacement(config, deps, cls)) },
    { name: "Vault reachable and unsealed", root: "vault", run: () => checkVaultHealth(config, deps) },
    { name: "Vault token capabilities", needs: ["vault"], run: () => checkVaultCapabilities(deps, kvData, kvMeta) },
    { name: "Vault KV mount", needs: ["vault"], run: () => checkKvMount(config, deps) },
    { name: "Vault audit device", needs: ["vault"], run: () => checkAudit(config, deps) },
    { name: "GitHub credentials", root: "github", run: () => checkGitHub(config, gitHubIdentity) },
    {
      name: "runner image",
      needs: ["nomad", "github"],
      run: () => perClass(config, "runner image", (cls) => checkRunnerImage(config, cls, { nomad: deps.nomad, github: deps.github, identity: gitHubIdentity })),
    },
    { name: "cloudflared", run: () => checkCloudflared(config) },
  ];
  const results: CheckResult[] = [];
  const failedRoots = new Map<Root, { result: CheckResult; skipped: number }>();
  for (const { name, run, root, needs = [] } of checks) {
    const blocker = needs.map((n) => failedRoots.get(n)).find((f) => f !== undefined);
    if (blocker) {
      blocker.skipped += 1;
      continue;
    }
    let outcome: CheckResult[];
    try {
      const found = await run();
      outcome = Array.isArray(found) ? found : [{ name, ...found }];
    } catch (err) {
      outcome = [{ name, level: "fail", ...failureOf(name, err) }];
    }
    results.push(...outcome);
    const failed = outcome.find((r) => r.level === "fail");
    if (root && failed) failedRoots.set(root, { result: failed, skipped: 0 });
  }
  for (const { result, skipped } of failedRoots.values()) {
    if (skipped > 0) result.detail += ` (${skipped} check(s) that need it not run)`;
  }
  return results;
}

/** What an error says, and what to do: the transport's own fix (a TLS setting) first. */
function failureOf(name: string, err: unknown): { detail: string; fix?: string } {
  const detail = errorMessage(err);
  if (err instanceof DependencyError && err.fix) {
    return { detail: detail.endsWith(`: ${err.fix}`) ? detail.slice(0, -err.fix.length - 2) : detail, fix: err.fix };
  }
  if (name === "Vault audit device" && err instanceof DependencyError && err.status === 403) {
    return { detail, fix: "grant read+sudo on sys/audit (policies/vault-dispatcher.policy.hcl) or set VAULT_REQUIRE_AUDIT=false" };
  }
  return { detail, fix: FIX_ON_ERROR[name] };
}

const FIX_ON_ERROR: Record<string, string> = {
  "Nomad reachable": "check NOMAD_ADDR (and NOMAD_TOKEN); `curl $NOMAD_ADDR/v1/status/leader` must answer",
  "Nomad token": "check NOMAD_TOKEN: `nomad acl token self` with it must work",
  "Nomad runner job": "start the service once (it registers the job) or `nomad job run jobs/github-runner.nomad.hcl`",
  "Nomad runner job variables": "check NOMAD_RUNNER_JOB_FILE and NOMAD_RUNNER_JOB_VARS_FILE",
  "Vault reachable and unsealed": "check VAULT_ADDR; `vault status` must show Sealed false",
  "Vault token capabilities": "check VAULT_TOKEN: `vault token lookup` must work",
  "Vault KV mount": "check VAULT_KV_MOUNT: `vault secrets list` must show it as kv version 2",
  "Vault audit device": "check that Vault answers sys/audit (`vault audit list`)",
  "GitHub credentials": "check GITHUB_TOKEN or GITHUB_APP_ID/GITHUB_APP_PRIVATE_KEY and GITHUB_API_URL",
};

/** Start refuses a short secret unless GITHUB_WEBHOOK_SECRET_ALLOW_SHORT=true; doctor still points at it. */
function checkWebhookSecrets(config: Config): CheckOutcome {
  const secrets = config.github.webhookSecrets;
  const weak = secrets.filter((s) => s.length < MIN_WEBHOOK_SECRET_LENGTH);
  if (weak.length > 0) {
    return {
      level: "warn",
      detail: `${weak.length} webhook secret(s) shorter than ${MIN_WEBHOOK_SECRET_LENGTH} characters (allowed by GITHUB_WEBHOOK_SECRET_ALLOW_SHORT=true)`,
      fix: "use `openssl rand -hex 32` for GITHUB_WEBHOOK_SECRET, in GitHub and here",
    };
  }
  return { level: "ok", detail: `${secrets.length} secret(s) configured` };
}

/** TLS verification turned off is a warning for each system: it works, and anyone in between can read the tokens. */
function tlsChecks(config: Config): CheckSpec[] {
  const systems = [
    { system: "Nomad", prefix: "NOMAD", tls: config.nomad.tls },
    { system: "Vault", prefix: "VAULT", tls: config.vault.tls },
  ] as const;
  return systems
    .filter(({ tls }) => !tls.rejectUnauthorized)
    .map(({ system, prefix }) => ({
      name: `${system} TLS`,
      run: async (): Promise<CheckOutcome> => ({
        level: "warn",
        detail: `${prefix}_SKIP_VERIFY is set: ${system}'s certificate is not checked, so whoever sits in between gets the token`,
        fix: `set ${prefix}_CACERT (or ${prefix}_CAPATH) to ${system}'s CA and unset ${prefix}_SKIP_VERIFY`,
      }),
    }));
}

async function checkNomadReachable(config: Config, deps: ServiceDeps): Promise<CheckOutcome> {
  const leader = await deps.nomad.leader();
  const tls = config.nomad.addr.startsWith("https:") ? ` (TLS: ${tlsSummary(config.nomad.tls)})` : "";
  return { level: "ok", detail: `leader ${leader} at ${config.nomad.addr}${tls}` };
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
        return { name: named, level: "fail" as const, ...failureOf(name, err) };
      }
    }),
  );
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
  return checkPlacement(deps.nomad, job, cls.name);
}

/** Every variable a class's vars file sets must be declared by its job file; Nomad's HTTP parse ignores the rest. */
async function checkRunnerJobVariables(cls: RunnerClassConfig): Promise<CheckOutcome> {
  const { jobFile, varsFile } = cls;
  if (!varsFile || !jobFile) return { level: "ok", detail: "no NOMAD_RUNNER_JOB_VARS_FILE: the job's defaults" };
  const problem = varsFileProblem(await readFile(jobFile, "utf8"), await readFile(varsFile, "utf8"), varsFile);
  if (problem) return { level: "fail", detail: problem, fix: "fix the variable names in NOMAD_RUNNER_JOB_VARS_FILE" };
  return { level: "ok", detail: `every variable ${varsFile} sets is declared by ${jobFile}` };
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

/** Found exactly as serve finds it (tunnel/binary.ts: PATH, the npm wrapper's own binary), with serve's messages. */
async function checkCloudflared(config: Config): Promise<CheckOutcome> {
  if (config.tunnel.mode === "off") return { level: "ok", detail: "TUNNEL=off: bring your own ingress to POST /webhook" };
  let binary: string;
  try {
    binary = await resolveCloudflaredBinary(config.tunnel.cloudflaredBin);
    if (config.tunnel.mode === "named" && !config.tunnel.token) await checkTunnelConfigFile(config.tunnel.configFile);
  } catch (err) {
    if (!(err instanceof TunnelStartError)) throw err;
    const [detail, fix] =
      err.problem === "config-not-found" ? [err.message, "set TUNNEL_TOKEN or TUNNEL_CONFIG"] : [err.message, "install cloudflared and set CLOUDFLARED_BIN"];
    return { level: "fail", detail, fix };
  }
  return { level: "ok", detail: `${binary} (${config.tunnel.mode} tunnel)` };
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
