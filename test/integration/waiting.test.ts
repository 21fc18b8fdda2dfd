import { describe, expect, it } from "vitest";
import type { WaitingSummary } from "../../src/core/waiting.js";
import { startTestWorld } from "../harness/test-world.js";
import { eventually, type World } from "../harness/world.js";

// Issue 16 (4) on the twins: while a job waits for a runner, the operators' /readyz, a metric and
// a log line say which job and why; once it is served, they say nothing waits.

const fast = { RECONCILE_INTERVAL: "1", RECONCILE_GRACE: "1", RUNNER_RETENTION: "0" };
const labels = ["self-hosted", "nomad"];

async function waiting(w: World): Promise<WaitingSummary> {
  const res = await fetch(new URL("/readyz", w.service.metricsUrl!));
  return ((await res.json()) as { waiting: WaitingSummary }).waiting;
}

async function gauge(w: World, reason: string): Promise<number> {
  const text = await (await fetch(w.service.metricsUrl!)).text();
  const line = text.split("\n").find((l) => l.startsWith(`ngd_jobs_waiting{reason="${reason}"}`));
  return Number(line?.split(" ")[1] ?? Number.NaN);
}

describe("which jobs wait, and why (twins)", () => {
  it("Vault sealed: the job waits on 'vault' in /readyz, the metric and one log line; served once Vault is back", async () => {
    const w = await startTestWorld({ env: fast });
    w.vault.seal();
    const job = await w.github.queueJob({ repo: "octo-org/app", labels });
    await eventually(async () => (await waiting(w)).jobs[0]?.reason === "vault", "job listed as waiting on vault");
    const summary = await waiting(w);
    expect(summary).toMatchObject({ count: 1, byReason: { vault: 1 } });
    expect(summary.jobs[0]).toMatchObject({ job: job.id, repo: "octo-org/app" });
    expect(await gauge(w, "vault")).toBe(1);
    expect(await gauge(w, "max-runners")).toBe(0);
    const lines = w.logs.filter((l) => l.includes('"job waiting for a runner"') && l.includes(`"job":${job.id}`));
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(lines[0]).toContain('"reason":"vault"');
    w.vault.unseal();
    await eventually(() => w.github.jobs().find((j) => j.id === job.id)?.status !== "queued", "job served after unseal");
    await eventually(async () => (await waiting(w)).count === 0, "nothing waits");
    expect(await gauge(w, "vault")).toBe(0);
  });

  it("MAX_RUNNERS=1: the second job waits on 'max-runners' while the first runs, then is served", async () => {
    const w = await startTestWorld({ env: { ...fast, MAX_RUNNERS: "1" }, github: { jobDurationMs: 3_000 } });
    const first = await w.github.queueJob({ repo: "octo-org/app", labels });
    await eventually(() => w.github.jobs().find((j) => j.id === first.id)?.status === "in_progress", "first job running");
    const second = await w.github.queueJob({ repo: "octo-org/app", labels });
    // Refused by the webhook path ("capacity"), then named by the reconciler's plan.
    await eventually(async () => (await waiting(w)).jobs.some((j) => j.job === second.id && j.reason === "max-runners"), "second job waits on max-runners");
    expect(await gauge(w, "max-runners")).toBe(1);
    await eventually(() => w.github.jobs().find((j) => j.id === second.id)?.status === "completed", "second job served", 20_000);
    expect((await waiting(w)).count).toBe(0);
  });
});
