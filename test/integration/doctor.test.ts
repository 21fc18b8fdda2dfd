import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { runDoctor } from "../../src/doctor.js";
import { createLogger } from "../../src/log.js";
import { createDeps, startupChecks } from "../../src/service.js";
import { serviceEnv, type startTwins } from "../harness/world.js";
import { GitHubTwin } from "../twins/github.js";
import { twinImage } from "../twins/images.js";
import { NomadTwin } from "../twins/nomad.js";
import { VaultTwin } from "../twins/vault.js";

const SECRET = "a-webhook-secret-long-enough-for-doctor";
type Twins = Awaited<ReturnType<typeof startTwins>>;
let twins: Twins;
const policy = (file: string) => readFileSync(new URL(`../../policies/${file}`, import.meta.url), "utf8");
/** Nomad as policies/README.md sets it up: the runner namespace, a run-time and a registration token. */
let leastPrivilege: Record<string, string>;

beforeAll(async () => {
  const github = await GitHubTwin.start();
  const vault = await VaultTwin.start();
  const nomad = await NomadTwin.start({ images: twinImage, acl: true });
  github.addRepo("octo-org/app");
  twins = { github, vault, nomad };
  leastPrivilege = {
    NOMAD_NAMESPACE: await nomad.applyNamespace(policy("nomad-runner-namespace.hcl")),
    NOMAD_TOKEN: nomad.createToken(policy("nomad-dispatcher.policy.hcl"), "nomad-gha-dispatcher"),
    NOMAD_REGISTER_TOKEN: nomad.createToken(policy("nomad-runner-job-admin.policy.hcl"), "nomad-gha-dispatcher-register"),
  };
});
afterAll(async () => {
  await Promise.all([twins.github.close(), twins.vault.close(), twins.nomad.close()]);
});

/** The least-privilege setup, changed by `env`; a variable set to "" is unset. */
function doctorConfig(env: Record<string, string> = {}, world: Twins = twins) {
  return loadConfig({ ...serviceEnv(world, SECRET, {}), ...leastPrivilege, ...env });
}

async function doctor(env: Record<string, string> = {}, world: Twins = twins): Promise<{ code: number; text: string }> {
  let text = "";
  const code = await runDoctor(doctorConfig(env, world), (t) => (text += t));
  return { code, text };
}

function line(text: string, check: string): string {
  return text.split("\n").find((l) => l.includes(`${check}:`)) ?? "";
}

describe("doctor", () => {
  it("passes on a healthy setup once the runner job is registered", async () => {
    const config = doctorConfig();
    await startupChecks(config, createDeps(config, createLogger({ level: "silent" })));
    const { code, text } = await doctor();
    expect(text).toContain("all checks passed");
    expect(code).toBe(0);
  });

  it("flags each misconfiguration with a fix and exits non-zero", async () => {
    const cases: Array<{ env?: Record<string, string>; before?: () => void | Promise<void>; after?: () => void; check: string; expect: RegExp }> = [
      { env: { NOMAD_ADDR: "http://127.0.0.1:9" }, check: "Nomad reachable", expect: /FAIL/ },
      { env: { NOMAD_TOKEN: "00000000-0000-0000-0000-000000000000" }, check: "Nomad token", expect: /ACL token not found|Permission denied/ },
      {
        env: { NOMAD_RUNNER_JOB: "missing-job", NOMAD_REGISTER_RUNNER_JOB: "false", NOMAD_REGISTER_TOKEN: "" },
        check: "Nomad runner job",
        expect: /not found/,
      },
      { before: () => twins.vault.seal(), after: () => twins.vault.unseal(), check: "Vault reachable and unsealed", expect: /sealed/ },
      {
        before: async () => {
          await twins.vault.writePolicy("nothing", 'path "secret/data/other/*" { capabilities = ["read"] }');
        },
        env: {},
        check: "Vault token capabilities",
        expect: /token lacks/,
      },
      { env: { GITHUB_TOKEN: "ghp_not_a_real_token" }, check: "GitHub credentials", expect: /401|Bad credentials/ },
      {
        env: { TUNNEL: "quick", CLOUDFLARED_BIN: "/nonexistent/cloudflared" },
        check: "cloudflared",
        expect: /cloudflared binary not found at \/nonexistent\/cloudflared/,
      },
      { env: { VAULT_KV_MOUNT: "kv2" }, check: "Vault KV mount", expect: /no secrets engine is mounted at kv2\/ / },
    ];
    for (const c of cases) {
      await c.before?.();
      let env = c.env ?? {};
      if (c.check === "Vault token capabilities") env = { VAULT_TOKEN: twins.vault.createToken({ policies: ["nothing"] }) };
      try {
        const { code, text } = await doctor(env);
        const failed = line(text, c.check);
        expect(failed, `${c.check}\n${text}`).toMatch(/^\[FAIL\]/);
        expect(failed).toMatch(c.expect);
        expect(text.split("\n")[text.split("\n").indexOf(failed) + 1] ?? "").toMatch(/fix: /);
        expect(code).toBe(1);
      } finally {
        c.after?.();
      }
    }
  });

  it("one root cause gives one line: Vault refusing connections is not a missing policy", async () => {
    const { code, text } = await doctor({ VAULT_ADDR: "http://127.0.0.1:9" });
    const lines = text.split("\n");
    const vault = lines.flatMap((l, i) => (/Vault/.test(l) ? [l, lines[i + 1]] : []));
    expect(vault).toEqual([
      "[FAIL] Vault reachable and unsealed: Vault health: Vault refused the connection at http://127.0.0.1:9 (3 check(s) that need it not run)",
      "       fix: is it running, and is VAULT_ADDR right?",
    ]);
    expect(text).not.toMatch(/sudo|policy write/);
    expect(code).toBe(1);
  });

  it("a short webhook secret allowed by GITHUB_WEBHOOK_SECRET_ALLOW_SHORT is a warning", async () => {
    const { text } = await doctor({ GITHUB_WEBHOOK_SECRET: "short", GITHUB_WEBHOOK_SECRET_ALLOW_SHORT: "true" });
    expect(line(text, "webhook secret")).toBe(
      "[warn] webhook secret: 1 webhook secret(s) shorter than 20 characters (allowed by GITHUB_WEBHOOK_SECRET_ALLOW_SHORT=true)",
    );
  });

  it("checks the KV mount is version 2, and every key of the vars file is a variable the job declares", async () => {
    const dir = mkdtempSync(join(tmpdir(), "doctor-vars-"));
    try {
      const vars = join(dir, "runner.vars.hcl");
      writeFileSync(vars, 'imgae = "ghcr.io/actions/actions-runner:2.336.0"\ncpu = 500\nlabels = {\n  nested = "not a variable"\n}\n');
      const { code, text } = await doctor({ NOMAD_RUNNER_JOB_VARS_FILE: vars });
      expect(line(text, "Nomad runner job variables")).toMatch(
        new RegExp(
          `^\\[FAIL\\] Nomad runner job variables: ${vars} sets "imgae", "labels", which the runner job does not declare \\(Nomad would ignore it\\); it declares vault_addr, `,
        ),
      );
      expect(line(text, "Vault KV mount")).toBe("[ok]   Vault KV mount: secret/ is KV version 2");
      expect(code).toBe(1);
      writeFileSync(vars, 'image = "ghcr.io/actions/actions-runner:2.336.0"\ncpu = 500\n');
      expect(line((await doctor({ NOMAD_RUNNER_JOB_VARS_FILE: vars })).text, "Nomad runner job variables")).toMatch(/^\[ok\]/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("finds cloudflared on PATH as serve does", async () => {
    const dir = mkdtempSync(join(tmpdir(), "doctor-path-"));
    const path = process.env.PATH;
    try {
      writeFileSync(join(dir, "cloudflared"), "#!/bin/sh\n", { mode: 0o755 });
      process.env.PATH = `${dir}:${path ?? ""}`;
      const { text } = await doctor({ TUNNEL: "quick" });
      expect(line(text, "cloudflared")).toBe(`[ok]   cloudflared: ${join(dir, "cloudflared")} (quick tunnel)`);
    } finally {
      process.env.PATH = path;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("reports a Vault without an audit device", async () => {
    const vault = await VaultTwin.start({ audit: false });
    try {
      let text = "";
      expect(await runDoctor(doctorConfig({}, { ...twins, vault }), (t) => (text += t))).toBe(1);
      expect(line(text, "Vault audit device")).toMatch(/FAIL.*no audit device/);
    } finally {
      await vault.close();
    }
  });

  it("warns, and still passes, when the runner image is behind the newest actions/runner release", async () => {
    const config = doctorConfig();
    await startupChecks(config, createDeps(config, createLogger({ level: "silent" })));
    // GitHub's answer to GET /repos/actions/runner/releases/latest, a release newer than the job's image.
    const release = {
      tag_name: "v99.0.0",
      published_at: new Date(Date.now() - 40 * 86_400_000).toISOString(),
      html_url: "https://github.com/actions/runner/releases/tag/v99.0.0",
    };
    twins.github.faults.intercept = ({ path }) =>
      path === "/repos/actions/runner/releases/latest"
        ? { status: 200, headers: { "content-type": "application/json" }, body: JSON.stringify(release) }
        : undefined;
    try {
      const { code, text } = await doctor();
      const warned = line(text, "runner image");
      expect(warned, text).toMatch(
        /^\[warn\] runner image: ghcr\.io\/actions\/actions-runner:\d+\.\d+\.\d+ runs runner .* older than the newest release v99\.0\.0/,
      );
      expect(warned).toContain("GitHub may already refuse to assign jobs to it");
      expect(text.split("\n")[text.split("\n").indexOf(warned) + 1]).toMatch(
        /fix: bump the runner job's `image` variable, e\.g\. image = "ghcr\.io\/actions\/actions-runner:99\.0\.0"/,
      );
      expect(text).toMatch(/all checks passed, 1 warning\(s\)$/);
      expect(code).toBe(0);
    } finally {
      twins.github.faults.intercept = undefined;
    }
  });

  it("compares the runner image with the GitHub twin's own newest release, once the twin serves it", async (ctx) => {
    // The twin gains GET /repos/actions/runner/releases/latest in parallel work; until then this
    // is skipped rather than asserting on a 404.
    const probe = await fetch(`${twins.github.url}/repos/actions/runner/releases/latest`, { headers: { authorization: `token ${twins.github.createPat()}` } });
    if (probe.status === 404) ctx.skip();
    const release = (await probe.json()) as { tag_name: string };
    const config = doctorConfig();
    await startupChecks(config, createDeps(config, createLogger({ level: "silent" })));
    const { code, text } = await doctor();
    const checked = line(text, "runner image");
    expect(checked).toMatch(/^\[(ok|warn)\]\s+runner image: /);
    expect(checked).not.toContain("cannot tell");
    if (checked.startsWith("[warn]")) expect(checked).toContain(`older than the newest release ${release.tag_name}`);
    expect(code).toBe(0);
  });

  it("passes the shipped Nomad policies without a Nomad warning", async () => {
    const { text } = await doctor();
    expect(line(text, "Nomad token")).toMatch(/^\[ok\] +Nomad token: client token "nomad-gha-dispatcher"/);
    expect(line(text, "Nomad runner job registration")).toMatch(/^\[ok\] .*NOMAD_REGISTER_TOKEN "nomad-gha-dispatcher-register" registers it/);
    expect(text.split("\n").filter((l) => /^\[(warn|FAIL)\] Nomad/.test(l))).toEqual([]);
  });

  it("fails a management token, in one line", async () => {
    const { code, text } = await doctor({ NOMAD_TOKEN: twins.nomad.managementToken });
    expect(line(text, "Nomad token")).toMatch(/^\[FAIL\] Nomad token: NOMAD_TOKEN is a management token .*replace the dispatcher's own job/);
    expect(text.split("\n").filter((l) => /^\[(warn|FAIL)\] Nomad/.test(l))).toHaveLength(1);
    expect(code).toBe(1);
  });

  it("warns once, by name, about a namespace the token needs not reach", async () => {
    const token = twins.nomad.createToken(`${policy("nomad-dispatcher.policy.hcl")}\nnamespace "default" {\n  capabilities = ["read-job"]\n}\n`);
    const { code, text } = await doctor({ NOMAD_TOKEN: token });
    const warnings = text.split("\n").filter((l) => /^\[(warn|FAIL)\] Nomad/.test(l));
    expect(warnings).toEqual([expect.stringMatching(/^\[warn\] Nomad token scope: the token reaches namespace\(s\) default besides github-runners/)]);
    expect(code).toBe(0);
  });

  it("warns about node, agent and operator rules the token needs not hold, naming each", async () => {
    const token = twins.nomad.createToken(`${policy("nomad-dispatcher.policy.hcl")}\nnode {\n  policy = "read"\n}\noperator {\n  policy = "read"\n}\n`);
    const { text } = await doctor({ NOMAD_TOKEN: token });
    const warnings = text.split("\n").filter((l) => /^\[warn\] Nomad token scope/.test(l));
    expect(warnings).toEqual([expect.stringContaining("holds node:read (GET /v1/nodes answered)"), expect.stringContaining("holds operator:read")]);
  });

  it("warns when the runner jobs share default, and when NOMAD_TOKEN registers the runner job itself", async () => {
    const { text } = await doctor({
      NOMAD_NAMESPACE: "default",
      NOMAD_TOKEN: twins.nomad.createToken('namespace "default" { policy = "write" }'),
      NOMAD_REGISTER_TOKEN: "",
    });
    expect(line(text, "Nomad runner namespace")).toMatch(/^\[warn\] Nomad runner namespace: runner jobs run in default, shared with other jobs/);
    expect(line(text, "Nomad runner job registration")).toMatch(/^\[warn\] .*NOMAD_TOKEN also registers the runner job, so it needs parse-job and submit-job/);
  });

  it("checks each runner class: its job file parses into a usable runner job, its node pool exists and has nodes that fit", async () => {
    const open = await NomadTwin.start({ images: twinImage, node: { pools: ["gpu"] } });
    const dir = mkdtempSync(join(tmpdir(), "ngd-doctor-classes-"));
    const file = join(dir, "classes.yaml");
    const job = fileURLToPath(new URL("../../jobs/github-runner.nomad.hcl", import.meta.url));
    writeFileSync(
      file,
      [
        "classes:",
        `  - { name: small, labels: [self-hosted, nomad], job: runner-small, job_file: ${job} }`,
        `  - { name: arm, labels: [self-hosted, nomad, arm64], job: runner-arm, job_file: ${job}, job_vars: { node_pool: arm } }`,
        `  - { name: gpu, labels: [self-hosted, nomad, gpu], job: runner-gpu, job_file: ${job}, job_vars: { node_pool: gpu } }`,
        `  - { name: docker, labels: [self-hosted, nomad, docker], job: runner-docker, job_file: ${job}, job_vars: { docker: dind } }`,
      ].join("\n"),
    );
    try {
      const { code, text } = await doctor({ NOMAD_TOKEN: "", NOMAD_REGISTER_TOKEN: "", RUNNER_CLASSES_FILE: file }, { ...twins, nomad: open });
      expect(line(text, "Nomad runner job (class small)")).toMatch(/^\[ok\] .*parses into a usable runner job runner-small \(registered at start\)/);
      expect(line(text, "Nomad runner job (class arm)")).toMatch(/^\[ok\] /);
      expect(line(text, "Nomad node pool (class small)")).toMatch(
        /^\[ok\] +Nomad node pool \(class small\): 1 node\(s\) fit \(pool "default"; 1 of its 1 ready node\(s\) read\)/,
      );
      expect(line(text, "Nomad node pool (class arm)")).toMatch(/^\[FAIL\] Nomad node pool \(class arm\): node pool "arm" does not exist/);
      expect(line(text, "Nomad node pool (class gpu)")).toMatch(
        /^\[FAIL\] Nomad node pool \(class gpu\): node pool "gpu" has no ready, eligible node \(0 in all\)/,
      );
      // docker = "dind" on a client whose docker plugin keeps Nomad's allow_privileged = false.
      expect(line(text, "Nomad node pool (class docker)")).toBe(
        '[FAIL] Nomad node pool (class docker): class docker: its runner job\'s task "docker" needs privileged containers, but no ready node of pool "default" allows them (none of the 1 ready node(s) it fits has driver.docker.privileged.enabled)',
      );
      expect(code).toBe(1);
    } finally {
      await open.close();
    }
  });

  it("warns when the cluster has ACLs disabled, and says nothing more about the token", async () => {
    const open = await NomadTwin.start({ images: twinImage });
    try {
      const { code, text } = await doctor({ NOMAD_TOKEN: "", NOMAD_REGISTER_TOKEN: "" }, { ...twins, nomad: open });
      expect(line(text, "Nomad token")).toMatch(
        /^\[warn\] Nomad token: ACLs are disabled on this cluster: anyone who reaches http:\/\/127\.0\.0\.1:\d+ can read, dispatch/,
      );
      expect(text).not.toMatch(/Nomad token scope|Nomad runner job registration/);
      expect(code).toBe(0);
    } finally {
      await open.close();
    }
  });
});
