// `npm run test:live`: the adapters against a real Nomad, Vault and GitHub. Each part runs only
// when its environment is given and says clearly what it skipped:
//   VAULT_ADDR + VAULT_TOKEN            Vault KV v2 + response wrapping (VAULT_KV_MOUNT, default secret)
//   NOMAD_ADDR (+ NOMAD_TOKEN)          parse/register/read/purge a throw-away parameterized job
//   LIVE_GITHUB_REPO=owner/repo + GITHUB_TOKEN (admin on the repo)
//                                       JIT runner registration, lookup and removal
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { type TlsOptions, tlsOptions } from "../../src/config/tls.js";
import { BUNDLED_RUNNER_JOB_FILE } from "../../src/config.js";
import { GitHubClient } from "../../src/github/client.js";
import { NomadClient } from "../../src/nomad/client.js";
import { inlineFiles, runnerJobProblems, runnerJobVariables } from "../../src/nomad/runner-job.js";
import { VaultStore } from "../../src/vault/client.js";

const env = process.env;
const suffix = randomBytes(4).toString("hex");
const vaultReady = Boolean(env.VAULT_ADDR && env.VAULT_TOKEN);
const nomadReady = Boolean(env.NOMAD_ADDR);
const githubReady = Boolean(env.LIVE_GITHUB_REPO && env.GITHUB_TOKEN);

for (const [ready, what, needs] of [
  [vaultReady, "Vault", "VAULT_ADDR and VAULT_TOKEN"],
  [nomadReady, "Nomad", "NOMAD_ADDR (and NOMAD_TOKEN with ACLs)"],
  [githubReady, "GitHub", "LIVE_GITHUB_REPO=owner/repo and GITHUB_TOKEN"],
] as const) {
  if (!ready) console.warn(`test:live: skipping the ${what} checks: set ${needs} to run them`);
}

/** The clusters' TLS variables, read as the service reads them; a problem stops the run by name. */
function liveTls(prefix: "NOMAD" | "VAULT"): TlsOptions {
  const problems: string[] = [];
  const tls = tlsOptions(prefix, env, problems);
  if (problems.length > 0) throw new Error(problems.join("; "));
  return tls;
}

describe.skipIf(!vaultReady)("Vault (live)", () => {
  const store = new VaultStore({
    addr: env.VAULT_ADDR ?? "",
    token: env.VAULT_TOKEN ?? "",
    namespace: env.VAULT_NAMESPACE,
    kvMount: env.VAULT_KV_MOUNT ?? "secret",
    kvPrefix: `${env.VAULT_KV_PREFIX ?? "nomad-gha-dispatcher"}-livetest`,
    runnerJob: { namespace: env.NOMAD_NAMESPACE ?? "default", id: "github-runner" },
    tls: liveTls("VAULT"),
  });

  it("stores, wraps once, and deletes a runner secret", async () => {
    const name = `livetest-${suffix}`;
    expect((await store.health()).sealed).toBe(false);
    await store.putRunnerSecret(name, { kind: "token", registration_token: `fake-${suffix}` });
    expect(await store.listRunnerSecrets()).toContain(name);
    const wrap = await store.wrapRunnerSecret(name, "1m");
    const unwrap = (token: string) => fetch(`${env.VAULT_ADDR}/v1/sys/wrapping/unwrap`, { method: "POST", headers: { "X-Vault-Token": token } });
    const first = await unwrap(wrap);
    expect(first.status).toBe(200);
    expect(((await first.json()) as { data: { data: { registration_token: string } } }).data.data.registration_token).toBe(`fake-${suffix}`);
    expect((await unwrap(wrap)).status).toBe(400);
    await store.deleteRunnerSecret(name);
    expect(await store.hasRunnerSecret(name)).toBe(false);
  });
});

describe.skipIf(!nomadReady)("Nomad (live)", () => {
  const nomad = new NomadClient({
    addr: env.NOMAD_ADDR ?? "",
    token: env.NOMAD_TOKEN,
    namespace: env.NOMAD_NAMESPACE ?? "default",
    region: env.NOMAD_REGION,
    tls: liveTls("NOMAD"),
  });

  it("parses the runner job, registers a throw-away copy, rejects a dispatch without meta, and purges it", async () => {
    expect(await nomad.leader()).not.toBe("");
    const job = await nomad.parseJob(
      await inlineFiles(readFileSync(BUNDLED_RUNNER_JOB_FILE, "utf8"), BUNDLED_RUNNER_JOB_FILE),
      runnerJobVariables(
        { addr: env.VAULT_ADDR ?? "http://127.0.0.1:8200", kvMount: "secret", kvPrefix: "nomad-gha-dispatcher", credentialDelivery: "workload-identity" },
        "",
      ),
    );
    expect(runnerJobProblems(job, "workload-identity")).toEqual([]);
    const id = `github-runner-livetest-${suffix}`;
    job.ID = id;
    job.Name = id;
    await nomad.registerJob(job);
    try {
      expect((await nomad.readJob(id))?.ParameterizedJob).toBeTruthy();
      await expect(nomad.dispatch(id, { meta: {}, idempotencyToken: `livetest-${suffix}` })).rejects.toThrow(/required meta/);
    } finally {
      await nomad.stopJob(id, { purge: true });
    }
    expect(await nomad.readJob(id)).toBeUndefined();
  });
});

describe.skipIf(!githubReady)("GitHub (live)", () => {
  const [owner = "", repo = ""] = (env.LIVE_GITHUB_REPO ?? "").split("/");
  const github = new GitHubClient({
    auth: { kind: "token", token: env.GITHUB_TOKEN ?? "" },
    apiUrl: env.GITHUB_API_URL ?? "https://api.github.com",
    webUrl: env.GITHUB_URL ?? "https://github.com",
    scope: "repo",
    runnerGroupId: 1,
  });

  it("registers a JIT runner, finds it, refuses a duplicate name, and removes it", async () => {
    const target = { owner, repo };
    const name = `nomad-gha-livetest-${suffix}`;
    const created = await github.createJitRunner(target, name, ["self-hosted", "nomad-livetest"]);
    try {
      expect(created.jitconfig.length).toBeGreaterThan(100);
      expect((await github.findRunner(target, name))?.id).toBe(created.runnerId);
      await expect(github.createJitRunner(target, name, ["self-hosted"])).rejects.toThrow(/already exists/);
    } finally {
      expect(await github.deleteRunner(target, created.runnerId)).toBe("deleted");
    }
    expect(await github.findRunner(target, name)).toBeUndefined();
    expect(await github.registrationToken(target)).toMatch(/^[A-Z0-9]{20,}$/);
  });
});
