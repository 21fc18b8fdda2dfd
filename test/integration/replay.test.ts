import { createHmac } from "node:crypto";
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { startService } from "../../src/service.js";
import { startTestWorld } from "../harness/test-world.js";
import { eventually, type World } from "../harness/world.js";
import type { TwinDelivery } from "../twins/github.js";

// Issue 13 (4): GitHub signs deliveries without a timestamp, so a captured `queued` delivery
// verifies forever. Replayed after its job was served and its runner job purged, it must issue
// no credential and dispatch nothing, also in a freshly started service.

const labels = ["self-hosted", "nomad"];
/** Runner jobs purged a second after they end; the reconciler runs every second. */
const fastPurge = { RECONCILE_INTERVAL: "1", RECONCILE_GRACE: "1", RUNNER_RETENTION: "1" };

/** What a delivery could spend: GitHub credentials, Vault secret writes and wraps, Nomad dispatches, job look-ups. */
function spending(w: World) {
  return {
    credentials: w.github.requests.filter((r) => r.method === "POST" && /generate-jitconfig|registration-token/.test(r.url)).length,
    vaultSecretAccess: w.vault.requests.filter((r) => r.url.includes("/secret/data/")).length,
    dispatches: w.nomad.requests.filter((r) => r.method === "POST" && r.url.includes("/dispatch")).length,
    jobLookups: w.github.requests.filter((r) => r.method === "GET" && /\/actions\/jobs\/\d+$/.test(r.url)).length,
  };
}

/** Posts a captured delivery again, byte for byte, with its original headers and signature. */
async function replay(w: World, delivery: Pick<TwinDelivery, "payload" | "request">): Promise<{ status: number; body: { outcome?: string; reason?: string } }> {
  const res = await fetch(`${w.service.url}/webhook`, { method: "POST", headers: delivery.request.headers, body: delivery.payload });
  return { status: res.status, body: (await res.json()) as { outcome?: string; reason?: string } };
}

async function refusedCount(w: World, jobStatus: string): Promise<number> {
  const text = await (await fetch(w.service.metricsUrl!)).text();
  const line = text.split("\n").find((l) => l.startsWith(`ngd_replayed_deliveries_refused_total{job_status="${jobStatus}"}`));
  return line ? Number(line.split(" ").pop()) : 0;
}

describe("replayed deliveries (twins)", () => {
  it("a replayed queued delivery of a served job whose runner job was purged does nothing, on another replica and after a restart too", async () => {
    const w = await startTestWorld({ env: fastPurge });
    const job = await w.github.queueJob({ repo: "octo-org/app", labels });
    await eventually(() => w.github.jobs().find((j) => j.id === job.id)?.status === "completed", "job served");
    await eventually(
      () => w.nomad.jobs().filter((j) => j.ParentID === "github-runner").length === 0 && w.vault.kvKeys().length === 0,
      "runner job purged, secret gone",
    );
    const captured = w.github.deliveries().find((d) => d.action === "queued")!;
    expect(captured.status_code).toBe(200);
    const served = spending(w);
    // The counters see what serving the job cost (one credential, written then wrapped, one dispatch).
    expect(served).toMatchObject({ credentials: 1, vaultSecretAccess: 2, dispatches: 1 });

    const first = await replay(w, captured);
    expect(first).toEqual({ status: 200, body: { outcome: "ignored", reason: "replayed delivery: the job is completed at GitHub" } });
    await w.service.reconciler.runOnce();
    expect(spending(w)).toEqual({ ...served, jobLookups: served.jobLookups + 1 });
    expect(w.logs.some((l) => l.includes("replayed delivery of a job that is completed at GitHub"))).toBe(true);
    expect(await refusedCount(w, "completed")).toBe(1);

    // Another replica, and a restarted process, remember nothing of the job; Nomad has nothing
    // left of it either, so each asks GitHub, once.
    const replica = await startService(w.config, w.log);
    const original = w.service;
    w.service = replica;
    expect(await replay(w, captured)).toEqual(first);
    expect(spending(w)).toEqual({ ...served, jobLookups: served.jobLookups + 2 });
    await original.close();
    await replica.close();
    w.service = await startService(w.config, w.log);
    expect(await replay(w, captured)).toEqual(first);
    await w.service.reconciler.runOnce();
    expect(spending(w)).toEqual({ ...served, jobLookups: served.jobLookups + 3 });
    expect(w.github.runners()).toEqual([]);
    expect(w.github.contractViolations).toEqual([]);
  });

  it("a real example delivery of a job GitHub does not know (404) is refused: it is years old", async () => {
    const require = createRequire(import.meta.url);
    type Example = { action: string; workflow_job: { id: number; status: string; labels: string[] }; repository: { full_name: string } };
    const examples = (require("@octokit/webhooks-examples") as Array<{ name: string; examples: Example[] }>).find((e) => e.name === "workflow_job")!.examples;
    const example = examples.find((e) => e.action === "queued" && e.workflow_job.status === "queued")!;
    // Its repository exists at the twin, so the 404 is about the job; we serve its labels.
    const w = await startTestWorld({ repos: [example.repository.full_name], env: { RUNNER_LABELS: example.workflow_job.labels.join(",") } });
    const body = JSON.stringify(example);
    const signature = `sha256=${createHmac("sha256", w.webhookSecret).update(body).digest("hex")}`;
    const headers = {
      "content-type": "application/json",
      "x-github-event": "workflow_job",
      "x-github-delivery": crypto.randomUUID(),
      "x-hub-signature-256": signature,
    };
    const before = spending(w);

    const res = await replay(w, { payload: body, request: { headers, payload: {} } });
    expect(res).toEqual({ status: 200, body: { outcome: "ignored", reason: "replayed delivery: the job is not-found at GitHub" } });
    expect(spending(w)).toEqual({ ...before, jobLookups: before.jobLookups + 1 });
    const lookup = w.github.requests.find((r) => r.method === "GET" && r.url.endsWith(`/actions/jobs/${example.workflow_job.id}`));
    expect(lookup?.status).toBe(404);
    expect(await refusedCount(w, "not-found")).toBe(1);
    expect(w.github.contractViolations).toEqual([]);
  });

  it("a fresh job costs no look-up, and a redelivery while its runner job is retained is answered from Nomad", async () => {
    const w = await startTestWorld();
    const job = await w.github.queueJob({ repo: "octo-org/app", labels });
    await eventually(() => w.github.jobs().find((j) => j.id === job.id)?.status === "completed", "job served");
    const queued = w.github.deliveries().find((d) => d.action === "queued")!;
    const redelivered = await w.github.redeliverWebhook(queued.id);
    expect(redelivered.status_code).toBe(200);
    expect(JSON.parse(redelivered.response.payload ?? "{}")).toMatchObject({ outcome: "duplicate" });
    expect(spending(w)).toMatchObject({ credentials: 1, dispatches: 1, jobLookups: 0 });
  });
});
