// `npm run bench`: the service against its twins, one line per figure. Not part of `npm test`.
//   BENCH_SCENARIOS=1,2   run only these (1 ingest, 2 dispatch latency, 3 burst, 4 idle, 6 recovery, 7 startup)
//   npm run bench -- vault-client   run the scenarios named (ingest, latency, burst, idle, vault-client);
//                         5 vault-client (plain Vault client vs node-vault, see vault-client.ts) runs only when named
//   BENCH_QUICK=1         seconds instead of minutes: a smoke test of the bench itself
//   BENCH_INGEST_KINDS=ignored,in_progress,completed  BENCH_INGEST_ROUNDS=3
//   BENCH_RECOVERY_REPOS=1000 BENCH_RECOVERY_SECONDS=120  scenario 6's repositories and how long jobs arrive
//   BENCH_BURST_MODES=jit,token,auto  BENCH_BURST_JOBS=1000  BENCH_BURST_REPOS=50  BENCH_IDLE_SECONDS=300
//   BENCH_CPU_PROF=<dir>  V8 CPU profiles of the server processes;  BENCH_NODE_FLAGS="..." their Node flags;
//   BENCH_CHILD_ENV="MALLOC_ARENA_MAX=2" extra environment of the server processes (which always
//                         get the image's MALLOC_* settings from the Dockerfile);
//   BENCH_CHILD_STDOUT=1  their stdout (logs, --trace-gc) on this terminal instead of discarded
// Everything listens on 127.0.0.1. The server under test runs in a child process of its own.
import { cpus, freemem, totalmem } from "node:os";
import { burstScenario } from "./burst.js";
import { shippedMallocEnv } from "./child.js";
import { benchConfig } from "./config.js";
import { idleScenario } from "./idle.js";
import { ingestScenario } from "./ingest.js";
import { latencyScenario } from "./latency.js";
import { recoveryScenario } from "./recovery.js";
import { startupScenario } from "./startup.js";
import { fmt } from "./stats.js";
import { vaultClientScenario } from "./vault-client.js";

const print = (line: string) => console.log(line);

async function main(): Promise<number> {
  const cfg = benchConfig();
  print(
    `bench: node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), ` +
      `${fmt(totalmem() / 2 ** 30, 1)} GiB RAM (${fmt(freemem() / 2 ** 30, 1)} free)${cfg.quick ? ", QUICK (smoke test, figures not meaningful)" : ""}; ` +
      `servers run bundled, with the image's ${
        Object.entries(shippedMallocEnv())
          .map(([k, v]) => `${k}=${v}`)
          .join(" ") || "(no MALLOC_* settings)"
      }`,
  );
  const scenarios: Array<[number, string, string, typeof ingestScenario]> = [
    [1, "ingest", "ingest vs the floor", ingestScenario],
    [2, "latency", "added latency on the dispatch path", latencyScenario],
    [3, "burst", "burst at the ceiling", burstScenario],
    [4, "idle", "idle", idleScenario],
    [5, "vault-client", "dispatch path's Vault calls, plain client vs node-vault", vaultClientScenario],
    [6, "recovery", "recovery at 1,000 repositories", recoveryScenario],
    [7, "startup", "start latency, cold versus warm pool, per class", startupScenario],
  ];
  // Scenarios named on the command line run alone; otherwise BENCH_SCENARIOS (1-4, 6, 7) picks.
  const named = process.argv.slice(2);
  const unknown = named.filter((arg) => !scenarios.some(([, key]) => key === arg));
  if (unknown.length > 0) throw new Error(`unknown scenario ${unknown.join(", ")}: one of ${scenarios.map(([, key]) => key).join(", ")}`);
  let failed = 0;
  for (const [n, key, name, run] of scenarios) {
    if (named.length > 0 ? !named.includes(key) : !cfg.scenarios.has(n)) continue;
    const started = performance.now();
    try {
      await run(cfg, print);
    } catch (err) {
      failed++;
      print(`[${n}] ${name}: FAILED ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    }
    if (!cfg.quick) print(`    (scenario ${n} took ${fmt((performance.now() - started) / 1000, 0)} s)`);
  }
  return failed === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
