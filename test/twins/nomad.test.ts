// Tests of the Nomad twin against the real runner job file: parsing, registration, dispatch
// validation and idempotency, routing, ACLs, blocking queries, and the allocation lifecycle with a
// fake Vault (real HTTP) and a fake Actions service.

import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ActionsService, RunnerExit, RunnerStart } from "./contract.js";
import { NomadTwin, type TwinAllocation } from "./nomad.js";

const RUNNER_JOB_HCL = readFileSync(new URL("../../jobs/github-runner.nomad.hcl", import.meta.url), "utf8");

const META = {
  github_repo: "octo/repo",
  github_job_id: "101",
  github_run_id: "202",
  runner_name: "gha-101",
  runner_labels: "self-hosted, linux,x64",
  runner_scope_url: "https://github.com/octo/repo",
  credential_wrap_token: "wrap-1",
};

// ---------------------------------------------------------------------------------------------
// Test doubles

interface Credential {
  kind: "jit" | "token";
  jitconfig?: string;
  registration_token?: string;
  remove_token?: string;
}

/** Vault's unwrap endpoint: each wrapping token works once, as in Vault. */
class FakeVault {
  readonly unwrapped: string[] = [];
  private readonly wrapped = new Map<string, Credential>();
  private readonly server: Server;
  url = "";

  constructor(private readonly timeline: string[]) {
    this.server = createServer((req, res) => {
      const token = String(req.headers["x-vault-token"] ?? "");
      const credential = this.wrapped.get(token);
      if (req.method !== "POST" || req.url !== "/v1/sys/wrapping/unwrap" || !credential) {
        res.writeHead(400, { "content-type": "application/json" });
        res.end(JSON.stringify({ errors: ["wrapping token is not valid or does not exist"] }));
        return;
      }
      this.wrapped.delete(token);
      this.unwrapped.push(token);
      this.timeline.push(`unwrap:${token}`);
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ request_id: "r", lease_id: "", renewable: false, lease_duration: 0, data: { data: credential, metadata: { version: 1 } }, wrap_info: null }));
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  wrap(token: string, credential: Credential): void {
    this.wrapped.set(token, credential);
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

interface HeldRunner {
  start: RunnerStart;
  signal: AbortSignal;
  finish(exit: RunnerExit): void;
}

/** The runner side of GitHub: runners either finish at once or are held until the test lets go. */
class FakeActions implements ActionsService {
  hold = false;
  readonly starts: RunnerStart[] = [];
  readonly removals: Array<{ start: RunnerStart; token: string }> = [];
  private readonly held: HeldRunner[] = [];
  private readonly heldWaiters: Array<(runner: HeldRunner) => void> = [];

  constructor(private readonly timeline: string[]) {}

  runRunner(start: RunnerStart, signal: AbortSignal): Promise<RunnerExit> {
    this.starts.push(start);
    this.timeline.push(`run:${start.kind}`);
    if (!this.hold) return Promise.resolve({ ok: true, jobId: 101, message: "job 101 completed" });
    return new Promise((resolve) => {
      const runner: HeldRunner = { start, signal, finish: resolve };
      signal.addEventListener("abort", () => resolve({ ok: false, message: "runner stopped" }), { once: true });
      const waiter = this.heldWaiters.shift();
      if (waiter) waiter(runner);
      else this.held.push(runner);
    });
  }

  removeRunner(start: RunnerStart, removeToken: string): Promise<{ removed: boolean }> {
    this.removals.push({ start, token: removeToken });
    this.timeline.push(`remove:${removeToken}`);
    return Promise.resolve({ removed: true });
  }

  /** The next runner that comes online while `hold` is set. */
  nextHeld(): Promise<HeldRunner> {
    const runner = this.held.shift();
    if (runner) return Promise.resolve(runner);
    return new Promise((resolve) => this.heldWaiters.push(resolve));
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers

interface ApiResponse {
  status: number;
  text: string;
  headers: Headers;
  json<T = Record<string, unknown>>(): T;
}

async function api(twin: NomadTwin, method: string, path: string, body?: unknown, token?: string): Promise<ApiResponse> {
  const headers: Record<string, string> = token ? { "X-Nomad-Token": token } : {};
  const res = await fetch(twin.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, text, headers: res.headers, json: <T>() => JSON.parse(text) as T };
}

async function parseRunnerJob(twin: NomadTwin, variables: string, canonicalize = true, token?: string): Promise<Record<string, unknown>> {
  const res = await api(twin, "POST", "/v1/jobs/parse", { JobHCL: RUNNER_JOB_HCL, Variables: variables, Canonicalize: canonicalize }, token);
  expect(res.status, res.text).toBe(200);
  return res.json();
}

async function registerRunnerJob(twin: NomadTwin, vaultAddr: string, token?: string): Promise<void> {
  const job = await parseRunnerJob(twin, `vault_addr = "${vaultAddr}"`, true, token);
  const res = await api(twin, "POST", "/v1/jobs", { Job: job }, token);
  expect(res.status, res.text).toBe(200);
}

async function dispatch(twin: NomadTwin, meta: Record<string, string> = META, query = "", token?: string): Promise<ApiResponse> {
  return api(twin, "POST", `/v1/job/github-runner/dispatch${query}`, { Meta: meta }, token);
}

async function dispatchOk(twin: NomadTwin, meta: Record<string, string> = META, query = ""): Promise<string> {
  const res = await dispatch(twin, meta, query);
  expect(res.status, res.text).toBe(200);
  return res.json<{ DispatchedJobID: string }>().DispatchedJobID;
}

/** Follows a job's allocations with blocking queries until `done` holds. */
async function waitForAllocations(twin: NomadTwin, jobId: string, done: (allocs: TwinAllocation[]) => boolean): Promise<TwinAllocation[]> {
  let index = 0;
  for (;;) {
    const res = await api(twin, "GET", `/v1/job/${encodeURIComponent(jobId)}/allocations?index=${index}&wait=5s`);
    const allocs = res.json<TwinAllocation[]>();
    if (done(allocs)) return allocs;
    index = Number(res.headers.get("x-nomad-index"));
  }
}

function eventTypes(alloc: TwinAllocation, task: string): string[] {
  return alloc.TaskStates[task]?.Events.map((event) => event.Type) ?? [];
}

// ---------------------------------------------------------------------------------------------

let timeline: string[];
let vault: FakeVault;
let actions: FakeActions;
let twin: NomadTwin;

beforeEach(async () => {
  timeline = [];
  vault = new FakeVault(timeline);
  actions = new FakeActions(timeline);
  await vault.start();
  twin = await NomadTwin.start({ actions, startDelayMs: 1 });
});

afterEach(async () => {
  await twin.close();
  await vault.close();
});

describe("POST /v1/jobs/parse with the real runner job", () => {
  it("returns the API job with variables applied and runtime interpolations kept", async () => {
    const job = await parseRunnerJob(twin, `vault_addr = "http://vault.internal:8200"\ndatacenters = ["dc1", "dc2"]\ncpu = 500`, false);
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
        MetaRequired: ["github_repo", "github_job_id", "github_run_id", "runner_name", "runner_labels", "runner_scope_url", "credential_wrap_token"],
        MetaOptional: ["dispatcher_id"],
      },
    });
    const [group] = job.TaskGroups as Array<Record<string, unknown>>;
    expect(group).toMatchObject({
      Name: "runner",
      Count: null,
      RestartPolicy: { Attempts: 0, Mode: "fail" },
      ReschedulePolicy: { Attempts: 0, Unlimited: false },
      EphemeralDisk: { SizeMB: 300 },
    });
    const tasks = group?.Tasks as Array<Record<string, unknown>>;
    expect(tasks.map((task) => [task.Name, task.Lifecycle])).toEqual([
      ["fetch-credential", { Hook: "prestart", Sidecar: false }],
      ["runner", null],
      ["remove-runner", { Hook: "poststop", Sidecar: false }],
    ]);
    const [fetch, runner] = tasks;
    expect(fetch).toMatchObject({
      Driver: "docker",
      Env: { VAULT_ADDR: "http://vault.internal:8200" },
      Config: { image: "ghcr.io/actions/actions-runner:2.329.0", entrypoint: ["/bin/bash", "-c"], args: ["bash ${NOMAD_TASK_DIR}/fetch-credential.sh"] },
      Resources: { CPU: 100, MemoryMB: 64 },
      Templates: [{ DestPath: "local/fetch-credential.sh", Perms: "0700" }],
    });
    const script = (fetch?.Templates as Array<{ EmbeddedTmpl: string }>)[0]?.EmbeddedTmpl ?? "";
    // `$${` in the job file is HCL's escape for a literal `${`, left for the client to interpolate.
    expect(script).toContain('-H "X-Vault-Token: ${NOMAD_META_credential_wrap_token}"');
    expect(script).toContain('"${VAULT_ADDR}/v1/sys/wrapping/unwrap"');
    expect(script).not.toContain("$${");
    expect(runner).toMatchObject({ Resources: { CPU: 500, MemoryMB: 4096 } });
  });

  it("fills Nomad's defaults when asked to canonicalize", async () => {
    const job = await parseRunnerJob(twin, "");
    expect(job).toMatchObject({ Namespace: "default", Region: "global", Priority: 50, Datacenters: ["*"], Stop: false, ParentID: "" });
    const [group] = job.TaskGroups as Array<{ Count: number; Tasks: Array<{ Name: string; KillTimeout: number; Env: unknown; Lifecycle: unknown }> }>;
    expect(group?.Count).toBe(1);
    expect(group?.Tasks.map((task) => task.KillTimeout)).toEqual([5e9, 5e9, 5e9]);
    expect(group?.Tasks[0]?.Env).toEqual({ VAULT_ADDR: "http://127.0.0.1:8200" });
  });

  it("answers bad input with Nomad's 400 texts", async () => {
    const syntax = await api(twin, "POST", "/v1/jobs/parse", { JobHCL: 'job "x" {\n  type = \n}' });
    expect(syntax.status).toBe(400);
    expect(syntax.headers.get("content-type")).toBe("text/plain; charset=utf-8");
    expect(syntax.text).toBe("Failed to parse job: input.hcl:2,10-3,1: Invalid expression; Expected the start of an expression, but found an invalid expression token.");

    const empty = await api(twin, "POST", "/v1/jobs/parse", { JobHCL: "" });
    expect([empty.status, empty.text]).toEqual([400, "Job spec is empty"]);

    const badType = await api(twin, "POST", "/v1/jobs/parse", { JobHCL: RUNNER_JOB_HCL, Variables: 'cpu = "lots"' });
    expect(badType.status).toBe(400);
    expect(badType.text).toContain("Invalid value for variable; The value for cpu is not compatible with the variable's type constraint: a number is required.");

    const unset = await api(twin, "POST", "/v1/jobs/parse", { JobHCL: `variable "image" {}\n${'job "x" {\n  type = "batch"\n}'}` });
    expect(unset.status).toBe(400);
    expect(unset.text).toContain('Unset variable "image"');
  });

  it("ignores variables the job does not declare, as Nomad's non-strict parse does", async () => {
    const job = await parseRunnerJob(twin, 'not_declared = "x"');
    expect(job.ID).toBe("github-runner");
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
    const { credential_wrap_token: _omitted, ...withoutToken } = META;
    const missing = await dispatch(twin, withoutToken);
    expect([missing.status, missing.text]).toEqual([500, "Dispatch did not provide required meta keys: [credential_wrap_token]"]);

    const extra = await dispatch(twin, { ...META, colour: "blue" });
    expect([extra.status, extra.text]).toEqual([500, "Dispatch request included unpermitted metadata keys: [colour]"]);

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
    const stubs = (await api(twin, "GET", "/v1/jobs?prefix=github-runner/&meta=true")).json<Array<{ ID: string; Status: string; ParameterizedJob: boolean; Meta?: Record<string, string> }>>();
    expect(stubs.map((stub) => [stub.Status, stub.ParameterizedJob, stub.Meta?.runner_name])).toEqual([
      ["dead", false, "gha-101"],
      ["dead", false, "gha-101"],
    ]);
  });

  it("answers a repeated idempotency token with the existing child until it is garbage collected", async () => {
    vault.wrap("wrap-1", { kind: "jit", jitconfig: "cfg" });
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
    secured = await NomadTwin.start({ actions, acl: true, startDelayMs: 1 });
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

  it("lets the shipped dispatcher policy do every call the dispatcher makes, in its namespace only", async () => {
    const rules = readFileSync(new URL("../../policies/nomad-dispatcher.policy.hcl", import.meta.url), "utf8");
    const token = secured.createToken(rules, "nomad-gha-dispatcher");
    await registerRunnerJob(secured, vault.url, token);
    const child = (await dispatch(secured, META, "?idempotency_token=p-1", token)).json<{ DispatchedJobID: string }>().DispatchedJobID;
    const calls = [
      await api(secured, "GET", "/v1/jobs?prefix=github-runner%2Fdispatch-&meta=true", undefined, token),
      await api(secured, "GET", `/v1/job/${encodeURIComponent(child)}/allocations`, undefined, token),
      await api(secured, "DELETE", `/v1/job/${encodeURIComponent(child)}?purge=true`, undefined, token),
    ];
    expect(calls.map((res) => res.status)).toEqual([200, 200, 200]);
    secured.createNamespace("ops");
    expect((await api(secured, "GET", "/v1/jobs?namespace=ops", undefined, token)).status).toBe(403);
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
    expect((await api(secured, "POST", "/v1/jobs/parse", { JobHCL: RUNNER_JOB_HCL }, parseOnly)).status).toBe(200);
  });
});

describe("allocation lifecycle", () => {
  beforeEach(() => registerRunnerJob(twin, vault.url));

  it("unwraps in prestart, runs the runner, then deregisters it in poststop", async () => {
    vault.wrap("wrap-1", { kind: "jit", jitconfig: "ENCODED", remove_token: "rm-1" });
    actions.hold = true;
    const child = await dispatchOk(twin);
    const runner = await actions.nextHeld();
    expect(runner.start).toEqual({ kind: "jit", jitconfig: "ENCODED" });

    const [running] = await waitForAllocations(twin, child, (allocs) => allocs[0]?.ClientStatus === "running" && allocs[0].TaskStates.runner?.State === "running");
    expect(running?.TaskStates["fetch-credential"]).toMatchObject({ State: "dead", Failed: false });
    expect(running?.TaskStates["remove-runner"]?.State).toBe("pending");
    expect((await api(twin, "GET", `/v1/job/${encodeURIComponent(child)}`)).json<{ Status: string }>().Status).toBe("running");
    expect(twin.runningRunnerJobs().map((job) => job.ID)).toEqual([child]);

    runner.finish({ ok: true, jobId: 101, message: "job 101 completed" });
    await twin.waitIdle();
    expect(timeline).toEqual(["unwrap:wrap-1", "run:jit", "remove:rm-1"]);
    const [done] = twin.allocations();
    expect(done).toMatchObject({ ClientStatus: "complete", DesiredStatus: "run", JobID: child, TaskGroup: "runner" });
    expect(eventTypes(done!, "runner")).toEqual(["Received", "Task Setup", "Started", "Terminated"]);
    expect(Object.values(done!.TaskStates).every((state) => state.State === "dead" && !state.Failed)).toBe(true);
    expect(twin.jobs().find((job) => job.ID === child)?.Status).toBe("dead");
    expect(twin.runningRunnerJobs()).toEqual([]);
    expect(twin.allocationLogs(done!.ID)?.["fetch-credential"]).toEqual(["credential for gha-101 unwrapped"]);
  });

  it("configures a registration-token runner from the dispatch meta", async () => {
    vault.wrap("wrap-1", { kind: "token", registration_token: "REG", remove_token: "rm-1" });
    await dispatchOk(twin);
    await twin.waitIdle();
    expect(actions.starts).toEqual([
      { kind: "token", registrationToken: "REG", url: META.runner_scope_url, name: META.runner_name, labels: ["self-hosted", "linux", "x64"], ephemeral: true },
    ]);
  });

  it("fails the allocation when the unwrap fails: the runner never starts, poststop still runs", async () => {
    const child = await dispatchOk(twin); // nothing wrapped under "wrap-1": Vault answers 400
    await twin.waitIdle();
    const [alloc] = twin.allocations();
    expect(alloc?.ClientStatus).toBe("failed");
    expect(alloc?.TaskStates["fetch-credential"]).toMatchObject({ State: "dead", Failed: true });
    expect(alloc?.TaskStates["fetch-credential"]?.Events.find((e) => e.Type === "Terminated")?.ExitCode).toBe(22);
    expect(alloc?.TaskStates.runner).toMatchObject({ State: "dead", Failed: false });
    expect(eventTypes(alloc!, "runner")).toContain("Sibling Task Failed");
    expect(eventTypes(alloc!, "remove-runner")).toEqual(["Received", "Task Setup", "Started", "Terminated"]);
    expect(actions.starts).toEqual([]);
    expect(actions.removals).toEqual([]);
    expect(twin.jobs().find((job) => job.ID === child)?.Status).toBe("dead");
  });

  it("injects a prestart failure without touching Vault", async () => {
    vault.wrap("wrap-1", { kind: "jit", jitconfig: "ENCODED" });
    twin.faults.failNextPrestart();
    await dispatchOk(twin);
    await twin.waitIdle();
    expect(twin.allocations()[0]?.ClientStatus).toBe("failed");
    expect(vault.unwrapped).toEqual([]);
  });

  it("crashes the main task mid-run: allocation failed, poststop deregisters the runner", async () => {
    vault.wrap("wrap-1", { kind: "jit", jitconfig: "ENCODED", remove_token: "rm-1" });
    actions.hold = true;
    twin.faults.crashNextMain();
    await dispatchOk(twin);
    const runner = await actions.nextHeld();
    await twin.waitIdle();
    expect(runner.signal.aborted).toBe(true);
    const [alloc] = twin.allocations();
    expect(alloc?.ClientStatus).toBe("failed");
    expect(alloc?.TaskStates.runner).toMatchObject({ State: "dead", Failed: true });
    expect(eventTypes(alloc!, "runner")).toContain("Not Restarting");
    expect(actions.removals.map((r) => r.token)).toEqual(["rm-1"]);
  });

  it("crashes the main task of a chosen allocation on demand (crashMain)", async () => {
    vault.wrap("wrap-1", { kind: "jit", jitconfig: "ENCODED", remove_token: "rm-1" });
    actions.hold = true;
    await dispatchOk(twin);
    const runner = await actions.nextHeld();
    const [running] = twin.allocations();
    expect(twin.faults.crashMain(running!.ID)).toBe(true);
    await twin.waitIdle();
    expect(runner.signal.aborted).toBe(true);
    const [alloc] = twin.allocations();
    expect(alloc?.ClientStatus).toBe("failed");
    expect(alloc?.TaskStates.runner).toMatchObject({ State: "dead", Failed: true });
    expect(actions.removals.map((r) => r.token)).toEqual(["rm-1"]);
    expect(twin.faults.crashMain(running!.ID)).toBe(false);
  });

  it("stops a running allocation when the job is stopped: runner killed, poststop runs", async () => {
    vault.wrap("wrap-1", { kind: "jit", jitconfig: "ENCODED", remove_token: "rm-1" });
    actions.hold = true;
    const child = await dispatchOk(twin);
    const runner = await actions.nextHeld();
    const stop = await api(twin, "DELETE", `/v1/job/${encodeURIComponent(child)}`);
    expect(stop.status).toBe(200);
    await twin.waitIdle();
    expect(runner.signal.aborted).toBe(true);
    const [alloc] = twin.allocations();
    expect(alloc).toMatchObject({ DesiredStatus: "stop", ClientStatus: "complete" });
    expect(alloc?.TaskStates.runner).toMatchObject({ State: "dead", Failed: false });
    expect(eventTypes(alloc!, "runner").slice(-2)).toEqual(["Killing", "Killed"]);
    expect(timeline).toEqual(["unwrap:wrap-1", "run:jit", "remove:rm-1"]);
    expect((await api(twin, "GET", `/v1/job/${encodeURIComponent(child)}`)).json()).toMatchObject({ Status: "dead", Stop: true });
  });

  it("loses an allocation: no poststop, and the replacement cannot reuse the spent wrap token", async () => {
    vault.wrap("wrap-1", { kind: "jit", jitconfig: "ENCODED", remove_token: "rm-1" });
    actions.hold = true;
    const child = await dispatchOk(twin);
    const runner = await actions.nextHeld();
    const [original] = twin.allocations();
    twin.faults.loseAllocation(original!.ID);
    await twin.waitIdle();
    expect(runner.signal.aborted).toBe(true);
    expect(actions.removals).toEqual([]);

    const allocs = await waitForAllocations(twin, child, (list) => list.length === 2 && list.every((a) => ["lost", "failed"].includes(a.ClientStatus)));
    const lost = allocs.find((a) => a.ID === original!.ID);
    const replacement = allocs.find((a) => a.ID !== original!.ID);
    expect(lost).toMatchObject({ ClientStatus: "lost", DesiredStatus: "stop", NextAllocation: replacement?.ID });
    expect(replacement).toMatchObject({ ClientStatus: "failed" });
    expect(twin.allocations().find((a) => a.ID === replacement?.ID)?.PreviousAllocation).toBe(original!.ID);
    expect(vault.unwrapped).toEqual(["wrap-1"]);
    expect(twin.jobs().find((job) => job.ID === child)?.Status).toBe("dead");
  });
});

describe("capacity", () => {
  it("keeps dispatched jobs pending, FIFO, while every slot is taken", async () => {
    const small = await NomadTwin.start({ actions, slots: 1, startDelayMs: 1 });
    try {
      await registerRunnerJob(small, vault.url);
      vault.wrap("first", { kind: "jit", jitconfig: "ONE" });
      vault.wrap("second", { kind: "jit", jitconfig: "TWO" });
      actions.hold = true;
      const first = await dispatchOk(small, { ...META, credential_wrap_token: "first" });
      const second = await dispatchOk(small, { ...META, credential_wrap_token: "second" });
      const running = await actions.nextHeld();
      expect(running.start).toEqual({ kind: "jit", jitconfig: "ONE" });

      const waiting = (await api(small, "GET", `/v1/job/${encodeURIComponent(second)}`)).json<{ Status: string }>();
      expect(waiting.Status).toBe("pending");
      expect((await api(small, "GET", `/v1/job/${encodeURIComponent(second)}/allocations`)).json()).toEqual([]);
      const summary = (await api(small, "GET", `/v1/job/${encodeURIComponent(second)}/summary`)).json<{ Summary: { runner: { Queued: number } } }>();
      expect(summary.Summary.runner.Queued).toBe(1);

      running.finish({ ok: true, message: "done" });
      const next = await actions.nextHeld();
      expect(next.start).toEqual({ kind: "jit", jitconfig: "TWO" });
      next.finish({ ok: true, message: "done" });
      await small.waitIdle();
      expect(small.jobs().filter((job) => job.Dispatched).map((job) => [job.ID === first ? "first" : "second", job.Status])).toEqual(
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
