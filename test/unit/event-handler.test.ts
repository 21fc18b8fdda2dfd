import { describe, expect, it } from "vitest";
import type { ServePolicy } from "../../src/core/event-decision.js";
import type { JobAction, WorkflowJob } from "../../src/core/job-event.js";
import { JobEventHandler } from "../../src/intake/event-handler.js";
import { addRunnerJob, type FakeDeps, fakeDeps, PREFIX, runnerClass } from "../fakes/deps.js";
import { fakeProvisioner } from "../fakes/provisioner.js";
import { workflowJob } from "../harness/fixtures.js";

const policy: ServePolicy = { classes: [runnerClass()], allowedOwners: [], allowedRepos: [] };

function setup(deps: FakeDeps = fakeDeps(), limits?: { maxRunners: number; maxRunnersPerRepo: number }) {
  const { provisioner, backlog } = fakeProvisioner(deps, limits);
  return { deps, backlog, handler: new JobEventHandler(deps, policy, provisioner) };
}

const event = (action: JobAction, job: Partial<WorkflowJob> = {}) => ({ action, job: workflowJob({ status: action, ...job }) });

describe("JobEventHandler", () => {
  it("dispatches a runner for a queued job it serves", async () => {
    const { handler, deps, backlog } = setup();
    const outcome = await handler.handle(event("queued", { id: 42 }));
    expect(outcome).toMatchObject({ outcome: "dispatched", runner: `${PREFIX}-42` });
    expect(deps.nomad.children).toHaveLength(1);
    expect(deps.vault.secrets.has(`${PREFIX}-42`)).toBe(true);
    // Its repository's queue is watched from now on, whatever the App or owners list says.
    expect(backlog.watched).toEqual([{ owner: "acme", repo: "app", installationId: undefined }]);
  });

  it("answers events it does not serve synchronously, doing nothing", () => {
    const { handler, deps } = setup();
    const outcome = handler.handle(event("queued", { labels: ["ubuntu-latest"] }));
    expect(outcome).toMatchObject({ outcome: "ignored" });
    expect(deps.github.faults.calls).toEqual([]);
    expect(deps.nomad.faults.calls).toEqual([]);
  });

  it("shares one execution between concurrent deliveries of the same event", async () => {
    const { handler, deps } = setup();
    const [a, b] = await Promise.all([handler.handle(event("queued", { id: 7 })), handler.handle(event("queued", { id: 7 }))]);
    expect(a).toEqual(b);
    expect(deps.github.faults.count("createJitRunner")).toBe(1);
    expect(deps.nomad.children).toHaveLength(1);
  });

  it("answers a redelivery of a dispatched job as a duplicate, dispatching nothing more", async () => {
    const { handler, deps } = setup();
    await handler.handle(event("queued", { id: 8 }));
    expect(await handler.handle(event("queued", { id: 8 }))).toMatchObject({ outcome: "duplicate" });
    expect(deps.nomad.children).toHaveLength(1);
    expect(deps.github.faults.count("createJitRunner")).toBe(1);
  });

  it("defers a job over the per-repository cap and asks the backlog for a pass", async () => {
    const deps = fakeDeps();
    addRunnerJob(deps, 1);
    const { handler, backlog } = setup(deps, { maxRunners: 10, maxRunnersPerRepo: 1 });
    expect(await handler.handle(event("queued", { id: 2 }))).toMatchObject({ outcome: "deferred", reason: expect.stringMatching(/runner limit/) });
    expect(deps.github.faults.count("createJitRunner")).toBe(0);
    expect(backlog.passes).toBe(1);
  });

  it("deletes the credential of our runner that ran a completed job, and asks for a pass when capacity is limited", async () => {
    const deps = fakeDeps();
    deps.vault.secrets.set(`${PREFIX}-5`, { kind: "jit", jitconfig: "x" });
    const { handler, backlog } = setup(deps, { maxRunners: 10, maxRunnersPerRepo: 10 });
    const outcome = await handler.handle(event("completed", { id: 5, runnerName: `${PREFIX}-5`, conclusion: "success" }));
    expect(outcome).toEqual({ outcome: "released", runners: [`${PREFIX}-5`], kept: [] });
    expect(deps.vault.secrets.has(`${PREFIX}-5`)).toBe(false);
    expect(backlog.passes).toBe(1);
  });

  it("releases the idle runner dispatched for a job another runner ran, but keeps it when busy", async () => {
    const deps = fakeDeps();
    addRunnerJob(deps, 9);
    addRunnerJob(deps, 10);
    deps.github.register({ owner: "acme", repo: "app" }, `${PREFIX}-9`);
    deps.github.register({ owner: "acme", repo: "app" }, `${PREFIX}-10`, { busy: true });
    const { handler } = setup(deps);
    const elsewhere = { runnerName: "hosted-runner-1", conclusion: "success" };
    expect(await handler.handle(event("completed", { id: 9, ...elsewhere }))).toEqual({ outcome: "released", runners: [`${PREFIX}-9`], kept: [] });
    expect(await handler.handle(event("completed", { id: 10, ...elsewhere }))).toEqual({ outcome: "released", runners: [], kept: [`${PREFIX}-10`] });
    expect(deps.github.runners.get("acme/app")!.map((r) => r.name)).toEqual([`${PREFIX}-10`]);
  });

  it("answers 'observed' when our runner picks up a job", () => {
    const { handler } = setup();
    expect(handler.handle(event("in_progress", { id: 3, runnerName: `${PREFIX}-3` }))).toEqual({ outcome: "observed", runner: `${PREFIX}-3` });
  });
});
