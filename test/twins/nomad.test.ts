// Tests of the Nomad twin against the real runner job file (its scripts inlined as the dispatcher
// sends them): parsing, registration, dispatch validation and idempotency, routing, ACLs, blocking
// queries, and the allocation lifecycle, its tasks run for real by the twin's client against the
// Vault twin (set up as policies/README.md has an operator do it, the credential written by the
// dispatcher's own adapter, read by the prestart with its workload identity) and a fake
// actions-runner image whose run.sh and config.sh talk to a fake Actions service in the test.

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { RunnerSecret, VaultStore } from "../../src/vault/client.js";
import { NomadTwin, type NomadTwinOptions } from "./nomad.js";
import {
  type ApiResponse,
  api,
  eventTypes,
  exitCodeOf,
  FakeActions,
  jitConfig,
  parseHcl,
  RUNNER_IMAGE,
  RUNNER_JOB_HCL,
  RUNNER_JOB_RAW,
  RUNNER_SCRIPTS,
  registerJob,
  runnerFiles,
  startRunnerVault,
  waitForAllocations,
} from "./nomad-fakes.js";
import type { VaultTwin } from "./vault.js";

const META = {
  github_repo: "octo/repo",
  github_job_id: "101",
  github_run_id: "202",
  runner_name: "gha-101",
  runner_labels: "self-hosted, linux,x64",
  runner_scope_url: "https://github.com/octo/repo",
};

/**
 * Where the dispatcher stores a runner's credential and the prestart reads it (KV v2, default
 * mount and prefix, runner job github-runner in namespace default), written out here rather than
 * asked of the adapter or the script: both must agree with it.
 */
const secretPathOf = (name: string) => `secret/data/nomad-gha-dispatcher/runners/default/github-runner/${name}`;

/** The prestart's workload-identity Vault block and identity, as the job declares them by default. */
const PRESTART_VAULT = { Role: "nomad-gha-runner", Namespace: "", Env: false, ChangeMode: "noop" };
const PRESTART_IDENTITIES = [
  {
    Name: "vault_default",
    Audience: ["vault.io"],
    ChangeMode: "",
    ChangeSignal: "",
    Env: false,
    File: false,
    Filepath: "",
    ServiceName: "",
    TTL: 15 * 60 * 1e9,
    ExtraClaims: null,
  },
];

async function parseRunnerJob(twin: NomadTwin, variables: string, canonicalize = true, token?: string): Promise<Record<string, unknown>> {
  return parseHcl(twin, RUNNER_JOB_HCL, variables, canonicalize, token);
}

async function registerRunnerJob(twin: NomadTwin, vaultAddr: string, token?: string): Promise<void> {
  await registerJob(twin, await parseRunnerJob(twin, `vault_addr = "${vaultAddr}"`, true, token), token);
}

async function dispatch(twin: NomadTwin, meta: Record<string, string> = META, query = "", token?: string): Promise<ApiResponse> {
  return api(twin, "POST", `/v1/job/github-runner/dispatch${query}`, { Meta: meta }, token);
}

async function dispatchOk(twin: NomadTwin, meta: Record<string, string> = META, query = ""): Promise<string> {
  const res = await dispatch(twin, meta, query);
  expect(res.status, res.text).toBe(200);
  return res.json<{ DispatchedJobID: string }>().DispatchedJobID;
}

// ---------------------------------------------------------------------------------------------

let timeline: string[];
let vault: VaultTwin;
let store: VaultStore;
let actions: FakeActions;
let twin: NomadTwin;

/**
 * A twin whose client pulls the fake runner image under the runner job's image name, and logs
 * tasks with a vault block in to the Vault twin with their workload identity.
 */
function startTwin(opts: Partial<NomadTwinOptions> = {}): Promise<NomadTwin> {
  const image = actions.image();
  return NomadTwin.start({ images: (name) => (name === RUNNER_IMAGE ? image : undefined), startDelayMs: 1, vault: { addr: vault.url }, ...opts });
}

/** Stores a runner's credential as the dispatcher does before it dispatches the runner. */
function putCredential(name: string, credential: RunnerSecret): Promise<void> {
  return store.putRunnerSecret(name, credential);
}

/** Audit log requests that read a runner's secret, as "operation path". */
function credentialReads(): string[] {
  return vault
    .auditLog()
    .filter((entry) => entry.type === "request" && entry.request.path.includes("/runners/") && entry.request.operation === "read")
    .map((entry) => `${entry.request.operation} ${entry.request.path}`);
}

beforeEach(async () => {
  timeline = [];
  ({ vault, store } = await startRunnerVault());
  // Each read of a runner's secret goes on the timeline, in order with the Actions service's events.
  vault.faults.intercept = ({ method, path }) => {
    if (method === "GET" && path.includes("/runners/")) timeline.push(`read:${path.split("/").pop()}`);
    return undefined;
  };
  actions = new FakeActions(timeline);
  await actions.start();
  twin = await startTwin();
});

afterEach(async () => {
  await twin.close();
  await actions.close();
  await vault.close();
});

describe("POST /v1/jobs/parse with the real runner job", () => {
  it("returns the API job with variables applied, the scripts inlined and runtime interpolations kept", async () => {
    const job = await parseRunnerJob(
      twin,
      `vault_addr = "http://vault.internal:8200"\ndatacenters = ["dc1", "dc2"]\ncpu = 500\nvault_kv_mount = "kv"\nvault_kv_prefix = "ci/gha"`,
      false,
    );
    expect(job).toMatchObject({
      ID: "github-runner",
      Name: "github-runner",
      Type: "batch",
      Datacenters: ["dc1", "dc2"],
      NodePool: "default",
      Priority: null,
      Namespace: null,
      Meta: { managed_by: "nomad-gha-dispatcher" },
      ParameterizedJob: {
        Payload: "forbidden",
        MetaRequired: ["github_repo", "github_job_id", "github_run_id", "runner_name", "runner_labels", "runner_scope_url"],
        // credential_wrap_token: only for the wrapping-token fallback (vault_role = "").
        MetaOptional: ["dispatcher_id", "credential_wrap_token"],
      },
    });
    const [group] = job.TaskGroups as Array<Record<string, unknown>>;
    expect(group).toMatchObject({
      Name: "runner",
      Count: null,
      RestartPolicy: { Attempts: 0, Mode: "fail" },
      ReschedulePolicy: { Attempts: 0, Unlimited: false },
      Disconnect: { Replace: false },
      EphemeralDisk: { SizeMB: 300 },
    });
    const tasks = group?.Tasks as Array<Record<string, unknown>>;
    expect(tasks.map((task) => [task.Name, task.Lifecycle])).toEqual([
      ["configure-runner", { Hook: "prestart", Sidecar: false }],
      ["runner", null],
      ["scrub", { Hook: "poststop", Sidecar: false }],
    ]);
    const [configure, runner, scrub] = tasks;
    expect(configure).toMatchObject({
      Driver: "docker",
      Env: { VAULT_ADDR: "http://vault.internal:8200", VAULT_NAMESPACE: "", VAULT_KV_MOUNT: "kv", VAULT_KV_PREFIX: "ci/gha" },
      Config: { image: RUNNER_IMAGE, entrypoint: ["/bin/bash"], args: ["${NOMAD_TASK_DIR}/configure-runner.sh"] },
      Resources: { CPU: 100, MemoryMB: 128 },
      Templates: [{ DestPath: "local/configure-runner.sh", Perms: "0644" }],
      // The dynamic vault and identity blocks over compact([var.vault_role]), with the default role.
      Vault: PRESTART_VAULT,
      Identities: PRESTART_IDENTITIES,
    });
    expect(configure?.Identities).toEqual(PRESTART_IDENTITIES);
    // Only the prestart logs in to Vault: workflow code in the main task never gets a Vault token.
    expect([runner?.Vault, runner?.Identities, scrub?.Vault, scrub?.Identities]).toEqual([null, null, null, null]);
    expect(runner).toMatchObject({
      Config: { image: RUNNER_IMAGE, entrypoint: ["/bin/bash"], args: ["${NOMAD_TASK_DIR}/run-runner.sh"] },
      Resources: { CPU: 500, MemoryMB: 4096 },
      Templates: [{ DestPath: "local/run-runner.sh", Perms: "0644" }],
    });
    expect(scrub).toMatchObject({
      Config: { image: RUNNER_IMAGE, entrypoint: ["/bin/rm"], args: ["-rf", "${NOMAD_ALLOC_DIR}/runner"] },
      Resources: { CPU: 50, MemoryMB: 32 },
      Templates: null,
    });
    // The scripts arrive byte for byte: no HCL interpolation or directive touched `${...}`/`%{`.
    const embedded = (task: Record<string, unknown> | undefined) => (task?.Templates as Array<{ EmbeddedTmpl: string }> | undefined)?.[0]?.EmbeddedTmpl;
    expect(embedded(configure)).toBe(RUNNER_SCRIPTS.configure);
    expect(embedded(runner)).toBe(RUNNER_SCRIPTS.run);
    expect(RUNNER_SCRIPTS.configure).toContain("${NOMAD_ALLOC_DIR}/runner");
  });

  it("keeps a static block and appends the dynamic ones of the same type after it (the runner job's vault_ca_pem template)", async () => {
    // hashicorp/hcl ext/dynblock: generated blocks follow the static ones; hcl2json puts the
    // `dynamic` key before a static `template` written after it, which must not replace it.
    const pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    const job = await parseRunnerJob(twin, `vault_addr = "https://vault.internal:8200"\nvault_ca_pem = ${JSON.stringify(pem)}`);
    const prestart = (job.TaskGroups as Array<{ Tasks: Array<{ Templates: Array<{ DestPath: string; EmbeddedTmpl: string; Perms: string }> }> }>)[0]?.Tasks[0];
    expect(prestart?.Templates.map((t) => [t.DestPath, t.Perms])).toEqual([
      ["local/configure-runner.sh", "0644"],
      ["local/vault-ca.pem", "0644"],
    ]);
    expect(prestart?.Templates[1]?.EmbeddedTmpl).toBe(pem);
  });

  it("evaluates conditionals and comparisons, names dynamic blocks by their labels, and checks variable validation blocks", async () => {
    // hashicorp/nomad jobspec2/parse_test.go TestParseDynamic (labeled dynamic blocks) and
    // jobspec2/types.variables.go validateValue (a false condition fails the parse).
    const hcl = `variable "mode" {
  type    = string
  default = "one"
  validation {
    condition     = contains(["one", "two"], var.mode)
    error_message = "mode is one or two."
  }
}
job "j" {
  group "g" {
    dynamic "task" {
      for_each = var.mode == "two" ? ["a", "b"] : ["a"]
      labels   = [task.value]
      content {
        driver = "docker"
        config {
          image      = "x:\${task.value}"
          privileged = !(var.mode == "one") && true
          args       = [var.mode != "one" || false ? "two" : "one", "\${NOMAD_TASK_DIR}/run.sh"]
        }
      }
    }
  }
}`;
    const parse = (Variables = "") => api(twin, "POST", "/v1/jobs/parse", { JobHCL: hcl, Variables });
    type Parsed = { TaskGroups: Array<{ Tasks: Array<{ Name: string; Config: Record<string, unknown> }> }> };
    const tasks = async (vars?: string) => (await parse(vars)).json<Parsed>().TaskGroups[0]!.Tasks;
    expect(await tasks()).toEqual([
      expect.objectContaining({ Name: "a", Config: { image: "x:a", privileged: false, args: ["one", "${NOMAD_TASK_DIR}/run.sh"] } }),
    ]);
    const two = await tasks('mode = "two"');
    expect(two.map((t) => [t.Name, t.Config.image, t.Config.privileged, (t.Config.args as string[])[0]])).toEqual([
      ["a", "x:a", true, "two"],
      ["b", "x:b", true, "two"],
    ]);
    const refused = await parse('mode = "three"');
    expect([refused.status, refused.text]).toEqual([400, expect.stringContaining("Invalid value for varfile variable; mode is one or two.")]);
  });

  it("fills Nomad's defaults when asked to canonicalize", async () => {
    const job = await parseRunnerJob(twin, 'vault_addr = "http://vault.internal:8200"');
    expect(job).toMatchObject({ Namespace: "default", Region: "global", Priority: 50, Datacenters: ["*"], Stop: false, ParentID: "" });
    const [group] = job.TaskGroups as Array<{
      Count: number;
      Tasks: Array<{ Name: string; KillTimeout: number; Env: unknown; Templates: Array<{ Perms: string }> | null; Vault: unknown; Identities: unknown }>;
    }>;
    expect(group?.Count).toBe(1);
    expect(group?.Tasks.map((task) => task.KillTimeout)).toEqual([5e9, 5e9, 5e9]);
    expect(group?.Tasks[0]?.Env).toEqual({
      VAULT_ADDR: "http://vault.internal:8200",
      VAULT_NAMESPACE: "",
      VAULT_KV_MOUNT: "secret",
      VAULT_KV_PREFIX: "nomad-gha-dispatcher",
    });
    // api.Task.Canonicalize leaves identities as written; what it fills in the vault block is
    // checked in "the vault block as real Nomad normalizes it" below.
    expect(group?.Tasks[0]?.Vault).toMatchObject(PRESTART_VAULT);
    expect(group?.Tasks.map((task) => task.Identities)).toEqual([PRESTART_IDENTITIES, null, null]);
    expect(group?.Tasks.slice(1).map((task) => task.Vault)).toEqual([null, null]);
    expect(group?.Tasks.map((task) => task.Templates?.map((t) => t.Perms) ?? null)).toEqual([["0644"], ["0644"], null]);
  });

  it("answers bad input with Nomad's 400 texts", async () => {
    const syntax = await api(twin, "POST", "/v1/jobs/parse", { JobHCL: 'job "x" {\n  type = \n}' });
    expect(syntax.status).toBe(400);
    expect(syntax.headers.get("content-type")).toBe("text/plain; charset=utf-8");
    expect(syntax.text).toBe(
      "Failed to parse job: input.hcl:2,10-3,1: Invalid expression; Expected the start of an expression, but found an invalid expression token.",
    );

    const empty = await api(twin, "POST", "/v1/jobs/parse", { JobHCL: "" });
    expect([empty.status, empty.text]).toEqual([400, "Job spec is empty"]);

    const badType = await api(twin, "POST", "/v1/jobs/parse", { JobHCL: RUNNER_JOB_HCL, Variables: 'vault_addr = "x"\ncpu = "lots"' });
    expect(badType.status).toBe(400);
    expect(badType.text).toContain(
      "Invalid value for variable; The value for cpu is not compatible with the variable's type constraint: a number is required.",
    );

    // vault_addr has no default: a job registered without it would have no Vault to read the credential from.
    const noVault = await api(twin, "POST", "/v1/jobs/parse", { JobHCL: RUNNER_JOB_HCL });
    expect(noVault.status).toBe(400);
    expect(noVault.text).toContain('Unset variable "vault_addr"');

    // The file as it is on disk: /v1/jobs/parse has no filesystem functions (command/agent/job_endpoint.go
    // parses with AllowFS false), which is why the dispatcher inlines the scripts.
    const raw = await api(twin, "POST", "/v1/jobs/parse", { JobHCL: RUNNER_JOB_RAW, Variables: 'vault_addr = "x"' });
    expect(raw.status).toBe(400);
    expect(raw.text).toContain('Call to function "file" failed: filesystem function disabled.');
  });

  it('drops the prestart\'s vault and identity blocks with vault_role = "" (the wrapping-token fallback)', async () => {
    // hashicorp/hcl dynblock: for_each over an empty list generates no block, so Task.Vault is nil
    // and the task has no identities; the fallback's prestart finds no token file and unwraps.
    const job = await parseRunnerJob(twin, 'vault_addr = "x"\nvault_role = ""');
    const tasks = (job.TaskGroups as Array<{ Tasks: Array<Record<string, unknown>> }>)[0]?.Tasks ?? [];
    expect(tasks.map((task) => [task.Name, task.Vault, task.Identities])).toEqual([
      ["configure-runner", null, null],
      ["runner", null, null],
      ["scrub", null, null],
    ]);
    expect(tasks[0]?.Env).toMatchObject({ VAULT_KV_MOUNT: "secret", VAULT_KV_PREFIX: "nomad-gha-dispatcher" });
  });

  it("ignores variables the job does not declare, as Nomad's non-strict parse does", async () => {
    const job = await parseRunnerJob(twin, 'vault_addr = "x"\nnot_declared = "x"');
    expect(job.ID).toBe("github-runner");
  });
});

// What real Nomad does with the runner job's Vault block, beyond what the parse tests above check.
describe("the vault block as real Nomad normalizes it", () => {
  const prestartOf = (job: Record<string, unknown>) =>
    ((job.TaskGroups as Array<{ Tasks: Array<Record<string, unknown>> }>)[0]?.Tasks ?? [])[0] as Record<string, unknown>;

  // jobspec2/parse_job.go normalizeVault runs on every parse, canonicalized or not.
  it("/v1/jobs/parse without canonicalize: the vault block's DisableFile is false, not null", async () => {
    const job = await parseRunnerJob(twin, 'vault_addr = "x"', false);
    expect(prestartOf(job).Vault).toMatchObject({ ...PRESTART_VAULT, DisableFile: false });
  });

  // api/tasks.go Vault.Canonicalize fills Cluster, DisableFile, ChangeSignal, AllowTokenExpiration.
  it("/v1/jobs/parse with canonicalize: the vault block has api.Vault.Canonicalize's defaults", async () => {
    const job = await parseRunnerJob(twin, 'vault_addr = "x"');
    expect(prestartOf(job).Vault).toMatchObject({
      ...PRESTART_VAULT,
      Cluster: "default",
      DisableFile: false,
      ChangeSignal: "SIGHUP",
      AllowTokenExpiration: false,
    });
  });

  // nomad/job_endpoint_hooks.go jobImpliedConstraints: a group with a vault block gets vaultConstraint.
  it("registration adds the implied Vault constraint to the runner group", async () => {
    await registerRunnerJob(twin, vault.url);
    const stored = (await api(twin, "GET", "/v1/job/github-runner")).json<{ TaskGroups: Array<{ Constraints: unknown }> }>();
    expect(stored.TaskGroups[0]?.Constraints).toEqual([{ LTarget: "${attr.vault.version}", RTarget: ">= 0.6.1", Operand: "semver" }]);
  });
});

describe("registration", () => {
  it("stores the parameterized job as running, without allocations, and versions only real changes", async () => {
    const job = await parseRunnerJob(twin, `vault_addr = "${vault.url}"`);
    const first = await api(twin, "POST", "/v1/jobs", { Job: job });
    expect(first.json()).toMatchObject({ EvalID: "", EvalCreateIndex: 0, Warnings: "" });
    const firstIndex = first.json<{ JobModifyIndex: number }>().JobModifyIndex;

    const same = await api(twin, "PUT", "/v1/job/github-runner", { Job: job });
    expect(same.json<{ JobModifyIndex: number }>().JobModifyIndex).toBe(firstIndex);

    const changed = await api(twin, "POST", "/v1/jobs", { Job: { ...job, Meta: { managed_by: "someone-else" } } });
    expect(changed.json<{ JobModifyIndex: number }>().JobModifyIndex).toBeGreaterThan(firstIndex);

    const stored = await api(twin, "GET", "/v1/job/github-runner");
    expect(stored.json()).toMatchObject({ Status: "running", Version: 1, Meta: { managed_by: "someone-else" }, ParameterizedJob: { Payload: "forbidden" } });
    expect(Number(stored.headers.get("x-nomad-index"))).toBeGreaterThan(0);
    expect(stored.headers.get("x-nomad-knownleader")).toBe("true");
    expect((await api(twin, "GET", "/v1/job/github-runner/allocations")).json()).toEqual([]);
  });

  it("rejects invalid jobs with 400 at the agent and 500 multierrors from the server", async () => {
    expect((await api(twin, "POST", "/v1/jobs", {})).text).toBe("Job must be specified");
    const noId = await api(twin, "POST", "/v1/jobs", { Job: { Name: "x" } });
    expect([noId.status, noId.text]).toEqual([400, "Job ID hasn't been provided"]);
    const mismatch = await api(twin, "PUT", "/v1/job/a", { Job: { ID: "b" } });
    expect([mismatch.status, mismatch.text]).toEqual([400, "Job ID does not match name"]);
    const noGroups = await api(twin, "POST", "/v1/jobs", { Job: { ID: "empty", Type: "batch" } });
    expect([noGroups.status, noGroups.text]).toEqual([500, "1 error occurred:\n\t* Missing job task groups\n\n"]);
  });
});

describe("dispatch", () => {
  beforeEach(() => registerRunnerJob(twin, vault.url));

  it("validates meta and payload with Nomad's texts", async () => {
    const { runner_scope_url: _omitted, ...withoutScope } = META;
    const missing = await dispatch(twin, withoutScope);
    expect([missing.status, missing.text]).toEqual([500, "Dispatch did not provide required meta keys: [runner_scope_url]"]);

    const extra = await dispatch(twin, { ...META, colour: "blue" });
    expect([extra.status, extra.text]).toEqual([500, "Dispatch request included unpermitted metadata keys: [colour]"]);

    // credential_wrap_token is permitted (the wrapping-token fallback's), no longer required.
    const withWrapToken = await dispatch(twin, { ...META, credential_wrap_token: "hvs.unused" });
    expect(withWrapToken.status, withWrapToken.text).toBe(200);

    const payload = await api(twin, "POST", "/v1/job/github-runner/dispatch", { Meta: META, Payload: Buffer.from("hi").toString("base64") });
    expect([payload.status, payload.text]).toEqual([500, "Payload provided but forbidden by parameterized job"]);

    const unknown = await api(twin, "POST", "/v1/job/nope/dispatch", { Meta: META });
    expect([unknown.status, unknown.text]).toEqual([500, "parameterized job not found"]);

    const child = await dispatchOk(twin, { ...META, dispatcher_id: "d-1" });
    const ofChild = await api(twin, "POST", `/v1/job/${encodeURIComponent(child)}/dispatch`, { Meta: META });
    expect([ofChild.status, ofChild.text]).toEqual([500, `Specified job "${child}" is not a parameterized job`]);
  });

  it("creates a child with Nomad's ID format, the parent's meta merged, and a pending-then-dead status", async () => {
    const res = await dispatch(twin, META, "?idempotency_token=t-1");
    const body = res.json<{ DispatchedJobID: string; EvalID: string; EvalCreateIndex: number; JobCreateIndex: number; Index: number }>();
    expect(body.DispatchedJobID).toMatch(/^github-runner\/dispatch-\d{10}-[0-9a-f]{8}$/);
    expect(body.EvalID).toMatch(/^[0-9a-f-]{36}$/);
    expect(body.EvalCreateIndex).toBe(body.JobCreateIndex);
    expect(res.headers.get("x-nomad-index")).toBe(String(body.Index));

    const child = (await api(twin, "GET", `/v1/job/${encodeURIComponent(body.DispatchedJobID)}`)).json();
    expect(child).toMatchObject({
      ParentID: "github-runner",
      Dispatched: true,
      DispatchIdempotencyToken: "t-1",
      Meta: { ...META, managed_by: "nomad-gha-dispatcher" },
      Payload: null,
    });
    expect(["pending", "running"]).toContain(child.Status);

    const templated = await api(twin, "POST", "/v1/job/github-runner/dispatch", { Meta: META, IdPrefixTemplate: "run-202" });
    expect(templated.json<{ DispatchedJobID: string }>().DispatchedJobID).toMatch(/^github-runner\/dispatch-run-202-\d{10}-[0-9a-f]{8}$/);

    await twin.waitIdle();
    const stubs = (await api(twin, "GET", "/v1/jobs?prefix=github-runner/&meta=true")).json<
      Array<{ ID: string; Status: string; ParameterizedJob: boolean; Meta?: Record<string, string> }>
    >();
    expect(stubs.map((stub) => [stub.Status, stub.ParameterizedJob, stub.Meta?.runner_name])).toEqual([
      ["dead", false, "gha-101"],
      ["dead", false, "gha-101"],
    ]);
  });

  it("answers a repeated idempotency token with the existing child until it is garbage collected", async () => {
    await putCredential("gha-101", { kind: "jit", jitconfig: "cfg" });
    const first = await dispatch(twin, META, "?idempotency_token=job-101");
    const firstId = first.json<{ DispatchedJobID: string }>().DispatchedJobID;

    const again = await api(twin, "POST", "/v1/job/github-runner/dispatch", { Meta: META, IdempotencyToken: "job-101" });
    expect(again.status).toBe(200);
    expect(again.json()).toMatchObject({ DispatchedJobID: firstId, EvalID: "", EvalCreateIndex: 0 });

    const other = await dispatchOk(twin, META, "?idempotency_token=job-102");
    expect(other).not.toBe(firstId);

    await twin.waitIdle();
    const whileDead = await dispatch(twin, META, "?idempotency_token=job-101");
    expect(whileDead.json<{ DispatchedJobID: string }>().DispatchedJobID).toBe(firstId);

    twin.gc();
    expect(twin.jobs().map((job) => job.ID)).toEqual(["github-runner"]);
    const afterGc = await dispatch(twin, META, "?idempotency_token=job-101");
    expect(afterGc.json<{ DispatchedJobID: string; EvalID: string }>()).toMatchObject({ EvalID: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    expect(afterGc.json<{ DispatchedJobID: string }>().DispatchedJobID).not.toBe(firstId);
  });

  it("routes child job IDs with a raw slash and with %2F alike", async () => {
    const child = await dispatchOk(twin);
    const encoded = await api(twin, "GET", `/v1/job/${encodeURIComponent(child)}`);
    const raw = await api(twin, "GET", `/v1/job/${child}`);
    expect(encoded.status).toBe(200);
    expect(raw.json<{ ID: string }>().ID).toBe(child);
    expect(encoded.json<{ ID: string }>().ID).toBe(child);
    const allocs = await api(twin, "GET", `/v1/job/${encodeURIComponent(child)}/allocations`);
    expect(allocs.status).toBe(200);
    expect(twin.requests.some((req) => req.url.includes("github-runner%2Fdispatch-"))).toBe(true);
  });

  it("purges, and answers purging or reading an unknown job like Nomad", async () => {
    const unknown = await api(twin, "DELETE", "/v1/job/nope?purge=true");
    expect(unknown.status).toBe(200);
    expect(unknown.json()).toMatchObject({ EvalID: "", EvalCreateIndex: 0, JobModifyIndex: 0, Index: 0 });

    const child = await dispatchOk(twin);
    const purged = await api(twin, "DELETE", `/v1/job/${encodeURIComponent(child)}?purge=true`);
    expect(purged.json<{ EvalID: string }>().EvalID).not.toBe("");
    const gone = await api(twin, "GET", `/v1/job/${encodeURIComponent(child)}`);
    expect([gone.status, gone.text, gone.headers.get("content-type")]).toEqual([404, "job not found", "text/plain; charset=utf-8"]);
  });

  it("holds a blocking query until the index moves, then returns the change", async () => {
    const before = await api(twin, "GET", "/v1/jobs?prefix=github-runner");
    const index = Number(before.headers.get("x-nomad-index"));
    const blocked = api(twin, "GET", `/v1/jobs?prefix=github-runner&index=${index}&wait=5s`);
    const child = await dispatchOk(twin);
    const after = await blocked;
    expect(Number(after.headers.get("x-nomad-index"))).toBeGreaterThan(index);
    expect(after.json<Array<{ ID: string }>>().map((stub) => stub.ID)).toContain(child);

    const idle = await api(twin, "GET", `/v1/job/github-runner?index=${Number.MAX_SAFE_INTEGER}&wait=20ms`);
    expect(idle.status).toBe(200);
    expect(await api(twin, "GET", "/v1/jobs?index=x").then((r) => [r.status, r.text])).toEqual([400, "Invalid index"]);
  });

  it("answers 500 No cluster leader while there is no leader", async () => {
    twin.setLeader(false);
    const leader = await api(twin, "GET", "/v1/status/leader");
    expect([leader.status, leader.text]).toEqual([500, "No cluster leader"]);
    expect((await dispatch(twin)).text).toBe("No cluster leader");
    twin.setLeader(true);
    expect((await api(twin, "GET", "/v1/status/leader")).json()).toBe("127.0.0.1:4647");
  });

  it("consults faults.intercept before handling, and records what crossed the wire", async () => {
    twin.faults.intercept = ({ method, path }) => (method === "POST" && path.endsWith("/dispatch") ? { status: 503, body: "injected" } : undefined);
    const res = await dispatch(twin);
    expect([res.status, res.text]).toEqual([503, "injected"]);
    const recorded = twin.requests.at(-1);
    expect(recorded).toMatchObject({ method: "POST", url: "/v1/job/github-runner/dispatch", status: 503, response: "injected" });
    expect(JSON.parse(recorded?.body ?? "{}")).toEqual({ Meta: META });
  });
});

describe("ACLs", () => {
  let secured: NomadTwin;

  beforeEach(async () => {
    secured = await startTwin({ acl: true });
    await registerRunnerJob(secured, vault.url, secured.managementToken);
  });

  afterEach(() => secured.close());

  it("lets a dispatcher policy read, list and dispatch but not register", async () => {
    const token = secured.createToken('namespace "default" {\n  policy = "read"\n  capabilities = ["dispatch-job"]\n}', "dispatcher");
    expect((await dispatch(secured, META, "", token)).status).toBe(200);
    expect((await api(secured, "GET", "/v1/jobs", undefined, token)).status).toBe(200);
    expect((await api(secured, "GET", "/v1/job/github-runner", undefined, token)).status).toBe(200);
    const register = await api(secured, "POST", "/v1/jobs", { Job: { ID: "x" } }, token);
    expect([register.status, register.text]).toEqual([403, "Permission denied"]);
    const otherNamespace = await api(secured, "GET", "/v1/jobs?namespace=ops", undefined, token);
    expect(otherNamespace.status).toBe(403);

    const self = await api(secured, "GET", "/v1/acl/token/self", undefined, token);
    expect(self.json()).toMatchObject({ Name: "dispatcher", Type: "client", Policies: [expect.any(String)] });
  });

  it("gives the shipped dispatcher policy nothing in default (its calls there are in test/integration/nomad-least-privilege.test.ts)", async () => {
    const rules = readFileSync(new URL("../../policies/nomad-dispatcher.policy.hcl", import.meta.url), "utf8");
    const token = secured.createToken(rules, "nomad-gha-dispatcher");
    const calls = [
      await dispatch(secured, META, "?idempotency_token=p-1", token),
      await api(secured, "GET", "/v1/job/github-runner", undefined, token),
      await api(secured, "GET", "/v1/jobs", undefined, token),
      await api(secured, "DELETE", "/v1/job/github-runner", undefined, token),
    ];
    expect(calls.map((res) => `${res.status} ${res.text}`)).toEqual(Array(4).fill("403 Permission denied"));
  });

  it("lists only the namespaces a token has a capability in, and guards node, agent and operator reads", async () => {
    secured.createNamespace("github-runners");
    secured.createNamespace("ops");
    const names = async (token: string) => (await api(secured, "GET", "/v1/namespaces", undefined, token)).json<Array<{ Name: string }>>().map((ns) => ns.Name);
    const narrow = secured.createToken('namespace "github-runners" { capabilities = ["read-job"] }');
    const wide = secured.createToken(
      'namespace "*" { policy = "read" }\nnamespace "ops" { policy = "deny" }\nnode { policy = "read" }\nagent { policy = "read" }\noperator { policy = "read" }',
    );
    expect(await names(secured.managementToken)).toEqual(["default", "github-runners", "ops"]);
    expect(await names(narrow)).toEqual(["github-runners"]);
    expect(await names(wide)).toEqual(["default", "github-runners"]);
    for (const path of ["/v1/nodes", "/v1/agent/self", "/v1/operator/scheduler/configuration"]) {
      const refused = await api(secured, "GET", path, undefined, narrow);
      expect(`${path} ${refused.status} ${refused.text}`).toBe(`${path} 403 Permission denied`);
      expect((await api(secured, "GET", path, undefined, wide)).status).toBe(200);
    }
  });

  it("holds jobs to their namespace's enabled task drivers", async () => {
    const spec = readFileSync(new URL("../../policies/nomad-runner-namespace.hcl", import.meta.url), "utf8");
    expect(await secured.applyNamespace(spec)).toBe("github-runners");
    const hostJob =
      'job "on-the-host" {\n  type = "batch"\n  group "g" {\n    task "t" {\n      driver = "raw_exec"\n      config { command = "id" }\n    }\n  }\n}';
    const job = await parseHcl(secured, hostJob, "", true, secured.managementToken);
    const refused = await api(secured, "POST", "/v1/jobs?namespace=github-runners", { Job: job }, secured.managementToken);
    expect([refused.status, refused.text]).toEqual([
      500,
      '1 error occurred:\n\t* used task driver "raw_exec" is not allowed in namespace "github-runners"\n\n',
    ]);
    expect((await api(secured, "POST", "/v1/jobs", { Job: job }, secured.managementToken)).status).toBe(200);
  });

  it("denies unknown and missing tokens, honours Bearer tokens and deny rules", async () => {
    const unknown = await api(secured, "GET", "/v1/jobs", undefined, "00000000-0000-0000-0000-000000000000");
    expect([unknown.status, unknown.text]).toEqual([403, "ACL token not found"]);
    expect((await api(secured, "GET", "/v1/jobs")).status).toBe(403);

    const bearer = await fetch(`${secured.url}/v1/job/github-runner`, { headers: { Authorization: `Bearer ${secured.managementToken}` } });
    expect(bearer.status).toBe(200);

    const denied = secured.createToken('namespace "*" { policy = "write" }\nnamespace "default" { policy = "deny" }');
    expect((await dispatch(secured, META, "", denied)).text).toBe("Permission denied");
    const parseOnly = secured.createToken('namespace "default" { capabilities = ["parse-job"] }');
    expect((await api(secured, "POST", "/v1/jobs/parse", { JobHCL: RUNNER_JOB_HCL, Variables: 'vault_addr = "x"' }, parseOnly)).status).toBe(200);
  });
});

describe("allocation lifecycle", () => {
  beforeEach(() => registerRunnerJob(twin, vault.url));

  it("reads the credential in prestart, hands the runner its JIT settings files, runs it to the end, then scrubs", async () => {
    const files = runnerFiles("gha-101");
    await putCredential("gha-101", { kind: "jit", jitconfig: jitConfig(files) });
    actions.hold = true;
    const child = await dispatchOk(twin);
    const runner = await actions.nextRun();
    expect(runner.runnerFile).toBe(files[".runner"]);

    const [running] = await waitForAllocations(
      twin,
      child,
      (allocs) => allocs[0]?.ClientStatus === "running" && allocs[0].TaskStates.runner?.State === "running",
    );
    expect(runner.allocId).toBe(running?.ID);
    expect(running?.TaskStates["configure-runner"]).toMatchObject({ State: "dead", Failed: false });
    expect(running?.TaskStates.scrub?.State).toBe("pending");
    expect((await api(twin, "GET", `/v1/job/${encodeURIComponent(child)}`)).json<{ Status: string }>().Status).toBe("running");
    expect(twin.runningRunnerJobs().map((job) => job.ID)).toEqual([child]);

    runner.finish(0);
    await twin.waitIdle();
    expect(timeline).toEqual(["read:gha-101", "run"]);
    expect(credentialReads()).toEqual([`read ${secretPathOf("gha-101")}`]);
    const [done] = twin.allocations();
    expect(done).toMatchObject({ ClientStatus: "complete", DesiredStatus: "run", JobID: child, TaskGroup: "runner" });
    expect(eventTypes(done!, "runner")).toEqual(["Received", "Task Setup", "Started", "Terminated"]);
    expect(eventTypes(done!, "scrub")).toEqual(["Received", "Task Setup", "Started", "Terminated"]);
    expect(Object.values(done!.TaskStates).every((state) => state.State === "dead" && !state.Failed)).toBe(true);
    expect(twin.jobs().find((job) => job.ID === child)?.Status).toBe("dead");
    expect(twin.runningRunnerJobs()).toEqual([]);
    const logs = twin.allocationLogs(done!.ID);
    expect(logs?.["configure-runner"]).toEqual(["runner gha-101 configured"]);
    expect(logs?.runner).toEqual(["runner exits 0"]);
    expect(actions.configs).toEqual([]);
  });

  it("fails the task with the runner's exit code when the runner fails", async () => {
    await putCredential("gha-101", { kind: "jit", jitconfig: jitConfig(runnerFiles("gha-101")) });
    actions.hold = true;
    await dispatchOk(twin);
    (await actions.nextRun()).finish(3);
    await twin.waitIdle();
    const [alloc] = twin.allocations();
    expect(alloc?.ClientStatus).toBe("failed");
    expect(alloc?.TaskStates.runner).toMatchObject({ State: "dead", Failed: true });
    expect(exitCodeOf(alloc!, "runner")).toBe(3);
    expect(eventTypes(alloc!, "scrub")).toContain("Terminated");
  });

  it("configures a registration-token runner with config.sh from the dispatch meta", async () => {
    await putCredential("gha-101", { kind: "token", registration_token: "REG" });
    await dispatchOk(twin);
    await twin.waitIdle();
    expect(actions.configs.map((c) => c.args)).toEqual([
      [
        "--unattended",
        "--ephemeral",
        "--replace",
        "--work",
        "_work",
        "--url",
        META.runner_scope_url,
        "--token",
        "REG",
        "--name",
        META.runner_name,
        "--labels",
        META.runner_labels,
        "--no-default-labels",
      ],
    ]);
    // What config.sh wrote is what the runner brought: the prestart's files reached the main task.
    expect(actions.runs.map((run) => JSON.parse(run.runnerFile) as unknown)).toEqual([
      { agentName: META.runner_name, gitHubUrl: META.runner_scope_url, labels: ["self-hosted", " linux", "x64"], ephemeral: true },
    ]);
    expect(timeline).toEqual(["read:gha-101", "config", "run"]);
    expect(twin.allocations()[0]?.ClientStatus).toBe("complete");
  });

  it("fails the allocation when there is no credential to read: the runner never starts, poststop still runs", async () => {
    const child = await dispatchOk(twin); // nothing stored for gha-101: Vault answers the read 404
    await twin.waitIdle();
    const [alloc] = twin.allocations();
    expect(alloc?.ClientStatus).toBe("failed");
    expect(alloc?.TaskStates["configure-runner"]).toMatchObject({ State: "dead", Failed: true });
    expect(exitCodeOf(alloc!, "configure-runner")).toBe(1); // not 97: nothing was refused, there was nothing to read
    expect(twin.allocationLogs(alloc!.ID)?.["configure-runner"]).toEqual([
      "runner gha-101: no credential in Vault (deleted: its job was cancelled or served elsewhere)",
    ]);
    // The read went out once and found nothing; the prestart's token was revoked all the same.
    expect(timeline).toEqual(["read:gha-101"]);
    const answered = vault.requests.map((req) => [req.method, new URL(req.url, vault.url).pathname, req.status]);
    expect(answered.filter(([, path]) => String(path).includes("/runners/"))).toEqual([["GET", `/v1/${secretPathOf("gha-101")}`, 404]]);
    expect(answered.filter(([, path]) => path === "/v1/auth/token/revoke-self")).toEqual([["POST", "/v1/auth/token/revoke-self", 204]]);
    expect(alloc?.TaskStates.runner).toMatchObject({ State: "dead", Failed: false });
    expect(eventTypes(alloc!, "runner")).toContain("Sibling Task Failed");
    expect(eventTypes(alloc!, "scrub")).toEqual(["Received", "Task Setup", "Started", "Terminated"]);
    expect(actions.runs).toEqual([]);
    expect(twin.jobs().find((job) => job.ID === child)?.Status).toBe("dead");
  });

  it("fails a JIT config that lacks a settings file before any runner starts", async () => {
    const { ".credentials_rsaparams": _left, ...partial } = runnerFiles("gha-101");
    await putCredential("gha-101", { kind: "jit", jitconfig: jitConfig({ ...partial, "../escape": "x" }) });
    await dispatchOk(twin);
    await twin.waitIdle();
    const [alloc] = twin.allocations();
    expect(alloc?.TaskStates["configure-runner"]).toMatchObject({ State: "dead", Failed: true });
    expect(twin.allocationLogs(alloc!.ID)?.["configure-runner"]).toEqual(["runner gha-101: .credentials_rsaparams missing from its configuration"]);
    expect(actions.runs).toEqual([]);
  });

  it("injects a prestart failure without reading the credential from Vault", async () => {
    await putCredential("gha-101", { kind: "jit", jitconfig: jitConfig(runnerFiles("gha-101")) });
    twin.faults.failNextPrestart();
    await dispatchOk(twin);
    await twin.waitIdle();
    expect(twin.allocations()[0]?.ClientStatus).toBe("failed");
    expect(credentialReads()).toEqual([]);
    expect(timeline).toEqual([]);
    expect(await store.hasRunnerSecret("gha-101")).toBe(true);
  });

  it("crashes the main task shortly after it starts: allocation failed, poststop runs", async () => {
    await putCredential("gha-101", { kind: "jit", jitconfig: jitConfig(runnerFiles("gha-101")) });
    actions.hold = true;
    twin.faults.crashNextMain();
    await dispatchOk(twin);
    await twin.waitIdle();
    const [alloc] = twin.allocations();
    expect(alloc?.ClientStatus).toBe("failed");
    expect(alloc?.TaskStates.runner).toMatchObject({ State: "dead", Failed: true });
    expect(exitCodeOf(alloc!, "runner")).toBe(137);
    expect(eventTypes(alloc!, "runner")).toContain("Not Restarting");
    expect(eventTypes(alloc!, "scrub")).toContain("Terminated");
    // Whether or not the runner got as far as the Actions service, it is not running any more.
    await Promise.all(actions.runs.map((run) => run.aborted));
  });

  it("crashes the main task of a chosen allocation on demand (crashMain): the runner's connection drops", async () => {
    await putCredential("gha-101", { kind: "jit", jitconfig: jitConfig(runnerFiles("gha-101")) });
    actions.hold = true;
    await dispatchOk(twin);
    const runner = await actions.nextRun();
    expect(twin.faults.crashMain(runner.allocId)).toBe(true);
    await runner.aborted;
    await twin.waitIdle();
    const [alloc] = twin.allocations();
    expect(alloc?.ClientStatus).toBe("failed");
    expect(alloc?.TaskStates.runner).toMatchObject({ State: "dead", Failed: true });
    expect(eventTypes(alloc!, "scrub")).toContain("Terminated");
    expect(twin.faults.crashMain(runner.allocId)).toBe(false);
  });

  it("stops a running allocation when the job is stopped: runner killed, poststop runs", async () => {
    await putCredential("gha-101", { kind: "jit", jitconfig: jitConfig(runnerFiles("gha-101")) });
    actions.hold = true;
    const child = await dispatchOk(twin);
    const runner = await actions.nextRun();
    const stop = await api(twin, "DELETE", `/v1/job/${encodeURIComponent(child)}`);
    expect(stop.status).toBe(200);
    await runner.aborted;
    await twin.waitIdle();
    const [alloc] = twin.allocations();
    expect(alloc).toMatchObject({ DesiredStatus: "stop", ClientStatus: "complete" });
    expect(alloc?.TaskStates.runner).toMatchObject({ State: "dead", Failed: false });
    expect(eventTypes(alloc!, "runner").slice(-2)).toEqual(["Killing", "Killed"]);
    expect(eventTypes(alloc!, "scrub")).toEqual(["Received", "Task Setup", "Started", "Terminated"]);
    expect(timeline).toEqual(["read:gha-101", "run", "aborted"]);
    expect((await api(twin, "GET", `/v1/job/${encodeURIComponent(child)}`)).json()).toMatchObject({ Status: "dead", Stop: true });
  });

  it("loses a running allocation: runner gone, no poststop, no replacement to read the credential again", async () => {
    await putCredential("gha-101", { kind: "jit", jitconfig: jitConfig(runnerFiles("gha-101")) });
    actions.hold = true;
    const child = await dispatchOk(twin);
    const runner = await actions.nextRun();
    twin.faults.loseAllocation(runner.allocId);
    await runner.aborted;
    await twin.waitIdle();

    // disconnect { replace = false }: the allocation is "unknown", not lost-and-replaced
    // (scheduler/reconciler/filters.go, reconcile_cluster.go appendUnknownDisconnectingUpdates).
    const allocs = (await api(twin, "GET", `/v1/job/${encodeURIComponent(child)}/allocations`)).json<Array<Record<string, unknown>>>();
    expect(allocs).toHaveLength(1);
    expect(allocs[0]).toMatchObject({ ID: runner.allocId, ClientStatus: "unknown", DesiredStatus: "run", NextAllocation: "" });
    expect(eventTypes(twin.allocations()[0]!, "scrub")).toEqual(["Received"]);
    expect(credentialReads()).toEqual([`read ${secretPathOf("gha-101")}`]);
    // An unknown allocation is not terminal: the child stays "running" until it is stopped.
    expect(twin.jobs().find((job) => job.ID === child)?.Status).toBe("running");
    await api(twin, "DELETE", `/v1/job/${encodeURIComponent(child)}`);
    await twin.waitIdle();
    expect(twin.jobs().find((job) => job.ID === child)?.Status).toBe("dead");
    expect(twin.allocations()).toHaveLength(1);
  });

  it("keeps each allocation's directory until client GC", async () => {
    await putCredential("gha-101", { kind: "jit", jitconfig: jitConfig(runnerFiles("gha-101")) });
    await dispatchOk(twin);
    await twin.waitIdle();
    const dir = twin.allocDirPath(twin.allocations()[0]!.ID);
    expect(existsSync(join(dir, "configure-runner", "local", "configure-runner.sh"))).toBe(true);
    expect(readFileSync(join(dir, "runner", "local", "run-runner.sh"), "utf8")).toBe(RUNNER_SCRIPTS.run);
    twin.gc();
    await expect.poll(() => existsSync(dir)).toBe(false);
  });
});

describe("capacity", () => {
  it("keeps dispatched jobs pending, FIFO, while every slot is taken", async () => {
    const small = await startTwin({ slots: 1 });
    try {
      await registerRunnerJob(small, vault.url);
      const one = runnerFiles("one");
      const two = runnerFiles("two");
      await putCredential("one", { kind: "jit", jitconfig: jitConfig(one) });
      await putCredential("two", { kind: "jit", jitconfig: jitConfig(two) });
      actions.hold = true;
      const first = await dispatchOk(small, { ...META, runner_name: "one" });
      const second = await dispatchOk(small, { ...META, runner_name: "two" });
      const running = await actions.nextRun();
      expect(running.runnerFile).toBe(one[".runner"]);

      const waiting = (await api(small, "GET", `/v1/job/${encodeURIComponent(second)}`)).json<{ Status: string }>();
      expect(waiting.Status).toBe("pending");
      expect((await api(small, "GET", `/v1/job/${encodeURIComponent(second)}/allocations`)).json()).toEqual([]);
      const summary = (await api(small, "GET", `/v1/job/${encodeURIComponent(second)}/summary`)).json<{ Summary: { runner: { Queued: number } } }>();
      expect(summary.Summary.runner.Queued).toBe(1);
      expect(credentialReads()).toEqual([`read ${secretPathOf("one")}`]);

      running.finish(0);
      const next = await actions.nextRun();
      expect(next.runnerFile).toBe(two[".runner"]);
      next.finish(0);
      await small.waitIdle();
      expect(credentialReads()).toEqual([`read ${secretPathOf("one")}`, `read ${secretPathOf("two")}`]);
      expect(
        small
          .jobs()
          .filter((job) => job.Dispatched)
          .map((job) => [job.ID === first ? "first" : "second", job.Status]),
      ).toEqual(
        expect.arrayContaining([
          ["first", "dead"],
          ["second", "dead"],
        ]),
      );
    } finally {
      await small.close();
    }
  });
});
