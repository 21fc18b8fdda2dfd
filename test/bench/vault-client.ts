// Scenario "vault-client" (5; opt-in: `npm run bench -- vault-client`): the dispatch path's Vault
// calls with the service's plain client (src/vault/client.ts, undici) and with node-vault 0.12
// (node-vault-store.ts), each in a bundled child process of its own (vault-client-child.ts)
// against a fresh Vault twin in this process: KV v2 write of the runner credential, then the
// read with X-Vault-Wrap-TTL, BENCH_VAULT_DISPATCHES times (2,000), BENCH_VAULT_CONCURRENCY at
// once (32), BENCH_VAULT_ROUNDS rounds (3) alternating which client goes first; medians and spread.
// TCP connections are counted on the twin's side (diagnostics channel net.server.socket on its
// port) and on the client's (net.client.socket). Bundle impact: what node-vault adds to the
// service's bundle (esbuild metafile), and its dependency tree's bytes in node_modules.
import { fork } from "node:child_process";
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { readdirSync, readFileSync, statSync } from "node:fs";
import type { Socket } from "node:net";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { bundleOptions } from "../../scripts/bundle.js";
import { VaultTwin } from "../twins/vault.js";
import { shippedMallocEnv } from "./child.js";
import type { BenchConfig } from "./config.js";
import { fmt, mb, median, verdict } from "./stats.js";
import type { VaultClientResult } from "./vault-client-child.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CLIENTS = { plain: "vault-client-plain", "node-vault": "vault-client-node-vault" } as const;
type Client = keyof typeof CLIENTS;

interface Run extends VaultClientResult {
  client: Client;
  /** Connections the twin accepted during the run. */
  twinConnections: number;
}

function sizing(cfg: BenchConfig, env = process.env) {
  const int = (name: string, full: number, quick: number) => (env[name] && Number.isInteger(Number(env[name])) ? Number(env[name]) : cfg.quick ? quick : full);
  return {
    dispatches: int("BENCH_VAULT_DISPATCHES", 2_000, 200),
    concurrency: int("BENCH_VAULT_CONCURRENCY", 32, 32),
    warmup: int("BENCH_VAULT_WARMUP", 200, 20),
    rounds: int("BENCH_VAULT_ROUNDS", 3, 1),
  };
}

let built: Promise<void> | undefined;
const entry = (client: Client) => `${ROOT}.tmp/bench/${CLIENTS[client]}.mjs`;
function buildChildren(): Promise<void> {
  built ??= Promise.all((Object.keys(CLIENTS) as Client[]).map((c) => build(bundleOptions(`${ROOT}test/bench/${CLIENTS[c]}.ts`, entry(c))))).then(
    () => undefined,
  );
  return built;
}

async function runOnce(client: Client, round: number, s: ReturnType<typeof sizing>): Promise<Run> {
  const twin = await VaultTwin.start();
  const port = Number(new URL(twin.url).port);
  let twinConnections = 0;
  const onSocket = (message: unknown) => {
    if ((message as { socket?: Socket }).socket?.localPort === port) twinConnections++;
  };
  subscribe("net.server.socket", onSocket);
  try {
    const child = fork(entry(client), [], {
      execArgv: ["--expose-gc"],
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? "",
        NODE_ENV: "production",
        ...shippedMallocEnv(),
        BENCH_VC_ADDR: twin.url,
        BENCH_VC_TOKEN: twin.rootToken,
        BENCH_VC_DISPATCHES: String(s.dispatches),
        BENCH_VC_CONCURRENCY: String(s.concurrency),
        BENCH_VC_WARMUP: String(s.warmup),
        BENCH_VC_RUN: String(round),
      },
      stdio: ["ignore", "ignore", "inherit", "ipc"],
    });
    const result = await new Promise<VaultClientResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(new Error(`${client} child: no result within 10 min`));
      }, 600_000);
      child.once("message", (m: VaultClientResult) => {
        clearTimeout(timer);
        resolve(m);
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`${client} child exited (${code}) without a result`));
      });
    });
    const seen = twinConnections;
    // The last wrapping token unwraps to the credential written: the client did the real thing.
    const unwrapped = await fetch(`${twin.url}/v1/sys/wrapping/unwrap`, { method: "POST", headers: { "x-vault-token": result.last.wrapToken } });
    const data = ((await unwrapped.json()) as { data?: { data?: unknown } }).data?.data;
    if (JSON.stringify(data) !== JSON.stringify(result.last.secret))
      throw new Error(`${client}: wrapping token of ${result.last.runner} does not unwrap to its credential`);
    return { ...result, client, twinConnections: seen };
  } finally {
    unsubscribe("net.server.socket", onSocket);
    await twin.close();
  }
}

/** Output bytes of the service's bundle (src/cli.ts as `npm run build` ships it), alone and with node-vault-store.ts. */
async function bundleImpact(): Promise<{ service: number; withNodeVault: number; top: Array<[string, number]> }> {
  const measure = async (contents: string) => {
    const out = `${ROOT}.tmp/bench/bundle-impact.mjs`;
    const r = await build({
      ...bundleOptions(`${ROOT}src/cli.ts`, out),
      entryPoints: undefined,
      stdin: { contents, resolveDir: ROOT, sourcefile: "bundle-impact.ts", loader: "ts" },
      write: false,
      metafile: true,
    });
    const [, output] = Object.entries(r.metafile.outputs).find(([name]) => name.endsWith(".mjs"))!;
    const byPackage = new Map<string, number>();
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
      const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input)?.[1] ?? "(project)";
      byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + bytesInOutput);
    }
    return { bytes: output.bytes, byPackage };
  };
  const service = await measure('export * from "./src/cli.ts";');
  const withNodeVault = await measure('export * from "./src/cli.ts"; export { NodeVaultStore } from "./test/bench/node-vault-store.ts";');
  const top = [...withNodeVault.byPackage].filter(([pkg]) => !service.byPackage.has(pkg)).sort((a, b) => b[1] - a[1]);
  return { service: service.bytes, withNodeVault: withNodeVault.bytes, top };
}

/** node-vault's dependency tree as package-lock.json resolves it: bytes on disk, and the part no production dependency needs. */
function dependencyTree(): { packages: string[]; bytes: number; devOnlyBytes: number } {
  const lock = JSON.parse(readFileSync(`${ROOT}package-lock.json`, "utf8")) as {
    packages: Record<string, { dependencies?: Record<string, string>; dev?: boolean }>;
  };
  const resolve = (from: string, name: string): string | undefined => {
    for (let dir = from; ; dir = dir.slice(0, dir.lastIndexOf("/node_modules/"))) {
      const candidate = `${dir}/node_modules/${name}`;
      if (lock.packages[candidate]) return candidate;
      if (!dir.includes("/node_modules/")) return lock.packages[`node_modules/${name}`] ? `node_modules/${name}` : undefined;
    }
  };
  const seen = new Set<string>();
  const walk = (path: string) => {
    if (seen.has(path)) return;
    seen.add(path);
    for (const dep of Object.keys(lock.packages[path]?.dependencies ?? {})) {
      const target = resolve(path, dep);
      if (target) walk(target);
    }
  };
  walk("node_modules/node-vault");
  const du = (dir: string): number => {
    let total = 0;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      // A nested node_modules is a package of its own, counted when the walk reaches it.
      if (e.name === "node_modules") continue;
      const p = `${dir}/${e.name}`;
      total += e.isDirectory() ? du(p) : e.isFile() ? statSync(p).size : 0;
    }
    return total;
  };
  let bytes = 0;
  let devOnlyBytes = 0;
  for (const path of seen) {
    const size = du(`${ROOT}${path}`);
    bytes += size;
    if (lock.packages[path]?.dev) devOnlyBytes += size;
  }
  return { packages: [...seen].map((p) => p.slice(p.lastIndexOf("node_modules/") + 13)).sort(), bytes, devOnlyBytes };
}

export async function vaultClientScenario(cfg: BenchConfig, print: (line: string) => void): Promise<void> {
  const s = sizing(cfg);
  await buildChildren();
  const runs: Run[] = [];
  for (let round = 1; round <= s.rounds; round++) {
    const order: Client[] = round % 2 === 1 ? ["plain", "node-vault"] : ["node-vault", "plain"];
    for (const client of order) {
      const r = await runOnce(client, round, s);
      runs.push(r);
      print(
        `[5] vault-client round ${round} ${client.padEnd(10)}: ${fmt(r.dispatches / (r.wallMs / 1000), 0)} dispatches/s | p50 ${fmt(r.p50Ms, 2)} ms p99 ${fmt(r.p99Ms, 2)} ms | ` +
          `CPU ${fmt(r.cpuMicros / r.dispatches, 0)} us/dispatch | RSS loaded ${mb(r.rssLoaded)} after ${mb(r.rssAfter)} (after GC ${mb(r.rssAfterGc)}) | ` +
          `heap after ${mb(r.heapUsedAfter)} (after GC ${mb(r.heapUsedAfterGc)}) | TCP connections ${r.twinConnections} at the twin, ${r.connections} opened by the client`,
      );
    }
  }
  const figures = (client: Client) => {
    const mine = runs.filter((r) => r.client === client);
    const stat = (f: (r: Run) => number) => {
      const xs = mine.map(f);
      return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
    };
    return {
      throughput: stat((r) => r.dispatches / (r.wallMs / 1000)),
      p50: stat((r) => r.p50Ms),
      p99: stat((r) => r.p99Ms),
      cpu: stat((r) => r.cpuMicros / r.dispatches),
      rssLoaded: stat((r) => r.rssLoaded),
      rssAfter: stat((r) => r.rssAfter),
      heapAfter: stat((r) => r.heapUsedAfter),
      heapAfterGc: stat((r) => r.heapUsedAfterGc),
      connections: stat((r) => r.twinConnections),
      runs: mine.length,
    };
  };
  const range = (x: { median: number; min: number; max: number }, f: (n: number) => string) => `${f(x.median)} (${f(x.min)}-${f(x.max)})`;
  const n0 = (n: number) => fmt(n, 0);
  const n2 = (n: number) => fmt(n, 2);
  const m = (n: number) => fmt(n / 2 ** 20, 1);
  const all = { plain: figures("plain"), "node-vault": figures("node-vault") };
  for (const client of Object.keys(all) as Client[]) {
    const f = all[client];
    print(
      `[5] vault-client ${client.padEnd(10)} median (min-max) of ${f.runs}: ` +
        `${range(f.throughput, n0)} dispatches/s | p50 ${range(f.p50, n2)} ms | p99 ${range(f.p99, n2)} ms | CPU ${range(f.cpu, n0)} us/dispatch | ` +
        `RSS loaded ${range(f.rssLoaded, m)} MB, after ${range(f.rssAfter, m)} MB | heap after ${range(f.heapAfter, m)} MB, after GC ${range(f.heapAfterGc, m)} MB | ` +
        `connections ${range(f.connections, n0)}`,
    );
  }
  const p = all.plain;
  const nv = all["node-vault"];
  const ratio = nv.throughput.median / p.throughput.median;
  const rssDelta = nv.rssAfter.median - p.rssAfter.median;
  print(
    `[5] vault-client node-vault vs plain (${s.dispatches} dispatches x ${s.rounds}, concurrency ${s.concurrency}): throughput x${fmt(ratio, 2)} (>= 0.90 ${verdict(ratio >= 0.9)}) | ` +
      `p99 x${fmt(nv.p99.median / p.p99.median, 2)} | CPU/dispatch x${fmt(nv.cpu.median / p.cpu.median, 2)} | ` +
      `connections ${n0(nv.connections.median)} vs ${n0(p.connections.median)} (no more ${verdict(nv.connections.median <= p.connections.median)}) | ` +
      `RSS after ${rssDelta >= 0 ? "+" : ""}${mb(rssDelta)} (<= +5 MB ${verdict(rssDelta <= 5 * 2 ** 20)})`,
  );
  const impact = await bundleImpact();
  const tree = dependencyTree();
  print(
    `[5] vault-client bundle: the service's bundle ${fmt(impact.service / 1024, 0)} KB, with node-vault ${fmt(impact.withNodeVault / 1024, 0)} KB ` +
      `(+${fmt((impact.withNodeVault - impact.service) / 1024, 0)} KB: ${impact.top
        .slice(0, 8)
        .map(([pkg, b]) => `${pkg} ${fmt(b / 1024, 0)} KB`)
        .join(", ")}) | ` +
      `node_modules: node-vault and its ${tree.packages.length - 1} dependencies ${fmt(tree.bytes / 1024, 0)} KB on disk, ${fmt(tree.devOnlyBytes / 1024, 0)} KB of it needed by no production dependency (${tree.packages.join(" ")})`,
  );
}
