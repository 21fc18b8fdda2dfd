// Scenario 4: idle. 50 repositories (ALLOWED_REPOS, PAT), nothing queued, the reconciler at its
// default interval. Measured once the service has started: its first pass done (which fills its
// caches) and SETTLE_MS after start, when V8 gives back the heap that starting up grew (its memory
// reducer runs some 8 s after the last full GC). The RSS of that start is reported on its own.
// Then the service's RSS and CPU, and the GitHub points the reconciler spends per minute.
import { GITHUB_SECONDARY_LIMITS } from "../../src/github/budget.js";
import type { BenchConfig } from "./config.js";
import { fmt, mb, median, sleep, verdict } from "./stats.js";
import { repoNames, startBenchWorld } from "./world.js";

const SETTLE_MS = 15_000;

export async function idleScenario(cfg: BenchConfig, print: (line: string) => void): Promise<void> {
  const c = cfg.idle;
  const repos = repoNames(c.repos);
  const world = await startBenchWorld({
    repos,
    env: { ALLOWED_REPOS: repos.join(","), RECONCILE_INTERVAL: String(c.reconcileIntervalSeconds) },
  });
  // The service listens from here on (startBenchWorld waits for it).
  const started = performance.now();
  try {
    const runListings = () => world.github.requests.filter((r) => r.method === "GET" && r.url.includes("/actions/runs")).length;
    const firstPass = Date.now() + 60_000;
    while (runListings() < 2 * c.repos && Date.now() < firstPass) await sleep(200);
    const startup = [(await world.service.stats()).rss];
    const settle = cfg.quick ? 1_000 : SETTLE_MS;
    while (performance.now() - started < settle) {
      await sleep(Math.min(1_000, settle - (performance.now() - started)));
      startup.push((await world.service.stats()).rss);
    }
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
      `[4] idle ${c.repos} repos ${fmt(minutes, 1)} min: RSS median ${mb(median(samples))} max ${mb(maxRss)} (sampled every 5 s from ${fmt(settle / 1000, 0)} s after start; max <=80 MB ${verdict(maxRss <= 80 * 1024 * 1024)}) | ` +
        `while starting (first pass, before V8 returns the heap it grew): RSS max ${mb(Math.max(...startup))} | ` +
        `CPU ${fmt(cpu, 2)} s/min (<=1 ${verdict(cpu <= 1)}) | reconciler ${fmt(spent, 1)} points/min = ${fmt(share * 100, 1)}% of the budget ` +
        `(<=10% ${verdict(share <= 0.1)}) | ${gets.length} GETs, ${notModified} answered 304 (free under the primary limit, still 1 secondary point each) | ` +
        `${passes} reconcile passes (RECONCILE_INTERVAL=${c.reconcileIntervalSeconds}, stretched to keep polling within 10%)`,
    );
  } finally {
    await world.close();
  }
}
