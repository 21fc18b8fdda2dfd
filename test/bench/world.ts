// The bench's world: the three twins in this process (optionally with fixed latencies) and the
// service in a child process of its own, wired like test/harness/world.ts wires them in-process.
import { randomBytes } from "node:crypto";
import { serviceEnv, startTwins } from "../harness/world.js";
import type { GitHubTwinOptions } from "../twins/github.js";
import { type ServerChild, startServerChild } from "./child.js";

export interface Latencies {
  githubMs: number;
  vaultMs: number;
  nomadMs: number;
}

export interface BenchWorldOptions {
  repos: string[];
  env?: Record<string, string>;
  latencies?: Latencies;
  /** Nomad allocations run at once; 0 keeps every runner job pending (dispatch only). */
  nomadSlots?: number;
  /** Placement, image pull and boot before a runner's tasks start, by Nomad job ID (scenario 7). */
  nomadStartDelayMs?: number | ((jobId: string) => number);
  /** Runner jobs the runners' Vault role accepts (one per runner class). */
  runnerJobs?: string[];
  github?: GitHubTwinOptions;
}

export type BenchTwins = Awaited<ReturnType<typeof startTwins>>;

export interface BenchWorld extends BenchTwins {
  service: ServerChild;
  webhookSecret: string;
  env: Record<string, string>;
  close(): Promise<void>;
}

export async function startBenchTwins(opts: BenchWorldOptions): Promise<BenchTwins> {
  // OpenAPI validation of every exchange would cost the twins (sharing 2 cores) more than the service.
  const twins = await startTwins({
    repos: opts.repos,
    nomadSlots: opts.nomadSlots,
    nomadStartDelayMs: opts.nomadStartDelayMs,
    runnerJobs: opts.runnerJobs,
    github: { validate: false, ...opts.github },
  });
  const l = opts.latencies;
  if (l) {
    twins.github.faults.intercept = () => ({ delayMs: l.githubMs });
    twins.vault.faults.intercept = () => ({ delayMs: l.vaultMs });
    twins.nomad.faults.intercept = () => ({ delayMs: l.nomadMs });
  }
  return twins;
}

export async function startBenchWorld(opts: BenchWorldOptions): Promise<BenchWorld> {
  const twins = await startBenchTwins(opts);
  const webhookSecret = randomBytes(20).toString("hex");
  const env = serviceEnv(twins, webhookSecret, {
    // Metrics served (on a free port) as the image does, process metrics included.
    env: { LOG_LEVEL: "info", METRICS_PORT: "0", RECONCILE_INTERVAL: "60", ...opts.env },
  });
  let service: ServerChild;
  try {
    service = await startServerChild("service", env);
  } catch (err) {
    await closeTwins(twins);
    throw err;
  }
  twins.github.addWebhook({ url: `${service.url}/webhook`, secret: webhookSecret });
  return {
    ...twins,
    service,
    webhookSecret,
    env,
    async close() {
      await service.close();
      await closeTwins(twins);
    },
  };
}

export async function closeTwins(twins: BenchTwins): Promise<void> {
  await Promise.all([twins.nomad.close(), twins.github.close(), twins.vault.close()]);
}

export function repoNames(count: number, owner = "bench-org"): string[] {
  return Array.from({ length: count }, (_, i) => `${owner}/repo-${String(i + 1).padStart(2, "0")}`);
}
