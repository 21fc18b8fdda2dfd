// Scenario 4: idle. 50 repositories (ALLOWED_REPOS, PAT), nothing queued, the reconciler at its
// default interval. Measured after its first pass (which fills its caches): the service's RSS
// and CPU, and the GitHub points the reconciler spends per minute.
import { GITHUB_SECONDARY_LIMITS } from "../../src/github/budget.js";
import type { BenchConfig } from "./config.js";
import { fmt, mb, median, sleep, verdict } from "./stats.js";
import { repoNames, startBenchWorld } from "./world.js";

export async function idleScenario(cfg: BenchConfig, print: (line: string) => void): Promise<void> {
  const c = cfg.idle;
  const repos = repoNames(c.repos);
  const world = await startBenchWorld({
    repos,
    env: { ALLOWED_REPOS: repos.join(","), RECONCILE_INTERVAL: String(c.reconcileIntervalSeconds) },
  });
  try {
    const runListings = () => world.github.requests.filter((r) => r.method === "GET" && r.url.includes("/actions/runs")).length;
    const firstPass = Date.now() + 60_000;
    while (runListings() < 2 * c.repos && Date.now() < firstPass) await sleep(200);
    await sleep(1_000);
    const points = () => [...world.github.pointsSpent.values()].reduce((a, b) => a + b, 0);
    const requestsBefore = world.github.requests.length;
    const before = await world.service.stats();
    const points0 = points();
    const t0 = performance.now();
    const samples = [before.rss];
    while (performance.now() - t0 < c.seconds * 1000) {
      await sleep(Math.min(5_000, c.seconds * 1000 - (performance.now() - t0)));
      samples.push((await world.service.stats()).rss);
    }
    const maxRss = Math.max(...samples);
    const after = await world.service.stats();
    const minutes = (performance.now() - t0) / 60_000;
    const spent = (points() - points0) / minutes;
    const cpu = (after.cpuSeconds - before.cpuSeconds) / minutes;
    const gets = world.github.requests.slice(requestsBefore).filter((r) => r.method === "GET");
    const notModified = gets.filter((r) => r.status === 304).length;
    // Passes: bursts of run listings more than 10 s apart.
    const listings = gets.filter((r) => r.url.includes("/actions/runs")).map((r) => r.at);
    const passes = listings.filter((at, i) => i === 0 || at - listings[i - 1]! > 10_000).length;
    const share = spent / GITHUB_SECONDARY_LIMITS.pointsPerMinute;
    print(
      `[4] idle ${c.repos} repos ${fmt(minutes, 1)} min: RSS median ${mb(median(samples))} max ${mb(maxRss)} (sampled every 5 s; max <=80 MB ${verdict(maxRss <= 80 * 1024 * 1024)}) | ` +
        `CPU ${fmt(cpu, 2)} s/min (<=1 ${verdict(cpu <= 1)}) | reconciler ${fmt(spent, 1)} points/min = ${fmt(share * 100, 1)}% of the budget ` +
        `(<=10% ${verdict(share <= 0.1)}) | ${gets.length} GETs, ${notModified} answered 304 (free under the primary limit, still 1 secondary point each) | ` +
        `${passes} reconcile passes (RECONCILE_INTERVAL=${c.reconcileIntervalSeconds}, stretched to keep polling within 10%)`,
    );
  } finally {
    await world.close();
  }
}
