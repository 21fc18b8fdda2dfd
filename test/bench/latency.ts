// Scenario 2: what the service adds on the dispatch path. Twins with fixed latencies (GitHub
// 150 ms, Vault 5 ms, Nomad 10 ms), a steady stream of queued jobs well inside the budget. Per
// job: the time the service took to answer the `queued` delivery (it answers once the Nomad
// dispatch is accepted) minus the twins' latency of the calls on that path, counted from the
// twins' request records.
import type { RecordedRequest } from "../twins/contract.js";
import type { BenchConfig } from "./config.js";
import { fmt, percentile, sleep, verdict } from "./stats.js";
import { type Latencies, repoNames, startBenchWorld } from "./world.js";

export const PATH_LATENCIES: Latencies = { githubMs: 150, vaultMs: 5, nomadMs: 10 };

export interface PathCalls {
  github: number;
  vault: number;
  nomad: number;
}

/**
 * Calls on one runner's dispatch path, each sequential: GitHub JIT config (the remove token runs
 * alongside it and is cached per repository), Vault write + wrapped read, Nomad list + dispatch.
 */
export function pathCalls(runner: string, github: RecordedRequest[], vault: RecordedRequest[], nomad: RecordedRequest[]): PathCalls {
  const named = (r: RecordedRequest) => r.body.includes(`"${runner}"`);
  return {
    github: github.filter((r) => r.method === "POST" && r.url.includes("/generate-jitconfig") && named(r)).length,
    vault: vault.filter((r) => r.method !== "DELETE" && r.url.includes(`/runners/${runner}`) && !r.url.includes("/metadata/")).length,
    nomad: nomad.filter(
      (r) =>
        (r.method === "GET" && decodeURIComponent(r.url).includes(`dispatch-${runner}-`)) ||
        (r.method === "POST" && r.url.includes("/dispatch") && r.body.includes(`"IdPrefixTemplate":"${runner}"`)),
    ).length,
  };
}

async function run(cfg: BenchConfig, runners: boolean): Promise<string> {
  const c = cfg.latency;
  const repos = repoNames(c.repos);
  const world = await startBenchWorld({ repos, latencies: PATH_LATENCIES, nomadSlots: runners ? undefined : 0, env: { BENCH_DEP_TIMING: "1" } });
  try {
    const total = c.warmupJobs + Math.round(c.jobsPerSecond * c.seconds);
    const gap = 1000 / c.jobsPerSecond;
    const started = performance.now();
    const jobs: Array<Promise<number>> = [];
    for (let i = 0; i < total; i++) {
      const due = started + i * gap;
      await sleep(Math.max(0, due - performance.now()));
      jobs.push(world.github.queueJob({ repo: repos[i % repos.length]!, labels: ["self-hosted", "nomad"] }).then((j) => j.id));
    }
    const ids = await Promise.all(jobs);
    const measured = new Set(ids.slice(c.warmupJobs));
    const times = await world.service.pathTimes();
    const l = PATH_LATENCIES;
    const added: number[] = [];
    const outside: number[] = [];
    let notDispatched = 0;
    for (const d of world.github.deliveries()) {
      if (d.action !== "queued") continue;
      const id = (JSON.parse(d.payload) as { workflow_job: { id: number } }).workflow_job.id;
      if (!measured.has(id)) continue;
      const outcome = (JSON.parse(d.response.payload ?? "{}") as { outcome?: string }).outcome;
      if (outcome !== "dispatched") notDispatched++;
      const runner = `nomad-gha-${id}`;
      const received = times.receivedAt[d.guid];
      const accepted = times.acceptedAt[runner];
      added.push(received !== undefined && accepted !== undefined ? accepted - received - (times.dependencyMs[runner] ?? Number.NaN) : Number.NaN);
      const calls = pathCalls(runner, world.github.requests, world.vault.requests, world.nomad.requests);
      outside.push(d.duration * 1000 - (calls.github * l.githubMs + calls.vault * l.vaultMs + calls.nomad * l.nomadMs));
    }
    const p = (xs: number[], q: number) => fmt(percentile(xs, q));
    const p99 = percentile(added, 99);
    return (
      `[2] dispatch path, ${runners ? "runners run the jobs" : "runner jobs pending"}: added p50 ${p(added, 50)} ms p99 ${p(added, 99)} ms ` +
      `(webhook received -> dispatch accepted, in the service, minus the twins' latencies as it waited for them; target p99 <= 10 ms ${verdict(p99 <= 10)}) | ` +
      `seen from GitHub's side: p50 ${p(outside, 50)} ms p99 ${p(outside, 99)} ms over the nominal 150+2x5+2x10 = 180 ms ` +
      `(that view adds the delivery and 5 HTTP round trips between processes) | ` +
      `n=${added.length} at ${c.jobsPerSecond} jobs/s over ${c.seconds}s after ${c.warmupJobs} warm-up, ${notDispatched} not answered "dispatched"`
    );
  } finally {
    await world.close();
  }
}

export async function latencyScenario(cfg: BenchConfig, print: (line: string) => void): Promise<void> {
  // First the dispatch path alone, then with every runner running its job: in_progress and
  // completed deliveries, secret deletions and the Nomad twin's runner play compete with it.
  print(await run(cfg, false));
  print(await run(cfg, true));
}
