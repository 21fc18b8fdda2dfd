// Child side of the vault-client scenario (vault-client.ts): one Vault client in a process of its
// own, bundled as the service ships, so that its CPU, RSS, heap and TCP connections are its own.
// It runs the dispatch path's two Vault calls (KV v2 write of the runner credential, then the
// read with X-Vault-Wrap-TTL) `BENCH_VC_DISPATCHES` times, `BENCH_VC_CONCURRENCY` at once, after
// `BENCH_VC_WARMUP` unmeasured ones, and sends one VaultClientResult over IPC.
import { subscribe } from "node:diagnostics_channel";
import type { RunnerSecret, VaultStoreOptions } from "../../src/vault/client.js";

export interface DispatchPathStore {
  putRunnerSecret(runnerName: string, secret: RunnerSecret): Promise<void>;
  wrapRunnerSecret(runnerName: string, ttl: string): Promise<string>;
}

export interface VaultClientResult {
  dispatches: number;
  concurrency: number;
  wallMs: number;
  p50Ms: number;
  p99Ms: number;
  /** User + system CPU of the measured dispatches, microseconds. */
  cpuMicros: number;
  /** After the modules are loaded and the store is built, before any request. */
  rssLoaded: number;
  rssAfter: number;
  heapUsedAfter: number;
  /** After a full collection (the child runs with --expose-gc). */
  heapUsedAfterGc: number;
  rssAfterGc: number;
  /** TCP connections this process opened (diagnostics channel net.client.socket), warm-up included. */
  connections: number;
  /** The last dispatch's runner, secret and wrapping token, for the parent to check. */
  last: { runner: string; secret: RunnerSecret; wrapToken: string };
}

/** A runner's JIT config is base64 of some 2 KB of JSON: the credential the dispatch writes. */
const jitconfig = (runner: string) => Buffer.from(JSON.stringify({ runner, pad: "x".repeat(1500) })).toString("base64");

function nearestRank(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length))) - 1] ?? Number.NaN;
}

export async function runVaultClientChild(makeStore: (opts: VaultStoreOptions) => DispatchPathStore): Promise<void> {
  let connections = 0;
  subscribe("net.client.socket", () => connections++);
  const env = process.env;
  const dispatches = Number(env.BENCH_VC_DISPATCHES ?? 2000);
  const concurrency = Number(env.BENCH_VC_CONCURRENCY ?? 32);
  const warmup = Number(env.BENCH_VC_WARMUP ?? 200);
  const run = env.BENCH_VC_RUN ?? "0";
  const store = makeStore({
    addr: env.BENCH_VC_ADDR ?? "",
    token: env.BENCH_VC_TOKEN ?? "",
    kvMount: "secret",
    kvPrefix: "ngd",
    runnerJob: { namespace: "default", id: "github-runner" },
  });
  const rssLoaded = process.memoryUsage.rss();

  let last: VaultClientResult["last"] | undefined;
  const dispatch = async (i: number): Promise<number> => {
    const runner = `nomad-gha-${run}-${i}`;
    const secret: RunnerSecret = { kind: "jit", jitconfig: jitconfig(runner) };
    const t0 = performance.now();
    await store.putRunnerSecret(runner, secret);
    const wrapToken = await store.wrapRunnerSecret(runner, "10m");
    const ms = performance.now() - t0;
    last = { runner, secret, wrapToken };
    return ms;
  };
  const pool = async (from: number, count: number, into: number[]) => {
    let next = from;
    const worker = async () => {
      while (next < from + count) into.push(await dispatch(next++));
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  };

  await pool(0, warmup, []);
  const latencies: number[] = [];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await pool(warmup, dispatches, latencies);
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const rssAfter = process.memoryUsage.rss();
  const heapUsedAfter = process.memoryUsage().heapUsed;
  (globalThis as { gc?: () => void }).gc?.();
  latencies.sort((a, b) => a - b);
  const result: VaultClientResult = {
    dispatches,
    concurrency,
    wallMs,
    p50Ms: nearestRank(latencies, 50),
    p99Ms: nearestRank(latencies, 99),
    cpuMicros: cpu.user + cpu.system,
    rssLoaded,
    rssAfter,
    heapUsedAfter,
    heapUsedAfterGc: process.memoryUsage().heapUsed,
    rssAfterGc: process.memoryUsage.rss(),
    connections,
    last: last!,
  };
  process.send?.(result, () => process.exit(0));
}
