import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import hcl2json from "@cdktf/hcl2json";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { envSchema } from "../../src/config/env-schema.js";
import { type Config, loadConfig } from "../../src/config.js";
import { assignedVariables, declaredVariables, undeclaredVariables } from "../../src/core/hcl-variables.js";
import { runnerJobVariables } from "../../src/nomad/runner-job.js";
import { type Installed, install, NODE_IP, parseDispatcherJob, ROOT, readRepoFile, TASK_VAULT_TOKEN } from "../harness/dispatcher-install.js";
import { type PrivateCa, privateCa } from "../harness/tls.js";
import { parseJobspec } from "../twins/nomad-jobspec.js";
import type { JsonObject, TwinTask } from "../twins/nomad-types.js";

/**
 * The one-step install: `nomad job run -var-file=<vars> jobs/dispatcher.nomad.hcl`, carried out
 * as a Nomad client would (test/harness/dispatcher-install.ts), ends in an environment the
 * service's own config parser accepts, with every variable where it is meant to go.
 */

const JOB = readRepoFile("jobs/dispatcher.nomad.hcl");
const EXAMPLE = readRepoFile("jobs/dispatcher.vars.hcl.example");
const RUNNER_JOB = readRepoFile("jobs/github-runner.nomad.hcl");

const appKey = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
/** The config secret in Vault (KV v2 data): what a typical install puts there. */
const SECRETS = {
  GITHUB_WEBHOOK_SECRET: "whsec-0123456789abcdef0123456789abcdef",
  GITHUB_APP_ID: "123456",
  GITHUB_APP_PRIVATE_KEY: appKey,
  TUNNEL_TOKEN: "cf-tunnel-token-value",
  NOMAD_TOKEN: "11111111-2222-3333-4444-555555555555",
  NOMAD_REGISTER_TOKEN: "66666666-7777-8888-9999-000000000000",
};

const REQUIRED = 'image = "ghcr.io/acme/nomad-gha-dispatcher:0.1.0"\nvault_addr = "https://vault.example.com:8200"\n';

let dir: string;
let ca: PrivateCa;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "ngd-install-"));
  ca = privateCa("Install Test CA");
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  ca.remove();
});

let runs = 0;
/** Parse, render, build the environment, load the config: the whole install. */
async function installWith(variables: string, secrets: Record<string, string> = SECRETS) {
  const spec = await parseDispatcherJob(variables);
  const installed = await install(spec.task, secrets, join(dir, `task-${runs++}`));
  return { ...spec, ...installed, config: loadConfig(installed.env) };
}

/** The runner job as the service registers it from the rendered runner vars file. */
async function runnerTask(varsFile: string): Promise<{ job: JsonObject; main: TwinTask }> {
  const vault = {
    addr: "https://vault.example.com:8200",
    kvMount: "secret",
    kvPrefix: "nomad-gha-dispatcher",
    credentialDelivery: "workload-identity" as const,
  };
  expect(undeclaredVariables(RUNNER_JOB, varsFile)).toEqual([]);
  const job = await parseJobspec({
    hcl: RUNNER_JOB,
    variables: runnerJobVariables(vault, varsFile),
    cli: { baseDir: join(ROOT, "jobs"), readFile: (path) => readRepoFile(path.slice(ROOT.length)) },
  });
  const tasks = (job.TaskGroups as Array<{ Tasks: TwinTask[] }>).flatMap((g) => g.Tasks);
  const main = tasks.find((t) => !t.Lifecycle);
  if (!main) throw new Error("runner job has no main task");
  return { job, main };
}

describe("the install: jobs/dispatcher.nomad.hcl with a variables file", () => {
  it("the example vars file sets only variables the job declares, and installs", async () => {
    expect(assignedVariables(EXAMPLE).length).toBeGreaterThan(5);
    expect(undeclaredVariables(JOB, EXAMPLE)).toEqual([]);
    const { config, files } = await installWith(EXAMPLE);
    expect(config.limits).toEqual({ maxRunners: 20, maxRunnersPerRepo: 5 });
    expect(config.allowedOwners).toEqual(["acme"]);
    expect(config.github.webhookUrl).toBe("https://ci-hooks.example.com/webhook");
    const { main } = await runnerTask(files["local/runner.vars.hcl"] ?? "");
    expect(main.Config?.image).toBe("ghcr.io/actions/actions-runner:2.336.0");
  });

  it("the defaults (image and vault_addr only) give a valid config for a typical install", async () => {
    const { config, env, files, task } = await installWith(REQUIRED);
    expect(config.nomad).toMatchObject({ addr: `http://${NODE_IP}:4646`, namespace: "github-runners", registerRunnerJob: true, token: SECRETS.NOMAD_TOKEN });
    expect(config.nomad.registerToken).toBe(SECRETS.NOMAD_REGISTER_TOKEN);
    expect(config.vault).toMatchObject({
      addr: "https://vault.example.com:8200",
      runnerAddr: "https://vault.example.com:8200",
      token: TASK_VAULT_TOKEN,
      kvMount: "secret",
      kvPrefix: "nomad-gha-dispatcher",
      credentialDelivery: "workload-identity",
    });
    expect(config.github.auth).toEqual({ kind: "app", appId: 123456, privateKey: appKey });
    expect(config.github.webhookSecrets).toEqual([SECRETS.GITHUB_WEBHOOK_SECRET]);
    expect(config.github.apiUrl).toBe("https://api.github.com");
    expect(config.tunnel).toMatchObject({ mode: "named", token: SECRETS.TUNNEL_TOKEN });
    expect(config).toMatchObject({ host: "0.0.0.0", port: 8080, metricsPort: 9102, dispatcherId: "nomad-gha-dispatcher", capacityScope: "cluster" });
    expect(config.limits).toEqual({ maxRunners: Number.POSITIVE_INFINITY, maxRunnersPerRepo: Number.POSITIVE_INFINITY });
    expect(config.runner.classes).toHaveLength(1);
    expect(config.runner.classes[0]).toMatchObject({
      name: "default",
      labels: ["nomad", "self-hosted"],
      job: "github-runner",
      varsFile: `${env.NOMAD_RUNNER_JOB_VARS_FILE}`,
    });
    expect(env.NOMAD_RUNNER_JOB_VARS_FILE).toMatch(/\/local\/runner\.vars\.hcl$/);
    expect(task.Resources).toMatchObject({ CPU: 200, MemoryMB: 256 });
    // No runner_* variable set: the runner job's own defaults.
    expect(assignedVariables(files["local/runner.vars.hcl"] ?? "")).toEqual([]);
    const { job, main } = await runnerTask(files["local/runner.vars.hcl"] ?? "");
    expect(main.Config?.image).toMatch(/^ghcr\.io\/actions\/actions-runner:\d+\.\d+\.\d+$/);
    expect(job.NodePool).toBe("default");
  });

  it("the settings (env) and the secrets (the env template) never set the same variable", async () => {
    const { task, files } = await installWith(REQUIRED);
    const fromTemplate = [...(files["secrets/dispatcher.env"] ?? "").matchAll(/^(\w+)=/gm)].map((m) => m[1]!);
    expect(fromTemplate.length).toBeGreaterThan(0);
    for (const key of fromTemplate) expect(task.Env, key).not.toHaveProperty(key);
  });
});

/**
 * Every variable of the dispatcher job, set to a value other than its default, and where that
 * value must arrive. A variable added to the job without a line here fails the first test.
 */
const pem = () => ca.certPem;
type Seen = Installed & { config: Config; job: JsonObject; task: TwinTask; runner: { job: JsonObject; main: TwinTask } };
const EVERY: Record<string, { value: () => string; arrives: (s: Seen) => void }> = {
  image: {
    value: () => '"ghcr.io/acme/nomad-gha-dispatcher:9.9.9"',
    arrives: (s) => expect(s.task.Config?.image).toBe("ghcr.io/acme/nomad-gha-dispatcher:9.9.9"),
  },
  datacenters: { value: () => '["dc-a", "dc-b"]', arrives: (s) => expect(s.job.Datacenters).toEqual(["dc-a", "dc-b"]) },
  node_pool: { value: () => '"infra"', arrives: (s) => expect(s.job.NodePool).toBe("infra") },
  count: { value: () => "3", arrives: (s) => expect((s.job.TaskGroups as Array<{ Count: number }>)[0]?.Count).toBe(3) },
  cpu: { value: () => "300", arrives: (s) => expect(s.task.Resources.CPU).toBe(300) },
  memory: { value: () => "384", arrives: (s) => expect(s.task.Resources.MemoryMB).toBe(384) },
  log_level: { value: () => '"debug"', arrives: (s) => expect(s.config.logLevel).toBe("debug") },
  dispatcher_id: { value: () => '"ci-two"', arrives: (s) => expect(s.config.dispatcherId).toBe("ci-two") },
  tunnel: { value: () => '"off"', arrives: (s) => expect(s.config.tunnel.mode).toBe("off") },
  github_api_url: { value: () => '"https://ghe.example.com/api/v3"', arrives: (s) => expect(s.config.github.apiUrl).toBe("https://ghe.example.com/api/v3") },
  github_url: { value: () => '"https://ghe.example.com"', arrives: (s) => expect(s.config.github.webUrl).toBe("https://ghe.example.com") },
  webhook_url: {
    value: () => '"https://hooks.example.com/webhook"',
    arrives: (s) => expect(s.config.github.webhookUrl).toBe("https://hooks.example.com/webhook"),
  },
  allowed_owners: { value: () => '"Acme,Beta"', arrives: (s) => expect(s.config.allowedOwners).toEqual(["acme", "beta"]) },
  allowed_repos: { value: () => '"other/tool"', arrives: (s) => expect(s.config.allowedRepos).toEqual(["other/tool"]) },
  runner_registration: { value: () => '"auto"', arrives: (s) => expect(s.config.runner.registration).toBe("auto") },
  runner_scope: { value: () => '"org"', arrives: (s) => expect(s.config.runner.scope).toBe("org") },
  runner_group_id: { value: () => "7", arrives: (s) => expect(s.config.runner.groupId).toBe(7) },
  runner_name_prefix: { value: () => '"ci"', arrives: (s) => expect(s.config.runner.namePrefix).toBe("ci") },
  max_runners: { value: () => "40", arrives: (s) => expect(s.config.limits.maxRunners).toBe(40) },
  max_runners_per_repo: { value: () => "4", arrives: (s) => expect(s.config.limits.maxRunnersPerRepo).toBe(4) },
  capacity_scope: { value: () => '"process"', arrives: (s) => expect(s.config.capacityScope).toBe("process") },
  nomad_addr: { value: () => '"https://nomad.example.com:4646"', arrives: (s) => expect(s.config.nomad.addr).toBe("https://nomad.example.com:4646") },
  nomad_region: { value: () => '"eu"', arrives: (s) => expect(s.config.nomad.region).toBe("eu") },
  nomad_ca_pem: { value: () => `<<-EOT\n${pem()}EOT\n`, arrives: (s) => expect(s.config.nomad.tls.ca).toEqual([pem().trim()]) },
  nomad_tls_server_name: { value: () => '"client.global.nomad"', arrives: (s) => expect(s.config.nomad.tls.servername).toBe("client.global.nomad") },
  runner_namespace: { value: () => '"ci-runners"', arrives: (s) => expect(s.config.nomad.namespace).toBe("ci-runners") },
  register_runner_job: { value: () => '"false"', arrives: (s) => expect(s.config.nomad.registerRunnerJob).toBe(false) },
  vault_addr: { value: () => '"https://vault.internal:8200"', arrives: (s) => expect(s.config.vault.addr).toBe("https://vault.internal:8200") },
  vault_role: { value: () => '"dispatcher-two"', arrives: (s) => expect((s.task.Vault as { Role: string }).Role).toBe("dispatcher-two") },
  vault_namespace: { value: () => '"ci/ns"', arrives: (s) => expect(s.config.vault.namespace).toBe("ci/ns") },
  vault_kv_mount: {
    value: () => '"kv"',
    arrives: (s) => {
      expect(s.config.vault.kvMount).toBe("kv");
      expect(s.secretPaths).toEqual(["kv/data/ci-two/config"]);
    },
  },
  vault_kv_prefix: { value: () => '"ci-two"', arrives: (s) => expect(s.config.vault.kvPrefix).toBe("ci-two") },
  vault_ca_pem: { value: () => `<<-EOT\n${pem()}EOT\n`, arrives: (s) => expect(s.config.vault.tls.ca).toEqual([pem().trim()]) },
  vault_tls_server_name: { value: () => '"vault.internal"', arrives: (s) => expect(s.config.vault.tls.servername).toBe("vault.internal") },
  runner_vault_addr: {
    value: () => '"https://vault.runners.internal:8200"',
    arrives: (s) => expect(s.config.vault.runnerAddr).toBe("https://vault.runners.internal:8200"),
  },
  runner_vault_ca_pem: { value: () => `<<-EOT\n${pem()}EOT\n`, arrives: (s) => expect(s.config.vault.runnerCaPem).toBe(`${pem().trim()}\n`) },
  runner_credential_delivery: { value: () => '"wrap"', arrives: (s) => expect(s.config.vault.credentialDelivery).toBe("wrap") },
  runner_labels: {
    value: () => '"self-hosted,linux,nomad"',
    arrives: (s) => expect(s.config.runner.classes[0]?.labels).toEqual(["linux", "nomad", "self-hosted"]),
  },
  runner_job: { value: () => '"gha-runner"', arrives: (s) => expect(s.config.runner.classes[0]?.job).toBe("gha-runner") },
  runner_image: {
    value: () => '"ghcr.io/actions/actions-runner:2.399.0"',
    arrives: (s) => expect(s.runner.main.Config?.image).toBe("ghcr.io/actions/actions-runner:2.399.0"),
  },
  runner_cpu: { value: () => "4000", arrives: (s) => expect(s.runner.main.Resources.CPU).toBe(4000) },
  runner_memory: { value: () => "8192", arrives: (s) => expect(s.runner.main.Resources.MemoryMB).toBe(8192) },
  runner_node_pool: { value: () => '"runners"', arrives: (s) => expect(s.runner.job.NodePool).toBe("runners") },
  runner_datacenters: { value: () => '["dc-r"]', arrives: (s) => expect(s.runner.job.Datacenters).toEqual(["dc-r"]) },
  // Set in its own test below: the classes file replaces the one class.
  runner_classes: { value: () => '""', arrives: (s) => expect(s.config.runner.classes.map((c) => c.name)).toEqual(["default"]) },
  extra_env: {
    // runner_registration = "auto" with runner_scope = "org" needs the opt-in.
    value: () => '{ RECONCILE_INTERVAL = "30", VAULT_REQUIRE_AUDIT = "false", RUNNER_ALLOW_ORG_REGISTRATION_TOKEN = "true" }',
    arrives: (s) => {
      expect(s.config.reconcile.intervalSeconds).toBe(30);
      expect(s.config.vault.requireAudit).toBe(false);
    },
  },
};

describe("every variable of jobs/dispatcher.nomad.hcl", () => {
  it("is in this test's table (so each has a value checked below)", () => {
    expect(Object.keys(EVERY).sort()).toEqual(declaredVariables(JOB).sort());
  });

  it("arrives where it is meant to: the job spec, the service's config, or the runner job it registers", async () => {
    const vars = Object.entries(EVERY)
      .map(([name, { value }]) => `${name} = ${value()}`)
      .join("\n");
    const client = ca.client("dispatcher");
    // Without a tunnel token (tunnel = "off") or a registration token (register_runner_job = "false").
    const { TUNNEL_TOKEN: _tunnel, NOMAD_REGISTER_TOKEN: _register, ...secrets } = SECRETS;
    const installed = await installWith(vars, { ...secrets, NOMAD_CLIENT_CERT: client.certPem, NOMAD_CLIENT_KEY: client.keyPem });
    const runner = await runnerTask(installed.files["local/runner.vars.hcl"] ?? "");
    const seen: Seen = { ...installed, runner };
    for (const [name, { arrives }] of Object.entries(EVERY)) {
      try {
        arrives(seen);
      } catch (err) {
        throw new Error(`variable ${name}: ${(err as Error).message}`);
      }
    }
    // The client certificate from Vault reaches the Nomad client's TLS options.
    expect(installed.config.nomad.tls).toMatchObject({ cert: client.certPem, key: client.keyPem });
  });

  it("runner_classes becomes RUNNER_CLASSES_FILE, and the one-class settings step aside", async () => {
    const classes = [
      "classes:",
      "  - name: small",
      "    labels: [self-hosted, nomad]",
      "    job: github-runner",
      // The image's /app is the repository here.
      `    job_file: ${ROOT}jobs/github-runner.nomad.hcl`,
      '    job_vars: { image: "ghcr.io/actions/actions-runner:2.399.0", cpu: 1000 }',
      "  - name: large",
      "    labels: [self-hosted, nomad, large]",
      "    job: github-runner-large",
      `    job_file: ${ROOT}jobs/github-runner.nomad.hcl`,
      "    max_runners: 4",
      "",
    ].join("\n");
    const { config, env, files } = await installWith(`${REQUIRED}runner_labels = "ignored,here"\nrunner_classes = <<-EOT\n${classes}EOT\n`);
    expect(files["local/runner-classes.yaml"]).toBe(`${classes}\n`);
    for (const unset of ["RUNNER_LABELS", "NOMAD_RUNNER_JOB", "NOMAD_RUNNER_JOB_VARS_FILE"]) expect(env[unset], unset).toBe("");
    expect(config.runner.classes.map((c) => [c.name, c.job, c.limits.maxRunners])).toEqual([
      ["small", "github-runner", Number.POSITIVE_INFINITY],
      ["large", "github-runner-large", 4],
    ]);
    expect(config.runner.classes[0]?.jobVars).toEqual({ image: "ghcr.io/actions/actions-runner:2.399.0", cpu: 1000 });
  });

  it("refuses, at `nomad job run`, extra_env naming a setting with its own variable or a secret, and a runner_classes with a template directive", async () => {
    await expect(parseDispatcherJob(`${REQUIRED}extra_env = { GITHUB_TOKEN = "ghp_x" }\n`)).rejects.toThrow(/extra_env/);
    await expect(parseDispatcherJob(`${REQUIRED}extra_env = { MAX_RUNNERS = "3" }\n`)).rejects.toThrow(/extra_env/);
    await expect(parseDispatcherJob(`${REQUIRED}extra_env = { RECONCILE_INTERVAL = "30" }\n`)).resolves.toBeDefined();
    await expect(parseDispatcherJob(`${REQUIRED}runner_classes = "classes: {{ key \\"x\\" }}"\n`)).rejects.toThrow(/runner_classes must not contain/);
  });

  it("nomad_ca_pem without nomad_addr means the local agent over https", async () => {
    const { config } = await installWith(`${REQUIRED}nomad_ca_pem = <<-EOT\n${pem()}EOT\n`);
    expect(config.nomad.addr).toBe(`https://${NODE_IP}:4646`);
  });
});

/** The keys of the environment the service reads (its schema and the CLIs' TLS variables). */
function serviceSettings(): string[] {
  const tls = ["CACERT", "CAPATH", "CLIENT_CERT", "CLIENT_KEY", "TLS_SERVER_NAME", "SKIP_VERIFY"];
  return [...Object.keys(envSchema("bundled").shape), ...["NOMAD", "VAULT"].flatMap((p) => tls.map((t) => `${p}_${t}`))];
}

describe("settings and secrets", () => {
  it("every setting the service reads comes from a variable, a Vault template, the vault block, or extra_env's documented list", async () => {
    const file = (await hcl2json.parse("dispatcher.nomad.hcl", JOB)) as {
      variable: Record<string, Array<{ description?: string; validation?: Array<{ condition: string }> }>>;
    };
    const extra = file.variable.extra_env?.[0];
    const allowed = [...String(extra?.validation?.[0]?.condition).matchAll(/"([A-Z_]+)"/g)].map((m) => m[1]!);
    // The description lists exactly what the validation admits.
    expect([...String(extra?.description).matchAll(/\b([A-Z]+_[A-Z_]+)\b/g)].map((m) => m[1]).sort()).toEqual([...allowed].sort());

    const { task, files } = await installWith(REQUIRED);
    const env = Object.keys(task.Env ?? {});
    const template = [...(files["secrets/dispatcher.env"] ?? "").matchAll(/^(\w+)=/gm)].map((m) => m[1]!);
    const envTemplateText = (task.Templates ?? []).find((t) => t.DestPath === "secrets/dispatcher.env")?.EmbeddedTmpl ?? "";
    const templateKeys = [...envTemplateText.matchAll(/^\s*(\w+)=/gm)].map((m) => m[1]!);
    expect(templateKeys).toEqual(expect.arrayContaining(template));
    // The key is a file (GITHUB_APP_PRIVATE_KEY_FILE), VAULT_TOKEN the vault block's.
    const covered = new Set([...env, ...templateKeys, ...allowed, "VAULT_TOKEN", "GITHUB_APP_PRIVATE_KEY"]);
    expect(serviceSettings().filter((k) => !covered.has(k))).toEqual([]);
    // ...and extra_env is not a second way to set what has a variable, or a secret.
    const secrets = [...templateKeys, "VAULT_TOKEN", "GITHUB_APP_PRIVATE_KEY"];
    expect(allowed.filter((k) => env.includes(k) || secrets.includes(k))).toEqual([]);
    expect(allowed.filter((k) => !serviceSettings().includes(k))).toEqual([]);
  });

  it("no secret value ends up in the job spec (env, meta, templates' text)", async () => {
    const { job } = await installWith(EXAMPLE);
    const spec = JSON.stringify(job);
    for (const [name, value] of Object.entries(SECRETS)) expect(spec.includes(value), name).toBe(false);
    // Nothing secret-looking is a variable (it would sit in the job spec) or a plain env key.
    for (const name of declaredVariables(JOB)) expect(name).not.toMatch(/token|secret|private_key|password|client_key/);
    const task = (job.TaskGroups as Array<{ Tasks: TwinTask[] }>)[0]!.Tasks[0]!;
    for (const key of Object.keys(task.Env ?? {})) expect(key).not.toMatch(/TOKEN|SECRET|PRIVATE_KEY|PASSWORD|CLIENT_KEY/);
    expect(task.Meta ?? {}).toEqual({});
    expect(job.Meta ?? {}).toEqual({});
  });
});
