// Scenario 6: recovery at 1,000 repositories. One organization (PAT, ALLOWED_OWNERS), the
// service's webhook an organization hook reached through a "tunnel" (a proxy in this process)
// that drops every 20th `queued` delivery (5%: GitHub records it as failed, as when a tunnel is
// down). A steady stream of jobs over random repositories. Per dropped job, the time from its
// queueing to its runner job's dispatch in Nomad; and what the reconciler read (queue listings, hooks and their
// deliveries, repository and runner listings, redeliveries) as a share of GitHub's budget, over
// the run and in its busiest minute.
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { GITHUB_SECONDARY_LIMITS } from "../../src/github/budget.js";
import { serviceEnv } from "../harness/world.js";
import type { RecordedRequest } from "../twins/contract.js";
import { startServerChild } from "./child.js";
import type { BenchConfig } from "./config.js";
import { fmt, percentile, sleep, verdict } from "./stats.js";
import { closeTwins, repoNames, startBenchTwins } from "./world.js";

const LABELS = ["self-hosted", "nomad"];
const ORG = "bench-org";

/** The tunnel: forwards deliveries to the service, failing the first attempt of every `dropEvery`-th `queued` one. */
async function startTunnel(dropEvery: number): Promise<{ url: string; target: { url: string }; dropped: Set<number>; close(): Promise<void> }> {
  const target = { url: "" };
  const dropped = new Set<number>();
  const droppedGuids = new Set<string>();
  let queued = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const guid = String(req.headers["x-github-delivery"] ?? "");
      const event = JSON.parse(body.toString() || "{}") as { action?: string; workflow_job?: { id: number } };
      // A redelivery (same GUID) gets through: the tunnel is back.
      if (req.headers["x-github-event"] === "workflow_job" && event.action === "queued" && !droppedGuids.has(guid) && ++queued % dropEvery === 0) {
        droppedGuids.add(guid);
        if (event.workflow_job) dropped.add(event.workflow_job.id);
        res.writeHead(502).end("tunnel down");
        return;
      }
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string" && k !== "host" && k !== "content-length") headers[k] = v;
      fetch(`${target.url}${req.url ?? "/"}`, { method: "POST", headers, body })
        .then(async (r) => res.writeHead(r.status, { "content-type": r.headers.get("content-type") ?? "text/plain" }).end(await r.text()))
        .catch(() => res.writeHead(502).end("service unreachable"));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/webhook`, target, dropped, close: () => new Promise((r) => server.close(() => r())) };
}

/** Points the reconciler spent, request by request: its reads, and its redeliveries (5 points each). */
function reconcilerPoints(r: RecordedRequest): number {
  const path = r.url.split("?")[0] ?? "";
  if (r.method === "POST") return /\/hooks\/\d+\/deliveries\/\d+\/attempts$/.test(path) ? 5 : 0;
  if (r.method !== "GET") return 0;
  // Queue listings, hook look-ups and their deliveries, repository listings, runner listings.
  if (/\/actions\/runs|\/hooks|\/orgs\/[^/]+\/repos$/.test(path)) return 1;
  return /\/actions\/runners$/.test(path) && !r.url.includes("name=") ? 1 : 0;
}

export async function recoveryScenario(cfg: BenchConfig, print: (line: string) => void): Promise<void> {
  const c = cfg.recovery;
  const repos = repoNames(c.repos, ORG);
  // Runner jobs stay pending (no Nomad slots): what is timed is recovery up to the dispatch of a
  // runner, not how fast two shared cores start hundreds of runner containers.
  const twins = await startBenchTwins({ repos, nomadSlots: 0 });
  const tunnel = await startTunnel(Math.round(1 / c.dropShare));
  const webhookSecret = randomBytes(20).toString("hex");
  const env = serviceEnv(twins, webhookSecret, {
    env: { LOG_LEVEL: "warn", METRICS_PORT: "off", RECONCILE_INTERVAL: "60", ALLOWED_OWNERS: ORG, WEBHOOK_URL: tunnel.url },
  });
  const service = await startServerChild("service", env).catch(async (err: unknown) => {
    await Promise.all([closeTwins(twins), tunnel.close()]);
    throw err;
  });
  tunnel.target.url = service.url;
  twins.github.addWebhook({ url: tunnel.url, secret: webhookSecret, org: ORG });
  const t0 = Date.now();
  try {
    const total = Math.round(c.jobsPerSecond * c.seconds);
    const queuedAt = new Map<number, number>();
    // Watched from the start: a dropped job may be served while later jobs are still arriving.
    const servedAt = new Map<number, number>();
    const watcher = setInterval(() => {
      const dispatched = new Set(twins.nomad.jobs().flatMap((j) => (j.Dispatched ? [Number(j.Meta?.["github_job_id"])] : [])));
      for (const id of tunnel.dropped) if (dispatched.has(id) && !servedAt.has(id)) servedAt.set(id, Date.now());
    }, 250);
    const pending: Array<Promise<unknown>> = [];
    for (let i = 0; i < total; i++) {
      await sleep(Math.max(0, t0 + (i * 1000) / c.jobsPerSecond - Date.now()));
      const repo = repos[Math.floor(Math.random() * repos.length)]!;
      const at = Date.now();
      pending.push(twins.github.queueJob({ repo, labels: LABELS }).then((job) => queuedAt.set(job.id, at)));
    }
    await Promise.all(pending);
    // Every dropped job's runner job dispatched, or the deadline.
    const deadline = Date.now() + c.waitSeconds * 1000;
    while (Date.now() < deadline && servedAt.size < tunnel.dropped.size) await sleep(250);
    clearInterval(watcher);
    const minutes = (Date.now() - t0) / 60_000;
    const times = [...servedAt].map(([id, at]) => (at - (queuedAt.get(id) ?? at)) / 1000);
    const spend = twins.github.requests
      .filter((r) => r.at >= t0)
      .map((r) => ({ at: r.at, points: reconcilerPoints(r) }))
      .filter((s) => s.points > 0);
    const points = spend.reduce((a, s) => a + s.points, 0);
    const redeliveryPoints = twins.github.requests.filter((r) => r.at >= t0 && r.method === "POST" && reconcilerPoints(r) > 0).length * 5;
    if (process.env.BENCH_RECOVERY_DEBUG) {
      for (const id of tunnel.dropped) {
        const ds = twins.github
          .deliveries()
          .filter((d) => d.action === "queued" && (d.request.payload["workflow_job"] as { id?: number } | undefined)?.id === id);
        const rel = (iso: string) => ((Date.parse(iso) - t0) / 1000).toFixed(0);
        print(
          `job ${id}: queued ${(((queuedAt.get(id) ?? 0) - t0) / 1000).toFixed(1)} s, deliveries ${ds.map((d) => `${rel(d.delivered_at)}s ${d.status_code}${d.redelivery ? " (redelivery)" : ""}`).join(", ")}, served ${(((servedAt.get(id) ?? 0) - t0) / 1000).toFixed(1)} s`,
        );
      }
      const kinds = new Map<string, number>();
      for (const r of twins.github.requests.filter((x) => x.at >= t0 && reconcilerPoints(x) > 0)) {
        const kind = `${r.method} ${(r.url.split("?")[0] ?? "").replace(/\/repo-\d+/, "/*").replace(/\d+/g, "N")}`;
        kinds.set(kind, (kinds.get(kind) ?? 0) + reconcilerPoints(r));
      }
      print(JSON.stringify(Object.fromEntries(kinds)));
    }
    // The busiest sliding minute (t0 included: the start's first pass).
    let busiest = 0;
    for (const s of spend)
      busiest = Math.max(
        busiest,
        spend.filter((x) => x.at >= s.at && x.at < s.at + 60_000).reduce((a, x) => a + x.points, 0),
      );
    const budget = GITHUB_SECONDARY_LIMITS.pointsPerMinute;
    // Reads (listings) against the 10% target; each redelivery (a POST, 5 points) stands for a
    // webhook that failed, so it grows with failures, not repositories: reported beside them.
    const reads = points - redeliveryPoints;
    const share = reads / Math.max(1, minutes) / budget;
    const readSpend = spend.filter((s) => s.points === 1);
    let busiestReads = 0;
    for (const s of readSpend) busiestReads = Math.max(busiestReads, readSpend.filter((x) => x.at >= s.at && x.at < s.at + 60_000).length);
    const allServed = servedAt.size === tunnel.dropped.size;
    const p99 = times.length > 0 ? percentile(times, 99) : Number.NaN;
    print(
      `[6] recovery, ${c.repos} repos in one org (PAT, org hook), ${total} jobs at ${c.jobsPerSecond}/s, ${tunnel.dropped.size} queued deliveries dropped (${fmt(c.dropShare * 100, 0)}%): ` +
        `${servedAt.size}/${tunnel.dropped.size} served (all ${verdict(allServed)}) | queued -> runner job dispatched p50 ${fmt(percentile(times, 50), 1)} s p99 ${fmt(p99, 1)} s (<=120 s ${verdict(p99 <= 120)}) | ` +
        `reconciler reads ${fmt(reads / Math.max(1, minutes), 1)} points/min = ${fmt(share * 100, 1)}% of the budget over ${fmt(minutes, 1)} min (<=10% ${verdict(share <= 0.1)}), ` +
        `busiest sliding minute ${busiestReads} points = ${fmt((busiestReads / budget) * 100, 1)}% (start included; <=10% ${verdict(busiestReads <= budget * 0.1)}) | ` +
        `plus ${redeliveryPoints / 5} redeliveries (${redeliveryPoints} points, 5 each; busiest minute with them ${busiest} points = ${fmt((busiest / budget) * 100, 1)}%)`,
    );
  } finally {
    await service.close();
    await Promise.all([closeTwins(twins), tunnel.close()]);
  }
}
