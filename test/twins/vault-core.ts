// The request pipeline, in Vault's order: seal check, request parsing, routing, wrapping-token
// validation, token check, existence check (create vs update), ACL, audit, handler, response
// wrapping, audit again, and the JSON envelope.
import type { PolicyStore } from "./vault-acl.js";
import type { AuditBroker, AuditIdentity } from "./vault-audit.js";
import type { HttpReply, IncomingHttpRequest } from "./vault-http.js";
import { errorReply, jsonReply } from "./vault-http.js";
import type { ServerState } from "./vault-sys.js";
import { healthReply, sealStatusReply } from "./vault-sys.js";
import type { TokenStore } from "./vault-tokens.js";
import { RESPONSE_WRAPPING_POLICY } from "./vault-tokens.js";
import type { Backend, HandlerResult, LogicalRequest, LogicalResponse, Operation, WrapInfo } from "./vault-types.js";
import type { Clock, JsonObject } from "./vault-util.js";
import { envelope, isJsonObject, newUuid, parseDurationSeconds, rfc3339Nano, VaultRequestError } from "./vault-util.js";

const WRAPPING_TOKEN_PATHS = new Set(["sys/wrapping/unwrap", "sys/wrapping/lookup", "sys/wrapping/rewrap"]);
const MERGE_PATCH_CONTENT_TYPE = "application/merge-patch+json";

export interface CoreParts {
  clock: Clock;
  state: ServerState;
  tokens: TokenStore;
  policies: PolicyStore;
  audit: AuditBroker;
}

export class VaultCore {
  private readonly backends: Backend[] = [];

  constructor(private readonly parts: CoreParts) {}

  mount(backend: Backend): void {
    this.backends.push(backend);
    // Longest mount path first, so routing is a first-match scan.
    this.backends.sort((a, b) => b.mount.path.length - a.mount.path.length);
  }

  route(path: string): Backend | undefined {
    return this.backends.find((backend) => path.startsWith(backend.mount.path) || `${path}/` === backend.mount.path);
  }

  async handle(incoming: IncomingHttpRequest): Promise<HttpReply> {
    const url = new URL(incoming.url, "http://vault.invalid");
    const { state, clock } = this.parts;
    if (url.pathname === "/v1/sys/health") return healthReply(state, url.searchParams, incoming.method, clock());
    if (url.pathname === "/v1/sys/seal-status") return sealStatusReply(state);
    if (state.sealed) return errorReply(503, ["Vault is sealed"]);
    if (!url.pathname.startsWith("/v1/")) return errorReply(404, []);
    try {
      return await this.handleLogical(this.buildRequest(incoming, url));
    } catch (error) {
      if (error instanceof VaultRequestError) return errorReply(error.status, error.errors);
      throw error;
    }
  }

  private buildRequest(incoming: IncomingHttpRequest, url: URL): LogicalRequest {
    const list = incoming.method === "LIST" || (incoming.method === "GET" && isTrue(url.searchParams.get("list")));
    const operation = operationFor(incoming.method, list);
    let path = safeDecode(url.pathname.slice("/v1/".length));
    if (list && !path.endsWith("/")) path += "/";
    const contentType = (incoming.headers["content-type"] ?? "").split(";")[0]?.trim() ?? "";
    if (operation === "patch" && contentType !== MERGE_PATCH_CONTENT_TYPE) {
      throw new VaultRequestError(
        415,
        [`PATCH requires Content-Type of ${MERGE_PATCH_CONTENT_TYPE}, provided ${contentType}`],
        "unsupported media type",
      );
    }
    return {
      id: newUuid(),
      operation,
      path,
      mount: undefined,
      relativePath: path,
      data: carriesBody(operation) ? bodyData(incoming.body) : queryData(url),
      clientToken: clientTokenOf(incoming.headers),
      token: undefined,
      wrapTtlSeconds: wrapTtlOf(incoming.headers),
      contentType,
      remoteAddress: incoming.remoteAddress,
      remotePort: incoming.remotePort,
    };
  }

  private async handleLogical(req: LogicalRequest): Promise<HttpReply> {
    const backend = this.route(req.path);
    if (backend !== undefined) {
      req.mount = backend.mount;
      req.relativePath = req.path.slice(backend.mount.path.length);
    }
    if (req.path.endsWith("/") && (req.operation === "update" || req.operation === "patch")) {
      return errorReply(400, ["cannot write to a path ending in '/'"]);
    }
    if (WRAPPING_TOKEN_PATHS.has(req.path)) this.validateWrappingToken(req);
    const identity = await this.authorize(req, backend);
    this.parts.audit.logRequest({ request: req, identity });
    const response = await this.runHandler(req, backend, identity);
    const wrapInfo = this.wrapIfAsked(req, response, backend);
    this.parts.audit.logResponse({ request: req, identity, response, wrapInfo });
    return this.render(req, response, wrapInfo, backend);
  }

  /** The backend's answer (a failure is audited as such), spending one use of the token. */
  private async runHandler(req: LogicalRequest, backend: Backend | undefined, identity: AuditIdentity): Promise<HandlerResult> {
    const { tokens, audit } = this.parts;
    const lastUse = req.token !== undefined && tokens.spendUse(req.token);
    try {
      if (backend === undefined) throw VaultRequestError.noRoute(req.path);
      return await backend.handle(req);
    } catch (error) {
      if (error instanceof VaultRequestError) {
        audit.logResponse({ request: req, identity, response: null, errorData: error.responseData, error: error.auditError });
      }
      throw error;
    } finally {
      if (lastUse && req.token !== undefined) tokens.revoke(req.token.id);
    }
  }

  /**
   * Vault checks a wrapping token before anything else on the wrapping endpoints, and audits a
   * bad one as a failed request. Valid: the request goes on (as the wrapping token, or as the
   * caller when the wrapping token came in the body).
   */
  private validateWrappingToken(req: LogicalRequest): void {
    const failed = (error: VaultRequestError): never => {
      const identity = { rawClientToken: req.clientToken };
      this.parts.audit.logRequest({ request: req, identity, error: error.auditError });
      throw error;
    };
    const invalidInput = (reason: string) =>
      new VaultRequestError(403, [`error validating wrapping token: ${reason}`], "error validating wrapping token");
    const bodyToken = req.data?.["token"];
    if (bodyToken !== undefined && bodyToken !== null) {
      if (typeof bodyToken !== "string") failed(invalidInput("could not decode token in request body"));
      if (bodyToken === "") failed(invalidInput("empty token in request body"));
    }
    const token = typeof bodyToken === "string" ? bodyToken : req.clientToken;
    if (token === "") failed(invalidInput("token is empty"));
    const entry = this.parts.tokens.lookup(token);
    const isWrapping = entry?.policies.length === 1 && entry.policies[0] === RESPONSE_WRAPPING_POLICY;
    if (!isWrapping) failed(VaultRequestError.invalidWrappingToken());
  }

  /** CheckToken: who is calling and whether the ACL lets them; failures are audited here. */
  private async authorize(req: LogicalRequest, backend: Backend | undefined): Promise<AuditIdentity> {
    const { tokens, policies, audit } = this.parts;
    req.token = req.clientToken === "" ? undefined : tokens.lookup(req.clientToken);
    if (backend?.isUnauthenticated?.(req)) {
      return { token: req.token, policyResults: { allowed: true, grantingPolicies: [] } };
    }
    if (req.token === undefined) {
      const error = VaultRequestError.badToken();
      audit.logRequest({ request: req, identity: {}, error: error.auditError });
      throw error;
    }
    if (req.operation === "update" && backend?.exists?.(req) === false) req.operation = "create";
    await policies.settled();
    const needsSudo = backend?.isRootPath?.(req.relativePath) ?? false;
    const decision = policies.aclFor(req.token.policies).check(req.path, req.operation, needsSudo);
    const identity: AuditIdentity = {
      token: req.token,
      policyResults: { allowed: decision.allowed, grantingPolicies: decision.grantingPolicies },
    };
    if (!decision.allowed) {
      const error = VaultRequestError.aclDenied();
      audit.logRequest({ request: req, identity, error: error.auditError });
      throw error;
    }
    return identity;
  }

  /**
   * X-Vault-Wrap-TTL: the response goes into a single-use token's cubbyhole, and the caller
   * gets only the token. Raw responses and empty lists are not wrapped (Vault 404s those).
   */
  private wrapIfAsked(req: LogicalRequest, response: HandlerResult, backend: Backend | undefined): WrapInfo | undefined {
    if (req.wrapTtlSeconds <= 0 || response === null || response.raw !== undefined) return undefined;
    if (req.operation === "list" && isEmptyList(response)) return undefined;
    const creationTimeMs = this.parts.clock();
    const wrapping = this.parts.tokens.createWrapping({
      body: JSON.stringify(this.envelopeFor(req, response, backend)),
      creationPath: req.path,
      creationTimeMs,
      ttlSeconds: req.wrapTtlSeconds,
    });
    return {
      token: wrapping.id,
      accessor: wrapping.accessor,
      ttlSeconds: req.wrapTtlSeconds,
      creationTime: rfc3339Nano(creationTimeMs),
      creationPath: req.path,
      wrappedAccessor: response.auth?.accessor,
    };
  }

  private render(
    req: LogicalRequest,
    response: HandlerResult,
    wrapInfo: WrapInfo | undefined,
    backend: Backend | undefined,
  ): HttpReply {
    if (wrapInfo !== undefined) {
      // A wrapped answer is only the wrap_info; Vault does not even set request_id on it.
      return jsonReply(200, envelope({ requestId: "", wrapInfo: describeWrapInfo(wrapInfo) }));
    }
    const nothingToRead = req.operation === "read" || req.operation === "list";
    if (response === null) return nothingToRead ? errorReply(404, []) : { status: 204, headers: {}, body: "" };
    if (response.raw !== undefined) {
      const { status, contentType, body } = response.raw;
      return { status, headers: { "content-type": contentType, "cache-control": "no-store" }, body };
    }
    if (req.operation === "list" && isEmptyList(response)) return errorReply(404, []);
    const body = this.envelopeFor(req, response, backend);
    const data = response.data;
    if (data && Object.keys(data).length > 0 && backend?.injectsDataIntoTopLevel?.(req.relativePath)) {
      return jsonReply(200, { ...data, ...body });
    }
    return jsonReply(200, body);
  }

  private envelopeFor(req: LogicalRequest, response: LogicalResponse, backend: Backend | undefined): JsonObject {
    return envelope({
      requestId: req.id,
      data: response.data ?? null,
      auth: response.auth ? this.parts.tokens.authBlock(response.auth) : null,
      warnings: response.warnings ?? null,
      mountType: backend?.mount.type ?? "",
    });
  }
}

function operationFor(method: string, list: boolean): Operation {
  if (list) return "list";
  switch (method) {
    case "GET":
      return "read";
    case "POST":
    case "PUT":
      // The core refines this into "create" or "update" once it knows whether the target exists.
      return "update";
    case "DELETE":
      return "delete";
    case "PATCH":
      return "patch";
    default:
      throw new VaultRequestError(405, [], "method not allowed");
  }
}

/** Writes carry JSON; reads, lists and deletes carry their parameters in the query string. */
function carriesBody(operation: Operation): boolean {
  return operation === "update" || operation === "patch";
}

function isTrue(value: string | null): boolean {
  return value !== null && /^(1|t|true)$/i.test(value);
}

function safeDecode(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    throw new VaultRequestError(400, ["invalid URL path encoding"], "invalid request");
  }
}

/** Query parameters as Vault's parseQuery turns them into request data (list= excluded). */
function queryData(url: URL): JsonObject | null {
  const data: JsonObject = {};
  for (const key of new Set(url.searchParams.keys())) {
    if (key === "list") continue;
    const values = url.searchParams.getAll(key);
    data[key] = values.length === 1 ? values[0] ?? "" : values;
  }
  return Object.keys(data).length === 0 ? null : data;
}

function bodyData(body: string): JsonObject | null {
  if (body.trim() === "") return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new VaultRequestError(400, ["error parsing JSON"], "error parsing JSON");
  }
  if (!isJsonObject(parsed)) throw new VaultRequestError(400, ["error parsing JSON"], "error parsing JSON");
  return parsed;
}

function clientTokenOf(headers: Record<string, string>): string {
  const vaultToken = headers["x-vault-token"];
  if (vaultToken !== undefined && vaultToken !== "") return vaultToken;
  const bearer = /^Bearer\s+(.+)$/i.exec(headers["authorization"] ?? "");
  return bearer?.[1]?.trim() ?? "";
}

function wrapTtlOf(headers: Record<string, string>): number {
  const raw = headers["x-vault-wrap-ttl"];
  if (raw === undefined) return 0;
  try {
    return parseDurationSeconds(raw);
  } catch (error) {
    const message = `error parsing X-Vault-Wrap-TTL header: ${(error as Error).message}`;
    throw new VaultRequestError(400, [message], message);
  }
}

function isEmptyList(response: LogicalResponse): boolean {
  const keys = response.data?.["keys"];
  return response.data == null || Object.keys(response.data).length === 0 || (Array.isArray(keys) && keys.length === 0);
}

function describeWrapInfo(wrapInfo: WrapInfo): JsonObject {
  return {
    token: wrapInfo.token,
    accessor: wrapInfo.accessor,
    ttl: wrapInfo.ttlSeconds,
    creation_time: wrapInfo.creationTime,
    creation_path: wrapInfo.creationPath,
    ...(wrapInfo.wrappedAccessor ? { wrapped_accessor: wrapInfo.wrappedAccessor } : {}),
  };
}
