import { existsSync } from "node:fs";
import { describe, expect, it, onTestFinished } from "vitest";
import type { StatusReport } from "../../src/core/status.js";
import { runStatus } from "../../src/status-command.js";
import { startTestWorld } from "../harness/test-world.js";
import { eventually, type World } from "../harness/world.js";

// Issue 15 (2) on the twins: /status, /status.json and `nomad-gha-dispatcher status` show what
// waits and why while Vault is sealed, and that nothing does once it is back; the page is checked
// in a real headless browser (Debian's chromium, driven by playwright-core: no browser download).

const fast = { RECONCILE_INTERVAL: "1", RECONCILE_GRACE: "1", RUNNER_RETENTION: "0" };
const labels = ["self-hosted", "nomad"];
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

const statusUrl = (w: World, path: string) => new URL(path, w.service.metricsUrl!).href;

async function status(w: World): Promise<StatusReport> {
  return (await (await fetch(statusUrl(w, "/status.json"))).json()) as StatusReport;
}

/** `nomad-gha-dispatcher status` against the world's service: its exit code and what it printed. */
async function statusCommand(w: World): Promise<{ code: number; text: string }> {
  const out: string[] = [];
  const code = await runStatus(
    statusUrl(w, "/status.json"),
    (t) => out.push(t),
    (l) => out.push(l),
  );
  return { code, text: out.join("") };
}

/** A world whose Vault is sealed with one job waiting on it. */
async function sealedWithAJob(): Promise<{ w: World; jobId: number }> {
  const w = await startTestWorld({ env: fast });
  w.vault.seal();
  const job = await w.github.queueJob({ repo: "octo-org/app", labels });
  await eventually(async () => (await status(w)).waiting.jobs[0]?.reason === "vault", "job waiting on vault");
  return { w, jobId: job.id };
}

describe("the status page (twins)", () => {
  it("/status.json and `status` say Vault is sealed, which job waits on it, and what failed; then that nothing waits", async () => {
    const { w, jobId } = await sealedWithAJob();
    const report = await status(w);
    expect(report.ready).toBe(false);
    expect(report.health.vault).toMatchObject({ ok: false, detail: "sealed" });
    expect(report.health.nomad?.ok).toBe(true);
    expect(report.waiting.jobs).toEqual([expect.objectContaining({ job: jobId, repo: "octo-org/app", reason: "vault" })]);
    expect(report.failures.some((f) => f.dependency === "vault" && f.source === "dispatch")).toBe(true);
    expect(report.budgets).toEqual([expect.objectContaining({ key: "pat", pointsPerMinute: expect.any(Number) })]);

    const sealed = await statusCommand(w);
    expect(sealed.code).toBe(1);
    expect(sealed.text).toContain(`job ${jobId}  octo-org/app  vault for`);

    w.vault.unseal();
    await eventually(async () => (await status(w)).ready && (await status(w)).waiting.count === 0, "ready, nothing waits");
    await eventually(async () => (await status(w)).runners.asOf !== undefined, "a reconcile pass counted the runners");
    const back = await statusCommand(w);
    expect(back.code).toBe(0);
    expect(back.text).toContain("waiting for a runner: 0");
  });

  it("counts runners by class and state within seconds of a dispatch and a job's events, between reconcile passes", async () => {
    // One pass at start, then none for an hour: what moves the counts is what the service hears.
    const w = await startTestWorld({ env: { RECONCILE_INTERVAL: "3600" }, github: { jobDurationMs: 3_000 } });
    await eventually(async () => (await status(w)).runners.asOf !== undefined, "the start-up pass counted the runners");
    const asOf = (await status(w)).runners.asOf;
    const job = await w.github.queueJob({ repo: "octo-org/app", labels });
    await eventually(async () => (await status(w)).runners.byClass.default?.busy === 1, "the runner busy, from its in_progress event", 10_000);
    const metrics = await (await fetch(w.service.metricsUrl!)).text();
    expect(metrics).toContain('ngd_class_runners{class="default",state="busy"} 1');
    expect(metrics).toContain('ngd_runners{state="busy"} 1');
    expect(metrics).toContain('ngd_warm_pool_target_runners{class="default"} 0');
    await eventually(() => w.github.jobs().find((j) => j.id === job.id)?.status === "completed", "job completed", 10_000);
    await eventually(async () => (await status(w)).runners.byState.busy === 0, "gone with its completed event", 10_000);
    expect((await status(w)).runners.asOf).toBe(asOf);
    expect((await statusCommand(w)).text).toContain("  default: 0 starting, 0 idle, 0 busy");
  });

  it("`status` without a service says so in one line", async () => {
    const lines: string[] = [];
    expect(
      await runStatus(
        "http://127.0.0.1:9/status.json",
        () => undefined,
        (l) => lines.push(l),
      ),
    ).toBe(2);
    expect(lines).toEqual([
      expect.stringMatching(/^status: no answer from http:\/\/127\.0\.0\.1:9\/status\.json: .+\(is the service running, with METRICS_PORT on\?\)$/),
    ]);
  });

  it.skipIf(!existsSync(CHROMIUM))(`renders in headless chromium (${CHROMIUM}): not ready, the waiting job and why; then none`, async () => {
    const { chromium } = await import("playwright-core");
    const { w, jobId } = await sealedWithAJob();
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
    onTestFinished(() => browser.close());
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    const requested: string[] = [];
    page.on("request", (r) => requested.push(r.url()));
    await page.goto(statusUrl(w, "/status"));
    expect(await page.textContent("#ready")).toBe("NOT READY");
    expect(await page.locator("#health tr", { hasText: "vault" }).textContent()).toContain("failing");
    const row = page.locator("#waiting tr", { hasText: String(jobId) });
    expect(await row.textContent()).toContain("vault");
    expect(await page.locator("#classes tr", { hasText: "default" }).textContent()).toContain("none");
    // One request: the page needs nothing else (no script, style sheet, font or image).
    expect(requested).toEqual([statusUrl(w, "/status")]);
    if (process.env.STATUS_SCREENSHOT) await page.screenshot({ path: process.env.STATUS_SCREENSHOT, fullPage: true });

    w.vault.unseal();
    await eventually(async () => {
      await page.reload();
      return (await page.textContent("#ready")) === "ready";
    }, "the page says ready");
    await eventually(async () => {
      await page.reload();
      return (await page.textContent("#waiting"))?.includes("None") === true;
    }, "the page says nothing waits");
  });
});
