import { STATUS_CODES } from "node:http";
import { Agent, type Dispatcher, interceptors } from "undici";

/** What Octokit passes to `fetch` (@octokit/request): a URL string and these options. */
interface OctokitFetchInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string | null;
  signal?: AbortSignal | null;
}

/** What @octokit/request reads of the answer: status(Text), url, headers (iterated, get()), text(), arrayBuffer(). */
export interface OctokitFetchResponse {
  status: number;
  statusText: string;
  url: string;
  headers: Map<string, string>;
  text(): Promise<string>;
  arrayBuffer(): Promise<ArrayBuffer>;
}

const MAX_REDIRECTIONS = 5;

/**
 * A GitHub that accepts a request and never answers must not hold a dispatch (or a shutdown) for
 * undici's default of 300 s: the request fails, and the job waits for the next attempt.
 */
export const GITHUB_REQUEST_TIMEOUT_MS = 30_000;

/** The keep-alive agent GitHub's requests go through, with their timeouts. */
export function githubAgent(timeoutMs = GITHUB_REQUEST_TIMEOUT_MS): Agent {
  return new Agent({ keepAliveTimeout: 30_000, connections: 128, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
}

/**
 * The `fetch` Octokit is given: undici's request API on our keep-alive agent, the answer read
 * whole (GitHub's REST answers are small JSON). Not undici's fetch: it keeps every Response behind
 * a WeakRef and a FinalizationRegistry, which V8's young-generation collector treats as strong
 * references, so every response outlived the collections after it, was promoted and then stayed
 * until the next full collection.
 * Redirects are followed as fetch does (a renamed repository answers 301).
 */
export function octokitFetch(agent: Dispatcher): (url: string, init?: OctokitFetchInit) => Promise<OctokitFetchResponse> {
  const following = agent.compose(interceptors.redirect({ maxRedirections: MAX_REDIRECTIONS }));
  return async (url, init = {}) => {
    const target = new URL(url);
    const res = await following.request({
      origin: target.origin,
      path: `${target.pathname}${target.search}`,
      method: (init.method ?? "GET").toUpperCase() as Dispatcher.HttpMethod,
      headers: init.headers,
      body: init.body ?? undefined,
      signal: init.signal ?? undefined,
    });
    const bytes = Buffer.from(await res.body.arrayBuffer());
    const headers = new Map<string, string>();
    for (const [name, value] of Object.entries(res.headers)) {
      if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(", ") : value);
    }
    return {
      status: res.statusCode,
      statusText: STATUS_CODES[res.statusCode] ?? "",
      url,
      headers,
      text: async () => bytes.toString("utf8"),
      arrayBuffer: async () => bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer,
    };
  };
}
