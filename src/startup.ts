import { jobVarsText, type RunnerClassConfig } from "./config/runner-classes.js";
import type { Config } from "./config.js";
import { DependencyError, errorMessage, isTransient } from "./core/errors.js";
import type { ServiceDeps } from "./deps.js";
import { dockerOptionsAtStart } from "./doctor-placement.js";
import type { ReadinessReport } from "./http/app.js";
import type { Logger } from "./log.js";
import { ensureRunnerJob, type RunnerJobSource, runnerJobProblems } from "./nomad/runner-job.js";
import type { NomadJob } from "./nomad/types.js";
import { gitHubCredentialsCheck } from "./readiness-github.js";
import type { TunnelStatus } from "./tunnel/cloudflared.js";

export class StartupError extends Error {
  override name = "StartupError";
}

/**
 * Checks that must pass before we accept a single webhook. Users are promised an audited
 * credential flow, so a Vault without an audit device is refused unless explicitly allowed.
 */
export async function startupChecks(config: Config, deps: ServiceDeps): Promise<void> {
  const available: Available = (what, fn) => whenAvailable(what, fn, deps.log, STARTUP_WAIT_MS);
  if (config.vault.requireAudit) {
    let devices: string[];
    try {
      devices = await available("Vault", () => deps.vault.auditDevices());
    } catch (err) {
      // Only a refusal is about the policy; anything else (no connection, TLS) says so itself.
      const policy = err instanceof DependencyError && err.status === 403 ? " (the token needs read and sudo on sys/audit)" : "";
      throw new StartupError(`cannot list Vault audit devices at ${config.vault.addr}${policy}: ${errorMessage(err)}`);
    }
    if (devices.length === 0) {
      throw new StartupError(
        `Vault at ${config.vault.addr} has no audit device enabled, so runner credential access would not be audited. ` +
          "Enable one (vault audit enable file file_path=/var/log/vault_audit.log) or set VAULT_REQUIRE_AUDIT=false.",
      );
    }
  }
  if (config.nomad.registerRunnerJob && config.nomad.token && !config.nomad.registerToken) deps.log.warn(RUNTIME_TOKEN_REGISTERS);
  // Every class is checked before start-up gives up: one line per class that is not usable.
  const problems = await Promise.all(config.runner.classes.map((cls) => checkClassJob(config, deps, cls, available)));
  const found = problems.filter((p) => p !== undefined);
  if (found.length > 0) throw new StartupError(found.join("\n"));
}

/** Runs a request to `what`, waiting out a passing outage (whenAvailable). */
type Available = <T>(what: string, fn: () => Promise<T>) => Promise<T>;

/** Registers (or checks) one class's runner job; the problem as one line, or undefined. */
async function checkClassJob(config: Config, deps: ServiceDeps, cls: RunnerClassConfig, available: Available): Promise<string | undefined> {
  const of = config.runner.classes.length > 1 ? ` (class ${cls.name})` : "";
  if (cls.jobFile !== undefined) {
    try {
      const result = await available("Nomad", () => ensureRunnerJob(deps.nomadRegistrar, runnerJobSource(config, cls, cls.jobFile!)));
      deps.log.info({ job: cls.job, class: cls.name, result }, "runner job checked");
    } catch (err) {
      return `cannot register Nomad job ${cls.job}${of}: ${errorMessage(err)}`;
    }
  }
  let job: Awaited<ReturnType<ServiceDeps["nomad"]["readJob"]>>;
  try {
    // A job start-up registers is read with the token that registered it, as ensureRunnerJob does.
    const reader = cls.jobFile !== undefined ? deps.nomadRegistrar : deps.nomad;
    job = await available("Nomad", () => reader.readJob(cls.job));
  } catch (err) {
    return `cannot read Nomad job ${cls.job}${of}: ${errorMessage(err)}`;
  }
  if (cls.jobFile === undefined) {
    const why = config.nomad.registerRunnerJob ? "the class has no job_file" : "NOMAD_REGISTER_RUNNER_JOB=false";
    if (!job) return `Nomad job ${cls.job}${of} does not exist and ${why}`;
    const problems = runnerJobProblems(job, config.vault.credentialDelivery);
    if (problems.length > 0) return `Nomad job ${cls.job}${of} is not a usable runner job: ${problems.join("; ")}`;
  }
  return job ? checkDockerOptions(deps, cls, job, available) : undefined;
}

/**
 * A job whose docker tasks need what no client of its pool allows (a dind sidecar's privileged
 * container) would be dispatched and fail its first job: refused here, one line with the fix.
 */
async function checkDockerOptions(deps: ServiceDeps, cls: RunnerClassConfig, job: NomadJob, available: Available): Promise<string | undefined> {
  let found: Awaited<ReturnType<typeof dockerOptionsAtStart>>;
  try {
    // With the registration token when there is one: the run-time token needs no node read.
    found = await available("Nomad", () => dockerOptionsAtStart(deps.nomadRegistrar, job, cls.name));
  } catch (err) {
    return `cannot read the nodes of Nomad job ${cls.job}'s pool (class ${cls.name}): ${errorMessage(err)}`;
  }
  if (found.unchecked) {
    deps.log.warn(
      { class: cls.name, job: cls.job },
      `not checked whether the pool's clients allow what the runner job's docker tasks need: ${found.unchecked} ` +
        '(give NOMAD_REGISTER_TOKEN\'s policy node { policy = "read" } and node_pool read, or run `doctor` with such a token)',
    );
  }
  return found.problems.map((p) => `${p.problem}: ${p.fix}`).join("\n") || undefined;
}

/** What registering a class's runner job needs: its file and variables, and how runners reach Vault. */
export function runnerJobSource(config: Config, cls: RunnerClassConfig, file: string): RunnerJobSource {
  return {
    jobId: cls.job,
    file,
    varsFile: cls.varsFile,
    vars: jobVarsText(cls.jobVars),
    vault: {
      addr: config.vault.runnerAddr,
      namespace: config.vault.namespace,
      kvMount: config.vault.kvMount,
      kvPrefix: config.vault.kvPrefix,
      credentialDelivery: config.vault.credentialDelivery,
      caPem: config.vault.runnerCaPem,
    },
  };
}

/** Said at start and by doctor: the run-time token is broader than running runners needs. */
export const RUNTIME_TOKEN_REGISTERS =
  "NOMAD_TOKEN also registers the runner job, so it needs parse-job and submit-job for that; register it as an operator step " +
  "(`nomad job run`, NOMAD_REGISTER_RUNNER_JOB=false) or with a separate NOMAD_REGISTER_TOKEN (policies/nomad-runner-job-admin.policy.hcl)";

/**
 * How long start-up waits for Vault or Nomad to come back from a passing outage (sealed, no
 * leader, restarting) before it gives up: a replica restarted during a Vault restart then starts
 * once Vault is back instead of failing, while a wrong address still fails within a minute.
 */
export const STARTUP_WAIT_MS = 60_000;

/** Runs `fn` until it succeeds, retrying transient dependency failures for up to `waitMs`. */
async function whenAvailable<T>(what: string, fn: () => Promise<T>, log: Logger, waitMs: number): Promise<T> {
  const deadline = Date.now() + waitMs;
  let said = "";
  for (let delay = 250; ; delay = Math.min(delay * 2, 5_000)) {
    try {
      return await fn();
    } catch (err) {
      if (!isTransient(err) || Date.now() + delay > deadline) throw err;
      const message = errorMessage(err);
      if (message !== said) log.warn({ err: message }, `${what} is not available yet; start-up waits for it`);
      said = message;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

/** Probes more often than this share one answer. */
const READINESS_CACHE_MS = 2_000;

/** Nomad and Vault reachable and able to serve; cached briefly so probes do not hammer them. */
export function readinessProbe(deps: ServiceDeps, tunnel?: () => TunnelStatus | undefined): () => Promise<ReadinessReport> {
  let cached: { at: number; report: Promise<ReadinessReport> } | undefined;
  const github = gitHubCredentialsCheck(() => deps.github.identity());
  const check = async (): Promise<ReadinessReport> => {
    const [nomad, vault, credentials] = await Promise.all([
      deps.nomad.leader().then(
        (leader) => ({ ok: leader !== "", detail: leader ? `leader ${leader}` : "no leader" }),
        (err: unknown) => ({ ok: false, detail: errorMessage(err) }),
      ),
      deps.vault.health().then(
        (h) => ({ ok: h.initialized && !h.sealed && !h.standby, detail: h.sealed ? "sealed" : h.standby ? "standby" : "active" }),
        (err: unknown) => ({ ok: false, detail: errorMessage(err) }),
      ),
      github(),
    ]);
    const checks: ReadinessReport["checks"] = { nomad, vault, github: credentials };
    const t = tunnel?.();
    if (t) {
      checks.tunnel = { ok: t.connected, detail: t.connected ? `${t.connections} edge connection(s)` : (t.lastError ?? "not connected") };
    }
    return { ready: Object.values(checks).every((c) => c.ok), checks };
  };
  return () => {
    if (!cached || Date.now() - cached.at > READINESS_CACHE_MS) cached = { at: Date.now(), report: check() };
    return cached.report;
  };
}
