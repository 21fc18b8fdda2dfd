// The service within GitHub's secondary rate limit: deliveries answered quickly when jobs must
// wait for the budget, conditional polling, and a reconciler that keeps to its share.
import { describe, expect, it } from "vitest";
import { GitHubClient } from "../../src/github/client.js";
import { startTestWorld } from "../harness/test-world.js";
import { eventually, startTwins } from "../harness/world.js";

const labels = ["self-hosted", "nomad"];

describe("GitHub rate limit on the dispatch path", () => {
  it("answers deliveries beyond the budget at once with 202 and never trips GitHub's secondary limit", async () => {
    // 15 points a minute: three JIT configs; the fourth job has to wait.
    const w = await startTestWorld({ env: { GITHUB_POINTS_PER_MINUTE: "15" }, nomadSlots: 0 });
    for (let i = 0; i < 3; i++) await w.github.queueJob({ repo: "octo-org/app", labels });
    const started = performance.now();
    const late = await w.github.queueJob({ repo: "octo-org/app", labels });
    expect(performance.now() - started).toBeLessThan(2_000);
    const answers = w.github.deliveries().filter((d) => d.action === "queued");
    expect(answers.map((d) => d.status_code)).toEqual([200, 200, 200, 202]);
    expect(JSON.parse(answers[3]!.response.payload ?? "{}")).toMatchObject({ outcome: "deferred", runner: `nomad-gha-${late.id}` });
    expect(w.nomad.jobs().filter((j) => j.Dispatched)).toHaveLength(3);
    expect(w.github.secondaryLimitHits).toBe(0);
    // Shutdown does not wait a minute for the budget: the job stays queued at GitHub.
    const closing = performance.now();
    await w.close();
    expect(performance.now() - closing).toBeLessThan(3_000);
  });

  it("a completed job that ran elsewhere costs no GitHub request when nothing was dispatched for it", async () => {
    const w = await startTestWorld({ nomadSlots: 0 });
    const job = await w.github.queueJob({ repo: "octo-org/app", labels, deliver: false });
    const before = w.github.requests.length;
    await w.github.cancelJob(job.id);
    expect(w.github.deliveries().find((d) => d.action === "completed")?.status_code).toBe(200);
    expect(w.github.requests.length).toBe(before);
  });
});

describe("polling", () => {
  it("lists with conditional requests: unchanged listings come back 304 and give the same jobs", async () => {
    const twins = await startTwins({ repos: ["octo-org/app"], github: { validate: false } });
    try {
      const github = new GitHubClient({
        auth: { kind: "token", token: twins.github.createPat() },
        apiUrl: twins.github.url,
        webUrl: twins.github.webUrl,
        scope: "repo",
        runnerGroupId: 1,
      });
      const target = { owner: "octo-org", repo: "app" };
      const job = await twins.github.queueJob({ repo: "octo-org/app", labels, deliver: false });
      const first = await github.listQueuedJobs(target);
      const mark = twins.github.requests.length;
      const { result: second, points } = await github.metered(() => github.listQueuedJobs(target));
      expect(second).toEqual(first);
      expect(second.map((j) => j.id)).toEqual([job.id]);
      const repeat = twins.github.requests.slice(mark);
      expect(repeat.map((r) => r.status)).toEqual([304, 304, 304]);
      // 304s are free under the primary limit, but GitHub charges each GET a secondary point.
      expect(points).toBe(3);
      await twins.github.queueJob({ repo: "octo-org/app", labels, deliver: false });
      expect(await github.listQueuedJobs(target)).toHaveLength(2);
    } finally {
      await Promise.all([twins.github.close(), twins.vault.close(), twins.nomad.close()]);
    }
  });

  it("the reconciler keeps its reads within its share of any minute, the first one included", async () => {
    // 60 points a minute, 10% for the reconciler: 6 points a minute. A listing of three
    // repositories costs more than that, so the first minute lists only what 6 points afford.
    const repos = ["octo-org/a", "octo-org/b", "octo-org/c"];
    const w = await startTestWorld({ repos, env: { GITHUB_POINTS_PER_MINUTE: "60", RECONCILE_INTERVAL: "1", ALLOWED_REPOS: repos.join(",") } });
    const reads = () => w.github.requests.filter((r) => r.method === "GET").length;
    await eventually(() => w.github.requests.some((r) => r.url.includes("/actions/runs")), "first pass");
    // Passes keep coming every second; none may read beyond the share.
    await new Promise((r) => setTimeout(r, 3_000));
    await w.service.reconciler.idle();
    expect(reads()).toBeGreaterThan(0);
    expect(reads()).toBeLessThanOrEqual(6);
    expect(w.service.reconciler.nextPassInMs()).toBeGreaterThanOrEqual(1_000);
  });

  it("with 300 repositories under ALLOWED_OWNERS, the start reads no more than the share in its first minute", async () => {
    const repos = Array.from({ length: 300 }, (_, i) => `octo-org/r${i}`);
    const w = await startTestWorld({ repos, env: { RECONCILE_INTERVAL: "1", ALLOWED_OWNERS: "octo-org" } });
    const started = Date.now();
    await eventually(() => w.github.requests.some((r) => r.url.includes("/actions/runs")), "first pass");
    // Several passes (one a second) within the minute: together they stay within 10% of 900.
    await new Promise((r) => setTimeout(r, 4_000));
    await w.service.reconciler.idle();
    const firstMinute = w.github.requests.filter((r) => r.method === "GET" && r.at - started < 60_000);
    expect(firstMinute.length).toBeLessThanOrEqual(90);
    // It did list queues: the scan is paced, not stopped.
    expect(firstMinute.filter((r) => r.url.includes("/actions/runs?")).length).toBeGreaterThan(20);
  });
});
