// Issue 16 (2): MAX_RUNNERS holds across replicas. Three services share the twins behind a round-
// robin balancer, so each takes different jobs at the same moment and they race for every slot;
// the live runner jobs, sampled all along, never exceed the limit, and every job is served.
// (With CAPACITY_SCOPE=process the same test reaches 3 and more.)

import { describe, expect, it, onTestFinished } from "vitest";
import { ledgerPaths } from "../../src/core/slot-ledger.js";
import { type RunningService, startService } from "../../src/service.js";
import { LoadBalancer } from "../chaos/balancer.js";
import { startTestWorld } from "../harness/test-world.js";
import { captureLogger, eventually } from "../harness/world.js";

describe("limits across replicas (slot ledger in Nomad Variables)", () => {
  it("three replicas racing for every job never run more than MAX_RUNNERS, and serve every job", async () => {
    const w = await startTestWorld({
      env: { MAX_RUNNERS: "2", MAX_RUNNERS_PER_REPO: "2", RECONCILE_INTERVAL: "1", RECONCILE_GRACE: "0" },
      github: { jobDurationMs: 600 },
      // Runners start at once: a slot is taken from the dispatch on.
      nomadStartDelayMs: 1,
    });
    const services: RunningService[] = [w.service];
    for (let i = 0; i < 2; i++) {
      const service = await startService(w.config, captureLogger().log);
      onTestFinished(() => service.close());
      services.push(service);
    }
    // The world's own webhook goes to the first service; the balancer's spreads deliveries over all three.
    const balancer = new LoadBalancer(() => ({ kind: "forward" }));
    await balancer.start();
    onTestFinished(() => balancer.close());
    services.forEach((service, i) => balancer.setBackend({ name: `r${i}`, url: service.url }));
    w.github.addWebhook({ url: `${balancer.url}/webhook`, secret: w.webhookSecret });
    let peak = 0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, w.nomad.jobs().filter((j) => j.Dispatched && j.Status !== "dead" && !j.Stop).length);
    }, 10);
    onTestFinished(() => clearInterval(sampler));

    const jobs = await Promise.all(Array.from({ length: 6 }, () => w.github.queueJob({ repo: "octo-org/app", labels: ["self-hosted", "nomad"] })));
    const ids = new Set(jobs.map((j) => j.id));
    await eventually(() => w.github.jobs().filter((j) => ids.has(j.id) && j.status === "completed").length === 6, "every job served", 90_000);
    clearInterval(sampler);
    console.log(`caps across 3 replicas: max_runners=2 peak_live_runner_jobs=${peak}`);
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(2);
    // Each job ran once.
    expect(
      w.github
        .jobs()
        .filter((j) => ids.has(j.id))
        .every((j) => j.conclusion === "success"),
    ).toBe(true);
    // The ledger and the replicas' heartbeats live under the deployment's own path.
    const paths = ledgerPaths(w.config.dispatcherId);
    const vars = w.nomad.variables("default", "nomad-gha-dispatcher/").map((v) => v.Path);
    expect(vars).toContain(paths.slots);
    expect(vars.filter((p) => p.startsWith(paths.holders))).toHaveLength(3);
  }, 120_000);

  it("one replica: the ledger costs about one Nomad call per dispatch (the CAS write), plus a heartbeat every 5 s", async () => {
    const w = await startTestWorld({ env: { MAX_RUNNERS: "10", MAX_RUNNERS_PER_REPO: "10" }, github: { jobDurationMs: 200 } });
    const paths = ledgerPaths(w.config.dispatcherId);
    const slotCalls = () => w.nomad.requests.filter((r) => r.url.startsWith(`/v1/var/${paths.slots}`) || r.url.startsWith("/v1/vars")).length;
    const listings = () => w.nomad.requests.filter((r) => r.method === "GET" && r.url.startsWith("/v1/jobs?")).length;
    const before = { slots: slotCalls(), listings: listings() };
    const n = 5;
    for (let i = 0; i < n; i++) {
      const job = await w.github.queueJob({ repo: "octo-org/app", labels: ["self-hosted", "nomad"] });
      await eventually(() => w.github.jobs().find((j) => j.id === job.id)?.status === "completed", "job served");
    }
    await eventually(
      () =>
        w.nomad.variables().find((v) => v.Path === paths.slots)?.Items?._ledger === "1" &&
        Object.keys(w.nomad.variables().find((v) => v.Path === paths.slots)?.Items ?? {}).length === 1,
      "every reservation released",
    );
    const extra = slotCalls() - before.slots;
    console.log(`ledger calls for ${n} sequential dispatches: ${extra} (runner job listings: ${listings() - before.listings})`);
    // A reservation (CAS) and, the jobs being far apart, a release written alone (CAS) each; the first also reads.
    expect(extra).toBeLessThanOrEqual(2 * n + 1);
  });
});
