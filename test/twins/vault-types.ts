// The twin's internal model of a request as Vault's core sees it (logical.Request /
// logical.Response), and the contract its backends (KV, sys, token, jwt) implement.
import type { NamespaceRef, TokenEntry } from "./vault-tokens.js";
import type { JsonObject } from "./vault-util.js";

/** logical.Operation values, as they appear in audit entries. */
export type Operation = "create" | "read" | "update" | "delete" | "list" | "patch";

export interface MountEntry {
  /** With trailing slash: "secret/", "sys/", "auth/token/". */
  path: string;
  type: string;
  accessor: string;
  uuid: string;
  description: string;
  options: Record<string, string> | null;
  local: boolean;
  runningVersion: string;
}

export interface LogicalRequest {
  id: string;
  operation: Operation;
  /** The namespace the request is in (X-Vault-Namespace and any namespace prefix of the path). */
  namespace: NamespaceRef;
  /**
   * Logical path without /v1/ and without the namespace, e.g. "secret/data/runners/42" (list
   * paths end in "/").
   */
  path: string;
  mount: MountEntry | undefined;
  /** `path` with the mount prefix removed. */
  relativePath: string;
  /** JSON body for writes, query parameters for reads, lists and deletes; null when empty. */
  data: JsonObject | null;
  clientToken: string;
  /** The token entry behind clientToken, once the core has checked it. */
  token: TokenEntry | undefined;
  /** From X-Vault-Wrap-TTL; 0 = no wrapping. */
  wrapTtlSeconds: number;
  contentType: string;
  remoteAddress: string;
  remotePort: number;
}

/** Vault's raw responses (logical.HTTPStatusCode & co.): sent as they are, outside the envelope. */
export interface RawResponse {
  status: number;
  contentType: string;
  body: string;
}

export interface LogicalResponse {
  data?: JsonObject | null;
  /** A newly issued token (login, token create, renew). */
  auth?: TokenEntry | null;
  warnings?: string[] | null;
  raw?: RawResponse;
}

/** What a handler returns: `null` means "nothing" (404 for read/list, 204 otherwise). */
export type HandlerResult = LogicalResponse | null;

export interface Backend {
  readonly mount: MountEntry;
  /**
   * Vault's existence check: lets the core turn a POST/PUT into "create" (target absent) or
   * "update" (present). `undefined` means the path has no check and always sees "update", as in
   * Vault.
   */
  exists?(req: LogicalRequest): boolean | undefined;
  /** Paths that need no token (logins). */
  isUnauthenticated?(req: LogicalRequest): boolean;
  /** Root-protected paths: the token also needs "sudo". */
  isRootPath?(relativePath: string): boolean;
  /** sys routes whose response data Vault also copies to the top level of the JSON body. */
  injectsDataIntoTopLevel?(relativePath: string): boolean;
  handle(req: LogicalRequest): HandlerResult | Promise<HandlerResult>;
}

/** A response-wrapping token as handed out in `wrap_info`. */
export interface WrapInfo {
  token: string;
  accessor: string;
  ttlSeconds: number;
  creationTime: string;
  creationPath: string;
  /** Accessor of the token inside the wrapped response, when it carries one. */
  wrappedAccessor: string | undefined;
}
