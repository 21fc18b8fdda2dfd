import { fileURLToPath } from "node:url";
import { envSchema as buildEnvSchema, describeIssue, type Env, list } from "./config/env-schema.js";
import { githubAuth } from "./config/github-auth.js";
import { runnerVaultCa } from "./config/runner-vault-ca.js";
import { type TlsOptions, tlsOptions } from "./config/tls.js";

export type { TlsOptions } from "./config/tls.js";

/** GitHub's advice for a webhook secret is a long random string; below this, start needs an opt-in. */
export const MIN_WEBHOOK_SECRET_LENGTH = 20;

import { type RunnerClassConfig, runnerClasses } from "./config/runner-classes.js";

/** Where the bundled runner job lives, relative to this file in both src/ and dist/. */
export const BUNDLED_RUNNER_JOB_FILE = fileURLToPath(new URL("../jobs/github-runner.nomad.hcl", import.meta.url));

export type RunnerRegistration = "jit" | "token" | "auto";
export type CredentialDelivery = "workload-identity" | "wrap";
export type RunnerScope = "repo" | "org";

export type GitHubAuthConfig = { kind: "token"; token: string } | { kind: "app"; appId: number; privateKey: string };

export interface Config {
  host: string;
  port: number;
  /** undefined = no metrics listener (METRICS_PORT=off); 0 = any free port. */
  metricsPort: number | undefined;
  logLevel: string;
  /** Maximum accepted webhook body size in bytes. */
  webhookBodyLimit: number;
  github: {
    webhookSecrets: string[];
    auth: GitHubAuthConfig;
    apiUrl: string;
    webUrl: string;
    /**
     * The webhook's public URL as configured at GitHub (WEBHOOK_URL): with a PAT, the service finds
     * its organization and repository hooks by it and redelivers their failed deliveries.
     */
    webhookUrl: string | undefined;
    /** Our side of GitHub's secondary rate limit. */
    budget: { pointsPerMinute: number; maxConcurrent: number };
  };
  runner: {
    /**
     * The runner classes (RUNNER_CLASSES_FILE, or the one class of RUNNER_LABELS and
     * NOMAD_RUNNER_JOB*): a job is served by the class whose labels equal its own.
     */
    classes: RunnerClassConfig[];
    registration: RunnerRegistration;
    scope: RunnerScope;
    groupId: number;
    namePrefix: string;
  };
  allowedOwners: string[];
  allowedRepos: string[];
  nomad: {
    addr: string;
    token?: string;
    /** Registers the runner job at start when set; NOMAD_TOKEN then only runs it. */
    registerToken?: string;
    namespace: string;
    region?: string;
    /** Register (or update) each class's job from its job file at start. */
    registerRunnerJob: boolean;
    /** NOMAD_CACERT, NOMAD_CLIENT_CERT, ... as the Nomad CLI reads them. */
    tls: TlsOptions;
  };
  vault: {
    addr: string;
    token: string;
    namespace?: string;
    kvMount: string;
    kvPrefix: string;
    /** VAULT_ADDR as the runner allocations reach it. */
    runnerAddr: string;
    /**
     * How a runner allocation gets its credential: its own Nomad workload identity (default), or
     * a single-use wrapping token in the dispatch meta for clusters without one.
     */
    credentialDelivery: CredentialDelivery;
    wrapTtl: string;
    requireAudit: boolean;
    /** VAULT_CACERT, VAULT_CLIENT_CERT, ... as the Vault CLI reads them. */
    tls: TlsOptions;
    /** PEM the runner allocations verify Vault's certificate with (job variable vault_ca_pem); undefined = the image's CAs. */
    runnerCaPem?: string;
  };
  reconcile: {
    intervalSeconds: number;
    /** Dead runner jobs stay visible in Nomad this long before they are purged. */
    retentionSeconds: number;
    /** How long something may look half-done (another replica mid-way) before it is repaired. */
    graceSeconds: number;
  };
  limits: { maxRunners: number; maxRunnersPerRepo: number };
  /**
   * Where the limits hold: across every replica (a slot ledger in Nomad Variables, the default),
   * or per process (one replica only; no Nomad `variables` rights needed).
   */
  capacityScope: "cluster" | "process";
  tunnel: TunnelConfig;
  dispatcherId: string;
}

export type TunnelMode = "off" | "quick" | "named";

export interface TunnelConfig {
  mode: TunnelMode;
  /** Named tunnel token (preferred); without it a named tunnel runs from `configFile`. */
  token?: string;
  configFile: string;
  cloudflaredBin: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

const envSchema = buildEnvSchema(BUNDLED_RUNNER_JOB_FILE);

/** Parses the environment; throws ConfigError listing every problem, one line each. */
export function loadConfig(env: Env = process.env): Config {
  const cleaned: Env = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const parsed = envSchema.safeParse(cleaned);
  // Cross-field checks run on the raw values too, so one start lists every problem at once.
  const problems = parsed.success ? [] : parsed.error.issues.map(describeIssue);
  const auth = githubAuth(cleaned, problems);
  const classes = runnerClasses(
    {
      file: cleaned.RUNNER_CLASSES_FILE,
      namePrefix: parsed.success ? parsed.data.RUNNER_NAME_PREFIX : (cleaned.RUNNER_NAME_PREFIX ?? "nomad-gha"),
      explicit: {
        RUNNER_LABELS: cleaned.RUNNER_LABELS,
        NOMAD_RUNNER_JOB: cleaned.NOMAD_RUNNER_JOB,
        NOMAD_RUNNER_JOB_FILE: cleaned.NOMAD_RUNNER_JOB_FILE,
        NOMAD_RUNNER_JOB_VARS_FILE: cleaned.NOMAD_RUNNER_JOB_VARS_FILE,
      },
      labels: list(cleaned.RUNNER_LABELS ?? "self-hosted,nomad"),
      job: parsed.success ? parsed.data.NOMAD_RUNNER_JOB : "github-runner",
      jobFile: parsed.success ? parsed.data.NOMAD_RUNNER_JOB_FILE : BUNDLED_RUNNER_JOB_FILE,
      varsFile: cleaned.NOMAD_RUNNER_JOB_VARS_FILE,
      registerRunnerJob: parsed.success ? parsed.data.NOMAD_REGISTER_RUNNER_JOB : true,
    },
    problems,
  );
  const allowedRepos = list(cleaned.ALLOWED_REPOS).map((r) => r.toLowerCase());
  for (const repo of allowedRepos) {
    if (!/^[^/\s]+\/[^/\s]+$/.test(repo)) problems.push(`ALLOWED_REPOS entry "${repo}" must look like owner/repo`);
  }
  // Fail closed: a PAT reaches every repository its owner can, so a webhook from any of them
  // would get a runner. A GitHub App's installations are its allow-list.
  const allowedOwners = list(cleaned.ALLOWED_OWNERS).map((o) => o.toLowerCase());
  if (cleaned.GITHUB_TOKEN && allowedOwners.length === 0 && allowedRepos.length === 0) {
    problems.push(
      "with GITHUB_TOKEN, set ALLOWED_OWNERS (owners) or ALLOWED_REPOS (owner/repo) to the repositories to serve; ALLOWED_OWNERS=* serves any that reach the webhook",
    );
  }
  if (allowedOwners.includes("*") && allowedOwners.length > 1) problems.push("ALLOWED_OWNERS=* means every owner: list owners or *, not both");
  if (parsed.success && parsed.data.RUNNER_SCOPE === "org" && parsed.data.RUNNER_REGISTRATION !== "jit" && !parsed.data.RUNNER_ALLOW_ORG_REGISTRATION_TOKEN) {
    problems.push(
      `RUNNER_REGISTRATION=${parsed.data.RUNNER_REGISTRATION} with RUNNER_SCOPE=org puts an organization registration token in each runner's prestart: whoever reads it can register runners for every repository of the organization; use RUNNER_REGISTRATION=jit, or set RUNNER_ALLOW_ORG_REGISTRATION_TOKEN=true to accept that`,
    );
  }
  if (cleaned.TUNNEL_TOKEN && cleaned.TUNNEL && cleaned.TUNNEL !== "named") {
    problems.push(`TUNNEL_TOKEN is set but TUNNEL=${cleaned.TUNNEL}: set TUNNEL=named (or leave TUNNEL unset) to use it, or unset TUNNEL_TOKEN`);
  }
  const webhookSecrets = list(cleaned.GITHUB_WEBHOOK_SECRET);
  if (cleaned.GITHUB_WEBHOOK_SECRET !== undefined && webhookSecrets.length === 0) {
    problems.push("GITHUB_WEBHOOK_SECRET must contain at least one secret");
  }
  const short = webhookSecrets.filter((secret) => secret.length < MIN_WEBHOOK_SECRET_LENGTH).length;
  if (short > 0 && parsed.success && !parsed.data.GITHUB_WEBHOOK_SECRET_ALLOW_SHORT) {
    problems.push(
      `GITHUB_WEBHOOK_SECRET: ${short} secret(s) shorter than ${MIN_WEBHOOK_SECRET_LENGTH} characters can be guessed from one signed delivery; use \`openssl rand -hex 32\` (in GitHub and here), or set GITHUB_WEBHOOK_SECRET_ALLOW_SHORT=true to accept that`,
    );
  }
  const nomadTls = tlsOptions("NOMAD", cleaned, problems);
  const vaultTls = tlsOptions("VAULT", cleaned, problems);
  const runnerCaPem = runnerVaultCa(cleaned, vaultTls, problems);
  if (cleaned.NOMAD_REGISTER_TOKEN && parsed.success && !parsed.data.NOMAD_REGISTER_RUNNER_JOB) {
    problems.push("NOMAD_REGISTER_TOKEN is set but NOMAD_REGISTER_RUNNER_JOB=false: the service registers nothing, so unset the token");
  }
  if (cleaned.NOMAD_REGISTER_TOKEN && cleaned.NOMAD_REGISTER_TOKEN === cleaned.NOMAD_TOKEN) {
    problems.push("NOMAD_REGISTER_TOKEN equals NOMAD_TOKEN: create it from policies/nomad-runner-job-admin.policy.hcl, or unset it");
  }
  if (!parsed.success || problems.length > 0 || !auth) throw new ConfigError(problems);
  const e = parsed.data;

  return {
    host: e.HOST,
    port: e.PORT,
    metricsPort: e.METRICS_PORT,
    logLevel: e.LOG_LEVEL,
    webhookBodyLimit: e.WEBHOOK_BODY_LIMIT,
    github: {
      webhookSecrets,
      auth,
      apiUrl: e.GITHUB_API_URL,
      webUrl: e.GITHUB_URL,
      webhookUrl: e.WEBHOOK_URL,
      budget: { pointsPerMinute: e.GITHUB_POINTS_PER_MINUTE, maxConcurrent: e.GITHUB_MAX_CONCURRENT },
    },
    runner: {
      classes,
      registration: e.RUNNER_REGISTRATION,
      scope: e.RUNNER_SCOPE,
      groupId: e.RUNNER_GROUP_ID,
      namePrefix: e.RUNNER_NAME_PREFIX,
    },
    // "*" is the explicit "every owner": no owner filter.
    allowedOwners: allowedOwners.filter((o) => o !== "*"),
    allowedRepos,
    nomad: {
      addr: e.NOMAD_ADDR,
      token: e.NOMAD_TOKEN,
      registerToken: e.NOMAD_REGISTER_TOKEN,
      namespace: e.NOMAD_NAMESPACE,
      region: e.NOMAD_REGION,
      registerRunnerJob: e.NOMAD_REGISTER_RUNNER_JOB,
      tls: nomadTls,
    },
    vault: {
      addr: e.VAULT_ADDR,
      token: e.VAULT_TOKEN,
      namespace: e.VAULT_NAMESPACE,
      kvMount: e.VAULT_KV_MOUNT,
      kvPrefix: e.VAULT_KV_PREFIX,
      runnerAddr: e.RUNNER_VAULT_ADDR ?? e.VAULT_ADDR,
      credentialDelivery: e.RUNNER_CREDENTIAL_DELIVERY,
      wrapTtl: e.VAULT_WRAP_TTL,
      requireAudit: e.VAULT_REQUIRE_AUDIT,
      tls: vaultTls,
      runnerCaPem,
    },
    reconcile: {
      intervalSeconds: e.RECONCILE_INTERVAL,
      retentionSeconds: e.RUNNER_RETENTION,
      graceSeconds: e.RECONCILE_GRACE,
    },
    // 0 means no limit.
    limits: {
      maxRunners: e.MAX_RUNNERS || Number.POSITIVE_INFINITY,
      maxRunnersPerRepo: e.MAX_RUNNERS_PER_REPO || Number.POSITIVE_INFINITY,
    },
    capacityScope: e.CAPACITY_SCOPE,
    tunnel: {
      // A token means a named tunnel was set up; anything else must be asked for explicitly.
      mode: e.TUNNEL ?? (e.TUNNEL_TOKEN ? "named" : "off"),
      token: e.TUNNEL_TOKEN,
      configFile: e.TUNNEL_CONFIG,
      cloudflaredBin: e.CLOUDFLARED_BIN,
    },
    dispatcherId: e.DISPATCHER_ID,
  };
}
