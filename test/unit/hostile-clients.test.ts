import { createHmac } from "node:crypto";
import type { Server } from "node:http";
import { connect, type Socket } from "node:net";
import { serve } from "@hono/node-server";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { DependencyError } from "../../src/core/errors.js";
import type { JobEvent } from "../../src/core/job-event.js";
import { WebhookVerifier } from "../../src/github/webhook.js";
import { createApp, type ReadinessReport } from "../../src/http/app.js";
import { guardIdleConnections, type ListenerLimits, listenerOptions } from "../../src/http/listener.js";
import type { EventOutcome } from "../../src/intake/event-handler.js";
import { createLogger } from "../../src/log.js";

// What strangers on the internet can do to the listener the tunnel exposes.

const SECRET = "hostile-clients-test-secret";
const sign = (body: string | Buffer) => `sha256=${createHmac("sha256", SECRET).update(body).digest("hex")}`;

function world(handle: () => Promise<EventOutcome> = async () => ({ outcome: "ignored", reason: "test" }), readiness?: () => Promise<ReadinessReport>) {
  const handled: JobEvent[] = [];
  const deliveries: Array<{ event: string; outcome: string }> = [];
  const app = createApp({
    verifier: new WebhookVerifier([SECRET]),
    handle: (event) => {
      handled.push(event);
      return handle();
    },
    readiness: readiness ?? (async () => ({ ready: true, checks: {} })),
    bodyLimitBytes: 64 * 1024,
    log: createLogger({ level: "silent" }),
    metrics: { delivery: (event, outcome) => deliveries.push({ event, outcome }) },
  });
  return { app, handled, deliveries };
}

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

/** The app on a real socket, with the listener limits the service uses (or shorter ones). */
async function listening(app: ReturnType<typeof world>["app"], limits?: ListenerLimits): Promise<number> {
  return new Promise((resolve) => {
    const server = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0, serverOptions: listenerOptions(limits) }, (info) => resolve(info.port)) as Server;
    guardIdleConnections(server, limits);
    servers.push(server);
  });
}

function closed(socket: Socket): Promise<number> {
  const started = Date.now();
  return new Promise((resolve) => {
    socket.on("error", () => {});
    socket.on("close", () => resolve(Date.now() - started));
  });
}

describe("a body over the limit", () => {
  for (const framing of ["Content-Length", "chunked"] as const) {
    it(`gets a 413 the sender can read while it is still sending (${framing}), and nothing is handled`, async () => {
      const { app, handled } = world();
      const port = await listening(app);
      const socket = connect(port, "127.0.0.1");
      let answer = "";
      let reset = false;
      socket.on("data", (data) => {
        answer += data;
      });
      socket.on("error", () => {
        reset = true;
      });
      const ended = closed(socket);
      socket.write(
        `POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${framing === "chunked" ? "Transfer-Encoding: chunked" : "Content-Length: 10000000"}\r\n\r\n`,
      );
      const chunk = "x".repeat(16 * 1024);
      for (let sent = 0; sent < 1024 * 1024 && !socket.destroyed; sent += chunk.length) {
        const frame = framing === "chunked" ? `${chunk.length.toString(16)}\r\n${chunk}\r\n` : chunk;
        if (!socket.write(frame)) await new Promise((resolve) => socket.once("drain", resolve));
      }
      socket.end();
      await ended;
      expect(reset).toBe(false);
      expect(answer.split("\r\n")[0]).toBe("HTTP/1.1 413 Payload Too Large");
      expect(answer).toContain("body exceeds 65536 bytes");
      expect(handled).toEqual([]);
    });
  }
});

describe("slow and idle connections", () => {
  const SHORT: ListenerLimits = { headersMs: 600, requestMs: 1_200, idleMs: 800, maxHeaderBytes: 16 * 1024 };

  it("closes connections that never send a byte, or trickle their headers or body, within the limits", async () => {
    const { app, handled } = world();
    const port = await listening(app, SHORT);
    const idle = Array.from({ length: 100 }, () => connect(port, "127.0.0.1"));
    const idleClosed = Promise.all(idle.map(closed));
    const trickle = (head: string, drip: string) => {
      const socket = connect(port, "127.0.0.1");
      const done = closed(socket);
      socket.write(head);
      const timer = setInterval(() => !socket.destroyed && socket.write(drip), 100);
      return done.finally(() => clearInterval(timer));
    };
    const slowHeaders = trickle("POST /webhook HTTP/1.1\r\nHost: x\r\n", "X-Padding: y\r\n");
    const slowBody = trickle("POST /webhook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", "1\r\nx\r\n");
    const idleAfter = Math.max(...(await idleClosed));
    // Node checks these timeouts on an interval: allow one interval and a loaded machine's delay.
    expect(idleAfter).toBeLessThan(SHORT.idleMs + 5_000);
    expect(await slowHeaders).toBeLessThan(SHORT.headersMs + 5_000);
    expect(await slowBody).toBeLessThan(SHORT.requestMs + 5_000);
    expect(handled).toEqual([]);
  });

  it("are what the service's listener is given: 10 s for headers, 30 s per request and of silence", () => {
    expect(listenerOptions()).toMatchObject({ headersTimeout: 10_000, requestTimeout: 30_000, maxHeaderSize: 16 * 1024 });
  });

  it("answers huge headers with 431, not a 5xx", async () => {
    const { app, handled } = world();
    const port = await listening(app);
    const res = await fetch(`http://127.0.0.1:${port}/webhook`, { method: "POST", body: "{}", headers: { "x-padding": "y".repeat(32 * 1024) } }).catch(
      (err: unknown) => err,
    );
    // undici may see the connection close before it reads the answer; either way no 5xx and nothing handled.
    if (res instanceof Response) expect(res.status).toBe(431);
    expect(handled).toEqual([]);
  });
});

describe("fuzzed deliveries", () => {
  const header = fc.oneof(fc.constant(undefined), fc.string(), fc.stringMatching(/^sha256=[0-9a-f]{64}$/));
  const body = fc.oneof(
    fc.string(),
    fc.json(),
    fc.uint8Array({ maxLength: 512 }).map((bytes) => Buffer.from(bytes)),
  );

  it("never answer 5xx and never reach the handler, signed or not, whatever the headers and bytes", async () => {
    const { app, handled } = world();
    await fc.assert(
      fc.asyncProperty(body, header, header, header, fc.boolean(), async (payload, event, delivery, signature, signed) => {
        const headers: Record<string, string> = { "content-type": "application/json" };
        if (event !== undefined) headers["x-github-event"] = event.replace(/[^\x21-\x7e]/g, "");
        if (delivery !== undefined) headers["x-github-delivery"] = delivery.replace(/[^\x21-\x7e]/g, "");
        const sig = signed ? sign(payload) : signature;
        if (sig !== undefined) headers["x-hub-signature-256"] = sig.replace(/[^\x21-\x7e]/g, "");
        const res = await app.request("/webhook", { method: "POST", body: payload, headers });
        expect(res.status).toBeGreaterThanOrEqual(200);
        expect(res.status).toBeLessThan(500);
      }),
      { numRuns: 400 },
    );
    // Random bytes are never a valid workflow_job payload: nothing was handled.
    expect(handled).toEqual([]);
  });

  it("count made-up event names as one bounded label", async () => {
    const { app, deliveries } = world();
    for (let i = 0; i < 50; i++) {
      const payload = JSON.stringify({ n: i });
      await app.request("/webhook", {
        method: "POST",
        body: payload,
        headers: { "x-github-event": `made-up-${i}`, "x-github-delivery": `d${i}`, "x-hub-signature-256": sign(payload) },
      });
    }
    expect(new Set(deliveries.map((d) => d.event))).toEqual(new Set(["other"]));
  });
});

describe("answers that travel through the tunnel", () => {
  const queued = JSON.stringify({
    action: "queued",
    workflow_job: { id: 7, run_id: 8, status: "queued", conclusion: null, labels: ["self-hosted"], runner_name: null, created_at: "2026-12-01T00:00:00Z" },
    repository: { name: "app", owner: { login: "acme" } },
  });

  it("carry no internal detail: a failing dependency is a plain 503", async () => {
    const { app } = world(async () => {
      throw new DependencyError("vault", "Vault at https://vault.internal:8200 answered 503: sealed", 503, true);
    });
    const res = await app.request("/webhook", {
      method: "POST",
      body: queued,
      headers: { "x-github-event": "workflow_job", "x-github-delivery": "d", "x-hub-signature-256": sign(queued) },
    });
    expect(res.status).toBe(503);
    const text = await res.text();
    expect(text).not.toContain("vault.internal");
    expect(text).not.toContain("sealed");
    expect(JSON.parse(text)).toMatchObject({ retry: true });
  });

  it("/readyz says which check fails, not why", async () => {
    const { app } = world(undefined, async () => ({
      ready: false,
      checks: { vault: { ok: false, detail: "https://vault.internal:8200: sealed" }, nomad: { ok: true } },
    }));
    const res = await app.request("/readyz");
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ ready: false, checks: { vault: { ok: false }, nomad: { ok: true } } });
  });
});
