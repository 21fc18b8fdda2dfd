import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";

const minimal = { GITHUB_WEBHOOK_SECRET: "a-webhook-secret-of-20-chars", GITHUB_TOKEN: "ghp_x", VAULT_TOKEN: "hvs.x", ALLOWED_OWNERS: "acme" };

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe("loadConfig", () => {
  it("applies the documented defaults", () => {
    const c = loadConfig(minimal);
    expect(c.host).toBe("127.0.0.1");
    expect(c.port).toBe(8080);
    expect(c.github.apiUrl).toBe("https://api.github.com");
    expect(c.github.webUrl).toBe("https://github.com");
    expect(c.runner.classes).toMatchObject([{ name: "default", labels: ["nomad", "self-hosted"], job: "github-runner", runnerPrefix: "nomad-gha" }]);
    expect(c.runner.registration).toBe("jit");
    expect(c.nomad).toMatchObject({ addr: "http://127.0.0.1:4646", namespace: "default", registerRunnerJob: true });
    expect(c.vault).toMatchObject({ addr: "http://127.0.0.1:8200", kvMount: "secret", kvPrefix: "nomad-gha-dispatcher", requireAudit: true });
    expect(c.reconcile.intervalSeconds).toBe(60);
    expect(c.limits.maxRunners).toBe(Number.POSITIVE_INFINITY);
    expect(c.tunnel.mode).toBe("off");
  });

  it("takes an optional WEBHOOK_URL (how a PAT setup finds its webhooks), refusing one that is not a URL", () => {
    expect(loadConfig(minimal).github.webhookUrl).toBeUndefined();
    expect(loadConfig({ ...minimal, WEBHOOK_URL: "https://ci.example.com/webhook" }).github.webhookUrl).toBe("https://ci.example.com/webhook");
    expect(problems({ ...minimal, WEBHOOK_URL: "ci.example.com" })).toEqual([
      "WEBHOOK_URL must be the webhook's public URL, like https://dispatcher.example.com/webhook",
    ]);
  });

  it("takes an optional NOMAD_REGISTER_TOKEN for registering the runner job, refusing one that cannot be used", () => {
    expect(loadConfig({ ...minimal, NOMAD_TOKEN: "run", NOMAD_REGISTER_TOKEN: "register" }).nomad).toMatchObject({ token: "run", registerToken: "register" });
    expect(loadConfig(minimal).nomad.registerToken).toBeUndefined();
    expect(problems({ ...minimal, NOMAD_REGISTER_TOKEN: "two words" })).toEqual(["NOMAD_REGISTER_TOKEN must be a Nomad ACL token's SecretID (no spaces)"]);
    expect(problems({ ...minimal, NOMAD_REGISTER_TOKEN: "t", NOMAD_REGISTER_RUNNER_JOB: "false" })).toEqual([
      "NOMAD_REGISTER_TOKEN is set but NOMAD_REGISTER_RUNNER_JOB=false: the service registers nothing, so unset the token",
    ]);
    expect(problems({ ...minimal, NOMAD_TOKEN: "same", NOMAD_REGISTER_TOKEN: "same" })).toEqual([
      "NOMAD_REGISTER_TOKEN equals NOMAD_TOKEN: create it from policies/nomad-runner-job-admin.policy.hcl, or unset it",
    ]);
  });

  it("parses lists case-insensitively and accepts several webhook secrets for rotation", () => {
    const c = loadConfig({
      ...minimal,
      GITHUB_WEBHOOK_SECRET: "old-secret-of-20-chars, new-secret-of-20-chars",
      RUNNER_LABELS: "Self-Hosted, NOMAD, gpu",
      ALLOWED_OWNERS: "Acme",
      ALLOWED_REPOS: "Acme/App",
      NOMAD_ADDR: "https://nomad.internal:4646/",
    });
    expect(c.github.webhookSecrets).toEqual(["old-secret-of-20-chars", "new-secret-of-20-chars"]);
    expect(c.runner.classes[0]?.labels).toEqual(["gpu", "nomad", "self-hosted"]);
    expect(c.allowedOwners).toEqual(["acme"]);
    expect(c.allowedRepos).toEqual(["acme/app"]);
    expect(c.nomad.addr).toBe("https://nomad.internal:4646");
  });

  it("reports every problem at once, one line each", () => {
    const p = problems({ PORT: "99999", NOMAD_ADDR: "not a url", ALLOWED_REPOS: "justowner", RUNNER_REGISTRATION: "magic" });
    expect(p).toContain('PORT must be an integer from 0 to 65535, got "99999"');
    expect(p.some((l) => l.startsWith("NOMAD_ADDR must be a URL"))).toBe(true);
    expect(p).toContain('ALLOWED_REPOS entry "justowner" must look like owner/repo');
    expect(p).toContain("RUNNER_REGISTRATION must be jit, token or auto");
    expect(p.some((l) => l.includes("GITHUB_WEBHOOK_SECRET is required"))).toBe(true);
    expect(p.some((l) => l.includes("VAULT_TOKEN is required"))).toBe(true);
    expect(p.some((l) => l.startsWith("GitHub credentials missing"))).toBe(true);
    for (const line of p) expect(line).not.toContain("\n");
  });

  it("fails closed: a PAT needs an allow-list, and * must be asked for by name", () => {
    const { ALLOWED_OWNERS: _, ...unlisted } = minimal;
    expect(problems(unlisted)).toEqual([
      "with GITHUB_TOKEN, set ALLOWED_OWNERS (owners) or ALLOWED_REPOS (owner/repo) to the repositories to serve; ALLOWED_OWNERS=* serves any that reach the webhook",
    ]);
    expect(problems({ ...unlisted, ALLOWED_REPOS: "acme/app" })).toEqual([]);
    expect(loadConfig({ ...unlisted, ALLOWED_OWNERS: "*" }).allowedOwners).toEqual([]);
    expect(problems({ ...unlisted, ALLOWED_OWNERS: "*,acme" })).toEqual(["ALLOWED_OWNERS=* means every owner: list owners or *, not both"]);
    // A GitHub App's installations are its allow-list.
    const { privateKey } = generateKeyPairSync("rsa", {
      modulusLength: 2048,
      privateKeyEncoding: { type: "pkcs8", format: "pem" },
      publicKeyEncoding: { type: "spki", format: "pem" },
    });
    const { GITHUB_TOKEN: __, ...appEnv } = unlisted;
    expect(problems({ ...appEnv, GITHUB_APP_ID: "1", GITHUB_APP_PRIVATE_KEY: privateKey })).toEqual([]);
  });

  it("refuses organization registration tokens in runners unless explicitly allowed", () => {
    for (const registration of ["token", "auto"]) {
      const refused = problems({ ...minimal, RUNNER_SCOPE: "org", RUNNER_REGISTRATION: registration });
      expect(refused).toHaveLength(1);
      expect(refused[0]).toMatch(new RegExp(`^RUNNER_REGISTRATION=${registration} with RUNNER_SCOPE=org .*RUNNER_ALLOW_ORG_REGISTRATION_TOKEN=true`));
      expect(problems({ ...minimal, RUNNER_SCOPE: "org", RUNNER_REGISTRATION: registration, RUNNER_ALLOW_ORG_REGISTRATION_TOKEN: "true" })).toEqual([]);
      expect(problems({ ...minimal, RUNNER_SCOPE: "repo", RUNNER_REGISTRATION: registration })).toEqual([]);
    }
    expect(problems({ ...minimal, RUNNER_SCOPE: "org" })).toEqual([]); // JIT: one runner, one job
  });

  it("accepts a GitHub App with a key inline or from a file, and rejects mixing auth kinds", () => {
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const pem = privateKey.export({ type: "pkcs1", format: "pem" }).toString();
    const base = { GITHUB_WEBHOOK_SECRET: minimal.GITHUB_WEBHOOK_SECRET, VAULT_TOKEN: "t" };
    expect(loadConfig({ ...base, GITHUB_APP_ID: "123", GITHUB_APP_PRIVATE_KEY: pem.replace(/\n/g, "\\n") }).github.auth).toMatchObject({
      kind: "app",
      appId: 123,
    });
    const dir = mkdtempSync(join(tmpdir(), "cfg-"));
    writeFileSync(join(dir, "key.pem"), pem);
    expect(loadConfig({ ...base, GITHUB_APP_ID: "123", GITHUB_APP_PRIVATE_KEY_FILE: join(dir, "key.pem") }).github.auth.kind).toBe("app");
    expect(problems({ ...base, GITHUB_APP_ID: "123", GITHUB_APP_PRIVATE_KEY_FILE: join(dir, "missing.pem") })[0]).toMatch(
      /GITHUB_APP_PRIVATE_KEY_FILE cannot be read/,
    );
    expect(problems({ ...base, GITHUB_APP_ID: "123", GITHUB_APP_PRIVATE_KEY: "nope" })[0]).toMatch(/not a PEM private key/);
    expect(problems({ ...base, GITHUB_TOKEN: "x", GITHUB_APP_ID: "1", GITHUB_APP_PRIVATE_KEY: pem })[0]).toMatch(/either GITHUB_TOKEN or GITHUB_APP_ID/);
  });

  it("turns on a named tunnel when a tunnel token is given", () => {
    expect(loadConfig({ ...minimal, TUNNEL_TOKEN: "tok" }).tunnel.mode).toBe("named");
    expect(loadConfig({ ...minimal, TUNNEL: "quick" }).tunnel.mode).toBe("quick");
  });
});
