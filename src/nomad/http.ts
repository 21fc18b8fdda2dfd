import { Agent, type Dispatcher } from "undici";
import type { TlsOptions } from "../config.js";
import { DependencyError } from "../core/errors.js";
import { describeTransportFailure } from "../core/transport-failure.js";

export interface NomadClientOptions {
  addr: string;
  token?: string;
  namespace: string;
  region?: string;
  /** NOMAD_CACERT, NOMAD_CLIENT_CERT, ... (config/tls.ts); undefined = system CAs, no client certificate. */
  tls?: TlsOptions;
}

/** The keep-alive pool every Nomad call of one client goes through, with its TLS settings. */
export function nomadAgent(tls: TlsOptions | undefined): Agent {
  return new Agent({ keepAliveTimeout: 30_000, connections: 32, ...(tls && { connect: { ...tls } }) });
}

/** Per-request timeout: Nomad answers in milliseconds unless it has no leader. */
const REQUEST_TIMEOUT_MS = 10_000;

/**
 * One exchange with Nomad's HTTP API in the service's namespace and region, with its token: the
 * answer's status and text, whatever the status. Only a failure to get an answer throws (transient).
 */
export async function nomadRequest(
  dispatcher: Dispatcher,
  opts: NomadClientOptions,
  method: Dispatcher.HttpMethod,
  path: string,
  body?: unknown,
  query: Record<string, string> = {},
): Promise<{ status: number; text: string }> {
  const params = new URLSearchParams({ ...query, namespace: opts.namespace });
  if (opts.region) params.set("region", opts.region);
  const headers: Record<string, string> = { accept: "application/json" };
  if (opts.token) headers["x-nomad-token"] = opts.token;
  if (body !== undefined) headers["content-type"] = "application/json";
  try {
    const res = await dispatcher.request({
      origin: opts.addr,
      path: `${path}?${params}`,
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      headersTimeout: REQUEST_TIMEOUT_MS,
      bodyTimeout: REQUEST_TIMEOUT_MS,
    });
    return { status: res.statusCode, text: await res.body.text() };
  } catch (err) {
    const failure = describeTransportFailure(err, { system: "Nomad", prefix: "NOMAD", addr: opts.addr, clientCert: opts.tls?.cert !== undefined });
    throw new DependencyError("nomad", `Nomad ${method} ${path}: ${failure.message}`, undefined, failure.transient, undefined, failure.fix);
  }
}

/** The text of a successful answer; an error status becomes a DependencyError saying whether a retry may help. */
export function nomadOk(res: { status: number; text: string }, method: string, path: string): string {
  if (res.status >= 400) {
    throw new DependencyError(
      "nomad",
      `Nomad ${method} ${path}: ${res.status} ${res.text.trim().slice(0, 300)}`,
      res.status,
      isTransientNomadFailure(res.status, res.text),
    );
  }
  return res.text;
}

/**
 * Nomad reports most validation errors as 500 with a plain-text reason, so the status alone does
 * not say whether a retry can help. Leader elections and RPC hiccups can; a rejected request cannot.
 */
export function isTransientNomadFailure(status: number, text: string): boolean {
  if (status === 429 || status === 502 || status === 503 || status === 504) return true;
  if (status !== 500) return false;
  return /no cluster leader|no path to region|rpc error|timeout|EOF|connection (refused|reset)/i.test(text);
}
