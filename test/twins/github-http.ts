// The GitHub twin's REST front: routing under /api/v3 (the twin is laid out like GitHub
// Enterprise Server: web host at the root, REST API at /api/v3), fault injection, the
// X-GitHub-Api-Version check, authentication, rate limits, conditional requests, GitHub's
// response headers, contract validation against the OpenAPI, and recording of every exchange.

import { createHash, randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { type FaultPlan, holdUntil, type RecordedRequest } from "./contract.js";
import type { Credentials, Principal } from "./github-auth.js";
import { JWT_DECODE_ERROR } from "./github-auth.js";
import type { RateLimiter } from "./github-ratelimit.js";
import type { Reply, Route, RouteContext } from "./github-rest.js";
import { gitHubError, principalHasPermission, selectApiVersion } from "./github-rest.js";
import { gitHubOperation, validateGitHubRequest, validateGitHubResponse } from "./openapi.js";

export interface HttpFrontOptions {
  routes: Route[];
  credentials: Credentials;
  limiter: RateLimiter;
  faults: FaultPlan;
  requests: RecordedRequest[];
  contractViolations: string[];
  validate: boolean;
  clock: () => number;
  lifetime: AbortSignal;
  /** The twin's web base URL, e.g. http://127.0.0.1:1234 (known once it listens). */
  baseUrl: () => string;
}

interface Handled {
  reply: Reply;
  route: Route | undefined;
  principal: Principal | undefined;
  /** Parsed request body, for request validation. */
  body: unknown;
}

/** Where GitHub Enterprise Server serves the REST API ("http(s)://[hostname]/api/v3"). */
export const GHES_PREFIX = "/api/v3";
const SECONDARY_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits";
const PRIMARY_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-primary-rate-limits";

export function isApiPath(pathname: string): boolean {
  return pathname === GHES_PREFIX || pathname.startsWith(`${GHES_PREFIX}/`);
}

function stripGhesPrefix(pathname: string): string {
  return isApiPath(pathname) ? pathname.slice(GHES_PREFIX.length) || "/" : pathname;
}

/** Like GitHub's: five colon-separated hex groups. */
export function newRequestId(): string {
  const hex = (bytes: number) => randomBytes(bytes).toString("hex").toUpperCase();
  return `${hex(2)}:${hex(3)}:${hex(4)}:${hex(4)}:${Math.floor(Date.now() / 1000)
    .toString(16)
    .toUpperCase()}`;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function flatHeaders(headers: IncomingMessage["headers"]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined) out[name] = Array.isArray(value) ? value.join(", ") : value;
  return out;
}

/** `{name}` segments of a route template, or undefined when `path` is not that route. */
export function matchTemplate(template: string, path: string): Record<string, string> | undefined {
  const parts = template.split("/");
  const segments = path.split("/");
  if (parts.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (const [i, part] of parts.entries()) {
    const segment = segments[i] ?? "";
    if (part.startsWith("{")) {
      if (segment === "") return undefined;
      params[part.slice(1, -1)] = decodeURIComponent(segment);
    } else if (part !== segment) return undefined;
  }
  return params;
}

function etagMatches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  const strip = (tag: string) => tag.trim().replace(/^W\//, "");
  return ifNoneMatch.split(",").some((tag) => tag.trim() === "*" || strip(tag) === strip(etag));
}

export class GitHubHttpFront {
  constructor(private readonly o: HttpFrontOptions) {}

  readonly handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const arrived = performance.now();
    const at = this.o.clock();
    const method = (req.method ?? "GET").toUpperCase();
    const rawUrl = req.url ?? "/";
    const url = new URL(rawUrl, this.o.baseUrl());
    const path = stripGhesPrefix(url.pathname);
    const bodyText = await readBody(req);
    const headers = flatHeaders(req.headers);
    const requestId = newRequestId();

    const fault = this.o.faults.intercept?.({ method, path });
    if (fault && "status" in fault) {
      await holdUntil(arrived + (fault.delayMs ?? 0), this.o.lifetime);
      this.send(res, { method, rawUrl, headers, bodyText, at }, fault.status, { "x-github-request-id": requestId, ...fault.headers }, fault.body);
      return;
    }

    const apiVersion = selectApiVersion(headers["x-github-api-version"]);
    const handled =
      "reply" in apiVersion
        ? { reply: apiVersion.reply, route: undefined, principal: undefined, body: undefined }
        : await this.process({
            method,
            url,
            path,
            headers,
            bodyText,
            requestId,
            answerAt: arrived + (fault?.delayMs ?? 0),
            remote: req.socket.remoteAddress ?? "127.0.0.1",
          });
    let { reply } = handled;
    const key = handled.principal?.key ?? `ip:${req.socket.remoteAddress ?? "127.0.0.1"}`;
    let text = reply.body === undefined ? "" : JSON.stringify(reply.body);
    const selected = "version" in apiVersion ? apiVersion.version : undefined;
    const responseHeaders: Record<string, string> = { ...this.standardHeaders(requestId, handled.principal, selected), ...reply.headers };
    if (method === "GET" && reply.status === 200) {
      const etag = `W/"${createHash("sha256").update(text).digest("hex")}"`;
      responseHeaders["etag"] = etag;
      if (etagMatches(headers["if-none-match"], etag)) {
        // A conditional hit is free under the primary limit.
        this.o.limiter.refundPrimary(key);
        reply = { status: 304 };
        text = "";
      }
    }
    Object.assign(responseHeaders, this.rateLimitHeaders(key));
    if (text !== "") responseHeaders["content-type"] = "application/json; charset=utf-8";
    if (this.o.validate && selected !== undefined) this.checkContract(method, url, path, handled, reply.status, text);
    this.send(res, { method, rawUrl, headers, bodyText, at }, reply.status, responseHeaders, text);
  };

  private async process(r: {
    method: string;
    url: URL;
    path: string;
    headers: Record<string, string>;
    bodyText: string;
    requestId: string;
    /** performance.now() time the answer may leave: the injected latency counts from arrival. */
    answerAt: number;
    remote: string;
  }): Promise<Handled> {
    // An injected delay slows refusals down too, as a slow GitHub would.
    const refuse = async (handled: Handled) => {
      await holdUntil(r.answerAt, this.o.lifetime);
      return handled;
    };
    const auth = this.o.credentials.authenticate(r.headers["authorization"], r.remote);
    const found = this.findRoute(r.method, r.path);
    if (!auth.ok) return refuse({ reply: gitHubError(401, auth.message), route: found?.route, principal: undefined, body: undefined });
    const principal = auth.principal;
    if (!found) return refuse({ reply: gitHubError(404, "Not Found"), route: undefined, principal, body: undefined });
    const { route, params } = found;
    const denied = authorize(route, principal);
    if (denied) return refuse({ reply: denied, route, principal, body: undefined });

    const admission = this.o.limiter.admit(principal.key, r.method);
    if (!admission.ok) return { reply: secondaryLimitReply(r.requestId, admission.retryAfterSeconds), route, principal, body: undefined };
    try {
      const handled = await this.execute(r, route, params, principal);
      // In flight (for the concurrency limit) until the answer leaves.
      await holdUntil(r.answerAt, this.o.lifetime);
      return handled;
    } finally {
      admission.release();
    }
  }

  private async execute(r: { url: URL; bodyText: string }, route: Route, params: Record<string, string>, principal: Principal): Promise<Handled> {
    if (!route.free && !this.o.limiter.consumePrimary(principal.key)) return { reply: primaryLimitReply(principal), route, principal, body: undefined };
    let body: unknown;
    if (r.bodyText.trim() !== "") {
      try {
        body = JSON.parse(r.bodyText);
      } catch {
        return { reply: gitHubError(400, "Problems parsing JSON", route.docs), route, principal, body: r.bodyText };
      }
    }
    const ctx: RouteContext = { params, query: r.url.searchParams, body, principal, url: r.url };
    return { reply: await route.handle(ctx), route, principal, body };
  }

  /** Literal segments win over parameters (`.../runners/generate-jitconfig` over `.../runners/{runner_id}`). */
  private findRoute(method: string, path: string): { route: Route; params: Record<string, string> } | undefined {
    let best: { route: Route; params: Record<string, string>; literals: number } | undefined;
    for (const route of this.o.routes) {
      if (route.method !== method) continue;
      const params = matchTemplate(route.template, path);
      if (!params) continue;
      const literals = route.template.split("/").filter((s) => !s.startsWith("{")).length;
      if (!best || literals > best.literals) best = { route, params, literals };
    }
    return best && { route: best.route, params: best.params };
  }

  private standardHeaders(requestId: string, principal: Principal | undefined, apiVersion: string | undefined): Record<string, string> {
    const headers: Record<string, string> = {
      "x-github-request-id": requestId,
      "x-github-media-type": "github.v3; format=json",
      vary: "Accept, Authorization, Cookie, X-GitHub-OTP",
    };
    if (apiVersion !== undefined) headers["x-github-api-version-selected"] = apiVersion;
    if (principal?.kind === "user") {
      headers["x-oauth-scopes"] = "admin:org, repo";
      headers["x-accepted-oauth-scopes"] = "";
    }
    return headers;
  }

  private rateLimitHeaders(key: string): Record<string, string> {
    const status = this.o.limiter.primaryStatus(key);
    return {
      "x-ratelimit-limit": String(status.limit),
      "x-ratelimit-remaining": String(status.remaining),
      "x-ratelimit-reset": String(status.reset),
      "x-ratelimit-used": String(status.used),
      "x-ratelimit-resource": "core",
    };
  }

  private checkContract(method: string, url: URL, path: string, handled: Handled, status: number, text: string): void {
    const pathAndQuery = `${path}${url.search}`;
    try {
      if (!handled.route) {
        const operation = gitHubOperation(method, path);
        if (operation) this.o.contractViolations.push(`twin: ${method} ${operation.template} exists in GitHub's API but the twin does not implement it`);
        else this.o.contractViolations.push(`request: ${method} ${path}: no such operation in the GitHub OpenAPI`);
        return;
      }
      const body = handled.body === undefined ? undefined : handled.body;
      for (const problem of validateGitHubRequest(method, pathAndQuery, body)) this.o.contractViolations.push(`request: ${problem}`);
      for (const problem of validateGitHubResponse(method, handled.route.template, status, text)) this.o.contractViolations.push(`response: ${problem}`);
    } catch (error) {
      this.o.contractViolations.push(`validator failed on ${method} ${path}: ${String(error)}`);
    }
  }

  private send(
    res: ServerResponse,
    request: { method: string; rawUrl: string; headers: Record<string, string>; bodyText: string; at: number },
    status: number,
    headers: Record<string, string>,
    body: string,
  ): void {
    this.o.requests.push({
      method: request.method,
      url: request.rawUrl,
      headers: request.headers,
      body: request.bodyText,
      status,
      response: body,
      at: request.at,
    });
    res.writeHead(status, { ...headers, "content-length": String(Buffer.byteLength(body)) });
    res.end(body);
  }
}

/** Which credentials a route takes, with GitHub's answers for the wrong kind. */
function authorize(route: Route, principal: Principal): Reply | undefined {
  const kind = principal.kind;
  if (route.auth === "any") return undefined;
  if (route.auth === "app") return kind === "app" ? undefined : gitHubError(401, JWT_DECODE_ERROR);
  if (kind === "anonymous") return gitHubError(401, "Requires authentication", route.docs);
  if (kind === "app") return gitHubError(401, "Bad credentials");
  if (route.auth === "user" && kind !== "user") return gitHubError(403, "Resource not accessible by integration", route.docs);
  if (route.auth === "installation" && kind !== "installation") {
    return gitHubError(403, "You must authenticate with an installation access token in order to list repositories for an installation.", route.docs);
  }
  if (route.permission && !principalHasPermission(principal, route.permission)) {
    return gitHubError(403, "Resource not accessible by integration", route.docs);
  }
  return undefined;
}

function secondaryLimitReply(requestId: string, retryAfterSeconds: number): Reply {
  return {
    status: 403,
    headers: { "retry-after": String(retryAfterSeconds) },
    body: {
      message: `You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID ${requestId}.`,
      documentation_url: SECONDARY_DOCS,
    },
  };
}

function primaryLimitReply(principal: Principal): Reply {
  const who =
    principal.kind === "user"
      ? `user ID ${principal.user.id}`
      : principal.kind === "installation"
        ? `installation ID ${principal.installation.id}`
        : principal.kind === "app"
          ? `app ID ${principal.app.id}`
          : principal.key.replace(/^ip:/, "");
  return gitHubError(403, `API rate limit exceeded for ${who}.`, PRIMARY_DOCS);
}
