import { describe, expect, it, onTestFinished } from "vitest";
import { startService } from "../../src/service.js";
import { startTestWorld } from "../harness/test-world.js";
import { eventually, type World } from "../harness/world.js";

// Issue 16 (1) on the twins: a provisioning cut short between its writes is finished within
// seconds of the failing system's return, without a write loop against GitHub.

const labels = ["self-hosted", "nomad"];

const jitRequests = (w: World) => w.github.requests.filter((r) => r.method === "POST" && r.url.includes("/generate-jitconfig"));
const runnerJobsOf = (w: World, jobId: number) => w.nomad.jobs().filter((j) => j.Dispatched && j.Meta?.github_job_id === String(jobId));

/** Seals Vault at the first write of a runner credential (right after GitHub issued it) for `ms`. */
function sealAtFirstCredentialWrite(w: World, ms: number): { unsealedAt: () => number | undefined } {
  let sealed = false;
  let unsealedAt: number | undefined;
  w.vault.faults.intercept = ({ method, path }) => {
    if (!sealed && (method === "POST" || method === "PUT") && path.includes("/data/") && path.includes("/runners/")) {
      sealed = true;
      w.vault.seal();
      setTimeout(() => {
        w.vault.unseal();
        unsealedAt = Date.now();
      }, ms);
    }
    return undefined;
  };
  return { unsealedAt: () => unsealedAt };
}

describe("resumable provisioning (twins)", () => {
  it("Vault sealed 6 s right after the JIT config was issued, delivery re-sent meanwhile: served within 10 s of unseal, at most 2 JIT requests", async () => {
    // The reconciler's interval is out of the picture: only the in-process retry and the re-sent delivery.
    const w = await startTestWorld({ env: { RECONCILE_INTERVAL: "3600" } });
    const outage = sealAtFirstCredentialWrite(w, 6_000);
    const job = await w.github.queueJob({ repo: "octo-org/app", labels });
    const first = w.github.deliveries().find((d) => d.action === "queued")!;
    expect(w.vault.requests.some((r) => r.status === 503)).toBe(true);
    if (outage.unsealedAt() === undefined) await w.github.redeliverWebhook(first.id);
    await eventually(() => outage.unsealedAt() !== undefined, "Vault unsealed", 15_000);
    const unsealedAt = outage.unsealedAt()!;
    await eventually(() => runnerJobsOf(w, job.id).length > 0, "runner job dispatched within 10 s of unseal", 10_000);
    expect(Date.now() - unsealedAt).toBeLessThan(10_000);
    await eventually(() => w.github.jobs().find((j) => j.id === job.id)?.status === "completed", "job served");
    // The report's bound is 2; the credential held by the failed attempt makes it 1.
    expect(jitRequests(w)).toHaveLength(1);
    expect(w.github.requests.filter((r) => r.method === "DELETE")).toHaveLength(0);
    expect(runnerJobsOf(w, job.id)).toHaveLength(1);
    // No write loop: the log does not repeat "provisioned elsewhere".
    expect(w.logs.filter((l) => l.includes("being provisioned elsewhere")).length).toBeLessThanOrEqual(1);
    await eventually(() => w.vault.kvKeys().length === 0 && w.github.runners().length === 0, "nothing left");
  });

  it("two replicas get every delivery at once: one runner per job, each job served, at most 2 JIT configs issued per job, nothing left", async () => {
    const w = await startTestWorld({ env: { RECONCILE_INTERVAL: "3600", ALLOWED_REPOS: "octo-org/app" } });
    const other = await startService({ ...w.config, port: 0 }, w.log);
    onTestFinished(() => other.close());
    w.github.addWebhook({ url: `${other.url}/webhook`, secret: w.webhookSecret });
    const jobs = await Promise.all(Array.from({ length: 4 }, () => w.github.queueJob({ repo: "octo-org/app", labels })));
    for (const { id } of jobs) {
      await eventually(() => w.github.jobs().find((j) => j.id === id)?.status === "completed", `job ${id} served`);
      expect(runnerJobsOf(w, id)).toHaveLength(1);
    }
    const issued = jitRequests(w).filter((r) => r.status === 201);
    expect(issued.length).toBeLessThanOrEqual(2 * jobs.length);
    expect(w.github.jobs().every((j) => j.conclusion === "success")).toBe(true);
    await eventually(() => w.vault.kvKeys().length === 0, "no credential left");
  });

  // A replica stops mid-way (its request hangs: as good as dead for the job); the other replica's
  // reconciler finds the job queued with whatever the first left, and finishes or redoes it.
  const credentialWrite = (method: string, path: string) => (method === "POST" || method === "PUT") && path.includes("/data/") && path.includes("/runners/");
  it.each([
    {
      boundary: "after registration (the credential never reached Vault)",
      jit: 2,
      arm: (w: World) => once(w.vault.faults, credentialWrite, { status: 503, body: '{"errors":["Vault is sealed"]}', delayMs: 15_000 }),
    },
    { boundary: "after the credential write (its answer never came)", jit: 1, arm: (w: World) => once(w.vault.faults, credentialWrite, { delayMs: 15_000 }) },
    {
      boundary: "after the dispatch was sent (its answer never came)",
      jit: 1,
      arm: (w: World) => once(w.nomad.faults, (m, p) => m === "POST" && p.endsWith("/dispatch"), { delayMs: 15_000 }),
    },
  ])("a replica stops $boundary: the other finishes the job within 10 s, one runner, $jit JIT request(s)", async ({ jit, arm }) => {
    // Both replicas poll the repository (ALLOWED_REPOS): the second never got the webhook.
    const w = await startTestWorld({ env: { RECONCILE_INTERVAL: "3600", ALLOWED_REPOS: "octo-org/app" } });
    const stuck = arm(w);
    // Its delivery waits for the stuck attempt: not awaited.
    void w.github.queueJob({ repo: "octo-org/app", labels });
    await eventually(stuck, "the first replica's attempt is stuck");
    const stoppedAt = Date.now();
    const other = await startService({ ...w.config, port: 0, reconcile: { ...w.config.reconcile, intervalSeconds: 1 } }, w.log);
    onTestFinished(() => other.close());
    const id = w.github.jobs()[0]!.id;
    await eventually(() => w.github.jobs().find((j) => j.id === id)?.status !== "queued", "job taken by a runner within 10 s", 10_000);
    expect(Date.now() - stoppedAt).toBeLessThan(10_000);
    expect(runnerJobsOf(w, id)).toHaveLength(1);
    expect(jitRequests(w).filter((r) => r.status === 201)).toHaveLength(jit);
    expect(jitRequests(w).length).toBeLessThanOrEqual(2);
  });
});

/** The first request matching `match` gets `fault`; returns "has it happened". */
function once(
  faults: World["vault"]["faults"],
  match: (method: string, path: string) => boolean,
  fault: { status: number; body: string; delayMs: number } | { delayMs: number },
): () => boolean {
  let hit = false;
  faults.intercept = ({ method, path }) => {
    if (hit || !match(method, path)) return undefined;
    hit = true;
    return fault;
  };
  return () => hit;
}
