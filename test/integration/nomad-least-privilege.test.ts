import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BUNDLED_RUNNER_JOB_FILE, loadConfig } from "../../src/config.js";
import { DependencyError } from "../../src/core/errors.js";
import { dockerOptionsAtStart } from "../../src/doctor-placement.js";
import { NomadClient } from "../../src/nomad/client.js";
import { ensureRunnerJob, parsedRunnerJob, type RunnerJobSource } from "../../src/nomad/runner-job.js";
import { createDeps, startupChecks } from "../../src/service.js";
import { RUNTIME_TOKEN_REGISTERS } from "../../src/startup.js";
import { captureLogger, serviceEnv } from "../harness/world.js";
import { GitHubTwin } from "../twins/github.js";
import { twinImage } from "../twins/images.js";
import { NomadTwin } from "../twins/nomad.js";
import { VaultTwin } from "../twins/vault.js";

// The Nomad tokens made from the shipped policies/, against the Nomad twin with ACLs on: what
// each may do in the runner namespace, and what it is refused everywhere else.

const policy = (file: string) => readFileSync(new URL(`../../policies/${file}`, import.meta.url), "utf8");

/** The dispatch meta the runner job requires (the provisioning path sends these keys). */
const META = {
  github_repo: "octo/repo",
  github_job_id: "101",
  github_run_id: "202",
  runner_name: "gha-101",
  runner_labels: "self-hosted,nomad",
  runner_scope_url: "https://github.com/octo/repo",
  credential_wrap_token: "wrap-1",
};

let nomad: NomadTwin;
let namespace: string;
let runtimeToken: string;
let adminToken: string;
let nomad2Token: string;

const client = (token: string, ns = namespace) => new NomadClient({ addr: nomad.url, token, namespace: ns });
const RUNNER_VAULT = { addr: "http://127.0.0.1:8200", kvMount: "secret", kvPrefix: "nomad-gha-dispatcher", credentialDelivery: "workload-identity" } as const;
const source: RunnerJobSource = { jobId: "github-runner", file: BUNDLED_RUNNER_JOB_FILE, vault: RUNNER_VAULT };

/** The HTTP status a call is refused with, or "ok". */
async function outcome(call: () => Promise<unknown>): Promise<number | "ok"> {
  try {
    await call();
    return "ok";
  } catch (err) {
    if (err instanceof DependencyError && err.status !== undefined) return err.status;
    throw err;
  }
}

beforeAll(async () => {
  // No slots: dispatched children stay pending, so no runner task runs; the ACLs are what is tested.
  nomad = await NomadTwin.start({ images: twinImage, acl: true, slots: 0 });
  namespace = await nomad.applyNamespace(policy("nomad-runner-namespace.hcl"));
  runtimeToken = nomad.createToken(policy("nomad-dispatcher.policy.hcl"), "nomad-gha-dispatcher");
  adminToken = nomad.createToken(policy("nomad-runner-job-admin.policy.hcl"), "nomad-gha-dispatcher-register");
  nomad2Token = nomad.createToken(policy("nomad-dispatcher.nomad-2.policy.hcl"), "nomad-gha-dispatcher-nomad-2");
});
afterAll(() => nomad.close());

describe("shipped Nomad policies", () => {
  it("the registration token parses and registers the runner job in the runner namespace", async () => {
    expect(namespace).toBe("github-runners");
    expect(await ensureRunnerJob(client(adminToken), source)).toBe("registered");
    expect(nomad.jobs(namespace).map((job) => job.ID)).toEqual(["github-runner"]);
  });

  for (const [name, token] of [
    ["nomad-dispatcher.policy.hcl", () => runtimeToken],
    ["nomad-dispatcher.nomad-2.policy.hcl", () => nomad2Token],
  ] as const) {
    it(`the run-time token (${name}) dispatches, reads, lists, stops and purges runner jobs in the runner namespace`, async () => {
      const nomadClient = client(token());
      const { dispatchedJobId } = await nomadClient.dispatch("github-runner", { meta: META, idempotencyToken: `lp-${name}` });
      expect((await nomadClient.readJob(dispatchedJobId))?.ParentID).toBe("github-runner");
      expect((await nomadClient.listJobs("github-runner/")).map((job) => job.ID)).toContain(dispatchedJobId);
      await nomadClient.stopJob(dispatchedJobId, { purge: false });
      expect((await nomadClient.readJob(dispatchedJobId))?.Stop).toBe(true);
      await nomadClient.stopJob(dispatchedJobId, { purge: true });
      expect(await nomadClient.readJob(dispatchedJobId)).toBeUndefined();
    });

    it(`the run-time token (${name}) is refused in default and on nodes, agent and operator`, async () => {
      const inDefault = client(token(), "default");
      const job = { ID: "replacement", Name: "replacement", Type: "batch", TaskGroups: [] };
      expect(await outcome(() => inDefault.readJob("nomad-gha-dispatcher"))).toBe(403);
      expect(await outcome(() => inDefault.listJobs(""))).toBe(403);
      expect(await outcome(() => inDefault.registerJob(job))).toBe(403);
      expect(await outcome(() => inDefault.stopJob("nomad-gha-dispatcher", { purge: true }))).toBe(403);
      expect(await outcome(() => inDefault.dispatch("github-runner", { meta: META, idempotencyToken: "x" }))).toBe(403);
      for (const path of ["/v1/nodes", "/v1/agent/self", "/v1/operator/scheduler/configuration"]) {
        expect(await client(token()).mayRead(path), path).toBe(false);
      }
      expect((await client(token()).listNamespaces()).map((ns) => ns.Name)).toEqual([namespace]);
    });
  }

  it("Nomad >= 2.0 policy: the run-time token cannot parse or register, even in the runner namespace", async () => {
    const hcl = readFileSync(BUNDLED_RUNNER_JOB_FILE, "utf8");
    expect(await outcome(() => client(nomad2Token).parseJob(hcl))).toBe(403);
    const changed = { ...source, vault: { ...RUNNER_VAULT, addr: "https://vault.example.com:8200" } };
    expect(await outcome(() => ensureRunnerJob(client(nomad2Token), changed))).toBe(403);
  });

  it("Nomad 1.x policy: submit-job, needed to stop a job, also submits jobs in the runner namespace, docker ones only (what remains)", async () => {
    // Job.Register accepts submit-job (hashicorp/nomad nomad/job_endpoint.go doRegister), and Nomad
    // 1.x has nothing narrower for Job.Deregister; the namespace spec admits the docker driver only.
    const runtime = client(runtimeToken);
    const jobspec = (driver: string, config: string) =>
      `job "other" {\n  type = "batch"\n  group "g" {\n    task "t" {\n      driver = "${driver}"\n      config { ${config} }\n    }\n  }\n}`;
    const onTheHost = await runtime.parseJob(jobspec("raw_exec", 'command = "id"'));
    expect(await outcome(() => runtime.registerJob(onTheHost))).toBe(500);
    const inAContainer = await runtime.parseJob(jobspec("docker", 'image = "busybox:1.36"'));
    expect(await outcome(() => runtime.registerJob(inAContainer))).toBe("ok");
    await runtime.stopJob("other", { purge: true });
  });

  it("the service with both tokens registers with NOMAD_REGISTER_TOKEN, and warns when NOMAD_TOKEN has to register", async () => {
    const github = await GitHubTwin.start();
    const vault = await VaultTwin.start();
    try {
      const env = (extra: Record<string, string>) =>
        loadConfig({ ...serviceEnv({ github, vault, nomad }, "a-webhook-secret-long-enough", {}), NOMAD_NAMESPACE: namespace, ...extra });
      const split = captureLogger();
      const both = env({ NOMAD_TOKEN: runtimeToken, NOMAD_REGISTER_TOKEN: adminToken });
      const before = nomad.requests.length;
      await startupChecks(both, createDeps(both, split.log));
      const tokens = new Set(nomad.requests.slice(before).map((r) => r.headers["x-nomad-token"]));
      expect([...tokens]).toEqual([adminToken]);
      expect(split.logs.join("\n")).not.toContain(RUNTIME_TOKEN_REGISTERS);

      const single = captureLogger();
      const config = env({ NOMAD_TOKEN: adminToken });
      await startupChecks(config, createDeps(config, single.log));
      expect(single.logs.find((line) => line.includes(RUNTIME_TOKEN_REGISTERS))).toMatch(/"level":"warn"/);
    } finally {
      await Promise.all([github.close(), vault.close()]);
    }
  });

  // README, Container jobs: start-up reads the pool's nodes with the registration token, which the
  // shipped policy lets read nodes and node pools (nothing else on them); without that rule start-up only warns.
  it("the registration token reads the nodes, so a dind class's docker options are checked at start; without node read they are not", async () => {
    const dind = await parsedRunnerJob(client(adminToken), { ...source, vars: 'docker = "dind"\n' });
    const checked = await dockerOptionsAtStart(client(adminToken), dind, "docker");
    expect(checked.unchecked).toBeUndefined();
    expect(checked.problems.map((p) => p.problem)).toEqual([
      expect.stringContaining('needs privileged containers, but no ready node of pool "default" allows them'),
    ]);
    const shipped = policy("nomad-runner-job-admin.policy.hcl");
    const withoutNodes = shipped.slice(0, shipped.indexOf("\nnode {"));
    expect(withoutNodes).toContain('namespace "github-runners"');
    const blind = nomad.createToken(withoutNodes, "register-only");
    expect(await dockerOptionsAtStart(client(blind), dind, "docker")).toEqual({
      problems: [],
      unchecked: "the Nomad token may not read the nodes of pool default",
    });
    // Nodes and node pools only: still nothing on the agent or the operator.
    expect(await client(adminToken).mayRead("/v1/nodes")).toBe(true);
    for (const path of ["/v1/agent/self", "/v1/operator/scheduler/configuration"]) expect(await client(adminToken).mayRead(path), path).toBe(false);
  });
});
