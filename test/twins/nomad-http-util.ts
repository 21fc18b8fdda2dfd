// Request parsing and reply building for the Nomad twin's HTTP API, following
// command/agent/http.go: text/plain errors, query meta headers, Go's bool and duration parsing.

import type { IncomingMessage } from "node:http";
import { AclTokenNotFound } from "./nomad-acl.js";
import { HclError, isObject, parseGoDuration } from "./nomad-hcl.js";
import { NomadError } from "./nomad-server.js";
import type { Json, JsonObject } from "./nomad-types.js";

const DEFAULT_BLOCKING_WAIT_MS = 5 * 60_000;
const MAX_BLOCKING_WAIT_MS = 10 * 60_000;

export interface Call {
  method: string;
  /** The decoded path, as Go's URL.Path. */
  path: string;
  query: URLSearchParams;
  headers: Record<string, string>;
  body: string;
  namespace: string;
}

export interface Reply {
  status: number;
  body: string;
  headers: Record<string, string>;
}

// ---------------------------------------------------------------------------------------------
// Requests

export function parseCall(method: string, rawUrl: string, headers: Record<string, string>, body: string): Call {
  const queryStart = rawUrl.indexOf("?");
  const rawPath = queryStart < 0 ? rawUrl : rawUrl.slice(0, queryStart);
  const query = new URLSearchParams(queryStart < 0 ? "" : rawUrl.slice(queryStart + 1));
  return { method, path: safeDecode(rawPath), query, headers, body, namespace: query.get("namespace") || "default" };
}

function safeDecode(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

export function flattenHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return out;
}

export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** `X-Nomad-Token`, or `Authorization: Bearer <token>`. */
export function tokenOf(call: Call): string | undefined {
  const header = call.headers["x-nomad-token"];
  if (header) return header;
  const match = /^Bearer\s+(.+)$/i.exec(call.headers.authorization ?? "");
  return match?.[1]?.trim();
}

export function decodeBody(call: Call): JsonObject {
  if (call.body === "") throw new NomadError(400, "Request body is empty");
  let parsed: unknown;
  try {
    parsed = JSON.parse(call.body);
  } catch (err) {
    throw new NomadError(400, `invalid character in request body: ${(err as Error).message}`);
  }
  if (!isObject(parsed as Json)) throw new NomadError(400, "json: cannot unmarshal request body into Go value of type object");
  return parsed as JsonObject;
}

export function stringMap(value: JsonObject): Record<string, string> {
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]));
}

/** namespaceForJob: the query parameter, then the request body, then the job's own. */
export function namespaceForJob(job: JsonObject, call: Call, args: JsonObject): string {
  const query = call.query.get("namespace");
  if (query) return query;
  if (typeof args.Namespace === "string" && args.Namespace !== "") return args.Namespace;
  return typeof job.Namespace === "string" && job.Namespace !== "" ? job.Namespace : "default";
}

/** strconv.ParseBool, with the error text Nomad's parseBool wraps around it. */
export function parseBoolParam(query: URLSearchParams, field: string): boolean | undefined {
  const raw = query.get(field);
  if (!raw) return undefined;
  if (["1", "t", "T", "TRUE", "true", "True"].includes(raw)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(raw)) return false;
  throw new NomadError(
    500,
    `Failed to parse value of ${JSON.stringify(field)} (${raw}) as a bool: strconv.ParseBool: parsing ${JSON.stringify(raw)}: invalid syntax`,
  );
}

export function blockingParams(query: URLSearchParams): { minIndex: number; waitMs: number } {
  const rawIndex = query.get("index");
  const rawWait = query.get("wait");
  let minIndex = 0;
  let waitMs = DEFAULT_BLOCKING_WAIT_MS;
  if (rawWait) {
    try {
      waitMs = Math.min(parseGoDuration(rawWait) / 1e6, MAX_BLOCKING_WAIT_MS);
    } catch {
      throw new NomadError(400, "Invalid wait time");
    }
  }
  if (rawIndex) {
    if (!/^\d+$/.test(rawIndex)) throw new NomadError(400, "Invalid index");
    minIndex = Number(rawIndex);
  }
  // Nomad adds up to wait/16 of jitter so that many watchers do not wake at once.
  return { minIndex, waitMs: waitMs + Math.random() * (waitMs / 16) };
}

// ---------------------------------------------------------------------------------------------
// Replies

export function allow(call: Call, methods: string[], handler: () => Promise<Reply> | Reply): Promise<Reply> {
  if (!methods.includes(call.method)) return Promise.resolve({ status: 405, body: "Invalid method", headers: plainText() });
  return Promise.resolve(handler());
}

export function plainText(): Record<string, string> {
  return { "content-type": "text/plain; charset=utf-8" };
}

export function queryHeaders(index: number): Record<string, string> {
  return { "x-nomad-index": String(index), "x-nomad-knownleader": "true", "x-nomad-lastcontact": "0" };
}

export function jsonReply(body: unknown, headers: Record<string, string> = {}): Reply {
  return { status: 200, body: JSON.stringify(body), headers: { "content-type": "application/json", ...headers } };
}

/** Reads carry the query meta headers (index, known leader, last contact). */
export function queryReply(body: unknown, index: number): Reply {
  return jsonReply(body, queryHeaders(index));
}

/** Writes carry the index they were applied at. */
export function writeReply(body: JsonObject): Reply {
  return jsonReply(body, { "x-nomad-index": String(body.Index ?? 0) });
}

export function errorReply(err: unknown): Reply {
  if (err instanceof NomadError) return { status: err.status, body: err.message, headers: plainText() };
  if (err instanceof AclTokenNotFound) return { status: 403, body: "ACL token not found", headers: plainText() };
  if (err instanceof HclError) return { status: 500, body: err.message, headers: plainText() };
  return { status: 500, body: err instanceof Error ? err.message : String(err), headers: plainText() };
}
