// Scenario 3: a burst at the ceiling. 1,000 queued jobs across 50 repositories within 1 s, twins
// with the scenario-2 latencies, no runner limit, for each registration mode. The Nomad twin
// keeps every runner job pending (slots 0), so what is measured is the dispatch path alone.
import { burstLowerBoundMs, GITHUB_SECONDARY_LIMITS } from "../../src/github/budget.js";
import type { BenchConfig } from "./config.js";
import { PATH_LATENCIES } from "./latency.js";
import { fmt, mb, sleep, verdict } from "./stats.js";
import { type BenchWorld, repoNames, startBenchWorld } from "./world.js";

type Mode = "jit" | "token" | "auto";

export interface BurstResult {
  mode: Mode;
  elapsedMs: number;
  boundMs: number;
  dispatched: number;
  duplicates: number;
  lost: number;
  secondaryHits: number;
  peakRss: number;
  maxAnswerMs: number;
  failedDeliveries: number;
  deferred: number;
  jitConfigs: number;
  registrationTokens: number;
}

/**
 * The earliest all jobs can be dispatched. jit: every job needs a JIT config (plus one remove
 * token per repository), so the budget's bound (burstLowerBoundMs) then one trip down the path.
 * token/auto: one registration and one remove token per repository fit in the budget at once,
 * so the last arrival plus Vault and Nomad (the tokens are cached by then), and no less than one
 * full trip (GitHub included) for the first job of a repository.
 */
export function burstBoundMs(mode: Mode, jobs: number, repos: number, spreadMs: number): number {
  const l = PATH_LATENCIES;
  const withoutGitHub = 2 * l.vaultMs + 2 * l.nomadMs;
  const lastArrival = (spreadMs * (jobs - 1)) / jobs;
  if (mode === "jit") return Math.max(burstLowerBoundMs(jobs + repos, 5, GITHUB_SECONDARY_LIMITS), lastArrival) + l.githubMs + withoutGitHub;
  return Math.max(burstLowerBoundMs(2 * repos, 5, GITHUB_SECONDARY_LIMITS) + l.githubMs + withoutGitHub, lastArrival + withoutGitHub);
}

function dispatchedCount(world: BenchWorld): number {
  let n = 0;
  for (const r of world.nomad.requests) if (r.method === "POST" && r.url.includes("/dispatch") && r.status === 200 && r.response.includes('"EvalID":"')) n++;
  return n;
}

async function runBurst(cfg: BenchConfig, mode: Mode): Promise<BurstResult> {
  const c = cfg.burst;
  const repos = repoNames(c.repos);
  const world = await startBenchWorld({ repos, latencies: PATH_LATENCIES, nomadSlots: 0, env: { RUNNER_REGISTRATION: mode } });
  try {
    const boundMs = burstBoundMs(mode, c.jobs, c.repos, c.spreadMs);
    const t0 = Date.now();
    const started = performance.now();
    const queued: Array<Promise<number>> = [];
    for (let i = 0; i < c.jobs; i++) {
      const due = started + (i * c.spreadMs) / c.jobs;
      if (due > performance.now() + 1) await sleep(due - performance.now());
      queued.push(world.github.queueJob({ repo: repos[i % repos.length]!, labels: ["self-hosted", "nomad"] }).then((j) => j.id));
    }
    const deadline = performance.now() + boundMs * 1.5 + 120_000;
    let peakRss = 0;
    while (performance.now() < deadline) {
      peakRss = Math.max(peakRss, (await world.service.stats()).maxRss);
      // Created children only: a repeated idempotency token answers with the existing child.
      if (dispatchedCount(world) >= c.jobs) break;
      await sleep(500);
    }
    const ids = await Promise.all(queued);
    await world.github.deliveriesSettled();
    peakRss = Math.max(peakRss, (await world.service.stats()).maxRss);

    const children = world.nomad.jobs().filter((j) => j.Dispatched);
    const perJob = new Map<number, number>();
    let last = 0;
    for (const child of children) {
      const id = Number(child.Meta?.["github_job_id"]);
      perJob.set(id, (perJob.get(id) ?? 0) + 1);
      last = Math.max(last, Math.floor(Number(child.SubmitTime) / 1e6));
    }
    const duplicates = [...perJob.values()].reduce((n, count) => n + Math.max(0, count - 1), 0);
    const lost = ids.filter((id) => !perJob.has(id)).length;
    const answers = world.github.deliveries().filter((d) => d.action === "queued");
    return {
      mode,
      elapsedMs: last - t0,
      boundMs,
      dispatched: perJob.size,
      duplicates,
      lost,
      secondaryHits: world.github.secondaryLimitHits,
      peakRss,
      maxAnswerMs: Math.max(...answers.map((d) => d.duration * 1000)),
      failedDeliveries: answers.filter((d) => d.status_code < 200 || d.status_code >= 300).length,
      deferred: answers.filter((d) => d.status_code === 202).length,
      jitConfigs: world.github.requests.filter((r) => r.method === "POST" && r.url.includes("/generate-jitconfig") && r.status === 201).length,
      registrationTokens: world.github.requests.filter((r) => r.method === "POST" && r.url.includes("/registration-token") && r.status === 201).length,
    };
  } finally {
    await world.close();
  }
}

export async function burstScenario(cfg: BenchConfig, print: (line: string) => void): Promise<void> {
  const c = cfg.burst;
  const results = new Map<Mode, BurstResult>();
  for (const mode of c.modes) {
    const r = await runBurst(cfg, mode);
    results.set(mode, r);
    const ratio = r.elapsedMs / r.boundMs;
    const jit = results.get("jit");
    const speedup = mode !== "jit" && jit ? jit.elapsedMs / r.elapsedMs : undefined;
    const target =
      mode === "jit"
        ? `ratio <= 1.1 ${verdict(ratio <= 1.1)}`
        : speedup !== undefined
          ? `${fmt(speedup, 1)}x faster than jit${mode === "token" ? ` (>=10x ${verdict(speedup >= 10)})` : ""}`
          : "no jit run to compare";
    const clean = r.secondaryHits === 0 && r.duplicates === 0 && r.lost === 0;
    print(
      `[3] burst ${mode.padEnd(5)} ${r.dispatched}/${c.jobs} jobs (${c.repos} repos, ${c.spreadMs} ms) dispatched in ${fmt(r.elapsedMs / 1000, 2)} s | ` +
        `bound ${fmt(r.boundMs / 1000, 2)} s | ratio ${fmt(ratio, 2)} | ${target} | ` +
        `403s ${r.secondaryHits} dup ${r.duplicates} lost ${r.lost} (${verdict(clean)}) | ` +
        `peak RSS ${mb(r.peakRss)} (<=150 ${verdict(r.peakRss <= 150 * 1024 * 1024)}, service process) | ` +
        `webhooks: max answer ${fmt(r.maxAnswerMs / 1000, 2)} s (<10 s ${verdict(r.maxAnswerMs < 10_000 && r.failedDeliveries === 0)}), ${r.deferred} answered 202, ${r.failedDeliveries} failed | ` +
        `credentials: ${r.jitConfigs} JIT configs, ${r.registrationTokens} registration tokens`,
    );
  }
}
