// Scenario 7: start latency, cold versus a warm pool, per runner class. Two classes, `small` and
// `large` (a larger image); jobs of both arrive at seeded random times. The Nomad twin models
// what a real cluster spends before a runner is up: placement, the image's start (cached on the
// node) and the runner's boot (configure, connect, first poll), per class (MODEL, an assumption
// stated in the output, not a measurement of a cluster). Cold: no pool. Warm: `small` keeps
// `minIdle` idle runners and `large` one. Per class: queued -> started (GitHub's in_progress,
// observed every 25 ms) p50 and p95, runners dispatched, and the idle runners the pool cost on average.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUNDLED_RUNNER_JOB_FILE } from "../../src/config.js";
import type { BenchConfig } from "./config.js";
import { fmt, percentile, sleep } from "./stats.js";
import { startBenchWorld } from "./world.js";

const REPO = "bench-org/app";

/** Seconds a runner takes from dispatch to its tasks starting, by class: placement + image start + runner boot. */
const MODEL = {
  small: { placementS: 0.5, imageS: 2, bootS: 6 },
  large: { placementS: 0.5, imageS: 5, bootS: 6 },
} as const;
type ClassName = keyof typeof MODEL;
const LABELS: Record<ClassName, string[]> = { small: ["self-hosted", "nomad"], large: ["self-hosted", "nomad", "large"] };

const modelled = (cls: ClassName) => MODEL[cls].placementS + MODEL[cls].imageS + MODEL[cls].bootS;

interface ClassFigures {
  startups: number[];
  dispatched: number;
  idleRunnerSeconds: number;
}

/** A small seeded PRNG (mulberry32): the same arrival times in both modes and every run. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function classesFile(pools: Record<ClassName, number>): string {
  const file = join(mkdtempSync(join(tmpdir(), "ngd-bench-startup-")), "classes.yaml");
  const line = (cls: ClassName) =>
    `  - { name: ${cls}, labels: [${LABELS[cls].join(", ")}], job: runner-${cls}, job_file: ${BUNDLED_RUNNER_JOB_FILE}${pools[cls] > 0 ? `, min_idle: ${pools[cls]}` : ""} }`;
  writeFileSync(file, `classes:\n${line("small")}\n${line("large")}\n`);
  return file;
}

async function runMode(cfg: BenchConfig, pools: Record<ClassName, number>): Promise<Record<ClassName, ClassFigures>> {
  const c = cfg.startup;
  const scale = c.modelScale;
  const world = await startBenchWorld({
    repos: [REPO],
    runnerJobs: ["runner-small", "runner-large"],
    nomadStartDelayMs: (jobId) => modelled(jobId.startsWith("runner-large/") ? "large" : "small") * 1000 * scale,
    github: { jobDurationMs: c.jobSeconds * 1000 },
    env: {
      RUNNER_CLASSES_FILE: classesFile(pools),
      ALLOWED_OWNERS: "",
      ALLOWED_REPOS: REPO,
      RECONCILE_INTERVAL: String(Math.max(1, Math.round(5 * scale))),
    },
  });
  const figures: Record<ClassName, ClassFigures> = {
    small: { startups: [], dispatched: 0, idleRunnerSeconds: 0 },
    large: { startups: [], dispatched: 0, idleRunnerSeconds: 0 },
  };
  const classOf = (name: string): ClassName | undefined =>
    name.startsWith("nomad-gha-small-") ? "small" : name.startsWith("nomad-gha-large-") ? "large" : undefined;
  try {
    // The pools fill before the first job (a deployment's steady state).
    const idleOf = (cls: ClassName) => world.github.runners().filter((r) => classOf(r.name) === cls && r.status === "online" && !r.busy).length;
    const deadline = Date.now() + 120_000;
    while ((idleOf("small") < pools.small || idleOf("large") < pools.large) && Date.now() < deadline) await sleep(100);

    const next = random(7);
    const arrivals = (["small", "large"] as const)
      .flatMap((cls) => Array.from({ length: c.jobs }, () => ({ cls, at: next() * c.seconds * 1000 })))
      .sort((a, b) => a.at - b.at);
    const pending = new Map<number, { cls: ClassName; queuedAt: number }>();
    const started = performance.now();
    let sampledAt = started;
    const sample = () => {
      const now = performance.now();
      for (const cls of ["small", "large"] as const) figures[cls].idleRunnerSeconds += (idleOf(cls) * (now - sampledAt)) / 1000;
      sampledAt = now;
      for (const job of world.github.jobs()) {
        const mine = pending.get(job.id);
        if (mine && job.status !== "queued") {
          figures[mine.cls].startups.push((now - mine.queuedAt) / 1000);
          pending.delete(job.id);
        }
      }
    };
    const timer = setInterval(sample, 25);
    let index = 0;
    for (const arrival of arrivals) {
      const wait = started + arrival.at - performance.now();
      if (wait > 0) await sleep(wait);
      const queuedAt = performance.now();
      const job = await world.github.queueJob({ repo: REPO, labels: LABELS[arrival.cls] });
      pending.set(job.id, { cls: arrival.cls, queuedAt });
      index++;
    }
    const end = Date.now() + 180_000;
    while (pending.size > 0 && Date.now() < end) await sleep(100);
    clearInterval(timer);
    if (pending.size > 0) throw new Error(`${pending.size} of ${index} jobs never started`);
    const names = new Set(world.nomad.jobs().flatMap((j) => (j.Dispatched && j.Meta?.runner_name ? [j.Meta.runner_name] : [])));
    for (const name of names) {
      const cls = classOf(name);
      if (cls) figures[cls].dispatched++;
    }
    for (const cls of ["small", "large"] as const) figures[cls].idleRunnerSeconds /= (performance.now() - started) / 1000;
    return figures;
  } finally {
    await world.close();
  }
}

export async function startupScenario(cfg: BenchConfig, print: (line: string) => void): Promise<void> {
  const c = cfg.startup;
  const model = (cls: ClassName) =>
    `${cls} ${fmt(modelled(cls) * c.modelScale, 1)} s (placement ${MODEL[cls].placementS}, image ${MODEL[cls].imageS}, boot ${MODEL[cls].bootS})`;
  print(
    `[7] startup: ${c.jobs} jobs per class over ${c.seconds} s, each running ${c.jobSeconds} s; modelled dispatch -> runner up: ${model("small")}, ${model("large")}${c.modelScale === 1 ? "" : ` scaled by ${c.modelScale}`}`,
  );
  for (const [mode, pools] of [
    ["cold", { small: 0, large: 0 }],
    ["warm", { small: c.minIdle, large: 1 }],
  ] as const) {
    const figures = await runMode(cfg, pools);
    for (const cls of ["small", "large"] as const) {
      const f = figures[cls];
      const pool = pools[cls] > 0 ? `min_idle ${pools[cls]}` : "no pool";
      print(
        `[7] startup ${mode} ${cls} (${pool}): queued -> started p50 ${fmt(percentile(f.startups, 50), 1)} s, p95 ${fmt(percentile(f.startups, 95), 1)} s, ` +
          `max ${fmt(Math.max(...f.startups), 1)} s (n=${f.startups.length}); ${f.dispatched} runners dispatched; ${fmt(f.idleRunnerSeconds, 1)} idle runners on average`,
      );
    }
  }
  print("[7] for comparison, RunsOn publishes: cold under 25 s, warm under 6 s");
}
