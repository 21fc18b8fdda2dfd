// The GitHub twin as a GitHub Enterprise Server-like host: REST under /api/v3 with API-version
// checks, actions/runner releases, and list pagination the way GitHub pages them.

import { describe, expect, it, onTestFinished } from "vitest";
import { GitHubTwin, type GitHubTwinOptions } from "./github.js";

async function twinWith(opts: GitHubTwinOptions = {}): Promise<GitHubTwin> {
  const twin = await GitHubTwin.start(opts);
  onTestFinished(() => twin.close());
  return twin;
}

async function get(url: string, headers: Record<string, string> = {}) {
  const res = await fetch(url, { headers });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: () => JSON.parse(text) as Record<string, unknown> };
}

describe("GitHub twin as a GHES-like host", () => {
  it("serves the web host at its root and the REST API under /api/v3", async () => {
    const twin = await twinWith();
    twin.addRepo("octo-org/app");
    const pat = twin.createPat();
    expect(twin.url).toBe(`${twin.webUrl}/api/v3`);
    expect(twin.webUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const repo = await get(`${twin.url}/repos/octo-org/app`, { authorization: `Bearer ${pat}` });
    expect(repo.status).toBe(200);
    expect(repo.json()).toMatchObject({ html_url: `${twin.webUrl}/octo-org/app`, url: `${twin.url}/repos/octo-org/app` });
    // The web host is not the API.
    const web = await get(`${twin.webUrl}/repos/octo-org/app`, { authorization: `Bearer ${pat}` });
    expect(web.status).toBe(404);
    expect(web.headers.get("content-type")).toMatch(/text\/html/);
    expect(twin.contractViolations).toEqual([]);
  });

  it("takes requests without X-GitHub-Api-Version as 2022-11-28, accepts 2026-03-10, answers 400 to others, and records the header", async () => {
    const twin = await twinWith();
    const pat = twin.createPat();
    const auth = { authorization: `Bearer ${pat}` };
    const plain = await get(`${twin.url}/rate_limit`, auth);
    expect([plain.status, plain.headers.get("x-github-api-version-selected")]).toEqual([200, "2022-11-28"]);
    const newer = await get(`${twin.url}/rate_limit`, { ...auth, "x-github-api-version": "2026-03-10" });
    expect([newer.status, newer.headers.get("x-github-api-version-selected")]).toEqual([200, "2026-03-10"]);
    const bad = await get(`${twin.url}/rate_limit`, { ...auth, "x-github-api-version": "2021-01-01" });
    expect(bad.status).toBe(400);
    expect(bad.json()).toMatchObject({
      message: "Invalid API version: 2021-01-01",
      documentation_url: "https://docs.github.com/rest/about-the-rest-api/api-versions",
    });
    expect(twin.requests.map((r) => r.headers["x-github-api-version"])).toEqual([undefined, "2026-03-10", "2021-01-01"]);
    expect(twin.contractViolations).toEqual([]);
  });

  it("records and faults the runner side apart from the REST API", async () => {
    const twin = await twinWith();
    twin.addRepo("octo-org/app");
    twin.faults.intercept = () => ({ status: 500, body: "REST is down" });
    twin.runnerFaults.intercept = ({ path }) => (path.endsWith("/runner-registration") ? { status: 503, body: "runner side is down" } : undefined);
    const registration = await fetch(`${twin.url}/actions/runner-registration`, {
      method: "POST",
      headers: { authorization: "RemoteAuth NOTATOKEN", "content-type": "application/json" },
      body: JSON.stringify({ url: `${twin.webUrl}/octo-org/app`, runner_event: "register" }),
    });
    expect([registration.status, await registration.text()]).toEqual([503, "runner side is down"]);
    twin.runnerFaults.intercept = undefined;
    const refused = await fetch(`${twin.url}/actions/runner-registration`, { method: "POST", headers: { authorization: "RemoteAuth NOTATOKEN" }, body: "{}" });
    expect(refused.status).toBe(404);
    expect(twin.runnerRequests.map((r) => [r.method, r.url, r.status])).toEqual([
      ["POST", "/api/v3/actions/runner-registration", 503],
      ["POST", "/api/v3/actions/runner-registration", 404],
    ]);
    expect(twin.requests).toEqual([]);
  });

  it("serves actions/runner releases: latest is v2.336.0 with its assets; what is not yet published by the twin's clock is not there", async () => {
    const twin = await twinWith();
    const latest = await get(`${twin.url}/repos/actions/runner/releases/latest`);
    expect(latest.status).toBe(200);
    const release = latest.json();
    expect(release).toMatchObject({ tag_name: "v2.336.0", published_at: "2026-07-20T17:42:20Z", draft: false, prerelease: false });
    const assets = (release["assets"] as Array<{ name: string; browser_download_url: string }>).map((a) => a.name);
    expect(assets).toContain("actions-runner-linux-x64-2.336.0.tar.gz");
    expect(assets).toContain("actions-runner-win-x64-2.336.0.zip");
    const page = await get(`${twin.url}/repos/actions/runner/releases?per_page=5`);
    expect((JSON.parse(page.text) as Array<{ tag_name: string }>).map((r) => r.tag_name)).toEqual(["v2.336.0", "v2.335.1", "v2.335.0", "v2.334.0", "v2.333.1"]);
    expect(page.headers.get("link")).toContain('rel="next"');
    expect((await get(`${twin.url}/repos/octo-org/nope/releases/latest`)).status).toBe(404);
    expect(twin.contractViolations).toEqual([]);

    const july = await twinWith({ clock: () => Date.parse("2026-07-01T00:00:00Z") });
    expect((await get(`${july.url}/repos/actions/runner/releases/latest`)).json()).toMatchObject({ tag_name: "v2.335.1" });
  });

  it("pages workflow runs and their jobs with per_page/page and Link headers: page 1 of 150 queued runs holds 100", async () => {
    const twin = await twinWith({ validate: false });
    twin.addRepo("octo-org/busy");
    const pat = twin.createPat();
    const auth = { authorization: `Bearer ${pat}` };
    for (let i = 0; i < 150; i++) await twin.queueJob({ repo: "octo-org/busy", labels: ["x"], deliver: false });
    const first = await get(`${twin.url}/repos/octo-org/busy/actions/runs?status=queued&per_page=100`, auth);
    const firstBody = first.json() as { total_count: number; workflow_runs: unknown[] };
    expect([firstBody.total_count, firstBody.workflow_runs.length]).toEqual([150, 100]);
    const link = first.headers.get("link") ?? "";
    expect(link).toContain(`<${twin.url}/repos/octo-org/busy/actions/runs?status=queued&per_page=100&page=2>; rel="next"`);
    expect(link).toContain('page=2>; rel="last"');
    const second = await get(`${twin.url}/repos/octo-org/busy/actions/runs?status=queued&per_page=100&page=2`, auth);
    expect((second.json() as { workflow_runs: unknown[] }).workflow_runs.length).toBe(50);
    expect(second.headers.get("link")).toContain('rel="prev"');
    // per_page defaults to 30 and is capped at 100.
    expect(((await get(`${twin.url}/repos/octo-org/busy/actions/runs`, auth)).json() as { workflow_runs: unknown[] }).workflow_runs.length).toBe(30);
    expect(((await get(`${twin.url}/repos/octo-org/busy/actions/runs?per_page=500`, auth)).json() as { workflow_runs: unknown[] }).workflow_runs.length).toBe(
      100,
    );

    const run = await twin.queueJob({ repo: "octo-org/busy", labels: ["x"], deliver: false });
    for (let i = 0; i < 104; i++) await twin.queueJob({ repo: "octo-org/busy", labels: ["x"], runId: run.run_id, deliver: false });
    const jobs = await get(`${twin.url}/repos/octo-org/busy/actions/runs/${run.run_id}/jobs?per_page=100`, auth);
    expect([(jobs.json() as { total_count: number }).total_count, (jobs.json() as { jobs: unknown[] }).jobs.length]).toEqual([105, 100]);
    expect(jobs.headers.get("link")).toContain('rel="next"');
  });
});
