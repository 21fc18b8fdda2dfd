// The GitHub twin's runner-facing HTTP surface: what a runner process talks to, as opposed to the
// REST API a service calls. On GitHub these are the runner-admin calls `config.sh` makes with
// `Authorization: RemoteAuth <token>` (under the API host), the OAuth token exchange, the broker
// the listener long-polls and the run service it acquires jobs from (separate hosts on
// github.com, `/_services/...` on GitHub Enterprise Server), and release downloads for
// self-updates. None of it is in GitHub's OpenAPI, so none of it is contract-validated.
//
// Its exchanges are recorded apart from the REST ones (`runnerRequests`), and its faults are
// injected through their own plan (`runnerFaults`): tests that count or break the service's
// GitHub calls are not disturbed by runners polling.

import type { IncomingMessage, ServerResponse } from "node:http";
import { type FaultPlan, holdUntil, type RecordedRequest } from "./contract.js";
import { matchTemplate, newRequestId } from "./github-http.js";

export interface RunnerCall {
  method: string;
  /** Path without the query, e.g. `/_services/broker/message`. */
  path: string;
  params: Record<string, string>;
  query: URLSearchParams;
  headers: Record<string, string>;
  text: string;
  /** Aborts when the caller goes away (a long poll whose runner was killed) or the twin closes. */
  signal: AbortSignal;
}

export interface RunnerReply {
  status: number;
  headers?: Record<string, string>;
  /** JSON-encoded unless a string (sent as is). */
  body?: unknown;
  /** Told whether the answer reached the caller (a job handed to a runner that just died must go back). */
  after?: (delivered: boolean) => void;
}

export interface RunnerRoute {
  method: string;
  /** Full path template, e.g. `/api/v3/actions/runner-registration` or `/_services/broker/session`. */
  template: string;
  /** Taken only with `Authorization: RemoteAuth ...` (these share their paths with REST routes). */
  remoteAuth?: boolean;
  handle: (call: RunnerCall) => RunnerReply | Promise<RunnerReply>;
}

export interface RunnerSurfaceOptions {
  routes: RunnerRoute[];
  faults: FaultPlan;
  requests: RecordedRequest[];
  clock: () => number;
  lifetime: AbortSignal;
}

export function jsonBody(call: RunnerCall): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(call.text);
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export class RunnerSurface {
  constructor(private readonly o: RunnerSurfaceOptions) {}

  /** The route that takes this request, if the runner surface serves it. */
  private find(method: string, path: string, authorization: string | undefined): { route: RunnerRoute; params: Record<string, string> } | undefined {
    const remoteAuth = /^RemoteAuth\s/i.test(authorization ?? "");
    for (const route of this.o.routes) {
      if (route.method !== method || (route.remoteAuth && !remoteAuth)) continue;
      const params = matchTemplate(route.template, path);
      if (params) return { route, params };
    }
    return undefined;
  }

  claims(req: IncomingMessage): boolean {
    const path = new URL(req.url ?? "/", "http://twin").pathname;
    return this.find((req.method ?? "GET").toUpperCase(), path, req.headers.authorization) !== undefined;
  }

  readonly handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const arrived = performance.now();
    const at = this.o.clock();
    const method = (req.method ?? "GET").toUpperCase();
    const rawUrl = req.url ?? "/";
    const url = new URL(rawUrl, "http://twin");
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(", ") : value;
    const record = (status: number, response: string) => this.o.requests.push({ method, url: rawUrl, headers, body: text, status, response, at });

    const fault = this.o.faults.intercept?.({ method, path: url.pathname });
    if (fault && "status" in fault) {
      await holdUntil(arrived + (fault.delayMs ?? 0), this.o.lifetime);
      record(fault.status, fault.body);
      res.writeHead(fault.status, { ...fault.headers, "content-length": String(Buffer.byteLength(fault.body)) });
      res.end(fault.body);
      return;
    }
    if (fault?.delayMs) await holdUntil(arrived + fault.delayMs, this.o.lifetime);

    const found = this.find(method, url.pathname, headers["authorization"]);
    if (!found) throw new Error(`runner surface dispatched ${method} ${url.pathname} without a route`);
    // A caller that hangs up (its process was killed) ends its long poll.
    const gone = new AbortController();
    res.once("close", () => gone.abort());
    const signal = AbortSignal.any([gone.signal, this.o.lifetime]);
    const reply = await found.route.handle({ method, path: url.pathname, params: found.params, query: url.searchParams, headers, text, signal });
    const body = reply.body === undefined ? "" : typeof reply.body === "string" ? reply.body : JSON.stringify(reply.body);
    record(reply.status, body);
    const delivered = !res.destroyed && !req.socket.destroyed;
    if (delivered) {
      const type = typeof reply.body === "string" ? "text/plain; charset=utf-8" : "application/json; charset=utf-8";
      const headers = { "x-github-request-id": newRequestId(), ...(body === "" ? {} : { "content-type": type }), ...reply.headers };
      res.writeHead(reply.status, { ...headers, "content-length": String(Buffer.byteLength(body)) });
      res.end(body);
    }
    reply.after?.(delivered);
  };
}
