// Child-process entry for the bench: runs either the service (`service`) or the bare floor
// server (`floor`: Hono + @hono/node-server, HMAC verify + JSON.parse, nothing else), so that
// the server under test has a process of its own: its RSS and CPU are its own, and autocannon
// and the twins do not share its event loop. Talks to the bench over IPC.

import { subscribe } from "node:diagnostics_channel";
import type { IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { Webhooks } from "@octokit/webhooks";
import { Hono } from "hono";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/log.js";
import { startService } from "../../src/service.js";

export type ToChild = { type: "stats" } | { type: "pathTimes" } | { type: "close" };
export type FromChild =
  | { type: "ready"; url: string }
  | { type: "stats"; stats: ChildStats }
  | { type: "pathTimes"; times: PathTimes }
  | { type: "closed" }
  | { type: "failed"; error: string };

/** BENCH_DEP_TIMING=1: the dispatch path as the service saw it, in its performance.now() ms. */
export interface PathTimes {
  /** Per delivery id: when the webhook request reached the service's HTTP server. */
  receivedAt: Record<string, number>;
  /** Per runner: when Nomad's answer to its dispatch came back. */
  acceptedAt: Record<string, number>;
  /** Per runner: ms spent waiting for GitHub, Vault and Nomad on its dispatch path. */
  dependencyMs: Record<string, number>;
}

export interface ChildStats {
  /** Resident set size now, bytes. */
  rss: number;
  /** Peak resident set size of the process so far, bytes (getrusage ru_maxrss). */
  maxRss: number;
  /** CPU seconds used so far (user + system). */
  cpuSeconds: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
}

function stats(): ChildStats {
  // With BENCH_NODE_FLAGS=--expose-gc: live memory only (leak hunting).
  (globalThis as { gc?: () => void }).gc?.();
  const usage = process.resourceUsage();
  return {
    rss: process.memoryUsage.rss(),
    maxRss: usage.maxRSS * 1024,
    cpuSeconds: (usage.userCPUTime + usage.systemCPUTime) / 1e6,
    heapUsed: process.memoryUsage().heapUsed,
    heapTotal: process.memoryUsage().heapTotal,
    external: process.memoryUsage().external,
  };
}

const send = (message: FromChild) => process.send?.(message);

async function startFloor(): Promise<{ url: string; close: () => Promise<void> }> {
  const webhooks = new Webhooks({ secret: process.env.GITHUB_WEBHOOK_SECRET ?? "" });
  const app = new Hono();
  app.post("/webhook", async (c) => {
    const raw = await c.req.text();
    if (!(await webhooks.verify(raw, c.req.header("x-hub-signature-256") ?? ""))) return c.json({ error: "bad signature" }, 401);
    const payload = JSON.parse(raw) as { action?: string };
    return c.json({ outcome: "floor", action: payload.action ?? null });
  });
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      }),
  };
}

async function startTheService(): Promise<{ url: string; close: () => Promise<void> }> {
  const config = loadConfig(process.env);
  const log = createLogger({ level: config.logLevel });
  const service = await startService(config, log);
  if (process.env.BENCH_DEP_TIMING) timeDeps(service.deps as unknown as Record<string, Record<string, unknown>>);
  return { url: service.url, close: () => service.close() };
}

const times: PathTimes = { receivedAt: {}, acceptedAt: {}, dependencyMs: {} };

/**
 * BENCH_DEP_TIMING=1: times the dispatch path from inside the service: when each delivery
 * arrived (Node's http.server.request.start channel, before any of the service's code runs),
 * each call on the path by the runner it is for, and when the dispatch was accepted. The remove
 * token is left out: it runs alongside the JIT config request.
 */
function timeDeps(deps: Record<string, Record<string, unknown>>): void {
  subscribe("http.server.request.start", (message) => {
    const delivery = (message as { request: IncomingMessage }).request.headers["x-github-delivery"];
    if (typeof delivery === "string") times.receivedAt[delivery] = performance.now();
  });
  const runnerOf: Record<string, (args: unknown[]) => string | undefined> = {
    createJitRunner: (a) => a[1] as string,
    registrationToken: () => undefined,
    putRunnerSecret: (a) => a[0] as string,
    wrapRunnerSecret: (a) => a[0] as string,
    listJobs: (a) => /dispatch-(.+)-$/.exec(String(a[0]))?.[1],
    dispatch: (a) => (a[1] as { idPrefixTemplate?: string }).idPrefixTemplate,
  };
  for (const name of ["github", "vault", "nomad"]) {
    const target = deps[name]!;
    for (const [method, runner] of Object.entries(runnerOf)) {
      const original = target[method];
      if (typeof original !== "function") continue;
      target[method] = async function (this: unknown, ...args: unknown[]) {
        const started = performance.now();
        try {
          return await (original as (...a: unknown[]) => Promise<unknown>).apply(this, args);
        } finally {
          const key = runner(args);
          const now = performance.now();
          if (key) times.dependencyMs[key] = (times.dependencyMs[key] ?? 0) + now - started;
          if (key && method === "dispatch") times.acceptedAt[key] = now;
        }
      };
    }
  }
}

async function main(): Promise<void> {
  const kind = process.argv[2];
  const server = kind === "floor" ? await startFloor() : await startTheService();
  process.on("message", (message: ToChild) => {
    if (message.type === "stats") send({ type: "stats", stats: stats() });
    if (message.type === "pathTimes") send({ type: "pathTimes", times });
    if (message.type === "close") {
      void server.close().finally(() => {
        send({ type: "closed" });
        process.disconnect?.();
        setTimeout(() => process.exit(0), 50).unref();
      });
    }
  });
  // The bench going away takes this process with it.
  process.on("disconnect", () => process.exit(0));
  send({ type: "ready", url: server.url });
}

main().catch((err: unknown) => {
  send({ type: "failed", error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  process.exit(1);
});
