import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import hcl2json from "@cdktf/hcl2json";
import { beforeAll, describe, expect, it } from "vitest";
import { SHUTDOWN_MARGIN_MS, shutdownBudgetTotalMs } from "../../src/shutdown.js";
import { type DispatcherSpec, parseDispatcherJob } from "../harness/dispatcher-install.js";
import { AllocDir, IS_ROOT } from "../twins/nomad-alloc-dir.js";
import { renderTemplateFile } from "../twins/nomad-template.js";

/**
 * What operators depend on in the deployment files: parsed with a real HCL2 parser (the
 * same syntax Nomad and Vault read), not grepped, so a moved block or a widened grant fails.
 */

const root = fileURLToPath(new URL("../../", import.meta.url));
const read = (path: string) => readFileSync(`${root}${path}`, "utf8");

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Obj = { [key: string]: Json };

const parseHcl = async (path: string) => (await hcl2json.parse(path, read(path))) as Obj;

function obj(value: Json | undefined, what: string): Obj {
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw new Error(`${what} is not an object`);
  return value;
}
/** hcl2json turns every block into a list of bodies; most blocks here appear once. */
function block(parent: Obj, name: string): Obj {
  const value = parent[name];
  if (!Array.isArray(value) || value.length !== 1) throw new Error(`expected exactly one ${name} block`);
  return obj(value[0], name);
}
function blocks(parent: Obj, name: string): Obj[] {
  const value = parent[name];
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new Error(`${name} is not a block list`);
  return value.map((v) => obj(v, name));
}
/** A labelled block, e.g. job "x" { } -> { job: { x: [ {...} ] } }. */
function labelled(parent: Obj, type: string): Array<[string, Obj]> {
  const byLabel = obj(parent[type], type);
  return Object.entries(byLabel).flatMap(([label, bodies]) => {
    if (!Array.isArray(bodies)) throw new Error(`${type} "${label}" is not a block list`);
    return bodies.map((b) => [label, obj(b, `${type} ${label}`)] as [string, Obj]);
  });
}
function seconds(duration: Json | undefined): number {
  const m = /^(\d+)(s|m|h)$/.exec(String(duration));
  if (!m) throw new Error(`not a duration: ${String(duration)}`);
  return Number(m[1]) * { s: 1, m: 60, h: 3600 }[m[2] as "s" | "m" | "h"];
}

/** The dispatcher job as Nomad parses it with its required variables and the defaults. */
let spec: Promise<DispatcherSpec> | undefined;
const parsed = () => (spec ??= parseDispatcherJob('image = "ghcr.io/acme/nomad-gha-dispatcher:0.1.0"\nvault_addr = "https://vault.example.com:8200"\n'));

/** Nomad client's max_kill_timeout default (hashicorp/nomad command/agent/config.go, DefaultConfig). */
const NOMAD_DEFAULT_MAX_KILL_TIMEOUT_SECONDS = 30;

/**
 * Users of the base images the Dockerfile may build on: the official node images create `node`
 * with uid and gid 1000 (nodejs/docker-node 22/bookworm-slim/Dockerfile: groupadd --gid 1000 node,
 * useradd --uid 1000 --gid node).
 */
const BASE_IMAGE_USERS: Record<string, { uid: number; gid: number }> = { node: { uid: 1000, gid: 1000 } };

/** The user the image's runtime stage runs as (its last USER), as numeric ids. */
function imageUser(): { uid: number; gid: number } {
  const users = read("Dockerfile")
    .split("\n")
    .map((l) => /^USER\s+(\S+)/.exec(l.trim())?.[1])
    .filter((u): u is string => u !== undefined);
  const last = users[users.length - 1];
  if (last === undefined) throw new Error("the Dockerfile sets no USER");
  const numeric = /^(\d+)(?::(\d+))?$/.exec(last);
  if (numeric) return { uid: Number(numeric[1]), gid: Number(numeric[2] ?? numeric[1]) };
  const known = BASE_IMAGE_USERS[last];
  if (!known) throw new Error(`the Dockerfile runs as "${last}", whose ids this test does not know`);
  return known;
}

describe("jobs/dispatcher.nomad.hcl", () => {
  let file: Obj;
  let job: Obj;
  let group: Obj;
  let task: Obj;
  let jobName: string;
  let taskName: string;

  beforeAll(async () => {
    file = await parseHcl("jobs/dispatcher.nomad.hcl");
    const jobs = labelled(file, "job");
    expect(jobs).toHaveLength(1);
    [jobName, job] = jobs[0]!;
    const groups = labelled(job, "group");
    expect(groups).toHaveLength(1);
    group = groups[0]![1];
    const tasks = labelled(group, "task");
    expect(tasks).toHaveLength(1);
    [taskName, task] = tasks[0]!;
  });

  it("is a service job with two replicas by default", () => {
    expect(jobName).toBe("nomad-gha-dispatcher");
    expect(job.type).toBe("service");
    const variables = Object.fromEntries(labelled(file, "variable"));
    expect(variables.count?.default).toBe(2);
    expect(group.count).toBe("${var.count}");
    for (const name of ["image", "datacenters", "node_pool", "vault_role", "runner_namespace"]) {
      expect(variables, `variable ${name}`).toHaveProperty(name);
    }
  });

  it("maps the http and metrics ports to the container's 8080 and 9102, never static host ports", () => {
    const ports = Object.fromEntries(labelled(block(group, "network"), "port"));
    expect(ports.http).toEqual({ to: 8080 });
    expect(ports.metrics).toEqual({ to: 9102 });
    expect(obj(block(task, "config"), "config").ports).toEqual(["http", "metrics"]);
  });

  it("checks liveness on /healthz and readiness on /readyz through Nomad's own service provider", () => {
    const services = blocks(group, "service");
    expect(services.length).toBeGreaterThan(0);
    for (const s of services) expect(s.provider).toBe("nomad");
    const checks = services.flatMap((s) => blocks(s, "check"));
    const healthz = checks.find((c) => c.path === "/healthz");
    const readyz = checks.find((c) => c.path === "/readyz");
    expect(healthz).toMatchObject({ type: "http" });
    expect(readyz).toMatchObject({ type: "http", on_update: "ignore_warnings" });
    // A dependency outage must not restart the dispatcher; only liveness may.
    expect(readyz).not.toHaveProperty("check_restart");
    expect(healthz).toHaveProperty("check_restart");
  });

  it("rolls out one replica at a time, gated on checks, and reverts a bad version", () => {
    const update = block(job, "update");
    expect(update).toMatchObject({ max_parallel: 1, health_check: "checks", auto_revert: true });
    expect(seconds(update.min_healthy_time)).toBeGreaterThan(0);
    expect(seconds(update.healthy_deadline)).toBeGreaterThan(seconds(update.min_healthy_time));
    expect(block(group, "restart")).toHaveProperty("attempts");
    expect(block(group, "reschedule")).toHaveProperty("delay");
  });

  it("gives SIGTERM the whole shutdown budget, within Nomad's default max_kill_timeout", () => {
    expect(task.kill_signal ?? "SIGTERM").toBe("SIGTERM");
    const killTimeout = seconds(task.kill_timeout);
    // A Nomad client clamps kill_timeout to its max_kill_timeout, 30 s unless configured
    // (hashicorp/nomad command/agent/config.go, client/allocrunner/taskrunner/driver_handle.go).
    expect(killTimeout).toBeLessThanOrEqual(NOMAD_DEFAULT_MAX_KILL_TIMEOUT_SECONDS);
    expect(killTimeout * 1000).toBeGreaterThanOrEqual(shutdownBudgetTotalMs() + SHUTDOWN_MARGIN_MS);
  });

  it("renders every file the dispatcher reads owned by the image's user, and keeps them private", async () => {
    const user = imageUser();
    const templates = (await parsed()).task.Templates ?? [];
    const readByTask = templates.filter((t) => t.Envvars !== true);
    expect(readByTask.map((t) => t.DestPath)).toEqual(
      expect.arrayContaining([
        "secrets/github-app.pem",
        "local/runner.vars.hcl",
        "local/runner-classes.yaml",
        "local/nomad-ca.pem",
        "secrets/nomad-client-key.pem",
      ]),
    );
    for (const t of readByTask) {
      // Without uid/gid Nomad renders the file owned by root (perms default 0644): with 0400
      // the dispatcher, running as the image's user, gets EACCES.
      expect({ destination: t.DestPath, uid: t.Uid, gid: t.Gid }).toEqual({ destination: t.DestPath, uid: user.uid, gid: user.gid });
      expect(t.Perms, t.DestPath).toBe("0400");
    }
    // Env templates are read by the Nomad client (root) to build the environment, never by the
    // task: they stay root's.
    for (const t of templates.filter((t) => t.Envvars === true)) expect(t.Uid ?? null).toBeNull();
  });

  // What the client does with those blocks, for real: the file rendered with the owner and mode
  // a Nomad client gives it (test/twins/nomad-template.ts) in a task directory built like the
  // client's, then read by node running as the image's user, as the service reads its key.
  it.skipIf(!IS_ROOT)("renders the GitHub App key so that the image's user can read it, and no one else", async () => {
    const user = imageUser();
    const pem = (await parsed()).task.Templates!.find((t) => t.DestPath === "secrets/github-app.pem")!;
    const key = "-----BEGIN RSA PRIVATE KEY-----\nnot-a-real-key\n-----END RSA PRIVATE KEY-----";
    const secret = async () => ({ Data: { data: { GITHUB_APP_PRIVATE_KEY: key }, metadata: { version: 1 } } }); // a KV v2 read, as consul-template sees it
    const asUser = (path: string, uid: number, gid: number) =>
      spawnSync(
        "setpriv",
        [
          `--reuid=${uid}`,
          `--regid=${gid}`,
          "--clear-groups",
          process.execPath,
          "-e",
          `process.stdout.write(require("node:fs").readFileSync(${JSON.stringify(path)}, "utf8"))`,
        ],
        { encoding: "utf8" },
      );
    const dataDir = await mkdtemp(join(tmpdir(), "ngd-deploy-"));
    await chmod(dataDir, 0o755); // a client's <data_dir>/alloc, which tasks traverse
    try {
      const alloc = await AllocDir.build(dataDir, "alloc", [taskName]);
      const taskDir = alloc.task(taskName).dir;
      const rendered = await renderTemplateFile(pem, taskDir, { env: () => "", secret });
      expect(rendered.trim()).toBe(key);
      const path = join(taskDir, "secrets/github-app.pem");
      const read = asUser(path, user.uid, user.gid);
      expect(read.stderr).toBe("");
      expect(read.stdout.trim()).toBe(key);
      expect(asUser(path, user.uid + 1, user.gid + 1).stderr).toContain("EACCES");

      // The same block without uid/gid (the file root's, as Nomad leaves it) locks the dispatcher out.
      await renderTemplateFile({ ...pem, Uid: undefined, Gid: undefined }, taskDir, { env: () => "", secret });
      expect(asUser(path, user.uid, user.gid).stderr).toContain("EACCES");
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it("logs in to Vault with a Nomad >= 1.7 workload identity", () => {
    expect(block(task, "vault")).toMatchObject({ role: "${var.vault_role}" });
    expect(block(task, "vault").env ?? true).toBe(true); // VAULT_TOKEN for runtime calls
    expect(block(task, "identity")).toMatchObject({ name: "vault_default", aud: ["vault.io"] });
  });

  it("takes every secret from Vault templates into secrets/, the env file with env = true", async () => {
    const templates = (await parsed()).task.Templates ?? [];
    const fromVault = templates.filter((t) => t.EmbeddedTmpl.includes("with secret "));
    expect(fromVault.length).toBeGreaterThan(0);
    for (const t of fromVault) {
      expect(t.DestPath).toMatch(/^secrets\//);
      expect(t.ChangeMode).toBe("restart");
    }
    const envFile = fromVault.find((t) => t.Envvars === true);
    expect(envFile?.DestPath).toBe("secrets/dispatcher.env");
    const data = String(envFile?.EmbeddedTmpl);
    expect(data).toContain('with secret "secret/data/nomad-gha-dispatcher/config"');
    for (const name of ["GITHUB_WEBHOOK_SECRET", "TUNNEL_TOKEN", "NOMAD_TOKEN", "NOMAD_REGISTER_TOKEN", "GITHUB_TOKEN", "GITHUB_APP_ID"]) {
      expect(data).toMatch(new RegExp(`^${name}=\\{\\{ \\. \\| toJSON \\}\\}$`, "m"));
    }
  });

  it("has no literal secrets: plain env holds only addresses and settings", async () => {
    const env = (await parsed()).task.Env ?? {};
    for (const key of Object.keys(env)) expect(key).not.toMatch(/TOKEN|SECRET|PRIVATE_KEY|PASSWORD/);
    expect(env).toMatchObject({
      TUNNEL: "named",
      NOMAD_NAMESPACE: "github-runners",
      NOMAD_REGISTER_RUNNER_JOB: "true",
      VAULT_ADDR: "https://vault.example.com:8200",
      VAULT_KV_MOUNT: "secret",
      VAULT_KV_PREFIX: "nomad-gha-dispatcher",
    });
    expect(String(env.NOMAD_ADDR)).toContain("${attr.unique.network.ip-address}");
    expect(env).toHaveProperty("NOMAD_RUNNER_JOB");
    // Nothing that looks like a credential anywhere in the file.
    expect(read("jobs/dispatcher.nomad.hcl")).not.toMatch(/ghp_|github_pat_|hvs\.|s\.[A-Za-z0-9]{24}|BEGIN [A-Z ]*PRIVATE KEY/);
  });
});

/**
 * The one namespace a Nomad policy file has rules for, its capabilities and its variables paths
 * (path -> capabilities); nothing else in the file.
 */
async function onlyNamespaceRule(
  path: string,
  readOnly: string[] = [],
): Promise<{ name: string; capabilities: string[]; variables?: Record<string, string[]> }> {
  const policy = await parseHcl(path);
  // No node, agent, operator, quota or plugin rules, but the read-only ones asserted.
  expect(Object.keys(policy)).toEqual(["namespace", ...readOnly]);
  const expected: Record<string, string> = { node: '[{"policy":"read"}]', node_pool: '{"*":[{"policy":"read"}]}' };
  for (const rule of readOnly) expect(JSON.stringify(policy[rule]), rule).toBe(expected[rule]);
  const namespaces = labelled(policy, "namespace");
  expect(namespaces).toHaveLength(1);
  const [name, rules] = namespaces[0]!;
  // No coarse `policy = "write"`; a variables block only where asserted.
  expect(Object.keys(rules).filter((k) => k !== "variables")).toEqual(["capabilities"]);
  const rule: { name: string; capabilities: string[]; variables?: Record<string, string[]> } = {
    name,
    capabilities: [...(rules.capabilities as string[])].sort(),
  };
  if (rules.variables !== undefined) {
    const blocks = rules.variables as Json[];
    expect(blocks).toHaveLength(1);
    const paths = labelled(obj(blocks[0], "variables"), "path");
    rule.variables = Object.fromEntries(paths.map(([p, body]) => [p, [...(body.capabilities as string[])].sort()]));
  }
  return rule;
}

describe("Nomad policies and the runner namespace", () => {
  it("run-time policy: dispatch, read, list and (only to stop jobs) submit, in github-runners alone; variables under its own path", async () => {
    expect(await onlyNamespaceRule("policies/nomad-dispatcher.policy.hcl")).toEqual({
      name: "github-runners",
      capabilities: ["dispatch-job", "list-jobs", "read-job", "submit-job"],
      variables: { "nomad-gha-dispatcher/*": ["destroy", "list", "read", "write"] },
    });
  });

  it("Nomad >= 2.0 run-time policy: purge-job instead of submit-job, so nothing that registers or parses", async () => {
    expect(await onlyNamespaceRule("policies/nomad-dispatcher.nomad-2.policy.hcl")).toEqual({
      name: "github-runners",
      capabilities: ["dispatch-job", "list-jobs", "purge-job", "read-job"],
      variables: { "nomad-gha-dispatcher/*": ["destroy", "list", "read", "write"] },
    });
  });

  it("registration policy: parse, read and submit the runner job, in github-runners alone; read nodes and node pools (the start-up placement check)", async () => {
    expect(await onlyNamespaceRule("policies/nomad-runner-job-admin.policy.hcl", ["node", "node_pool"])).toEqual({
      name: "github-runners",
      capabilities: ["parse-job", "read-job", "submit-job"],
    });
  });

  it("namespace spec: github-runners admits the docker driver only, and the dispatcher job runs there by default", async () => {
    const spec = await parseHcl("policies/nomad-runner-namespace.hcl");
    expect(spec.name).toBe("github-runners");
    expect(blocks(spec, "capabilities")).toEqual([{ enabled_task_drivers: ["docker"] }]);
    const variables = Object.fromEntries(labelled(await parseHcl("jobs/dispatcher.nomad.hcl"), "variable"));
    expect(variables.runner_namespace?.default).toBe(spec.name);
  });
});

describe("Vault policies and JWT role", () => {
  const capabilities = async (path: string) =>
    Object.fromEntries(labelled(await parseHcl(path), "path").map(([p, rules]) => [p, [...(rules.capabilities as string[])].sort()]));

  it("runtime policy: runner credentials under the prefix plus the listed sys paths, exactly", async () => {
    expect(await capabilities("policies/vault-dispatcher.policy.hcl")).toEqual({
      "secret/data/nomad-gha-dispatcher/runners/*": ["create", "delete", "read", "update"],
      "secret/metadata/nomad-gha-dispatcher/runners/*": ["delete", "list", "read", "update"],
      "secret/metadata/nomad-gha-dispatcher/runners": ["list"],
      "sys/audit": ["read", "sudo"],
      "sys/capabilities-self": ["update"],
      "auth/token/lookup-self": ["read"],
    });
  });

  it("config policy: read-only on the one config secret the job's templates read", async () => {
    const policy = await capabilities("policies/vault-dispatcher-config.policy.hcl");
    expect(policy).toEqual({ "secret/data/nomad-gha-dispatcher/config": ["read"] });
    const templates = (await parsed()).task.Templates ?? [];
    const templatePaths = new Set(templates.flatMap((t) => [...t.EmbeddedTmpl.matchAll(/with secret "([^"]+)"/g)].map((m) => m[1])));
    expect([...templatePaths]).toEqual(Object.keys(policy));
  });

  it("JWT role: only the dispatcher task's workload identity, with both policies", async () => {
    const role = JSON.parse(read("policies/vault-jwt-role.json")) as Obj;
    expect(role).toMatchObject({
      role_type: "jwt",
      bound_audiences: ["vault.io"],
      user_claim: "/nomad_job_id",
      user_claim_json_pointer: true,
      token_type: "service",
      token_period: "30m",
      claim_mappings: { nomad_namespace: "nomad_namespace", nomad_job_id: "nomad_job_id", nomad_task: "nomad_task" },
    });
    expect(role.token_policies).toEqual(["nomad-gha-dispatcher", "nomad-gha-dispatcher-config"]);

    const file = await parseHcl("jobs/dispatcher.nomad.hcl");
    const [jobName, job] = labelled(file, "job")[0]!;
    const [taskName] = labelled(labelled(job, "group")[0]![1], "task")[0]!;
    const variables = Object.fromEntries(labelled(file, "variable"));
    expect(role.bound_claims).toEqual({ nomad_namespace: "default", nomad_job_id: jobName, nomad_task: taskName });
    expect(variables.vault_role?.default).toBe("nomad-gha-dispatcher");
  });

  it("README gives the commands for every file", () => {
    const readme = read("policies/README.md");
    for (const command of [
      "nomad acl policy apply",
      "nomad-gha-dispatcher policies/nomad-dispatcher.policy.hcl",
      "nomad acl token create -name nomad-gha-dispatcher -policy nomad-gha-dispatcher -type client",
      "vault policy write nomad-gha-dispatcher policies/vault-dispatcher.policy.hcl",
      "vault policy write nomad-gha-dispatcher-config policies/vault-dispatcher-config.policy.hcl",
      "vault auth enable -path jwt-nomad jwt",
      "vault write auth/jwt-nomad/config",
      "jwt_supported_algs=RS256,EdDSA",
      "vault write auth/jwt-nomad/role/nomad-gha-dispatcher @policies/vault-jwt-role.json",
      "vault audit enable file file_path=/var/log/vault_audit.log",
      "vault kv put secret/nomad-gha-dispatcher/config",
    ]) {
      expect(readme).toContain(command);
    }
    for (const [, file] of readme.matchAll(/(policies\/[\w.-]+\.(?:hcl|json))/g)) expect(existsSync(`${root}${file}`), file).toBe(true);
  });
});

describe("Dockerfile", () => {
  const dockerfile = read("Dockerfile");
  // Join continuation lines so each instruction is one line.
  const instructions = dockerfile
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  const argDefaults = Object.fromEntries(
    instructions.flatMap((l) => {
      const m = /^ARG (\w+)=(\S*)$/.exec(l);
      return m ? [[m[1]!, m[2]!.replace(/^"|"$/g, "")]] : [];
    }),
  );
  const froms = instructions.filter((l) => l.startsWith("FROM "));
  const stageIndex = (name: string) => froms.findIndex((l) => l.endsWith(` AS ${name}`));
  const runtime = instructions.slice(instructions.indexOf(froms[froms.length - 1]!));

  it("is multi-stage on a pinned Node 22 LTS bookworm-slim image, never latest", () => {
    expect(froms.length).toBeGreaterThanOrEqual(2);
    expect(stageIndex("build")).toBeGreaterThanOrEqual(0);
    for (const from of froms) {
      const image = from.split(/\s+/)[1]!.replace(/^\$\{(\w+)\}$/, (_, name: string) => argDefaults[name] ?? "");
      expect(image).toMatch(/^node:22\.\d+\.\d+-bookworm-slim(@sha256:[0-9a-f]{64})?$/);
    }
    expect(dockerfile).not.toMatch(/:latest\b/);
  });

  it("builds with npm ci + npm run build (type-check, then bundle) and installs nothing at run time", () => {
    expect(instructions.some((l) => /^RUN npm ci --ignore-scripts\b/.test(l))).toBe(true);
    expect(instructions).toContain("RUN npm run build");
    expect(JSON.parse(read("package.json")).scripts.build).toBe("tsc -p tsconfig.build.json && tsx scripts/bundle.ts");
    expect(runtime.some((l) => /\bnpm\b/.test(l))).toBe(false);
  });

  it("ships the bundled service, jobs/ and the tunnel config in the runtime stage", () => {
    const bundle = runtime.find((l) => l.startsWith("COPY --from=build "));
    expect(bundle).toContain("/app/dist/nomad-gha-dispatcher.mjs ");
    expect(bundle).toMatch(/ \.\/dist\/$/);
    expect(runtime).toContain("COPY jobs ./jobs");
    expect(runtime).toContain("COPY wrangler-free-tunnel.yml ./");
  });

  it("installs a pinned, checksum-verified cloudflared .deb and points CLOUDFLARED_BIN at it", () => {
    expect(argDefaults.CLOUDFLARED_VERSION).toMatch(/^\d{4}\.\d+\.\d+$/);
    expect(dockerfile).toContain("cloudflared-linux-${arch}.deb");
    expect(dockerfile).toMatch(/sha256sum -c -/);
    expect(runtime.some((l) => l.includes("dpkg -i /tmp/cloudflared.deb"))).toBe(true);
    expect(runtime.some((l) => /^ENV .*CLOUDFLARED_BIN=\/usr\/local\/bin\/cloudflared/.test(l))).toBe(true);
  });

  it("runs as a non-root user with production settings, a health check and the CLI entrypoint", () => {
    const users = runtime.filter((l) => l.startsWith("USER "));
    expect(users.length).toBeGreaterThan(0);
    expect(users[users.length - 1]).not.toMatch(/^USER (root|0)(:|$)/);
    const env = runtime.filter((l) => l.startsWith("ENV ")).join(" ");
    expect(env).toContain("NODE_ENV=production");
    expect(env).toContain("HOST=0.0.0.0");
    // A fixed mmap threshold: large buffers go back to the system when freed (the bench runs with it too).
    expect(env).toContain("MALLOC_MMAP_THRESHOLD_=131072");
    const healthcheck = runtime.find((l) => l.startsWith("HEALTHCHECK "));
    expect(healthcheck).toContain("fetch(");
    expect(healthcheck).toContain("http://127.0.0.1:${process.env.PORT || 8080}/healthz");
    expect(runtime).toContain('ENTRYPOINT ["node", "dist/nomad-gha-dispatcher.mjs"]');
    expect(runtime).toContain('CMD ["serve"]');
    expect(runtime.filter((l) => l.startsWith("EXPOSE "))).toEqual(["EXPOSE 8080"]);
  });

  it("copies only files that exist and that .dockerignore lets through; keeps secrets out of the context", () => {
    const ignored = read(".dockerignore")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== "" && !l.startsWith("#"));
    for (const must of ["node_modules", ".git", ".env", "dist"]) expect(ignored).toContain(must);
    const sources = instructions.filter((l) => l.startsWith("COPY ") && !l.includes("--from=")).flatMap((l) => l.split(/\s+/).slice(1, -1));
    expect(sources.length).toBeGreaterThan(0);
    for (const source of sources) {
      expect(existsSync(`${root}${source}`), source).toBe(true);
      expect(ignored, source).not.toContain(source);
    }
  });
});

type Yaml = string | Yaml[] | { [key: string]: Yaml };

/** Just enough YAML for a cloudflared config: block maps, block lists of maps, scalars, comments. */
function parseYaml(text: string): Yaml {
  const lines = text
    .split("\n")
    .map((l) => l.replace(/(^|\s)#.*$/, "").trimEnd())
    .filter((l) => l.trim() !== "")
    .map((l) => ({ indent: l.search(/\S/), text: l.trim() }));
  let i = 0;
  const scalar = (s: string) => s.replace(/^"(.*)"$/, "$1").replace(/^'(.*)'$/, "$1");
  const node = (indent: number): Yaml => (lines[i]!.text.startsWith("- ") ? list(indent) : map(indent));
  function map(indent: number): { [key: string]: Yaml } {
    const out: { [key: string]: Yaml } = {};
    while (i < lines.length && lines[i]!.indent === indent && !lines[i]!.text.startsWith("- ")) {
      const m = /^([^:]+):(?:\s+(.*))?$/.exec(lines[i]!.text);
      if (!m) throw new Error(`cannot read YAML line: ${lines[i]!.text}`);
      i++;
      const key = m[1]!.trim();
      if (m[2] !== undefined && m[2] !== "") out[key] = scalar(m[2]);
      else if (i < lines.length && (lines[i]!.indent > indent || lines[i]!.text.startsWith("- "))) out[key] = node(lines[i]!.indent);
      else out[key] = "";
    }
    return out;
  }
  function list(indent: number): Yaml[] {
    const out: Yaml[] = [];
    while (i < lines.length && lines[i]!.indent === indent && lines[i]!.text.startsWith("- ")) {
      const item = lines[i]!.text.slice(2);
      if (!/^[^:]+:(\s|$)/.test(item)) {
        out.push(scalar(item));
        i++;
        continue;
      }
      lines[i] = { indent: indent + 2, text: item }; // "- key: v" opens a map at the item's column
      out.push(map(indent + 2));
    }
    return out;
  }
  const result = node(0);
  if (i !== lines.length) throw new Error(`unexpected YAML at: ${lines[i]!.text}`);
  return result;
}

describe("wrangler-free-tunnel.yml", () => {
  const config = parseYaml(read("wrangler-free-tunnel.yml")) as { [key: string]: Yaml };
  const ingress = config.ingress as Array<{ [key: string]: string }>;

  /** cloudflared's rule matching: the first rule whose hostname and path regex both match. */
  const route = (hostname: string, path: string) =>
    ingress.find((r) => (r.hostname === undefined || r.hostname === hostname) && (r.path === undefined || new RegExp(r.path).test(path)))?.service;

  it("is a named tunnel config with placeholders to fill in", () => {
    expect(config.tunnel).toBe("<TUNNEL-UUID>");
    expect(config["credentials-file"]).toBe("/etc/cloudflared/<TUNNEL-UUID>.json");
    expect(Array.isArray(ingress)).toBe(true);
  });

  it("routes only /webhook on the webhook hostname to the dispatcher and ends with a 404 catch-all", () => {
    expect(ingress[ingress.length - 1]).toEqual({ service: "http_status:404" });
    const toService = ingress.filter((r) => !String(r.service).startsWith("http_status:"));
    expect(toService).toEqual([{ hostname: "ci-hooks.example.com", path: "^/webhook$", service: "http://127.0.0.1:8080" }]);

    expect(route("ci-hooks.example.com", "/webhook")).toBe("http://127.0.0.1:8080");
    for (const path of ["/", "/healthz", "/readyz", "/metrics", "/webhook/", "/webhooks", "/x/webhook"]) {
      expect(route("ci-hooks.example.com", path), path).toBe("http_status:404");
    }
    expect(route("other.example.com", "/webhook")).toBe("http_status:404");
  });

  it("explains how to create the tunnel and its DNS route, without Workers or wrangler", () => {
    const text = read("wrangler-free-tunnel.yml");
    expect(text).toContain("cloudflared tunnel create");
    expect(text).toContain("cloudflared tunnel route dns");
    expect(text).toMatch(/No Cloudflare Worker, wrangler/);
  });
});
