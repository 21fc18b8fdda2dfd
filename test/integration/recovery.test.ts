import { describe, expect, it } from "vitest";
import { startTestWorld } from "../harness/test-world.js";
import { eventually } from "../harness/world.js";

const fast = { RECONCILE_INTERVAL: "1", RECONCILE_GRACE: "1", RUNNER_RETENTION: "0" };
const labels = ["self-hosted", "nomad"];

describe("recovery (reconciler)", () => {
  it.each([
    ["ALLOWED_REPOS (PAT)", { env: { ...fast, ALLOWED_REPOS: "octo-org/app" } }],
    ["ALLOWED_OWNERS (PAT)", { env: { ...fast, ALLOWED_OWNERS: "octo-org" } }],
    ["the App's installations", { env: fast, app: true }],
    ["ALLOWED_REPOS (App)", { env: { ...fast, ALLOWED_REPOS: "octo-org/app" }, app: true }],
  ])("serves a job whose webhook was lost: %s polled", async (_name, opts) => {
    const w = await startTestWorld(opts);
    const job = await w.github.queueJob({ repo: "octo-org/app", labels, deliver: false });
    await eventually(() => w.github.jobs().find((j) => j.id === job.id)?.status === "completed", "lost job served");
    await eventually(() => w.vault.kvKeys().length === 0 && w.github.runners().length === 0, "nothing left");
  });

  it("redelivers an App's failed webhook deliveries", async () => {
    const w = await startTestWorld({ env: { RECONCILE_INTERVAL: "3600" }, app: true });
    w.github.faults.intercept = undefined;
    // The service is down for this delivery: it fails at GitHub, which does not retry by itself.
    const hookDown = w.service.url;
    await w.service.close();
    const job = await w.github.queueJob({ repo: "octo-org/app", labels });
    expect(w.github.deliveries().find((d) => d.action === "queued")?.status_code).not.toBe(200);
    const { startService } = await import("../../src/service.js");
    const restarted = await startService({ ...w.config, port: Number(new URL(hookDown).port) }, w.log);
    w.service = restarted;
    await eventually(() => w.github.deliveries().some((d) => d.action === "queued" && d.redelivery && d.status_code === 200), "failed delivery redelivered");
    await eventually(() => w.github.jobs().find((j) => j.id === job.id)?.status === "completed", "job served");
  });

  it("with a PAT, finds its organization hook by WEBHOOK_URL and redelivers a failed delivery: served before any listing of the repository's queue", async () => {
    // 200 repositories before octo-org/app: the backstop scan (30 a minute at this budget) does
    // not reach it during the test, so only the redelivery can serve the job.
    const repos = [...Array.from({ length: 200 }, (_, i) => `octo-org/r${i}`), "octo-org/app"];
    const w = await startTestWorld({ repos, hook: { org: "octo-org" }, env: { ALLOWED_OWNERS: "octo-org", RECONCILE_INTERVAL: "1" } });
    const hookUrl = `${w.service.url}/webhook`;
    // The service is down for this delivery: it fails at GitHub, which does not retry by itself.
    await w.service.close();
    const job = await w.github.queueJob({ repo: "octo-org/app", labels });
    expect(w.github.deliveries().find((d) => d.action === "queued")?.status_code).toBe(0);
    const { startService } = await import("../../src/service.js");
    w.service = await startService({ ...w.config, port: Number(new URL(hookUrl).port), github: { ...w.config.github, webhookUrl: hookUrl } }, w.log);
    await eventually(() => w.github.deliveries().some((d) => d.action === "queued" && d.redelivery && d.status_code === 200), "failed delivery redelivered");
    await eventually(() => w.github.jobs().find((j) => j.id === job.id)?.status === "completed", "job served");
    const used = w.github.requests.map((r) => `${r.method} ${r.url.split("?")[0]?.replace(/^\/api\/v3/, "")}`);
    expect(used).toContain("GET /orgs/octo-org/hooks");
    expect(used.some((u) => /^POST \/orgs\/octo-org\/hooks\/\d+\/deliveries\/\d+\/attempts$/.test(u))).toBe(true);
    // Its runner came before any listing of its queue (the delivery made it active: listed next).
    const firstListing = used.findIndex((u) => u.startsWith("GET /repos/octo-org/app/actions/runs"));
    const jit = used.indexOf("POST /repos/octo-org/app/actions/runners/generate-jitconfig");
    expect(jit).toBeGreaterThanOrEqual(0);
    if (firstListing >= 0) expect(firstListing).toBeGreaterThan(jit);
  });

  it("replaces a runner whose credential could not be used (failed prestart) with a fresh one", async () => {
    const w = await startTestWorld({ env: fast });
    w.nomad.faults.failNextPrestart(1);
    const job = await w.github.queueJob({ repo: "octo-org/app", labels });
    await eventually(() => w.github.jobs().find((j) => j.id === job.id)?.status === "completed", "job served by a replacement");
    const jit = w.github.requests.filter((r) => r.method === "POST" && r.url.includes("generate-jitconfig"));
    expect(jit).toHaveLength(2);
    await eventually(() => w.vault.kvKeys().length === 0 && w.github.runners().length === 0, "nothing left");
    await eventually(() => w.nomad.jobs().filter((j) => j.ParentID === "github-runner").length === 0, "dead runner jobs purged");
  });

  it("a runner lost with its node is never replaced by Nomad (its credential is spent); its job, and its slot, are the dispatcher's again", async () => {
    const w = await startTestWorld({ env: { ...fast, MAX_RUNNERS: "1" }, github: { jobDurationMs: 60_000, runnerLostAfterMs: 500 } });
    const job = await w.github.queueJob({ repo: "octo-org/app", labels });
    await eventually(() => w.github.runners().some((r) => r.busy), "runner took the job");
    const [alloc] = w.nomad.allocations();
    w.nomad.faults.loseAllocation(alloc!.ID);
    // GitHub fails the job of a runner that stopped talking to it; a new job gets the slot.
    await eventually(() => w.github.jobs().find((j) => j.id === job.id)?.status === "completed", "job failed with its runner");
    const next = await w.github.queueJob({ repo: "octo-org/app", labels });
    await eventually(() => w.github.jobs().find((j) => j.id === next.id)?.status === "in_progress", "next job served despite MAX_RUNNERS=1");
    // Nomad placed no replacement for the lost allocation, so its credential was read once.
    const lostJob = w.nomad.allocations().filter((a) => a.JobID === alloc!.JobID);
    expect(lostJob).toHaveLength(1);
    const reads = w.vault.auditLog().filter((e) => e.type === "request" && e.auth.metadata?.role === "nomad-gha-runner" && e.request.operation === "read");
    expect(reads).toHaveLength(2);
    // The stranded runner job is stopped, so it cannot come back if its node does.
    await eventually(() => w.nomad.jobs().find((j) => j.ID === alloc!.JobID)?.Stop !== false, "stranded runner job stopped");
  });

  it("keeps serving through a Nomad leader loss and a sealed Vault, answering 503 meanwhile", async () => {
    const w = await startTestWorld({ env: fast });
    w.nomad.setLeader(false);
    w.vault.seal();
    const job = await w.github.queueJob({ repo: "octo-org/app", labels });
    expect(w.github.deliveries().find((d) => d.action === "queued")?.status_code).toBe(503);
    const ready = await fetch(`${w.service.url}/readyz`);
    expect(ready.status).toBe(503);
    // Through the tunnel: which checks fail, not why; the metrics listener (operators only) says why.
    const publicReport = (await ready.json()) as { checks: Record<string, { ok: boolean; detail?: string }> };
    expect(Object.values(publicReport.checks).some((check) => !check.ok)).toBe(true);
    expect(Object.values(publicReport.checks).every((check) => check.detail === undefined)).toBe(true);
    const operators = await fetch(new URL("/readyz", w.service.metricsUrl!));
    expect(operators.status).toBe(503);
    const why = (await operators.json()) as { checks: Record<string, { ok: boolean; detail?: string }> };
    expect(
      Object.values(why.checks)
        .filter((check) => !check.ok)
        .every((check) => typeof check.detail === "string" && check.detail !== ""),
    ).toBe(true);
    w.nomad.setLeader(true);
    w.vault.unseal();
    await eventually(() => w.github.jobs().find((j) => j.id === job.id)?.status === "completed", "job served after recovery");
    await eventually(() => w.vault.kvKeys().length === 0 && w.github.runners().length === 0, "nothing left");
  });

  it("limits runners without dropping jobs: MAX_RUNNERS=1 serves three jobs one after another", async () => {
    const w = await startTestWorld({ env: { ...fast, MAX_RUNNERS: "1" }, github: { jobDurationMs: 200 } });
    const jobs: Array<{ id: number }> = [];
    for (let i = 0; i < 3; i++) jobs.push(await w.github.queueJob({ repo: "octo-org/app", labels }));
    expect(
      w.github
        .deliveries()
        .filter((d) => d.action === "queued")
        .map((d) => d.status_code),
    ).toEqual([200, 202, 202]);
    let peak = 0;
    await eventually(
      () => {
        peak = Math.max(peak, w.nomad.runningRunnerJobs().length);
        return jobs.every((j) => w.github.jobs().find((x) => x.id === j.id)?.status === "completed");
      },
      "all three served",
      // Three runners one after another, each real processes on the same two cores as the rest.
      80_000,
    );
    expect(peak).toBe(1);
  }, 90_000);
});
