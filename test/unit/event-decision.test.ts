import { describe, expect, it } from "vitest";
import { decide, matchesPolicy, type ServePolicy } from "../../src/core/event-decision.js";
import type { JobAction, WorkflowJob } from "../../src/core/job-event.js";
import { runnerClass } from "../fakes/deps.js";
import { workflowJob } from "../harness/fixtures.js";

const policy: ServePolicy = { classes: [runnerClass({ runnerPrefix: "nomad-gha" })], allowedOwners: [], allowedRepos: [] };

const job = workflowJob;

const at = (action: JobAction, overrides: Partial<WorkflowJob> = {}) => decide({ action, job: job(overrides) }, policy);

describe("matchesPolicy", () => {
  it("serves a job whose labels equal the class's as a set (case-insensitive, order-free); extra or missing labels are not ours", () => {
    expect(matchesPolicy(job({ labels: ["NOMAD", "Self-Hosted"] }), policy)).toMatchObject({ ok: true, cls: { name: "default" } });
    expect(matchesPolicy(job({ labels: ["nomad", "self-hosted", "nomad"] }), policy).ok).toBe(true);
    const extra = matchesPolicy(job({ labels: ["Self-Hosted", "NOMAD", "gpu"] }), policy);
    expect(extra).toEqual({
      ok: false,
      code: "no-class",
      reason: 'no runner class has exactly the labels ["Self-Hosted","NOMAD","gpu"] (labels are matched as a set)',
    });
    expect(matchesPolicy(job({ labels: ["self-hosted"] }), policy)).toMatchObject({ ok: false, code: "no-class" });
    expect(matchesPolicy(job({ labels: ["ubuntu-latest"] }), policy)).toMatchObject({ ok: false, code: "no-class" });
    expect(matchesPolicy(job({ labels: [] }), policy)).toMatchObject({ ok: false, code: "no-labels" });
  });

  it("applies owner and repository allow-lists case-insensitively", () => {
    const owners = { ...policy, allowedOwners: ["acme"] };
    expect(matchesPolicy(job({ owner: "ACME" }), owners).ok).toBe(true);
    expect(matchesPolicy(job({ owner: "evil" }), owners)).toEqual({ ok: false, code: "owner-not-allowed", reason: "owner evil is not in ALLOWED_OWNERS" });
    const repos = { ...policy, allowedRepos: ["acme/app"] };
    expect(matchesPolicy(job({ repo: "App" }), repos).ok).toBe(true);
    expect(matchesPolicy(job({ repo: "other" }), repos)).toMatchObject({ ok: false, code: "repo-not-allowed" });
    const both = { ...policy, allowedOwners: ["acme"], allowedRepos: ["acme/app"] };
    expect(matchesPolicy(job({ repo: "other" }), both).ok).toBe(false);
  });
});

describe("decide with two classes", () => {
  const small = runnerClass({ name: "small", runnerPrefix: "ngd-small", job: "runner-small" });
  const large = runnerClass({ name: "large", labels: ["large", "nomad", "self-hosted"], runnerPrefix: "ngd-large", job: "runner-large" });
  const two: ServePolicy = { classes: [small, large], allowedOwners: [], allowedRepos: [] };
  const of = (action: JobAction, overrides: Partial<WorkflowJob>) => decide({ action, job: job(overrides) }, two);

  it("provisions the runner of the class of exactly the job's labels", () => {
    expect(of("queued", { labels: ["Large", "nomad", "self-hosted"] })).toMatchObject({ kind: "provision", runnerName: "ngd-large-42", cls: large });
    expect(of("queued", { labels: ["nomad", "self-hosted"] })).toMatchObject({ kind: "provision", runnerName: "ngd-small-42", cls: small });
    expect(of("queued", { labels: ["nomad", "self-hosted", "gpu"] })).toMatchObject({ kind: "ignore", code: "no-class" });
  });

  it("counts a job under its own class whichever of our runners took it", () => {
    expect(of("in_progress", { labels: ["nomad", "self-hosted"], runnerName: "ngd-large-7" })).toMatchObject({ kind: "observe", cls: small });
  });

  it("on completion: a runner of its own class that ran it leaves this job's runner for that runner's job; one of another class does not", () => {
    const labels = ["nomad", "self-hosted"];
    expect(of("completed", { labels, runnerName: "ngd-small-7" })).toMatchObject({ spent: ["ngd-small-7"], unneeded: [] });
    expect(of("completed", { labels, runnerName: "ngd-large-7" })).toMatchObject({ spent: ["ngd-large-7"], unneeded: ["ngd-small-42"] });
    expect(of("completed", { labels, runnerName: "someone-else" })).toMatchObject({ spent: [], unneeded: ["ngd-small-42"] });
  });
});

describe("decide", () => {
  it("provisions a runner named after the job for a matching queued job", () => {
    expect(at("queued")).toEqual({ kind: "provision", job: job(), runnerName: "nomad-gha-42", cls: policy.classes[0] });
  });

  it("never provisions for waiting, in_progress or completed jobs", () => {
    for (const action of ["waiting", "in_progress", "completed"] as const) {
      expect(at(action).kind).not.toBe("provision");
    }
    expect(at("waiting")).toEqual({ kind: "ignore", reason: "job is waiting for approval" });
  });

  it("ignores jobs that do not match, whatever the action", () => {
    for (const action of ["queued", "waiting", "in_progress", "completed"] as const) {
      expect(at(action, { labels: ["ubuntu-latest"] }).kind).toBe("ignore");
    }
  });

  it("carries GitHub's own queued -> started time when our runner picks a job up, and none it cannot tell", () => {
    const created = "2026-12-02T10:00:00Z";
    const started = { runnerName: "nomad-gha-42", createdAt: created, startedAt: "2026-12-02T10:00:12.5Z" };
    expect(at("in_progress", started)).toMatchObject({ kind: "observe", cls: { name: "default" }, startupSeconds: 12.5 });
    expect(at("in_progress", { ...started, startedAt: undefined })).toMatchObject({ kind: "observe", startupSeconds: undefined });
    expect(at("in_progress", { ...started, startedAt: "2026-12-02T09:59:00Z" })).toMatchObject({ startupSeconds: undefined });
    expect(at("in_progress", { ...started, createdAt: "" })).toMatchObject({ startupSeconds: undefined });
    expect(at("in_progress", { ...started, runnerName: "some-other-runner" }).kind).toBe("ignore");
  });

  it("observes our runner picking up a job, ignores foreign runners", () => {
    expect(at("in_progress", { runnerName: "nomad-gha-42" })).toMatchObject({ kind: "observe", runnerName: "nomad-gha-42" });
    expect(at("in_progress", { runnerName: "nomad-gha-99" })).toMatchObject({ kind: "observe", runnerName: "nomad-gha-99" });
    expect(at("in_progress", { runnerName: "some-other-runner" }).kind).toBe("ignore");
  });

  it("on completion by its own runner: that runner is spent", () => {
    expect(at("completed", { runnerName: "nomad-gha-42", conclusion: "success" })).toMatchObject({
      kind: "release",
      spent: ["nomad-gha-42"],
      unneeded: [],
    });
  });

  it("on completion by another of our runners: that one is spent, ours stays for the other job", () => {
    expect(at("completed", { runnerName: "nomad-gha-77", conclusion: "success" })).toMatchObject({
      kind: "release",
      spent: ["nomad-gha-77"],
      unneeded: [],
    });
  });

  it("on cancellation before pickup, or a run elsewhere: the dispatched runner is unneeded", () => {
    expect(at("completed", { runnerName: null, conclusion: "cancelled" })).toMatchObject({ spent: [], unneeded: ["nomad-gha-42"] });
    expect(at("completed", { runnerName: "GitHub Actions 3", conclusion: "success" })).toMatchObject({
      spent: [],
      unneeded: ["nomad-gha-42"],
    });
  });
});
