import type { IngestKind } from "./payloads.js";

// Bench sizing: the full run (minutes) or BENCH_QUICK=1 (seconds, a smoke test of the bench).

export interface BenchConfig {
  quick: boolean;
  scenarios: Set<number>;
  ingest: { warmupSeconds: number; roundSeconds: number; rounds: number; connections: number; kinds: IngestKind[] };
  latency: { jobsPerSecond: number; seconds: number; warmupJobs: number; repos: number };
  burst: { jobs: number; repos: number; spreadMs: number; modes: Mode[] };
  idle: { repos: number; seconds: number; reconcileIntervalSeconds: number };
}

type Mode = "jit" | "token" | "auto";
const INGEST_KINDS: IngestKind[] = ["ignored", "in_progress", "completed"];

export function benchConfig(env: NodeJS.ProcessEnv = process.env): BenchConfig {
  // BENCH_BURST_MODES=token,auto: a subset of the registration modes for scenario 3.
  const modes = (env.BENCH_BURST_MODES ?? "jit,token,auto").split(",").map((m) => m.trim()).filter((m): m is Mode => ["jit", "token", "auto"].includes(m));
  const quick = ["1", "true", "yes"].includes((env.BENCH_QUICK ?? "").toLowerCase());
  const scenarios = new Set(
    (env.BENCH_SCENARIOS ?? "1,2,3,4")
      .split(",")
      .map((s) => Number(s.trim()))
      .filter((n) => [1, 2, 3, 4].includes(n)),
  );
  const cfg: BenchConfig = quick
    ? {
        quick,
        scenarios,
        ingest: { warmupSeconds: 1, roundSeconds: 1, rounds: 1, connections: 10, kinds: INGEST_KINDS },
        latency: { jobsPerSecond: 2, seconds: 3, warmupJobs: 2, repos: 3 },
        // Small enough that jit mode never waits for the budget.
        burst: { jobs: 20, repos: 5, spreadMs: 200, modes },
        idle: { repos: 5, seconds: 6, reconcileIntervalSeconds: 2 },
      }
    : {
        quick,
        scenarios,
        ingest: { warmupSeconds: 3, roundSeconds: 5, rounds: 3, connections: 10, kinds: INGEST_KINDS },
        latency: { jobsPerSecond: 2, seconds: 60, warmupJobs: 10, repos: 10 },
        burst: { jobs: 1_000, repos: 50, spreadMs: 1_000, modes },
        idle: { repos: 50, seconds: 300, reconcileIntervalSeconds: 60 },
      };
  // Sizes can be changed for a shorter or a comparison run.
  const int = (name: string) => (env[name] && Number.isInteger(Number(env[name])) ? Number(env[name]) : undefined);
  cfg.burst.jobs = int("BENCH_BURST_JOBS") ?? cfg.burst.jobs;
  cfg.burst.repos = int("BENCH_BURST_REPOS") ?? cfg.burst.repos;
  cfg.idle.seconds = int("BENCH_IDLE_SECONDS") ?? cfg.idle.seconds;
  cfg.ingest.rounds = int("BENCH_INGEST_ROUNDS") ?? cfg.ingest.rounds;
  // BENCH_INGEST_KINDS=completed: a subset of the delivery kinds for scenario 1.
  const kinds = (env.BENCH_INGEST_KINDS ?? "").split(",").map((k) => k.trim()).filter((k): k is IngestKind => (INGEST_KINDS as string[]).includes(k));
  if (kinds.length > 0) cfg.ingest.kinds = kinds;
  return cfg;
}
