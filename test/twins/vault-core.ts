// The request pipeline, in Vault's order: seal check, request parsing, routing, wrapping-token
// validation, token check, existence check (create vs update), ACL, audit, handler, response
// wrapping, audit again, and the JSON envelope.
import type { AuditBroker, AuditIdentity } from "./vault-audit.js";
import type { HttpReply, IncomingHttpRequest } from "./vault-http.js";
import { errorReply, jsonReply } from "./vault-http.js";
import type { NamespaceRegistry, VaultNamespace } from "./vault-namespaces.js";
import type { ServerState } from "./vault-sys.js";
import { healthReply, sealStatusReply } from "./vault-sys.js";
import { RESPONSE_WRAPPING_POLICY } from "./vault-tokens.js";
import type { Backend, HandlerResult, LogicalRequest, LogicalResponse, Operation, WrapInfo } from "./vault-types.js";
import type { Clock, JsonObject } from "./vault-util.js";
import { envelope, isJsonObject, newUuid, parseDurationSeconds, rfc3339Nano, VaultRequestError } from "./vault-util.js";

const WRAPPING_TOKEN_PATHS = new Set(["sys/wrapping/unwrap", "sys/wrapping/lookup", "sys/wrapping/rewrap"]);
const MERGE_PATCH_CONTENT_TYPE = "application/merge-patch+json";

export interface CoreParts {
  clock: Clock;
  state: ServerState;
  audit: AuditBroker;
  /** Every namespace with its mounts, policies and tokens; the root one when none is asked for. */
  namespaces: NamespaceRegistry;
}

export class VaultCore {
  constructor(private readonly parts: CoreParts) {}

  async handle(incoming: IncomingHttpRequest): Promise<HttpReply> {
    const url = new URL(incoming.url, "http://vault.invalid");
    const { state, clock } = this.parts;
    if (url.pathname === "/v1/sys/health") return healthReply(state, url.searchParams, incoming.method, clock());
    if (url.pathname === "/v1/sys/seal-status") return sealStatusReply(state);
    if (state.sealed) return errorReply(503, ["Vault is sealed"]);
    if (!url.pathname.startsWith("/v1/")) return errorReply(404, []);
    try {
      const { request, namespace } = this.buildRequest(incoming, url);
      return await this.handleLogical(request, namespace);
    } catch (error) {
      if (error instanceof VaultRequestError) return errorReply(error.status, error.errors);
      throw error;
    }
  }

  private buildRequest(incoming: IncomingHttpRequest, url: URL): { request: LogicalRequest; namespace: VaultNamespace } {
    const list = incoming.method === "LIST" || (incoming.method === "GET" && isTrue(url.searchParams.get("list")));
    const operation = operationFor(incoming.method, list);
    const resolved = this.parts.namespaces.resolve(incoming.headers["x-vault-namespace"], safeDecode(url.pathname.slice("/v1/".length)));
    // The docs do not say how Vault answers a header naming no namespace; the twin refuses the
    // request as it refuses a token it does not know, so nothing can be reached through it.
    if (resolved === undefined) throw VaultRequestError.badToken();
    const namespace = resolved.namespace;
    let path = resolved.path;
    if (list && !path.endsWith("/")) path += "/";
    const contentType = (incoming.headers["content-type"] ?? "").split(";")[0]?.trim() ?? "";
    if (operation === "patch" && contentType !== MERGE_PATCH_CONTENT_TYPE) {
      throw new VaultRequestError(415, [`PATCH requires Content-Type of ${MERGE_PATCH_CONTENT_TYPE}, provided ${contentType}`], "unsupported media type");
    }
    const request: LogicalRequest = {
      id: newUuid(),
      operation,
      namespace: namespace.ref,
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
    return { request, namespace };
  }

  private async handleLogical(req: LogicalRequest, namespace: VaultNamespace): Promise<HttpReply> {
    const backend = namespace.route(req.path);
    if (backend !== undefined) {
      req.mount = backend.mount;
      req.relativePath = req.path.slice(backend.mount.path.length);
    }
    if (req.path.endsWith("/") && (req.operation === "update" || req.operation === "patch")) {
      return errorReply(400, ["cannot write to a path ending in '/'"]);
    }
    if (WRAPPING_TOKEN_PATHS.has(req.path)) this.validateWrappingToken(req, namespace);
    const identity = await this.authorize(req, backend, namespace);
    this.parts.audit.logRequest({ request: req, identity });
    const response = await this.runHandler(req, backend, identity, namespace);
    const wrapInfo = this.wrapIfAsked(req, response, backend, namespace);
    this.parts.audit.logResponse({ request: req, identity, response, wrapInfo });
    return this.render(req, response, wrapInfo, backend, namespace);
  }

  /** The backend's answer (a failure is audited as such), spending one use of the token. */
  private async runHandler(req: LogicalRequest, backend: Backend | undefined, identity: AuditIdentity, namespace: VaultNamespace): Promise<HandlerResult> {
    const { audit } = this.parts;
    const tokens = namespace.tokens;
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
  private validateWrappingToken(req: LogicalRequest, namespace: VaultNamespace): void {
    const failed = (error: VaultRequestError): never => {
      const identity = { rawClientToken: req.clientToken };
      this.parts.audit.logRequest({ request: req, identity, error: error.auditError });
      throw error;
    };
    const invalidInput = (reason: string) => new VaultRequestError(403, [`error validating wrapping token: ${reason}`], "error validating wrapping token");
    const bodyToken = req.data?.["token"];
    if (bodyToken !== undefined && bodyToken !== null) {
      if (typeof bodyToken !== "string") failed(invalidInput("could not decode token in request body"));
      if (bodyToken === "") failed(invalidInput("empty token in request body"));
    }
    const token = typeof bodyToken === "string" ? bodyToken : req.clientToken;
    if (token === "") failed(invalidInput("token is empty"));
    // Only this namespace's view: a wrapping token made in another namespace is not found.
    const entry = namespace.tokens.lookup(token);
    const isWrapping = entry?.policies.length === 1 && entry.policies[0] === RESPONSE_WRAPPING_POLICY;
    if (!isWrapping) failed(VaultRequestError.invalidWrappingToken());
  }

  /** CheckToken: who is calling and whether the ACL lets them; failures are audited here. */
  private async authorize(req: LogicalRequest, backend: Backend | undefined, namespace: VaultNamespace): Promise<AuditIdentity> {
    const { audit, namespaces } = this.parts;
    // A token of another namespace (not this one nor one above it) is as unknown as a made-up one.
    req.token = req.clientToken === "" ? undefined : namespace.tokens.lookup(req.clientToken);
    if (backend?.isUnauthenticated?.(req)) {
      return { token: req.token, policyResults: { allowed: true, grantingPolicies: [] } };
    }
    if (req.token === undefined) {
      const error = VaultRequestError.badToken();
      audit.logRequest({ request: req, identity: {}, error: error.auditError });
      throw error;
    }
    if (req.operation === "update" && backend?.exists?.(req) === false) req.operation = "create";
    const home = namespaces.of(req.token);
    await home.policies.settled();
    const needsSudo = backend?.isRootPath?.(req.relativePath) ?? false;
    // The token's own namespace's policies, over the path as seen from there.
    const scope = namespaces.aclFor(req.token, namespace);
    const decision = scope?.acl.check(`${scope.pathPrefix}${req.path}`, req.operation, needsSudo) ?? { allowed: false, grantingPolicies: [] };
    const identity: AuditIdentity = {
      token: req.token,
      policyResults: { allowed: decision.allowed, grantingPolicies: decision.grantingPolicies, namespaceId: home.ref.id },
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
  /** The wrapping token belongs to the request's namespace: it unwraps only there (or below). */
  private wrapIfAsked(req: LogicalRequest, response: HandlerResult, backend: Backend | undefined, namespace: VaultNamespace): WrapInfo | undefined {
    if (req.wrapTtlSeconds <= 0 || response === null || response.raw !== undefined) return undefined;
    if (req.operation === "list" && isEmptyList(response)) return undefined;
    const creationTimeMs = this.parts.clock();
    const wrapping = namespace.tokens.createWrapping({
      body: JSON.stringify(this.envelopeFor(req, response, backend, namespace)),
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
    namespace: VaultNamespace,
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
    const body = this.envelopeFor(req, response, backend, namespace);
    const data = response.data;
    if (data && Object.keys(data).length > 0 && backend?.injectsDataIntoTopLevel?.(req.relativePath)) {
      return jsonReply(200, { ...data, ...body });
    }
    return jsonReply(200, body);
  }

  private envelopeFor(req: LogicalRequest, response: LogicalResponse, backend: Backend | undefined, namespace: VaultNamespace): JsonObject {
    return envelope({
      requestId: req.id,
      data: response.data ?? null,
      auth: response.auth ? namespace.tokens.authBlock(response.auth) : null,
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
    data[key] = values.length === 1 ? (values[0] ?? "") : values;
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
