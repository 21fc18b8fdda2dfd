// Scenario 1: webhook ingest against the floor (a bare Hono endpoint that verifies the HMAC and
// parses JSON), for events the service ignores, observes or acts on. Each server runs in its own
// process; autocannon and the twins share this one.
import autocannon, { type Result } from "autocannon";
import { type ServerChild, startServerChild } from "./child.js";
import type { BenchConfig } from "./config.js";
import { deliveries, type IngestKind } from "./payloads.js";
import { fmt, median, percentile, verdict } from "./stats.js";
import { startBenchWorld } from "./world.js";

const COST: Record<IngestKind, string> = {
  ignored: "queued, labels not ours: verify+parse+decide",
  in_progress: "in_progress on our runner: decide+log",
  completed: "completed on a foreign runner: runner index, no Nomad call",
};

interface Round {
  result: Result;
  /** The server's CPU time per request in this round, µs. */
  cpuUs: number;
  /** Latencies in ms, unrounded. */
  p50: number;
  p99: number;
}

async function cannon(
  server: ServerChild,
  set: Array<{ body: string; headers: Record<string, string> }>,
  seconds: number,
  connections: number,
): Promise<Round> {
  const url = server.url;
  const cpuBefore = (await server.stats()).cpuSeconds;
  let next = 0;
  const latencies: number[] = [];
  const instance = autocannon({
    url: `${url}/webhook`,
    connections,
    duration: seconds,
    timeout: 10,
    requests: [
      {
        method: "POST",
        setupRequest: (req) => {
          const d = set[next++ % set.length]!;
          return { ...req, method: "POST", path: "/webhook", headers: d.headers, body: d.body };
        },
      },
    ],
  });
  instance.on("response", (_client, _status, _bytes, ms) => latencies.push(ms));
  const result = await instance;
  const cpuUs = (((await server.stats()).cpuSeconds - cpuBefore) * 1e6) / Math.max(1, result.requests.total);
  return { result, cpuUs, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

export async function ingestScenario(cfg: BenchConfig, print: (line: string) => void): Promise<void> {
  const world = await startBenchWorld({ repos: [], env: { RECONCILE_INTERVAL: "3600" } });
  const floor = await startServerChild("floor", { GITHUB_WEBHOOK_SECRET: world.webhookSecret });
  try {
    for (const kind of cfg.ingest.kinds) {
      const set = deliveries(kind, world.webhookSecret, 2_000);
      // Warm-up: JIT, connection pools, caches of both servers.
      await cannon(floor, set, cfg.ingest.warmupSeconds, cfg.ingest.connections);
      await cannon(world.service, set, cfg.ingest.warmupSeconds, cfg.ingest.connections);
      const rounds: Record<"floor" | "service", Round[]> = { floor: [], service: [] };
      for (let round = 0; round < cfg.ingest.rounds; round++) {
        // Alternate, so drift of a noisy machine hits both alike.
        rounds.floor.push(await cannon(floor, set, cfg.ingest.roundSeconds, cfg.ingest.connections));
        rounds.service.push(await cannon(world.service, set, cfg.ingest.roundSeconds, cfg.ingest.connections));
      }
      const rps = (rs: Round[]) => median(rs.map((r) => r.result.requests.average));
      const p50 = (rs: Round[]) => median(rs.map((r) => r.p50));
      const p99 = (rs: Round[]) => median(rs.map((r) => r.p99));
      const cpu = (rs: Round[]) => median(rs.map((r) => r.cpuUs));
      const bad = (rs: Round[]) => rs.reduce((n, r) => n + r.result.non2xx + r.result.errors + r.result.timeouts, 0);
      const throughput = rps(rounds.service) / rps(rounds.floor);
      const tail = p99(rounds.service) / Math.max(p99(rounds.floor), 0.001);
      print(
        `[1] ingest ${kind.padEnd(11)} floor ${fmt(rps(rounds.floor), 0)} req/s p50 ${fmt(p50(rounds.floor), 2)} p99 ${fmt(p99(rounds.floor), 2)} ms | ` +
          `service ${fmt(rps(rounds.service), 0)} req/s p50 ${fmt(p50(rounds.service), 2)} p99 ${fmt(p99(rounds.service), 2)} ms | ` +
          `throughput ${fmt(throughput, 2)}x (>=0.75 ${verdict(throughput >= 0.75)}) p99 ${fmt(tail, 2)}x (<=1.3 ${verdict(tail <= 1.3)}) | ` +
          `CPU/request ${fmt(cpu(rounds.floor), 0)}/${fmt(cpu(rounds.service), 0)} us | non-2xx/errors ${bad(rounds.floor)}/${bad(rounds.service)} | ${COST[kind]}; median of ${cfg.ingest.rounds}x${cfg.ingest.roundSeconds}s, ${cfg.ingest.connections} conns`,
      );
    }
  } finally {
    await floor.close();
    await world.close();
  }
}
