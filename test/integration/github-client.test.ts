// The GitHub adapter (src/github/client.ts) against the GitHub twin, without the rest of the
// service: what every request carries, and listings that go past their first page.
import { describe, expect, it, onTestFinished } from "vitest";
import { GITHUB_API_VERSION, GitHubClient } from "../../src/github/client.js";
import { GitHubTwin, type GitHubTwinOptions } from "../twins/github.js";

const labels = ["self-hosted", "nomad"];
const INSTALLATION = 4242;

async function twin(opts: GitHubTwinOptions = {}): Promise<GitHubTwin> {
  const github = await GitHubTwin.start(opts);
  onTestFinished(() => github.close());
  return github;
}

function patClient(github: GitHubTwin, webhooks?: ConstructorParameters<typeof GitHubClient>[0]["webhooks"]): GitHubClient {
  return new GitHubClient({
    auth: { kind: "token", token: github.createPat() },
    apiUrl: github.url,
    webUrl: github.webUrl,
    scope: "repo",
    runnerGroupId: 1,
    webhooks,
  });
}

describe("every GitHub request", () => {
  it(`asks for REST API version ${GITHUB_API_VERSION}: PAT, App JWT and installation requests alike`, async () => {
    const github = await twin();
    github.addRepo("octo-org/app", { installationId: INSTALLATION });
    const app = github.createApp();
    const asApp = new GitHubClient({
      auth: { kind: "app", appId: app.appId, privateKey: app.privateKeyPem },
      apiUrl: github.url,
      webUrl: github.webUrl,
      scope: "repo",
      runnerGroupId: 1,
    });
    const asPat = patClient(github);
    await github.queueJob({ repo: "octo-org/app", labels, deliver: false });

    const [target] = await asApp.listInstallationRepos(); // app JWT, then an installation token
    expect(target).toMatchObject({ owner: "octo-org", repo: "app", installationId: INSTALLATION });
    await asApp.listQueuedJobs(target!);
    await asApp.createJitRunner(target!, "nomad-gha-1", labels);
    await asPat.identity();
    await asPat.listQueuedJobs({ owner: "octo-org", repo: "app" });
    const { runnerId } = await asPat.createJitRunner({ owner: "octo-org", repo: "app" }, "nomad-gha-2", labels);
    await asPat.deleteRunner({ owner: "octo-org", repo: "app" }, runnerId);

    // The twin is laid out like GHES: REST under /api/v3.
    const paths = github.requests.map((r) => `${r.method} ${r.url.split("?")[0]!.replace(/^\/api\/v3/, "")}`);
    for (const expected of ["GET /app/installations", `POST /app/installations/${INSTALLATION}/access_tokens`, "GET /installation/repositories", "GET /user"]) {
      expect(paths).toContain(expected);
    }
    const without = github.requests.filter((r) => r.headers["x-github-api-version"] !== GITHUB_API_VERSION);
    expect(without.map((r) => `${r.method} ${r.url}`)).toEqual([]);
    expect(github.contractViolations).toEqual([]);
  });
});

describe("listQueuedJobs", () => {
  it("reads every page: more than 100 queued runs, and a run with more than 100 jobs", async () => {
    const github = await twin({ validate: false });
    github.addRepo("octo-org/app");
    const queued: number[] = [];
    for (let i = 0; i < 130; i++) queued.push((await github.queueJob({ repo: "octo-org/app", labels, deliver: false })).id);
    const big = await github.queueJob({ repo: "octo-org/app", labels, deliver: false });
    queued.push(big.id);
    for (let i = 1; i < 150; i++) queued.push((await github.queueJob({ repo: "octo-org/app", labels, runId: big.run_id, deliver: false })).id);

    const client = patClient(github);
    const target = { owner: "octo-org", repo: "app" };
    const mark = github.requests.length;
    const { result, points } = await client.metered(() => client.listQueuedJobs(target));
    expect(result.map((j) => j.id).sort((a, b) => a - b)).toEqual([...queued].sort((a, b) => a - b));

    const listed = github.requests.slice(mark);
    const pageOf = (url: string) => new URL(url, github.url).searchParams.get("page");
    const runPages = listed.filter((r) => /\/actions\/runs\?/.test(r.url) && r.url.includes("status=queued")).map((r) => pageOf(r.url));
    expect(runPages).toEqual(["1", "2"]); // 131 runs: a full page, then a short one
    const bigRunPages = listed.filter((r) => r.url.includes(`/actions/runs/${big.run_id}/jobs`)).map((r) => pageOf(r.url));
    expect(bigRunPages).toEqual(["1", "2"]); // 150 jobs
    // Every page is a request of its own, and a point of the budget.
    expect(points).toBe(listed.length);
    expect(listed.length).toBe(2 + 1 + 130 + 2); // queued runs, in_progress runs, one page per small run, two for the big one

    // Unchanged: every page comes back 304 from its own cache entry, and still costs its point.
    const again = github.requests.length;
    const second = await client.metered(() => client.listQueuedJobs(target));
    expect(second.result).toEqual(result);
    const repeat = github.requests.slice(again);
    expect(new Set(repeat.map((r) => r.status))).toEqual(new Set([304]));
    expect(second.points).toBe(repeat.length);
    expect(repeat.length).toBe(listed.length);
  });

  it("lists a job once when its run moves from queued to in_progress between the two listings", async () => {
    const github = await twin({ validate: false });
    github.addRepo("octo-org/app");
    const job = await github.queueJob({ repo: "octo-org/app", labels, deliver: false });
    // Both status listings name the same run, as when it starts between the two requests.
    github.faults.intercept = ({ method, path }) =>
      method === "GET" && path === "/repos/octo-org/app/actions/runs"
        ? { status: 200, headers: { "content-type": "application/json" }, body: JSON.stringify({ total_count: 1, workflow_runs: [{ id: job.run_id }] }) }
        : undefined;
    const client = patClient(github);
    const jobs = await client.listQueuedJobs({ owner: "octo-org", repo: "app" });
    expect(jobs.map((j) => j.id)).toEqual([job.id]);
    expect(github.requests.filter((r) => r.url.includes(`/actions/runs/${job.run_id}/jobs`))).toHaveLength(1);
  });
});

describe("latestRunnerRelease", () => {
  it("reads GET /repos/actions/runner/releases/latest through the budget; a 404 (GHES) is no release", async () => {
    const github = await twin({ validate: false });
    const client = patClient(github);
    const release = { tag_name: "v2.336.0", published_at: "2026-08-10T09:00:00Z", html_url: "https://github.com/actions/runner/releases/tag/v2.336.0" };
    let status = 200;
    github.faults.intercept = ({ path }) =>
      path === "/repos/actions/runner/releases/latest"
        ? { status, headers: { "content-type": "application/json" }, body: status === 200 ? JSON.stringify(release) : '{"message":"Not Found"}' }
        : undefined;
    const { result, points } = await client.metered(() => client.latestRunnerRelease());
    expect(result).toEqual({ tag: "v2.336.0", publishedAt: "2026-08-10T09:00:00Z", url: release.html_url });
    expect(points).toBe(1);
    expect(github.requests.at(-1)?.headers["x-github-api-version"]).toBe(GITHUB_API_VERSION);
    status = 404;
    expect(await client.latestRunnerRelease()).toBeUndefined();
  });
});

describe("jobStatus (the replay check)", () => {
  it("reads one job's status with a conditional GET: queued, completed, 404 for an unknown job; an unchanged job is a 304", async () => {
    const github = await twin();
    github.addRepo("octo-org/app");
    const client = patClient(github);
    const target = { owner: "octo-org", repo: "app" };
    const job = await github.queueJob({ repo: "octo-org/app", labels, deliver: false });

    const { result, points } = await client.metered(() => client.jobStatus(target, job.id));
    expect(result).toBe("queued");
    // Counted against the budget like every read.
    expect(points).toBe(1);
    expect(await client.jobStatus(target, job.id)).toBe("queued");
    await github.cancelJob(job.id);
    expect(await client.jobStatus(target, job.id)).toBe("completed");
    expect(await client.jobStatus(target, 987_654_321)).toBe("not-found");
    expect(await client.jobStatus({ owner: "octo-org", repo: "elsewhere" }, job.id)).toBe("not-found");

    const lookups = github.requests.filter((r) => r.url.includes("/actions/jobs/"));
    expect(lookups.map((r) => r.status)).toEqual([200, 304, 200, 404, 404]);
    expect(lookups[1]!.headers["if-none-match"]).toMatch(/^W\/".+"$/);
    expect(github.contractViolations).toEqual([]);
  });
});

describe("redelivery of a PAT's hooks (found by WEBHOOK_URL)", () => {
  it("redelivers a repository hook's failed workflow_job deliveries, once, and looks the hook up once an hour", async () => {
    const github = await twin();
    github.addRepo("solo/tool");
    const url = "http://127.0.0.1:9/webhook";
    // Nothing listens there: every delivery fails. Another service's hook is not ours.
    const hookId = github.addWebhook({ url, secret: "s", repo: "solo/tool" });
    github.addWebhook({ url: "http://127.0.0.1:9/other", secret: "s", repo: "solo/tool" });
    await github.queueJob({ repo: "solo/tool", labels });
    const client = patClient(github, { url: `${url}/`, scopes: { orgs: ["solo"], repos: ["solo/tool"] } });
    expect(await client.redeliverFailedDeliveries(0)).toEqual({ redelivered: 1, left: 0 });
    await github.deliveriesSettled();
    const mine = github.deliveries().filter((d) => d.hook_id === hookId);
    expect(mine.map((d) => d.redelivery)).toEqual([false, true]);
    // The redelivery failed too: the next run asks again for that GUID, once.
    expect(await client.redeliverFailedDeliveries(0)).toEqual({ redelivered: 1, left: 0 });
    const paths = github.requests.map((r) => `${r.method} ${r.url.split("?")[0]!.replace(/^\/api\/v3/, "")}`);
    // "solo" is a user: no organization hooks there (404), and the repository hook is looked up once.
    expect(paths.filter((p) => p === "GET /orgs/solo/hooks")).toHaveLength(1);
    expect(paths.filter((p) => p === "GET /repos/solo/tool/hooks")).toHaveLength(1);
    expect(paths.filter((p) => p.startsWith(`POST /repos/solo/tool/hooks/${hookId}/deliveries/`))).toHaveLength(2);
  });

  it("redelivers at most `max`, the longest-waiting first, and says how many are left", async () => {
    const github = await twin();
    github.addRepo("solo/tool");
    const url = "http://127.0.0.1:9/webhook";
    const hookId = github.addWebhook({ url, secret: "s", repo: "solo/tool" });
    for (let i = 0; i < 3; i++) {
      await github.queueJob({ repo: "solo/tool", labels });
      // Distinct delivery times: GitHub's log orders by them.
      await new Promise((r) => setTimeout(r, 15));
    }
    await github.deliveriesSettled();
    const client = patClient(github, { url, scopes: { orgs: [], repos: ["solo/tool"] } });
    const firsts = github.deliveries().filter((d) => d.hook_id === hookId && d.action === "queued");
    expect(await client.redeliverFailedDeliveries(0, 2)).toEqual({ redelivered: 2, left: 1 });
    await github.deliveriesSettled();
    const again = github.deliveries().filter((d) => d.hook_id === hookId && d.redelivery);
    expect(again.map((d) => d.guid).sort()).toEqual(
      firsts
        .slice(0, 2)
        .map((d) => d.guid)
        .sort(),
    );
    expect(await client.redeliverFailedDeliveries(0, 0)).toEqual({ redelivered: 0, left: 3 });
  });
});
