import type { IngestKind } from "./payloads.js";

// Bench sizing: the full run (minutes) or BENCH_QUICK=1 (seconds, a smoke test of the bench).

export interface BenchConfig {
  quick: boolean;
  scenarios: Set<number>;
  ingest: { warmupSeconds: number; roundSeconds: number; rounds: number; connections: number; kinds: IngestKind[] };
  latency: { jobsPerSecond: number; seconds: number; warmupJobs: number; repos: number };
  burst: { jobs: number; repos: number; spreadMs: number; modes: Mode[] };
  idle: { repos: number; seconds: number; reconcileIntervalSeconds: number };
  /** Scenario 6: jobs over `repos` repositories for `seconds`, `dropShare` of queued deliveries failed; then up to `waitSeconds` for them. */
  recovery: { repos: number; jobsPerSecond: number; seconds: number; dropShare: number; waitSeconds: number };
  /** Scenario 7: `jobs` per class arriving over `seconds`, each running `jobSeconds`, cold and with a warm pool of `minIdle`. */
  startup: { jobs: number; seconds: number; jobSeconds: number; minIdle: number; modelScale: number };
}

type Mode = "jit" | "token" | "auto";
const MODES: Mode[] = ["jit", "token", "auto"];
const INGEST_KINDS: IngestKind[] = ["ignored", "in_progress", "completed"];

/** A comma list from the environment, keeping only known values; all of them when unset or none. */
function subset<T extends string | number>(value: string | undefined, all: T[]): T[] {
  const picked = all.filter((v) => (value ?? "").split(",").some((item) => item.trim() === String(v)));
  return picked.length > 0 ? picked : all;
}

export function benchConfig(env: NodeJS.ProcessEnv = process.env): BenchConfig {
  // BENCH_BURST_MODES=token,auto: a subset of the registration modes for scenario 3.
  const modes = subset(env.BENCH_BURST_MODES, MODES);
  // BENCH_INGEST_KINDS=completed: a subset of the delivery kinds for scenario 1.
  const kinds = subset(env.BENCH_INGEST_KINDS, INGEST_KINDS);
  const quick = ["1", "true", "yes"].includes((env.BENCH_QUICK ?? "").toLowerCase());
  const scenarios = new Set(subset(env.BENCH_SCENARIOS, [1, 2, 3, 4, 6, 7]));
  const cfg: BenchConfig = quick
    ? {
        quick,
        scenarios,
        ingest: { warmupSeconds: 1, roundSeconds: 1, rounds: 1, connections: 10, kinds },
        latency: { jobsPerSecond: 2, seconds: 3, warmupJobs: 2, repos: 3 },
        // Small enough that jit mode never waits for the budget.
        burst: { jobs: 20, repos: 5, spreadMs: 200, modes },
        idle: { repos: 5, seconds: 6, reconcileIntervalSeconds: 2 },
        recovery: { repos: 100, jobsPerSecond: 2, seconds: 10, dropShare: 0.05, waitSeconds: 60 },
        // Modelled times at a tenth, so the smoke test takes seconds.
        startup: { jobs: 3, seconds: 6, jobSeconds: 1, minIdle: 2, modelScale: 0.1 },
      }
    : {
        quick,
        scenarios,
        ingest: { warmupSeconds: 3, roundSeconds: 5, rounds: 3, connections: 10, kinds },
        latency: { jobsPerSecond: 2, seconds: 60, warmupJobs: 10, repos: 10 },
        burst: { jobs: 1_000, repos: 50, spreadMs: 1_000, modes },
        idle: { repos: 50, seconds: 300, reconcileIntervalSeconds: 60 },
        recovery: { repos: 1_000, jobsPerSecond: 1, seconds: 120, dropShare: 0.05, waitSeconds: 300 },
        startup: { jobs: 20, seconds: 120, jobSeconds: 20, minIdle: 3, modelScale: 1 },
      };
  // Sizes can be changed for a shorter or a comparison run.
  const int = (name: string) => (env[name] && Number.isInteger(Number(env[name])) ? Number(env[name]) : undefined);
  cfg.burst.jobs = int("BENCH_BURST_JOBS") ?? cfg.burst.jobs;
  cfg.burst.repos = int("BENCH_BURST_REPOS") ?? cfg.burst.repos;
  cfg.idle.seconds = int("BENCH_IDLE_SECONDS") ?? cfg.idle.seconds;
  cfg.ingest.rounds = int("BENCH_INGEST_ROUNDS") ?? cfg.ingest.rounds;
  cfg.recovery.repos = int("BENCH_RECOVERY_REPOS") ?? cfg.recovery.repos;
  cfg.recovery.seconds = int("BENCH_RECOVERY_SECONDS") ?? cfg.recovery.seconds;
  return cfg;
}
