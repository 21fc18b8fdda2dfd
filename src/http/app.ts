import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { errorMessage, isTransient } from "../core/errors.js";
import type { JobEvent } from "../core/job-event.js";
import { parseWorkflowJob, readDeliveryHeaders, type WebhookVerifier } from "../github/webhook.js";
import type { EventOutcome } from "../intake/event-handler.js";
import type { Logger } from "../log.js";

export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, { ok: boolean; detail?: string }>;
}

/** Counters and timings of webhook deliveries (Prometheus in production). */
export interface DeliveryMetrics {
  delivery(event: string, outcome: string): void;
  /** A workflow_job delivery was handled (or failed) after `seconds`. */
  handled?(seconds: number): void;
  failed?(err: unknown): void;
}

export interface AppOptions {
  verifier: WebhookVerifier;
  /** Synchronous when nothing needs doing for the event. */
  handle: (event: JobEvent) => EventOutcome | Promise<EventOutcome>;
  readiness: () => Promise<ReadinessReport>;
  bodyLimitBytes: number;
  log: Logger;
  metrics?: DeliveryMetrics;
}

/**
 * The public surface: what the tunnel routes to. The webhook route verifies the signature over
 * the raw body before it looks at anything else, so an unsigned request costs one HMAC.
 */
export function createApp(opts: AppOptions): Hono {
  const app = new Hono();
  const { log } = opts;
  // The event name comes from the sender: only names we know become label values, so that a
  // flood of made-up X-GitHub-Event values cannot create metric series without bound.
  const count = (event: string, outcome: string) => opts.metrics?.delivery(KNOWN_EVENTS.has(event) ? event : "other", outcome);

  const limit = bodyLimiter(opts.bodyLimitBytes, () => count("unknown", "too_large"));

  const receive = async (c: Context): Promise<Response> => {
    const raw = await c.req.text();
    if (!(await opts.verifier.verify(raw, c.req.header("x-hub-signature-256")))) {
      count("unknown", "bad_signature");
      log.warn({ delivery: c.req.header("x-github-delivery") }, "webhook rejected: bad or missing signature");
      return c.json({ error: "invalid or missing X-Hub-Signature-256" }, 401);
    }
    const headers = readDeliveryHeaders((name) => c.req.header(name));
    if (typeof headers === "string") {
      count("unknown", "bad_request");
      return c.json({ error: headers }, 400);
    }
    let payload: unknown;
    try {
      payload = JSON.parse(raw);
    } catch {
      count(headers.event, "bad_request");
      return c.json({ error: "body is not valid JSON" }, 400);
    }
    if (headers.event === "ping") {
      count("ping", "pong");
      return c.json({ outcome: "pong" });
    }
    if (headers.event !== "workflow_job") {
      count(headers.event, "ignored");
      return c.json({ outcome: "ignored", reason: `event ${headers.event} is not handled` });
    }
    const parsed = parseWorkflowJob(payload);
    if (parsed.ok === "ignore") {
      count(headers.event, "ignored");
      return c.json({ outcome: "ignored", reason: parsed.reason });
    }
    if (!parsed.ok) {
      count(headers.event, "bad_request");
      return c.json({ error: parsed.error }, 400);
    }
    const started = performance.now();
    try {
      const result = await opts.handle(parsed.event);
      opts.metrics?.handled?.((performance.now() - started) / 1000);
      count(headers.event, result.outcome);
      return c.json(result, result.outcome === "in-flight" || result.outcome === "deferred" ? 202 : 200);
    } catch (err) {
      // GitHub marks the delivery failed; the job is still queued at GitHub, so the reconciler
      // (or a redelivery) picks it up once the dependency is back.
      opts.metrics?.failed?.(err);
      const transient = isTransient(err);
      count(headers.event, transient ? "retry_later" : "error");
      log.error({ delivery: headers.id, job: parsed.event.job.id, err: errorMessage(err) }, "webhook handling failed");
      // The answer travels through the tunnel to whoever sent the request: no internal detail
      // (hosts, paths, dependency errors); those are in the log and the metrics.
      return c.json(
        { error: transient ? "temporarily unavailable; the job stays queued and will be served" : "internal error", retry: transient },
        transient ? 503 : 500,
      );
    }
  };

  app.post("/webhook", (c) => limit(c, receive));

  app.get("/healthz", (c) => c.json({ status: "ok" }));

  // Public: which checks fail, not why (the why is on the metrics listener's /readyz).
  app.get("/readyz", async (c) => {
    const report = await opts.readiness();
    return c.json(withoutDetail(report), report.ready ? 200 : 503);
  });

  app.notFound((c) => c.json({ error: "not found" }, 404));
  app.onError((err, c) => {
    log.error({ err: errorMessage(err) }, "unhandled error");
    return c.json({ error: "internal error" }, 500);
  });
  return app;
}

/** Events whose names may become metric labels; any other name is counted as "other". */
const KNOWN_EVENTS = new Set([
  "workflow_job",
  "ping",
  "unknown",
  "push",
  "pull_request",
  "workflow_run",
  "check_run",
  "check_suite",
  "installation",
  "installation_repositories",
]);

export function withoutDetail(report: ReadinessReport): ReadinessReport {
  return { ready: report.ready, checks: Object.fromEntries(Object.entries(report.checks).map(([name, check]) => [name, { ok: check.ok }])) };
}

/**
 * 413 for bodies over `maxBytes`. GitHub sends Content-Length, and Node's HTTP parser reads no
 * more than that, so the header decides without touching the body, synchronously: Hono's
 * bodyLimit asks for the request's web stream, which on @hono/node-server builds a full Request
 * per delivery, and as a middleware it adds an async step to every delivery. Streamed (chunked)
 * bodies still go through bodyLimit, which reads them up to the limit.
 */
function bodyLimiter(maxBytes: number, onTooLarge: () => void): (c: Context, then: (c: Context) => Promise<Response>) => Response | Promise<Response> {
  const tooLarge = (c: Context) => {
    onTooLarge();
    return c.json({ error: `body exceeds ${maxBytes} bytes` }, 413);
  };
  const streamed = bodyLimit({ maxSize: maxBytes, onError: tooLarge });
  return (c, then) => {
    const length = c.req.header("content-length");
    if (length === undefined || c.req.header("transfer-encoding") !== undefined) {
      let answer: Response | undefined;
      return streamed(c, async () => {
        answer = await then(c);
      }).then((refused) => answer ?? refused ?? c.json({ error: "internal error" }, 500));
    }
    const bytes = Number(length);
    if (!Number.isSafeInteger(bytes) || bytes < 0) return c.json({ error: "invalid Content-Length" }, 400);
    if (bytes > maxBytes) return tooLarge(c);
    return then(c);
  };
}
