import { z } from "../validation.js";

// The environment's schema: every variable, its default and its one-line problem message.

export type Env = Record<string, string | undefined>;

export const list = (v: string | undefined) =>
  (v ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);

// http(s) only: a bare "host:port" parses as a URL whose scheme is the host, and then fails
// at the first request with an unrelated message.
const url = (name: string, example: string) =>
  z.pipe(
    z.url({ protocol: /^https?$/, error: `${name} must be a URL starting with http:// or https://, like ${example}` }),
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

/** Built with the bundled runner job file as the default (its path is known where config.ts is). */
export function envSchema(bundledRunnerJobFile: string) {
  return z.object({
    HOST: nonEmpty("127.0.0.1"),
    PORT: int("PORT", 8080, 0, 65535),
    METRICS_PORT: z.pipe(
      matching(/^(off|\d{1,5})$/, "METRICS_PORT must be a port number or off", "9102"),
      z.transform((v) => (v === "off" ? undefined : Number(v))),
    ),
    LOG_LEVEL: z._default(z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]), "info"),
    WEBHOOK_BODY_LIMIT: int("WEBHOOK_BODY_LIMIT", 1024 * 1024, 1024, 25 * 1024 * 1024),
    GITHUB_WEBHOOK_SECRET: z.string("GITHUB_WEBHOOK_SECRET is required (the secret set on the GitHub webhook)"),
    // A short secret can be guessed offline from one signed delivery; shorter needs this opt-in.
    GITHUB_WEBHOOK_SECRET_ALLOW_SHORT: bool("GITHUB_WEBHOOK_SECRET_ALLOW_SHORT", false),
    GITHUB_TOKEN: optionalString,
    GITHUB_APP_ID: z.optional(z.string().check(z.regex(/^\d+$/, "GITHUB_APP_ID must be the numeric App ID"))),
    GITHUB_APP_PRIVATE_KEY: optionalString,
    GITHUB_APP_PRIVATE_KEY_FILE: optionalString,
    GITHUB_API_URL: z._default(url("GITHUB_API_URL", "https://api.github.com"), "https://api.github.com"),
    GITHUB_URL: z._default(url("GITHUB_URL", "https://github.com"), "https://github.com"),
    // The webhook's public URL as GitHub has it (a PAT setup's org and repo hooks are found by it).
    WEBHOOK_URL: z.optional(z.url("WEBHOOK_URL must be the webhook's public URL, like https://dispatcher.example.com/webhook")),
    RUNNER_LABELS: z._default(z.string(), "self-hosted,nomad"),
    // The runner classes (YAML); without it one class comes from RUNNER_LABELS and NOMAD_RUNNER_JOB*.
    RUNNER_CLASSES_FILE: optionalString,
    RUNNER_REGISTRATION: z._default(oneOf(["jit", "token", "auto"], "RUNNER_REGISTRATION"), "jit"),
    GITHUB_POINTS_PER_MINUTE: int("GITHUB_POINTS_PER_MINUTE", 900, 10, 100_000),
    GITHUB_MAX_CONCURRENT: int("GITHUB_MAX_CONCURRENT", 100, 1, 1000),
    RUNNER_SCOPE: z._default(oneOf(["repo", "org"], "RUNNER_SCOPE"), "repo"),
    RUNNER_GROUP_ID: int("RUNNER_GROUP_ID", 1, 1, Number.MAX_SAFE_INTEGER),
    RUNNER_NAME_PREFIX: matching(/^[a-z0-9][a-z0-9-]{0,30}$/, "RUNNER_NAME_PREFIX must be 1-31 lower-case letters, digits or dashes", "nomad-gha"),
    ALLOWED_OWNERS: optionalString,
    ALLOWED_REPOS: optionalString,
    RUNNER_ALLOW_ORG_REGISTRATION_TOKEN: bool("RUNNER_ALLOW_ORG_REGISTRATION_TOKEN", false),
    NOMAD_ADDR: z._default(url("NOMAD_ADDR", "https://nomad.example.com:4646"), "http://127.0.0.1:4646"),
    NOMAD_TOKEN: optionalString,
    // Registers the runner job at start (parse + register) instead of NOMAD_TOKEN, which then
    // needs no registration rights (policies/nomad-runner-job-admin.policy.hcl).
    NOMAD_REGISTER_TOKEN: z.optional(z.string().check(z.regex(/^\S+$/, "NOMAD_REGISTER_TOKEN must be a Nomad ACL token's SecretID (no spaces)"))),
    NOMAD_NAMESPACE: nonEmpty("default"),
    NOMAD_REGION: optionalString,
    NOMAD_RUNNER_JOB: matching(/^[a-zA-Z0-9_-]+$/, "NOMAD_RUNNER_JOB must be a plain job ID (letters, digits, - and _)", "github-runner"),
    NOMAD_RUNNER_JOB_FILE: z._default(z.string(), bundledRunnerJobFile),
    NOMAD_RUNNER_JOB_VARS_FILE: optionalString,
    NOMAD_REGISTER_RUNNER_JOB: bool("NOMAD_REGISTER_RUNNER_JOB", true),
    VAULT_ADDR: z._default(url("VAULT_ADDR", "https://vault.example.com:8200"), "http://127.0.0.1:8200"),
    VAULT_TOKEN: z.string("VAULT_TOKEN is required").check(z.minLength(1, "VAULT_TOKEN is required")),
    VAULT_NAMESPACE: optionalString,
    VAULT_KV_MOUNT: matching(/^[a-zA-Z0-9_-]+$/, "VAULT_KV_MOUNT must be a mount name like secret", "secret"),
    VAULT_KV_PREFIX: matching(/^[a-zA-Z0-9_-]+(\/[a-zA-Z0-9_-]+)*$/, "VAULT_KV_PREFIX must be a path like nomad-gha-dispatcher", "nomad-gha-dispatcher"),
    RUNNER_VAULT_ADDR: z.optional(url("RUNNER_VAULT_ADDR", "https://vault.example.com:8200")),
    RUNNER_CREDENTIAL_DELIVERY: z._default(oneOf(["workload-identity", "wrap"], "RUNNER_CREDENTIAL_DELIVERY"), "workload-identity"),
    VAULT_WRAP_TTL: matching(durationPattern, "VAULT_WRAP_TTL must be a duration like 5m", "5m"),
    VAULT_REQUIRE_AUDIT: bool("VAULT_REQUIRE_AUDIT", true),
    // TLS variables (NOMAD_CACERT, VAULT_CAPATH, ...) are read by config/tls.ts, as the CLIs read them.
    RUNNER_VAULT_CACERT: optionalString,
    RECONCILE_INTERVAL: int("RECONCILE_INTERVAL", 60, 1, 86400),
    RECONCILE_GRACE: int("RECONCILE_GRACE", 120, 0, 86400),
    RUNNER_RETENTION: int("RUNNER_RETENTION", 600, 0, 7 * 86400),
    MAX_RUNNERS: int("MAX_RUNNERS", 0, 0, 100_000),
    MAX_RUNNERS_PER_REPO: int("MAX_RUNNERS_PER_REPO", 0, 0, 100_000),
    CAPACITY_SCOPE: z._default(oneOf(["cluster", "process"], "CAPACITY_SCOPE"), "cluster"),
    TUNNEL: z.optional(oneOf(["off", "quick", "named"], "TUNNEL")),
    TUNNEL_TOKEN: optionalString,
    TUNNEL_CONFIG: z._default(z.string(), "wrangler-free-tunnel.yml"),
    CLOUDFLARED_BIN: z._default(z.string(), "cloudflared"),
    DISPATCHER_ID: matching(/^[a-z0-9-]{1,40}$/, "DISPATCHER_ID must be lower-case letters, digits, dashes", "nomad-gha-dispatcher"),
  });
}

export function describeIssue(issue: z.core.$ZodIssue): string {
  const name = issue.path.join(".");
  if (issue.message.startsWith(name)) return issue.message;
  return `${name}: ${issue.message}`;
}
