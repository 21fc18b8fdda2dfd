import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { JobEvent } from "../../src/core/job-event.js";
import { WebhookVerifier } from "../../src/github/webhook.js";
import { createApp } from "../../src/http/app.js";
import type { EventOutcome } from "../../src/intake/event-handler.js";
import { createLogger } from "../../src/log.js";

const SECRET = "test-secret-with-enough-length";

function sign(body: string, secret = SECRET): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

function setup(handle: (e: JobEvent) => Promise<EventOutcome> = async () => ({ outcome: "ignored", reason: "test" })) {
  const calls: JobEvent[] = [];
  const app = createApp({
    verifier: new WebhookVerifier([SECRET, "rotated-secret"]),
    handle: async (e) => {
      calls.push(e);
      return handle(e);
    },
    readiness: async () => ({ ready: true, checks: {} }),
    bodyLimitBytes: 64 * 1024,
    log: createLogger({ level: "silent" }),
  });
  const post = (body: string, headers: Record<string, string>) =>
    app.request("/webhook", { method: "POST", body, headers: { "content-type": "application/json", ...headers } });
  return { app, calls, post };
}

const queued = JSON.stringify({
  action: "queued",
  workflow_job: {
    id: 1,
    run_id: 2,
    status: "queued",
    conclusion: null,
    labels: ["self-hosted", "nomad"],
    runner_name: null,
    created_at: "2026-11-23T08:00:00Z",
  },
  repository: { name: "app", owner: { login: "acme" } },
});
const ghHeaders = (body: string, event = "workflow_job") => ({
  "x-github-event": event,
  "x-github-delivery": "d1",
  "x-hub-signature-256": sign(body),
});

describe("POST /webhook", () => {
  it("rejects a missing or wrong signature with 401 before reading anything", async () => {
    const { post, calls } = setup();
    expect((await post(queued, { "x-github-event": "workflow_job", "x-github-delivery": "d" })).status).toBe(401);
    expect((await post(queued, { ...ghHeaders(queued), "x-hub-signature-256": sign(queued, "wrong") })).status).toBe(401);
    expect((await post(queued, { ...ghHeaders(queued), "x-hub-signature-256": "sha256=zz" })).status).toBe(401);
    // Signed over different bytes than sent.
    expect((await post(`${queued} `, ghHeaders(queued))).status).toBe(401);
    expect(calls).toHaveLength(0);
  });

  it("accepts any of the configured secrets, for rotation", async () => {
    const { post, calls } = setup();
    const res = await post(queued, { ...ghHeaders(queued), "x-hub-signature-256": sign(queued, "rotated-secret") });
    expect(res.status).toBe(200);
    expect(calls).toHaveLength(1);
  });

  it("answers 400 for missing GitHub headers, malformed JSON or an invalid payload", async () => {
    const { post, calls } = setup();
    expect((await post(queued, { "x-hub-signature-256": sign(queued), "x-github-delivery": "d" })).status).toBe(400);
    expect((await post(queued, { "x-hub-signature-256": sign(queued), "x-github-event": "workflow_job" })).status).toBe(400);
    const broken = "{not json";
    expect((await post(broken, ghHeaders(broken))).status).toBe(400);
    const invalid = JSON.stringify({ action: "queued", workflow_job: { id: "x" } });
    const res = await post(invalid, ghHeaders(invalid));
    expect(res.status).toBe(400);
    // In English even with no config loaded (zod/mini has no messages of its own).
    expect(((await res.json()) as { error: string }).error).toBe(
      "invalid workflow_job payload: workflow_job.id: Invalid input: expected number, received string",
    );
    expect(calls).toHaveLength(0);
  });

  it("answers 413 above the body limit", async () => {
    const { post, calls } = setup();
    const big = JSON.stringify({ pad: "x".repeat(70 * 1024) });
    expect((await post(big, ghHeaders(big))).status).toBe(413);
    expect(calls).toHaveLength(0);
  });

  it("over HTTP, decides 413 from Content-Length and still accepts bodies up to the limit", async () => {
    const { app, calls } = setup();
    const { serve } = await import("@hono/node-server");
    const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
      const s = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, () => resolve(s));
    });
    try {
      const { port } = server.address() as { port: number };
      const send = (body: string, extra: Record<string, string> = {}) =>
        fetch(`http://127.0.0.1:${port}/webhook`, { method: "POST", body, headers: { "content-type": "application/json", ...ghHeaders(body), ...extra } });
      const big = JSON.stringify({ pad: "x".repeat(70 * 1024) });
      expect((await send(big)).status).toBe(413);
      expect((await send(queued)).status).toBe(200);
      expect(calls).toHaveLength(1);
      // Chunked, without Content-Length: read up to the limit and no further.
      const chunked = (body: string) =>
        fetch(`http://127.0.0.1:${port}/webhook`, {
          method: "POST",
          body: new Blob([body]).stream(),
          duplex: "half",
          headers: { "content-type": "application/json", ...ghHeaders(body) },
        } as RequestInit);
      expect((await chunked(big)).status).toBe(413);
      expect((await chunked(queued)).status).toBe(200);
      expect(calls).toHaveLength(2);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it("answers ping and unhandled events with 2xx and does nothing", async () => {
    const { post, calls } = setup();
    const ping = JSON.stringify({ zen: "Keep it logically awesome.", hook_id: 1 });
    expect(await (await post(ping, ghHeaders(ping, "ping"))).json()).toEqual({ outcome: "pong" });
    const push = JSON.stringify({ ref: "refs/heads/main" });
    const res = await post(push, ghHeaders(push, "push"));
    expect(res.status).toBe(200);
    const unknownAction = JSON.stringify({ action: "future_action", workflow_job: {} });
    expect((await post(unknownAction, ghHeaders(unknownAction))).status).toBe(200);
    expect(calls).toHaveLength(0);
  });

  it("maps handler outcomes: dispatched 200, deferred 202, transient failure 503", async () => {
    let next: () => Promise<EventOutcome> = async () => ({ outcome: "dispatched", runner: "r", nomadJobId: "j" });
    const { post } = setup(() => next());
    expect((await post(queued, ghHeaders(queued))).status).toBe(200);
    next = async () => ({ outcome: "deferred", runner: "r", reason: "limit" });
    expect((await post(queued, ghHeaders(queued))).status).toBe(202);
    const { DependencyError } = await import("../../src/core/errors.js");
    next = async () => {
      throw new DependencyError("nomad", "Nomad down", 500, true);
    };
    const res = await post(queued, ghHeaders(queued));
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ retry: true });
  });
});

describe("health endpoints", () => {
  it("serves /healthz and /readyz", async () => {
    const { app } = setup();
    expect((await app.request("/healthz")).status).toBe(200);
    expect((await app.request("/readyz")).status).toBe(200);
    expect((await app.request("/nope")).status).toBe(404);
  });
});
