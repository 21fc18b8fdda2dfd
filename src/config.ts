import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { z } from "./validation.js";

/** Where the bundled runner job lives, relative to this file in both src/ and dist/. */
export const BUNDLED_RUNNER_JOB_FILE = fileURLToPath(new URL("../jobs/github-runner.nomad.hcl", import.meta.url));

export type RunnerRegistration = "jit" | "token" | "auto";
export type RunnerScope = "repo" | "org";

export type GitHubAuthConfig =
  | { kind: "token"; token: string }
  | { kind: "app"; appId: number; privateKey: string };

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
    /** Our side of GitHub's secondary rate limit. */
    budget: { pointsPerMinute: number; maxConcurrent: number };
  };
  runner: {
    /** Labels a job must request (all of them, lower-cased) for us to serve it. */
    labels: string[];
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
    namespace: string;
    region?: string;
    runnerJob: string;
    runnerJobFile: string;
    runnerJobVarsFile?: string;
    registerRunnerJob: boolean;
  };
  vault: {
    addr: string;
    token: string;
    namespace?: string;
    kvMount: string;
    kvPrefix: string;
    /** VAULT_ADDR as the runner allocations reach it. */
    runnerAddr: string;
    wrapTtl: string;
    requireAudit: boolean;
  };
  reconcile: {
    intervalSeconds: number;
    /** Dead runner jobs stay visible in Nomad this long before they are purged. */
    retentionSeconds: number;
    /** How long something may look half-done (another replica mid-way) before it is repaired. */
    graceSeconds: number;
  };
  limits: { maxRunners: number; maxRunnersPerRepo: number };
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

const list = (v: string | undefined) =>
  (v ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);

const url = (name: string) =>
  z.pipe(
    z.url(`${name} must be a URL like http://127.0.0.1:4646`),
    z.transform((s) => s.replace(/\/+$/, "")),
  );

const bool = (name: string, dflt: boolean) =>
  z.pipe(
    z.optional(z.enum(["true", "false", "1", "0", "yes", "no"], `${name} must be true or false`)),
    z.transform((v) => (v === undefined ? dflt : ["true", "1", "yes"].includes(v))),
  );

const int = (name: string, dflt: number, min: number, max: number) =>
  z.pipe(
    z.optional(z.string()),
    z.transform((v, ctx) => {
      if (v === undefined || v === "") return dflt;
      const n = Number(v);
      if (!Number.isInteger(n) || n < min || n > max) {
        ctx.issues.push({ code: "custom", message: `${name} must be an integer from ${min} to ${max}, got "${v}"`, input: v });
        return z.NEVER;
      }
      return n;
    }),
  );

/** A string matching `pattern` (else `message`), `dflt` when unset. */
const matching = (pattern: RegExp, message: string, dflt: string) => z._default(z.string().check(z.regex(pattern, message)), dflt);
const optionalString = z.optional(z.string());
const nonEmpty = (dflt: string) => z._default(z.string().check(z.minLength(1)), dflt);
const oneOf = <const T extends readonly [string, ...string[]]>(values: T, name: string) =>
  z.enum(values, `${name} must be ${values.slice(0, -1).join(", ")} or ${values.at(-1)}`);

const durationPattern = /^\d+[smh]?$/;

const envSchema = z.object({
  HOST: nonEmpty("127.0.0.1"),
  PORT: int("PORT", 8080, 0, 65535),
  METRICS_PORT: z.pipe(
    matching(/^(off|\d{1,5})$/, "METRICS_PORT must be a port number or off", "9102"),
    z.transform((v) => (v === "off" ? undefined : Number(v))),
  ),
  LOG_LEVEL: z._default(z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]), "info"),
  WEBHOOK_BODY_LIMIT: int("WEBHOOK_BODY_LIMIT", 1024 * 1024, 1024, 25 * 1024 * 1024),
  GITHUB_WEBHOOK_SECRET: z.string("GITHUB_WEBHOOK_SECRET is required (the secret set on the GitHub webhook)"),
  GITHUB_TOKEN: optionalString,
  GITHUB_APP_ID: z.optional(z.string().check(z.regex(/^\d+$/, "GITHUB_APP_ID must be the numeric App ID"))),
  GITHUB_APP_PRIVATE_KEY: optionalString,
  GITHUB_APP_PRIVATE_KEY_FILE: optionalString,
  GITHUB_API_URL: z._default(url("GITHUB_API_URL"), "https://api.github.com"),
  GITHUB_URL: z._default(url("GITHUB_URL"), "https://github.com"),
  RUNNER_LABELS: z._default(z.string(), "self-hosted,nomad"),
  RUNNER_REGISTRATION: z._default(oneOf(["jit", "token", "auto"], "RUNNER_REGISTRATION"), "jit"),
  GITHUB_POINTS_PER_MINUTE: int("GITHUB_POINTS_PER_MINUTE", 900, 10, 100_000),
  GITHUB_MAX_CONCURRENT: int("GITHUB_MAX_CONCURRENT", 100, 1, 1000),
  RUNNER_SCOPE: z._default(oneOf(["repo", "org"], "RUNNER_SCOPE"), "repo"),
  RUNNER_GROUP_ID: int("RUNNER_GROUP_ID", 1, 1, Number.MAX_SAFE_INTEGER),
  RUNNER_NAME_PREFIX: matching(/^[a-z0-9][a-z0-9-]{0,30}$/, "RUNNER_NAME_PREFIX must be 1-31 lower-case letters, digits or dashes", "nomad-gha"),
  ALLOWED_OWNERS: optionalString,
  ALLOWED_REPOS: optionalString,
  NOMAD_ADDR: z._default(url("NOMAD_ADDR"), "http://127.0.0.1:4646"),
  NOMAD_TOKEN: optionalString,
  NOMAD_NAMESPACE: nonEmpty("default"),
  NOMAD_REGION: optionalString,
  NOMAD_RUNNER_JOB: matching(/^[a-zA-Z0-9_-]+$/, "NOMAD_RUNNER_JOB must be a plain job ID (letters, digits, - and _)", "github-runner"),
  NOMAD_RUNNER_JOB_FILE: z._default(z.string(), BUNDLED_RUNNER_JOB_FILE),
  NOMAD_RUNNER_JOB_VARS_FILE: optionalString,
  NOMAD_REGISTER_RUNNER_JOB: bool("NOMAD_REGISTER_RUNNER_JOB", true),
  VAULT_ADDR: z._default(url("VAULT_ADDR"), "http://127.0.0.1:8200"),
  VAULT_TOKEN: z.string("VAULT_TOKEN is required").check(z.minLength(1, "VAULT_TOKEN is required")),
  VAULT_NAMESPACE: optionalString,
  VAULT_KV_MOUNT: matching(/^[a-zA-Z0-9_-]+$/, "VAULT_KV_MOUNT must be a mount name like secret", "secret"),
  VAULT_KV_PREFIX: matching(/^[a-zA-Z0-9_-]+(\/[a-zA-Z0-9_-]+)*$/, "VAULT_KV_PREFIX must be a path like nomad-gha-dispatcher", "nomad-gha-dispatcher"),
  RUNNER_VAULT_ADDR: z.optional(url("RUNNER_VAULT_ADDR")),
  VAULT_WRAP_TTL: matching(durationPattern, "VAULT_WRAP_TTL must be a duration like 10m", "10m"),
  VAULT_REQUIRE_AUDIT: bool("VAULT_REQUIRE_AUDIT", true),
  RECONCILE_INTERVAL: int("RECONCILE_INTERVAL", 60, 1, 86400),
  RECONCILE_GRACE: int("RECONCILE_GRACE", 120, 0, 86400),
  RUNNER_RETENTION: int("RUNNER_RETENTION", 600, 0, 7 * 86400),
  MAX_RUNNERS: int("MAX_RUNNERS", 0, 0, 100_000),
  MAX_RUNNERS_PER_REPO: int("MAX_RUNNERS_PER_REPO", 0, 0, 100_000),
  TUNNEL: z.optional(oneOf(["off", "quick", "named"], "TUNNEL")),
  TUNNEL_TOKEN: optionalString,
  TUNNEL_CONFIG: z._default(z.string(), "wrangler-free-tunnel.yml"),
  CLOUDFLARED_BIN: z._default(z.string(), "cloudflared"),
  DISPATCHER_ID: matching(/^[a-z0-9-]{1,40}$/, "DISPATCHER_ID must be lower-case letters, digits, dashes", "nomad-gha-dispatcher"),
});

type Env = Record<string, string | undefined>;

/** Parses the environment; throws ConfigError listing every problem, one line each. */
export function loadConfig(env: Env = process.env): Config {
  const cleaned: Env = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const parsed = envSchema.safeParse(cleaned);
  // Cross-field checks run on the raw values too, so one start lists every problem at once.
  const problems = parsed.success ? [] : parsed.error.issues.map(describeIssue);
  const auth = githubAuth(cleaned, problems);
  const labels = list(cleaned.RUNNER_LABELS ?? "self-hosted,nomad").map((l) => l.toLowerCase());
  if (labels.length === 0) problems.push("RUNNER_LABELS must name at least one label");
  const allowedRepos = list(cleaned.ALLOWED_REPOS).map((r) => r.toLowerCase());
  for (const repo of allowedRepos) {
    if (!/^[^/\s]+\/[^/\s]+$/.test(repo)) problems.push(`ALLOWED_REPOS entry "${repo}" must look like owner/repo`);
  }
  if (cleaned.TUNNEL_TOKEN && cleaned.TUNNEL && cleaned.TUNNEL !== "named") {
    problems.push(`TUNNEL_TOKEN is set but TUNNEL=${cleaned.TUNNEL}: set TUNNEL=named (or leave TUNNEL unset) to use it, or unset TUNNEL_TOKEN`);
  }
  const webhookSecrets = list(cleaned.GITHUB_WEBHOOK_SECRET);
  if (cleaned.GITHUB_WEBHOOK_SECRET !== undefined && webhookSecrets.length === 0) {
    problems.push("GITHUB_WEBHOOK_SECRET must contain at least one secret");
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
      budget: { pointsPerMinute: e.GITHUB_POINTS_PER_MINUTE, maxConcurrent: e.GITHUB_MAX_CONCURRENT },
    },
    runner: {
      labels,
      registration: e.RUNNER_REGISTRATION,
      scope: e.RUNNER_SCOPE,
      groupId: e.RUNNER_GROUP_ID,
      namePrefix: e.RUNNER_NAME_PREFIX,
    },
    allowedOwners: list(e.ALLOWED_OWNERS).map((o) => o.toLowerCase()),
    allowedRepos,
    nomad: {
      addr: e.NOMAD_ADDR,
      token: e.NOMAD_TOKEN,
      namespace: e.NOMAD_NAMESPACE,
      region: e.NOMAD_REGION,
      runnerJob: e.NOMAD_RUNNER_JOB,
      runnerJobFile: e.NOMAD_RUNNER_JOB_FILE,
      runnerJobVarsFile: e.NOMAD_RUNNER_JOB_VARS_FILE,
      registerRunnerJob: e.NOMAD_REGISTER_RUNNER_JOB,
    },
    vault: {
      addr: e.VAULT_ADDR,
      token: e.VAULT_TOKEN,
      namespace: e.VAULT_NAMESPACE,
      kvMount: e.VAULT_KV_MOUNT,
      kvPrefix: e.VAULT_KV_PREFIX,
      runnerAddr: e.RUNNER_VAULT_ADDR ?? e.VAULT_ADDR,
      wrapTtl: e.VAULT_WRAP_TTL,
      requireAudit: e.VAULT_REQUIRE_AUDIT,
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

function githubAuth(e: Env, problems: string[]): GitHubAuthConfig | undefined {
  const hasApp = e.GITHUB_APP_ID !== undefined;
  const hasKey = e.GITHUB_APP_PRIVATE_KEY !== undefined || e.GITHUB_APP_PRIVATE_KEY_FILE !== undefined;
  if (e.GITHUB_TOKEN && (hasApp || hasKey)) {
    problems.push("set either GITHUB_TOKEN or GITHUB_APP_ID with GITHUB_APP_PRIVATE_KEY(_FILE), not both");
    return undefined;
  }
  if (e.GITHUB_TOKEN) return { kind: "token", token: e.GITHUB_TOKEN };
  if (!hasApp && !hasKey) {
    problems.push("GitHub credentials missing: set GITHUB_TOKEN, or GITHUB_APP_ID with GITHUB_APP_PRIVATE_KEY or GITHUB_APP_PRIVATE_KEY_FILE");
    return undefined;
  }
  if (!hasApp) {
    problems.push("GITHUB_APP_ID is required with GITHUB_APP_PRIVATE_KEY(_FILE)");
    return undefined;
  }
  if (!/^\d+$/.test(e.GITHUB_APP_ID ?? "")) return undefined; // reported by the schema
  const privateKey = readPrivateKey(e, problems);
  return privateKey ? { kind: "app", appId: Number(e.GITHUB_APP_ID), privateKey } : undefined;
}

function readPrivateKey(e: Env, problems: string[]): string | undefined {
  let key = e.GITHUB_APP_PRIVATE_KEY;
  if (!key && e.GITHUB_APP_PRIVATE_KEY_FILE) {
    try {
      key = readFileSync(e.GITHUB_APP_PRIVATE_KEY_FILE, "utf8");
    } catch (err) {
      problems.push(`GITHUB_APP_PRIVATE_KEY_FILE cannot be read: ${(err as Error).message}`);
      return undefined;
    }
  }
  if (!key) {
    problems.push("GITHUB_APP_PRIVATE_KEY or GITHUB_APP_PRIVATE_KEY_FILE is required with GITHUB_APP_ID");
    return undefined;
  }
  // Env files often carry the PEM with literal "\n"; accept both forms.
  key = key.replace(/\\n/g, "\n");
  if (!key.includes("PRIVATE KEY-----")) {
    problems.push("GITHUB_APP_PRIVATE_KEY is not a PEM private key (expected -----BEGIN ... PRIVATE KEY-----)");
    return undefined;
  }
  return key;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const name = issue.path.join(".");
  if (issue.message.startsWith(name)) return issue.message;
  return `${name}: ${issue.message}`;
}
