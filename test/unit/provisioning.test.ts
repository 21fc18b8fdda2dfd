import { describe, expect, it } from "vitest";
import { DependencyError } from "../../src/core/errors.js";
import { provisionRunner } from "../../src/provisioning/provision.js";
import { addRunnerJob, fakeDeps, PREFIX, runnerClass } from "../fakes/deps.js";
import { fakeProvisioner } from "../fakes/provisioner.js";
import { workflowJob } from "../harness/fixtures.js";

const job = workflowJob({ id: 42, owner: "acme", repo: "app", labels: ["self-hosted", "nomad", "GPU"] });
const runner = `${PREFIX}-42`;

describe("provisionRunner (credential -> secret -> dispatch)", () => {
  it("stores the credential in Vault before it dispatches, and hands the runner job nothing Vault would accept", async () => {
    const deps = fakeDeps();
    expect(await provisionRunner(deps, job, runner)).toMatchObject({ status: "dispatched" });
    // The credential names its registration: a later attempt can tell it from a deleted runner's.
    expect(deps.vault.secrets.get(runner)).toEqual({ kind: "jit", jitconfig: `jit:${runner}`, runner_id: 1 });
    const [child] = deps.nomad.children;
    expect(child!.Meta).toEqual({
      github_repo: "acme/app",
      github_job_id: "42",
      github_run_id: String(job.runId),
      runner_name: runner,
      runner_labels: "nomad,self-hosted", // exactly the class's: the job's GPU is not copied
      runner_scope_url: expect.stringContaining("acme/app"),
      dispatcher_id: "test-dispatcher",
    });
    expect(deps.github.jitLabels.get(runner)).toEqual(["nomad", "self-hosted"]);
    // Workload identity: the allocation reads the secret itself; no wrapping token is made.
    expect(deps.vault.faults.calls).toEqual(["putRunnerSecret"]);
  });

  it("dispatches the runner's own class's job, registered with exactly that class's labels", async () => {
    const small = runnerClass({ name: "small", runnerPrefix: `${PREFIX}-small`, job: "runner-small" });
    const large = runnerClass({ name: "large", labels: ["large", "nomad", "self-hosted"], runnerPrefix: `${PREFIX}-large`, job: "runner-large" });
    const deps = fakeDeps({ classes: [small, large] });
    const big = workflowJob({ id: 43, owner: "acme", repo: "app", labels: ["self-hosted", "nomad", "large"] });
    expect(await provisionRunner(deps, big, `${PREFIX}-large-43`)).toMatchObject({ status: "dispatched" });
    expect(deps.nomad.children.map((c) => c.ID)).toEqual([expect.stringMatching(/^runner-large\/dispatch-nomad-gha-large-43-/)]);
    expect(deps.github.jitLabels.get(`${PREFIX}-large-43`)).toEqual(["large", "nomad", "self-hosted"]);
    await expect(provisionRunner(deps, big, `${PREFIX}-43`)).rejects.toThrow(/belongs to no runner class/);
  });

  it("with the wrapping-token fallback, hands the runner job a single-use wrapping token of the configured TTL", async () => {
    const deps = fakeDeps({ credentialDelivery: "wrap", wrapTtl: "3m" });
    expect(await provisionRunner(deps, job, runner)).toMatchObject({ status: "dispatched" });
    const [child] = deps.nomad.children;
    expect(child!.Meta.credential_wrap_token).toBe(`wrapped:${runner}:3m`);
    expect(JSON.stringify(child!.Meta)).not.toContain(`jit:${runner}`);
    expect(deps.vault.faults.calls).toEqual(["putRunnerSecret", "wrapRunnerSecret"]);
  });

  it("never dispatches when the secret could not be stored", async () => {
    const deps = fakeDeps();
    deps.vault.faults.permanent("putRunnerSecret");
    await expect(provisionRunner(deps, job, runner)).rejects.toThrow(/403/);
    expect(deps.nomad.faults.count("dispatch")).toBe(0);
    expect(deps.nomad.children).toEqual([]);
  });

  it("retries a transient Vault failure and then dispatches", async () => {
    const deps = fakeDeps();
    deps.vault.faults.transient("putRunnerSecret", 2);
    expect(await provisionRunner(deps, job, runner)).toMatchObject({ status: "dispatched" });
    expect(deps.vault.faults.count("putRunnerSecret")).toBe(3);
    expect(deps.nomad.children).toHaveLength(1);
  });

  it("asks the slot's fence before every dispatch request, retries included, and sends none it refuses", async () => {
    const deps = fakeDeps();
    deps.nomad.faults.transient("dispatch");
    const asked: string[] = [];
    const fence = async () => {
      asked.push(deps.nomad.faults.calls.filter((c) => c === "dispatch").length === 0 ? "first" : "retry");
    };
    expect(await provisionRunner(deps, job, runner, { beforeDispatch: fence })).toMatchObject({ status: "dispatched" });
    expect(asked).toEqual(["first", "retry"]);
    // A lapsed lease: the reservation may have been given away; nothing is sent, and not retried.
    const lapsed = fakeDeps();
    const refusal = new DependencyError("nomad", "lapsed", undefined, false);
    await expect(provisionRunner(lapsed, job, runner, { beforeDispatch: () => Promise.reject(refusal) })).rejects.toThrow("lapsed");
    expect(lapsed.nomad.faults.count("dispatch")).toBe(0);
  });

  it("answers a repeat with the existing runner job, without asking GitHub for a credential", async () => {
    const deps = fakeDeps();
    const existing = addRunnerJob(deps, 42);
    expect(await provisionRunner(deps, job, runner)).toEqual({ status: "duplicate", nomadJobId: existing });
    expect(deps.github.faults.calls).toEqual([]);
    expect(deps.nomad.children).toHaveLength(1);
  });

  it("reports 'in-flight' without dispatching while another attempt re-registers the runner (a live claim in Vault)", async () => {
    const deps = fakeDeps();
    deps.github.register(job, runner);
    deps.vault.claims.set(runner, { claimedAt: Date.now(), claimant: "another-replica" });
    expect(await provisionRunner(deps, job, runner)).toEqual({ status: "in-flight" });
    expect(deps.nomad.faults.count("dispatch")).toBe(0);
    expect(deps.github.faults.count("deleteRunner")).toBe(0);
  });

  it("deletes and registers again at once a registration nobody is finishing (offline, no credential, no runner job)", async () => {
    const deps = fakeDeps();
    const orphan = deps.github.register(job, runner);
    expect(await provisionRunner(deps, job, runner)).toMatchObject({ status: "dispatched" });
    const [now] = deps.github.runners.get("acme/app")!;
    expect(now!.id).not.toBe(orphan.id);
    expect(deps.vault.secrets.get(runner)).toMatchObject({ runner_id: now!.id });
    expect(deps.nomad.children).toHaveLength(1);
  });

  it("resumes from the stored credential when an earlier attempt registered the runner and stored it", async () => {
    const deps = fakeDeps();
    deps.github.register(job, runner);
    deps.vault.secrets.set(runner, { kind: "jit", jitconfig: "from-earlier" });
    expect(await provisionRunner(deps, job, runner)).toMatchObject({ status: "dispatched" });
    expect(deps.vault.secrets.get(runner)).toEqual({ kind: "jit", jitconfig: "from-earlier" });
  });

  it("uses a registration token when configured to", async () => {
    const deps = fakeDeps({ registration: "token" });
    expect(await provisionRunner(deps, job, runner)).toMatchObject({ status: "dispatched" });
    expect(deps.vault.secrets.get(runner)).toEqual({ kind: "token", registration_token: "registration-token" });
    expect(deps.github.faults.count("createJitRunner")).toBe(0);
  });

  it("gives up at once on a permanent GitHub failure, storing and dispatching nothing", async () => {
    const deps = fakeDeps();
    deps.github.faults.permanent("createJitRunner");
    await expect(provisionRunner(deps, job, runner)).rejects.toThrow(/403/);
    expect(deps.github.faults.count("createJitRunner")).toBe(1);
    expect(deps.vault.secrets.size).toBe(0);
    expect(deps.nomad.children).toEqual([]);
  });
});

describe("Provisioner.needsRunner (the one entry point)", () => {
  it("hands a job whose dispatch failed to the backlog for the next pass", async () => {
    const deps = fakeDeps();
    deps.github.faults.permanent("createJitRunner");
    const { provisioner, backlog } = fakeProvisioner(deps);
    await expect(provisioner.needsRunner(job, runner)).rejects.toThrow(/403/);
    expect(backlog.passes).toBe(1);
  });

  it("has the backlog look again soon at a runner another attempt is re-registering", async () => {
    const deps = fakeDeps();
    deps.github.register(job, runner);
    deps.vault.claims.set(runner, { claimedAt: Date.now(), claimant: "another-replica" });
    const { provisioner, backlog } = fakeProvisioner(deps);
    expect(await provisioner.needsRunner(job, runner)).toEqual({ status: "in-flight" });
    expect(backlog.inFlight).toEqual([runner]);
    expect(backlog.passes).toBe(1);
  });

  it("takes a planned job past the capacity gate (the plan counted it) and answers once it is queued", async () => {
    const deps = fakeDeps();
    addRunnerJob(deps, 1);
    const { provisioner, backlog } = fakeProvisioner(deps, { maxRunners: 1, maxRunnersPerRepo: 1 });
    expect(await provisioner.needsRunner(job, runner)).toEqual({ status: "over-capacity" });
    expect(await provisioner.needsRunner(job, runner, { planned: true })).toEqual({ status: "queued", position: 0 });
    await provisioner.queue.close(1_000);
    expect(deps.nomad.children.map((c) => c.Meta.runner_name)).toContain(runner);
    // Only the webhook's job was deferred for capacity.
    expect(backlog.passes).toBe(1);
  });

  it("takes a queued dispatch out when its job ends first, so it costs nothing", async () => {
    const deps = fakeDeps();
    const { provisioner } = fakeProvisioner(deps);
    // Every lane slot busy: the job waits.
    const slow = new Promise<never>(() => undefined);
    deps.nomad.listJobs = () => slow;
    for (let i = 100; i < 104; i++) void provisioner.needsRunner(workflowJob({ id: i }), `${PREFIX}-${i}`).catch(() => undefined);
    expect(await provisioner.needsRunner(job, runner)).toEqual({ status: "queued", position: 1 });
    expect(provisioner.queue.size).toEqual({ waiting: 1, running: 4 });
    provisioner.noLongerNeeded(runner, "job 42 completed");
    expect(provisioner.queue.size).toEqual({ waiting: 0, running: 4 });
    expect(deps.github.faults.count("createJitRunner")).toBe(0);
  });
});
