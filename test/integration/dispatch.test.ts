import { createHmac } from "node:crypto";
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { StartupError, startService } from "../../src/service.js";
import { startTestWorld } from "../harness/test-world.js";
import { captureLogger, eventually, serviceEnv, startTwins, type World } from "../harness/world.js";

const require = createRequire(import.meta.url);
type Example = { action: string; workflow_job: { labels: string[]; id: number; run_id: number }; repository: { name: string; owner: { login: string } } };
const examples = (require("@octokit/webhooks-examples") as Array<{ name: string; examples: Example[] }>).find((e) => e.name === "workflow_job")!.examples;

/** Every request any twin received, as text: where a leaked credential would show up. */
function everythingNomadSaw(w: World): string {
  return w.nomad.requests.map((r) => `${r.method} ${r.url}\n${JSON.stringify(r.headers)}\n${r.body}`).join("\n");
}

function sideEffectCalls(w: World): number {
  return (
    w.github.requests.length +
    w.vault.requests.length +
    w.nomad.requests.filter((r) => !r.url.startsWith("/v1/jobs/parse") && !r.url.startsWith("/v1/job/github-runner?") && !r.url.startsWith("/v1/jobs?")).length
  );
}

async function postSigned(w: World, event: string, payload: unknown, opts: { secret?: string; delivery?: string } = {}) {
  const body = JSON.stringify(payload);
  const signature = `sha256=${createHmac("sha256", opts.secret ?? w.webhookSecret)
    .update(body)
    .digest("hex")}`;
  return fetch(`${w.service.url}/webhook`, {
    method: "POST",
    body,
    headers: {
      "content-type": "application/json",
      "x-github-event": event,
      "x-github-delivery": opts.delivery ?? crypto.randomUUID(),
      "x-hub-signature-256": signature,
    },
  });
}

describe("dispatch path end to end (twins)", () => {
  it("one queued job gets exactly one runner that comes and goes, and leaves no secret", async () => {
    const w = await startTestWorld();
    const job = await w.github.queueJob({ repo: "octo-org/app", labels: ["self-hosted", "nomad"] });

    await eventually(() => w.github.jobs().find((j) => j.id === job.id)?.status === "completed", "job completed");
    await eventually(() => w.vault.kvKeys().length === 0, "runner secret deleted");
    await eventually(() => w.nomad.runningRunnerJobs().length === 0, "runner job finished");

    const done = w.github.jobs().find((j) => j.id === job.id)!;
    expect(done.conclusion).toBe("success");
    expect(done.runner_name).toBe(`nomad-gha-${job.id}`);
    expect(w.github.runners()).toHaveLength(0);
    const children = w.nomad.jobs().filter((j) => j.ParentID === "github-runner");
    expect(children).toHaveLength(1);
    // The prestart task read the credential exactly once, as its own workload identity (a token
    // of the runner role, nothing else), then revoked that token; Vault audited both.
    const requests = w.vault.auditLog().filter((e) => e.type === "request" && e.auth.metadata?.role === "nomad-gha-runner");
    expect(requests.map((e) => `${e.request.operation} ${e.request.path}`)).toEqual([
      `read secret/data/nomad-gha-dispatcher/runners/default/github-runner/nomad-gha-${job.id}`,
      "update auth/token/revoke-self",
    ]);
    expect(requests[0]?.auth.metadata).toMatchObject({ nomad_namespace: "default", nomad_job_id: "github-runner", nomad_task: "configure-runner" });
    expect(w.vault.auditLog().filter((e) => e.request.path === "sys/wrapping/unwrap")).toEqual([]);
    // The pinned image is current: GitHub neither refused it nor made it update first.
    expect(w.github.runnerUpdates).toBe(0);
  });

  it("never asks GitHub for a remove token: the dispatcher deregisters runners, however long they lived", async () => {
    // A remove token minted at dispatch expires after an hour and would sit where workflow code
    // can read it; a runner that never takes its job is deregistered by the dispatcher instead.
    const w = await startTestWorld();
    w.nomad.faults.crashNextMain();
    const job = await w.github.queueJob({ repo: "octo-org/app", labels: ["self-hosted", "nomad"] });
    await eventually(() => w.nomad.allocations().some((a) => a.ClientStatus === "failed"), "runner crashed");
    await w.service.reconciler.runOnce();
    await eventually(() => w.github.jobs().find((j) => j.id === job.id)?.status === "completed", "job served by a fresh runner", 30_000);
    await w.service.reconciler.runOnce();
    expect(w.github.runners()).toEqual([]);
    expect(w.github.requests.filter((r) => r.url.includes("remove-token"))).toEqual([]);
  });

  it("never lets a credential reach Nomad or a log line", async () => {
    const w = await startTestWorld();
    const job = await w.github.queueJob({ repo: "octo-org/app", labels: ["self-hosted", "nomad"] });
    await eventually(() => w.github.jobs().find((j) => j.id === job.id)?.status === "completed", "job completed");
    await eventually(() => w.vault.kvKeys().length === 0, "secret deleted");

    const secrets = w.github.issuedSecrets;
    expect(secrets.length).toBeGreaterThan(1);
    const nomadText = everythingNomadSaw(w);
    const logText = w.logs.join("\n");
    for (const secret of secrets) {
      expect(nomadText).not.toContain(secret);
      expect(logText).not.toContain(secret);
    }
    expect(logText).not.toContain(w.vault.rootToken);
    // The dispatch carried a wrapping token only, which is spent by now.
    const dispatch = w.nomad.requests.find((r) => r.url.includes("/dispatch"))!;
    const wrapToken = (JSON.parse(dispatch.body) as { Meta: Record<string, string> }).Meta.credential_wrap_token!;
    const again = await fetch(`${w.vault.url}/v1/sys/wrapping/unwrap`, { method: "POST", headers: { "X-Vault-Token": wrapToken } });
    expect(again.status).toBe(400);
  });

  it("the same delivery twice, and the same job in two deliveries, make one runner", async () => {
    const w = await startTestWorld({ github: { jobDurationMs: 300 } });
    const job = await w.github.queueJob({ repo: "octo-org/app", labels: ["self-hosted", "nomad"] });
    const delivery = w.github.deliveries().find((d) => d.action === "queued")!;
    // Redelivery of the same delivery (GitHub UI "Redeliver"), then a fresh delivery of the same job.
    await w.github.redeliverWebhook(delivery.id);
    const payload = JSON.parse(delivery.payload) as unknown;
    const [a, b] = await Promise.all([postSigned(w, "workflow_job", payload), postSigned(w, "workflow_job", payload)]);
    expect([200, 202]).toContain(a.status);
    expect([200, 202]).toContain(b.status);

    await eventually(() => w.github.jobs().find((j) => j.id === job.id)?.status === "completed", "job completed");
    expect(w.nomad.jobs().filter((j) => j.ParentID === "github-runner")).toHaveLength(1);
    const jitCalls = w.github.requests.filter((r) => r.method === "POST" && r.url.includes("generate-jitconfig"));
    expect(jitCalls).toHaveLength(1);
  });

  it("a bad signature gets 401 and causes zero calls to GitHub, Vault or Nomad", async () => {
    const w = await startTestWorld();
    await w.service.reconciler.idle();
    const before = { github: w.github.requests.length, vault: w.vault.requests.length, nomad: w.nomad.requests.length };
    const payload = {
      ...examples.find((e) => e.action === "queued")!,
      workflow_job: { ...examples.find((e) => e.action === "queued")!.workflow_job, labels: ["self-hosted", "nomad"] },
    };
    const res = await postSigned(w, "workflow_job", payload, { secret: "not-the-secret" });
    expect(res.status).toBe(401);
    const unsigned = await fetch(`${w.service.url}/webhook`, {
      method: "POST",
      body: JSON.stringify(payload),
      headers: { "x-github-event": "workflow_job", "x-github-delivery": "x" },
    });
    expect(unsigned.status).toBe(401);
    expect({ github: w.github.requests.length, vault: w.vault.requests.length, nomad: w.nomad.requests.length }).toEqual(before);
  });

  it("real example payloads: non-matching labels, other events and non-queued actions change nothing", async () => {
    const w = await startTestWorld();
    await w.service.reconciler.idle();
    const before = sideEffectCalls(w);
    for (const example of examples) {
      // As published (ubuntu-latest, k8s...): none asks for our labels.
      const res = await postSigned(w, "workflow_job", example);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ outcome: "ignored" });
    }
    for (const action of ["waiting", "in_progress"]) {
      const example = examples.find((e) => e.action === action)!;
      const matching = {
        ...example,
        workflow_job: { ...example.workflow_job, labels: ["self-hosted", "nomad"], runner_name: action === "in_progress" ? "someone-else" : null },
      };
      expect(await (await postSigned(w, "workflow_job", matching)).json()).toMatchObject({ outcome: "ignored" });
    }
    expect((await postSigned(w, "push", { ref: "refs/heads/main" })).status).toBe(200);
    expect((await postSigned(w, "ping", { zen: "Design for failure." })).status).toBe(200);
    expect(sideEffectCalls(w)).toBe(before);
    expect(w.nomad.jobs().filter((j) => j.ParentID === "github-runner")).toHaveLength(0);
  });

  it("a job of ours that ran on another runner costs no call when nothing was dispatched for it", async () => {
    const w = await startTestWorld({ nomadSlots: 0 });
    // The first reconcile pass lists our runner jobs: from then on the runner index knows them.
    await w.service.reconciler.idle();
    const completed = examples.find((e) => e.action === "completed")!;
    const foreign = (id: number) => ({
      ...completed,
      workflow_job: { ...completed.workflow_job, id, labels: ["self-hosted", "nomad"], runner_name: "GitHub Actions 5" },
    });
    const calls = () => w.github.requests.length + w.vault.requests.length + w.nomad.requests.length;
    const before = calls();
    const res = await postSigned(w, "workflow_job", foreign(777_001));
    expect(await res.json()).toMatchObject({ outcome: "released", runners: [], kept: [] });
    expect(calls()).toBe(before);

    // A job whose runner this process did dispatch: that runner is stopped, whatever ran the job.
    const job = await w.github.queueJob({ repo: "octo-org/app", labels: ["self-hosted", "nomad"] });
    await eventually(() => w.nomad.runningRunnerJobs().length === 1, "runner job dispatched");
    const ours = { ...foreign(job.id), repository: { ...completed.repository, name: "app", owner: { ...completed.repository.owner, login: "octo-org" } } };
    delete (ours as { installation?: unknown }).installation;
    expect(await (await postSigned(w, "workflow_job", ours)).json()).toMatchObject({ outcome: "released", runners: [`nomad-gha-${job.id}`] });
    await eventually(() => w.nomad.runningRunnerJobs().length === 0, "runner job stopped");
    await eventually(() => w.vault.kvKeys().length === 0, "secret deleted");
  });

  it("the real queued example with our labels dispatches a runner", async () => {
    const queued = examples.find((e) => e.action === "queued" && e.workflow_job.labels.includes("self-hosted"))!;
    const repo = `${queued.repository.owner.login}/${queued.repository.name}`;
    const w = await startTestWorld({ repos: [repo] });
    // Queued just now: as it stands (2023, a job the twin does not know) it is refused as a replay (replay.test.ts).
    const payload = { ...queued, workflow_job: { ...queued.workflow_job, labels: ["self-hosted", "nomad"], created_at: new Date().toISOString() } };
    delete (payload as { installation?: unknown }).installation;
    const res = await postSigned(w, "workflow_job", payload);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ outcome: "dispatched", runner: `nomad-gha-${queued.workflow_job.id}` });
    const dispatch = w.nomad.requests.find((r) => r.url.includes("/dispatch"))!;
    expect(dispatch.url).toContain(`idempotency_token=nomad-gha-dispatcher-job-${queued.workflow_job.id}`);
    expect(JSON.parse(dispatch.body)).toMatchObject({
      Meta: { github_repo: repo, github_job_id: String(queued.workflow_job.id), runner_name: `nomad-gha-${queued.workflow_job.id}` },
    });
  });

  it("a job held for approval gets a runner only once approved", async () => {
    const w = await startTestWorld();
    const job = await w.github.queueJob({ repo: "octo-org/app", labels: ["self-hosted", "nomad"], waiting: true });
    expect(w.nomad.jobs().filter((j) => j.ParentID === "github-runner")).toHaveLength(0);
    await w.github.approveJob(job.id);
    await eventually(() => w.github.jobs().find((j) => j.id === job.id)?.status === "completed", "approved job ran");
  });

  it("a job cancelled before its runner picked it up stops that runner", async () => {
    const w = await startTestWorld({ nomadSlots: 0 });
    const job = await w.github.queueJob({ repo: "octo-org/app", labels: ["self-hosted", "nomad"] });
    await eventually(() => w.nomad.runningRunnerJobs().length === 1, "runner job dispatched");
    await w.github.cancelJob(job.id);
    await eventually(() => w.nomad.runningRunnerJobs().length === 0, "runner job stopped");
    await eventually(() => w.vault.kvKeys().length === 0, "secret deleted");
    expect(w.github.runners()).toHaveLength(0);
  });

  it("works with registration tokens and with a GitHub App", async () => {
    let w = await startTestWorld({ env: { RUNNER_REGISTRATION: "token" } });
    const job = await w.github.queueJob({ repo: "octo-org/app", labels: ["self-hosted", "nomad"] });
    await eventually(() => w.github.jobs().find((j) => j.id === job.id)?.status === "completed", "token-mode job completed");
    await w.close();

    w = await startTestWorld({ app: true });
    const appJob = await w.github.queueJob({ repo: "octo-org/app", labels: ["self-hosted", "nomad"] });
    await eventually(() => w.github.jobs().find((j) => j.id === appJob.id)?.status === "completed", "App job completed");
    expect(w.github.requests.some((r) => r.url.includes("/access_tokens"))).toBe(true);
  });
});

describe("metrics", () => {
  it("serves Prometheus metrics on METRICS_PORT only, with deliveries, dispatch latency, job startup and process metrics", async () => {
    const w = await startTestWorld();
    const job = await w.github.queueJob({ repo: "octo-org/app", labels: ["self-hosted", "nomad"] });
    await eventually(() => w.github.jobs().find((j) => j.id === job.id)?.status === "completed", "job completed");
    expect(w.service.metricsUrl).toBeDefined();
    const text = await (await fetch(w.service.metricsUrl!)).text();
    expect(text).toMatch(/^ngd_webhook_deliveries_total\{event="workflow_job",outcome="dispatched"\} 1$/m);
    expect(text).toMatch(/^ngd_dispatch_latency_seconds_count\{class="default"\} 1$/m);
    // GitHub's own queued -> started figure, from the in_progress event of our runner's job.
    expect(text).toMatch(/^ngd_job_startup_seconds_count\{class="default"\} 1$/m);
    // ARC's started/completed pair: jobs our runners ran, by class and GitHub's conclusion.
    expect(text).toMatch(/^ngd_jobs_started_total\{class="default"\} 1$/m);
    expect(text).toMatch(/^ngd_jobs_completed_total\{class="default",result="success"\} 1$/m);
    expect(text).toMatch(/^ngd_build_info\{version="\d+\.\d+\.\d+[^"]*",node="v\d+\.\d+\.\d+"\} 1$/m);
    expect(text).toMatch(/^ngd_process_cpu_user_seconds_total /m);
    // Never on the public listener the tunnel routes to.
    expect((await fetch(`${w.service.url}/metrics`)).status).toBe(404);
  });

  it("with METRICS_PORT=off serves none", async () => {
    const world = await startTestWorld({ env: { METRICS_PORT: "off" } });
    expect(world.service.metricsUrl).toBeUndefined();
    expect((await fetch(`${world.service.url}/metrics`)).status).toBe(404);
  });
});

describe("startup", () => {
  it("waits out a Vault that is sealed for a moment instead of failing, and says so once", async () => {
    const twins = await startTwins();
    try {
      twins.vault.seal();
      const config = loadConfig(serviceEnv(twins, "secret-secret-secret", {}));
      const { log, logs } = captureLogger();
      const starting = startService(config, log);
      await eventually(() => logs.some((l) => l.includes("Vault is not available yet")), "waiting reported");
      twins.vault.unseal();
      const service = await starting;
      await service.close();
      expect(logs.filter((l) => l.includes("Vault is not available yet"))).toHaveLength(1);
    } finally {
      await Promise.all([twins.github.close(), twins.vault.close(), twins.nomad.close()]);
    }
  });

  it("refuses to start when Vault has no audit device, with a clear message", async () => {
    const twins = await startTwins({ vaultAudit: false });
    try {
      const config = loadConfig(serviceEnv(twins, "secret-secret-secret", {}));
      const { log } = captureLogger();
      const err = await startService(config, log).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StartupError);
      expect((err as Error).message).toMatch(/no audit device enabled.*VAULT_REQUIRE_AUDIT=false/);
      expect(twins.nomad.requests.filter((r) => r.method !== "GET")).toHaveLength(0);

      const allowed = loadConfig({ ...serviceEnv(twins, "secret-secret-secret", {}), VAULT_REQUIRE_AUDIT: "false" });
      const service = await startService(allowed, log);
      await service.close();
    } finally {
      await Promise.all([twins.github.close(), twins.vault.close(), twins.nomad.close()]);
    }
  });

  it("registers the runner job once and leaves an unchanged job alone", async () => {
    const world = await startTestWorld();
    const registrations = () => world.nomad.requests.filter((r) => r.method === "POST" && r.url.startsWith("/v1/jobs?")).length;
    expect(registrations()).toBe(1);
    const config = world.config;
    const { log } = captureLogger();
    const second = await startService(config, log);
    await second.close();
    expect(registrations()).toBe(1);
  });
});
