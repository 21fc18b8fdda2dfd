// The twin's HTTP API: routing like command/agent (the decoded path, so a child job ID's `/` works
// raw or as %2F), ACL checks per endpoint, blocking queries, Nomad's headers, text/plain errors.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { type FaultPlan, holdUntil, type RecordedRequest } from "./contract.js";
import { type AclRegistry, type AclSubject, UNRESTRICTED } from "./nomad-acl.js";
import { canonicalizeJob } from "./nomad-canonical.js";
import { HclError, isObject } from "./nomad-hcl.js";
import {
  allow,
  blockingParams,
  type Call,
  decodeBody,
  errorReply,
  flattenHeaders,
  jsonReply,
  namespaceForJob,
  parseBoolParam,
  parseCall,
  plainText,
  queryHeaders,
  queryReply,
  type Reply,
  readBody,
  stringMap,
  tokenOf,
  writeReply,
} from "./nomad-http-util.js";
import { parseJobspec } from "./nomad-jobspec.js";
import { NODE_INDEX, nodePools, nodesOfPool, type TwinNodeOptions, twinNode, twinNodeStub } from "./nomad-nodes.js";
import { NODE, type Scheduler } from "./nomad-scheduler.js";
import { type DispatchRequest, NomadError, type NomadServer } from "./nomad-server.js";
import type { NomadState } from "./nomad-state.js";
import type { JsonObject } from "./nomad-types.js";
import { listVariables, type VariableStore, variableSpecific } from "./nomad-variables.js";
import { ACLS_DISABLED_TOKEN, ANONYMOUS_TOKEN, allocFull, allocStub, jobStub, jobSummary, schedulerConfiguration } from "./nomad-views.js";

export const LEADER_ADDRESS = "127.0.0.1:4647";

export interface HttpDeps {
  state: NomadState;
  variables: VariableStore;
  server: NomadServer;
  scheduler: Scheduler;
  /** Undefined when ACLs are disabled. */
  acl: AclRegistry | undefined;
  faults: FaultPlan;
  requests: RecordedRequest[];
  hasLeader(): boolean;
  /** Serve HTTPS (the agent's tls block with http = true). */
  tls?: AgentTls;
  node: TwinNodeOptions;
}

/**
 * The agent's `tls` block for its HTTP API (hashicorp/nomad command/agent/http.go, which builds
 * the listener with tlsutil.NewTLSConfiguration; helper/tlsutil/config.go): cert_file, key_file,
 * ca_file, and verify_https_client, which sets tls.RequireAndVerifyClientCert: a client without a
 * certificate signed by ca_file gets no connection at all.
 */
export interface AgentTls {
  certPem: string;
  keyPem: string;
  caPem: string;
  verifyHttpsClient: boolean;
}

export class NomadHttp {
  private readonly server: Server;
  private closing = false;

  constructor(private readonly deps: HttpDeps) {
    // A client that hangs up mid-request (aborted long poll, killed test) just loses its answer.
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.serve(req, res).catch(() => res.destroy());
    const tls = deps.tls;
    this.server = tls
      ? createHttpsServer(
          { cert: tls.certPem, key: tls.keyPem, ca: tls.caPem, requestCert: tls.verifyHttpsClient, rejectUnauthorized: tls.verifyHttpsClient },
          handler,
        )
      : createServer(handler);
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    const { port } = this.server.address() as AddressInfo;
    return `${this.deps.tls ? "https" : "http"}://127.0.0.1:${port}`;
  }

  async close(): Promise<void> {
    this.closing = true;
    this.deps.state.wakeAll();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // -------------------------------------------------------------------------------------------
  // Transport

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rawUrl = req.url ?? "/";
    const body = await readBody(req);
    const headers = flattenHeaders(req);
    const call = parseCall(req.method ?? "GET", rawUrl, headers, body);
    const reply = await this.replyTo(call);
    const at = Date.now();
    this.deps.requests.push({ method: call.method, url: rawUrl, headers, body, status: reply.status, response: reply.body, at });
    if (res.destroyed) return;
    res.writeHead(reply.status, reply.headers);
    res.end(reply.body);
  }

  /** An injected delay is a fixed latency: the answer leaves that long after the request arrived. */
  private async replyTo(call: Call): Promise<Reply> {
    const arrived = performance.now();
    const injected = this.deps.faults.intercept?.({ method: call.method, path: call.path });
    let reply: Reply;
    if (injected && "status" in injected) {
      reply = { status: injected.status, body: injected.body, headers: { "content-type": "text/plain; charset=utf-8", ...injected.headers } };
    } else {
      try {
        reply = await this.route(call);
      } catch (err) {
        reply = errorReply(err);
      }
    }
    if (injected?.delayMs) await holdUntil(arrived + injected.delayMs);
    return reply;
  }

  // -------------------------------------------------------------------------------------------
  // Routing (command/agent/http.go registerHandlers)

  private async route(call: Call): Promise<Reply> {
    const { path } = call;
    // Served by the agent itself, leader or not.
    if (path === "/v1/agent/self") return this.agentSelf(call);
    if (path === "/v1/jobs/parse") return this.parseJob(call);
    if (!this.deps.hasLeader()) throw new NomadError(500, "No cluster leader");
    if (path === "/v1/status/leader") return allow(call, ["GET"], () => queryReply(LEADER_ADDRESS, this.deps.state.latestIndex));
    if (path === "/v1/acl/token/self") return allow(call, ["GET"], () => this.tokenSelf(call));
    if (path === "/v1/jobs") return call.method === "GET" ? this.listJobs(call) : allow(call, ["PUT", "POST"], () => this.registerJob(call, ""));
    if (path.startsWith("/v1/job/")) return this.jobSpecific(call, path.slice("/v1/job/".length));
    if (path === "/v1/allocations") return allow(call, ["GET"], () => this.listAllocations(call));
    if (path.startsWith("/v1/allocation/")) return allow(call, ["GET"], () => this.readAllocation(call, path.slice("/v1/allocation/".length)));
    if (path.startsWith("/v1/evaluation/")) return allow(call, ["GET"], () => this.readEvaluation(call, path.slice("/v1/evaluation/".length)));
    if (path === "/v1/system/gc") return allow(call, ["PUT", "POST"], () => this.systemGc(call));
    if (path === "/v1/namespaces") return allow(call, ["GET"], () => this.listNamespaces(call));
    // command/agent/http.go: /v1/vars (VariablesListRequest) and /v1/var/ (VariableSpecificRequest).
    if (path === "/v1/vars") return listVariables(call, this.deps.variables, await this.subject(call));
    if (path.startsWith("/v1/var/")) return variableSpecific(call, this.deps.variables, await this.subject(call));
    if (path === "/v1/nodes") return allow(call, ["GET"], () => this.listNodes(call));
    if (path === "/v1/node/pools") return allow(call, ["GET"], () => this.nodeRead(call, () => queryReply(nodePools(this.deps.node), NODE_INDEX)));
    if (path.startsWith("/v1/node/pool/")) return allow(call, ["GET"], () => this.nodePool(call, path.slice("/v1/node/pool/".length)));
    if (path.startsWith("/v1/node/")) return allow(call, ["GET"], () => this.readNode(call, path.slice("/v1/node/".length)));
    if (path === "/v1/operator/scheduler/configuration") return allow(call, ["GET"], () => this.schedulerConfiguration(call));
    return { status: 404, body: "", headers: {} };
  }

  /** command/agent/job_endpoint.go JobSpecificRequest: the suffix decides, the rest is the job ID. */
  private jobSpecific(call: Call, rest: string): Promise<Reply> {
    const suffixes: Array<[string, string[], (jobId: string) => Promise<Reply>]> = [
      ["/allocations", ["GET"], (id) => this.jobAllocations(call, id)],
      ["/evaluations", ["GET"], (id) => this.jobEvaluations(call, id)],
      ["/summary", ["GET"], (id) => this.jobSummary(call, id)],
      ["/dispatch", ["PUT", "POST"], (id) => this.dispatch(call, id)],
    ];
    for (const [suffix, methods, handler] of suffixes) {
      if (rest.endsWith(suffix)) return allow(call, methods, () => handler(rest.slice(0, -suffix.length)));
    }
    if (call.method === "GET") return this.readJob(call, rest);
    if (call.method === "DELETE") return this.deregisterJob(call, rest);
    return allow(call, ["PUT", "POST"], () => this.registerJob(call, rest));
  }

  // -------------------------------------------------------------------------------------------
  // ACL

  private async subject(call: Call): Promise<AclSubject> {
    if (!this.deps.acl) return UNRESTRICTED;
    return this.deps.acl.resolve(tokenOf(call));
  }

  /** The token may do any one of `capabilities` in the namespace, or the request is denied. */
  private async requireNamespace(call: Call, namespace: string, ...capabilities: string[]): Promise<AclSubject> {
    const subject = await this.subject(call);
    if (!capabilities.some((cap) => subject.allowNamespace(namespace, cap))) throw new NomadError(403, "Permission denied");
    return subject;
  }

  // -------------------------------------------------------------------------------------------
  // Agent and ACL endpoints

  private async agentSelf(call: Call): Promise<Reply> {
    const subject = await this.subject(call);
    if (!subject.management && !subject.allowCoarse("agent", "read")) throw new NomadError(403, "Permission denied");
    return jsonReply({
      config: {
        Region: "global",
        Datacenter: "dc1",
        NodeName: "nomad-twin",
        Version: { Version: "1.10.5", VersionPrerelease: "", Revision: "twin" },
        ACL: { Enabled: Boolean(this.deps.acl) },
      },
      member: {
        Name: "nomad-twin.global",
        Addr: "127.0.0.1",
        Port: 4648,
        Status: "alive",
        Tags: { region: "global", dc: "dc1", role: "nomad", build: "1.10.5" },
      },
      stats: { nomad: { leader: String(this.deps.hasLeader()), known_regions: "1" } },
    });
  }

  private async tokenSelf(call: Call): Promise<Reply> {
    if (!this.deps.acl) return queryReply(ACLS_DISABLED_TOKEN, 1);
    const secret = tokenOf(call);
    const subject = await this.deps.acl.resolve(secret);
    const token = secret ? subject.token : ANONYMOUS_TOKEN;
    if (!token) throw new NomadError(404, "ACL token not found");
    return queryReply(token, Math.max(1, token.ModifyIndex));
  }

  // -------------------------------------------------------------------------------------------
  // Namespaces, nodes, operator: what doctor probes to see how far a token reaches

  /**
   * Namespace.ListNamespaces (hashicorp/nomad nomad/namespace_endpoint.go): no capability is
   * needed, but only namespaces where the token has some capability (acl.ACL.AllowNamespace)
   * are listed; command/agent/namespace_endpoint.go answers `[]` rather than null.
   */
  private async listNamespaces(call: Call): Promise<Reply> {
    const subject = await this.subject(call);
    const prefix = call.query.get("prefix") ?? "";
    const visible = [...this.deps.state.namespaces.values()]
      .filter((ns) => ns.Name.startsWith(prefix) && subject.allowNamespaceAny(ns.Name))
      .sort((a, b) => (a.Name < b.Name ? -1 : a.Name > b.Name ? 1 : 0));
    return queryReply(visible, Math.max(1, ...visible.map((ns) => ns.ModifyIndex)));
  }

  /** Node.List (nomad/node_endpoint.go): `node:read`, else structs.ErrPermissionDenied. */
  private async listNodes(call: Call): Promise<Reply> {
    const subject = await this.subject(call);
    if (!subject.management && !subject.allowCoarse("node", "read")) throw new NomadError(403, "Permission denied");
    return queryReply([twinNodeStub(this.deps.node)], NODE_INDEX);
  }

  /**
   * node_pool ACL rules are not modelled: the node and node pool reads ask for `node:read`, which
   * real Nomad asks beside the pool's `read` for listing a pool's nodes (nomad/node_pool_endpoint.go
   * ListNodes); a management token may do all of them there as here.
   */
  private async nodeRead(call: Call, reply: () => Reply): Promise<Reply> {
    const subject = await this.subject(call);
    if (!subject.management && !subject.allowCoarse("node", "read")) throw new NomadError(403, "Permission denied");
    return reply();
  }

  /** command/agent/node_pool_endpoint.go NodePoolSpecificRequest: `<name>/nodes`, or the pool itself (404 "node pool not found"). */
  private nodePool(call: Call, rest: string): Promise<Reply> {
    const name = decodeURIComponent(rest.endsWith("/nodes") ? rest.slice(0, -"/nodes".length) : rest);
    return this.nodeRead(call, () => {
      if (rest.endsWith("/nodes")) return queryReply(nodesOfPool(this.deps.node, name), NODE_INDEX);
      const pool = nodePools(this.deps.node).find((p) => p.Name === name);
      if (!pool) throw new NomadError(404, "node pool not found");
      return queryReply(pool, NODE_INDEX);
    });
  }

  /** command/agent/node_endpoint.go nodeQuery: the node by ID (404 "node not found"). */
  private readNode(call: Call, id: string): Promise<Reply> {
    return this.nodeRead(call, () => {
      if (decodeURIComponent(id) !== NODE.ID) throw new NomadError(404, "node not found");
      return queryReply(twinNode(this.deps.node), NODE_INDEX);
    });
  }

  /** Operator.SchedulerGetConfiguration (nomad/operator_endpoint.go): `operator:read`. */
  private async schedulerConfiguration(call: Call): Promise<Reply> {
    const subject = await this.subject(call);
    if (!subject.management && !subject.allowCoarse("operator", "read")) throw new NomadError(403, "Permission denied");
    return jsonReply(schedulerConfiguration(5), queryHeaders(5));
  }

  // -------------------------------------------------------------------------------------------
  // Jobs

  private async parseJob(call: Call): Promise<Reply> {
    if (call.method !== "PUT" && call.method !== "POST") throw new NomadError(405, "Invalid method");
    await this.requireNamespace(call, call.namespace, "parse-job", "submit-job");
    const args = decodeBody(call);
    const hcl = typeof args.JobHCL === "string" ? args.JobHCL : "";
    if (hcl === "") throw new NomadError(400, "Job spec is empty");
    let job: JsonObject;
    try {
      job = await parseJobspec({ hcl, variables: typeof args.Variables === "string" ? args.Variables : undefined });
    } catch (err) {
      if (err instanceof HclError) throw new NomadError(400, `Failed to parse job: ${err.message}`);
      throw err;
    }
    return jsonReply(args.Canonicalize === true ? canonicalizeJob(job) : job);
  }

  private async listJobs(call: Call): Promise<Reply> {
    const subject = await this.subject(call);
    if (call.namespace !== "*" && !subject.allowNamespace(call.namespace, "list-jobs")) throw new NomadError(403, "Permission denied");
    const withMeta = parseBoolParam(call.query, "meta") ?? false;
    const prefix = call.query.get("prefix") ?? "";
    const { state } = this.deps;
    return this.blockingQuery(call, () => ({
      index: state.jobsIndex,
      body: state
        .listJobs(call.namespace)
        .filter((job) => job.ID.startsWith(prefix) && subject.allowNamespace(job.Namespace, "list-jobs"))
        .map((job) => jobStub(job, this.summaryOf(job), withMeta)),
    }));
  }

  private async readJob(call: Call, jobId: string): Promise<Reply> {
    await this.requireNamespace(call, call.namespace, "read-job");
    const { state } = this.deps;
    return this.blockingQuery(
      call,
      () => {
        const job = state.job(call.namespace, jobId);
        return { index: job?.ModifyIndex ?? state.jobsIndex, body: job };
      },
      "job not found",
    );
  }

  private async jobSummary(call: Call, jobId: string): Promise<Reply> {
    await this.requireNamespace(call, call.namespace, "read-job");
    const { state } = this.deps;
    return this.blockingQuery(
      call,
      () => {
        const job = state.job(call.namespace, jobId);
        const summary = job ? this.summaryOf(job) : undefined;
        return { index: typeof summary?.ModifyIndex === "number" ? summary.ModifyIndex : state.jobsIndex, body: summary };
      },
      "job not found",
    );
  }

  private summaryOf(job: Parameters<typeof jobSummary>[1]): Record<string, unknown> {
    return jobSummary(this.deps.state, job, (group) => this.deps.scheduler.queuedCount(job.Namespace, job.ID, group));
  }

  private async jobAllocations(call: Call, jobId: string): Promise<Reply> {
    await this.requireNamespace(call, call.namespace, "read-job");
    const { state } = this.deps;
    return this.blockingQuery(call, () => ({
      index: state.allocsIndex,
      body: state.allocsOfJob(call.namespace, jobId).map((alloc) => allocStub(alloc, true)),
    }));
  }

  private async jobEvaluations(call: Call, jobId: string): Promise<Reply> {
    await this.requireNamespace(call, call.namespace, "read-job");
    const { state } = this.deps;
    return this.blockingQuery(call, () => ({ index: state.evalsIndex, body: state.evalsOfJob(call.namespace, jobId) }));
  }

  /** `POST /v1/jobs` (jobId "") and `PUT /v1/job/:id`. */
  private async registerJob(call: Call, jobId: string): Promise<Reply> {
    const args = decodeBody(call);
    const job = args.Job;
    if (!isObject(job)) throw new NomadError(400, "Job must be specified");
    if (typeof job.ID !== "string") throw new NomadError(400, "Job ID hasn't been provided");
    if (jobId !== "" && job.ID !== jobId) throw new NomadError(400, "Job ID does not match name");
    const namespace = namespaceForJob(job, call, args);
    await this.requireNamespace(call, namespace, "submit-job", "register-job");
    const reply = this.deps.server.register(job, {
      namespace,
      enforceIndex: args.EnforceIndex === true,
      jobModifyIndex: typeof args.JobModifyIndex === "number" ? args.JobModifyIndex : 0,
    });
    return writeReply(reply);
  }

  private async deregisterJob(call: Call, jobId: string): Promise<Reply> {
    const purge = parseBoolParam(call.query, "purge") ?? false;
    const capabilities = purge ? ["submit-job", "purge-job"] : ["submit-job", "purge-job", "deregister-job"];
    await this.requireNamespace(call, call.namespace, ...capabilities);
    return writeReply(this.deps.server.deregister(call.namespace, jobId, purge));
  }

  private async dispatch(call: Call, jobId: string): Promise<Reply> {
    const args = decodeBody(call);
    if (typeof args.JobID === "string" && args.JobID !== "" && args.JobID !== jobId) throw new NomadError(400, "Job ID does not match");
    await this.requireNamespace(call, call.namespace, "dispatch-job");
    const request: DispatchRequest = {
      Payload: typeof args.Payload === "string" ? args.Payload : null,
      Meta: isObject(args.Meta) ? stringMap(args.Meta) : null,
      IdPrefixTemplate: typeof args.IdPrefixTemplate === "string" ? args.IdPrefixTemplate : "",
      // The query parameter wins over the body (parseWriteRequest runs after decoding).
      IdempotencyToken: call.query.get("idempotency_token") || (typeof args.IdempotencyToken === "string" ? args.IdempotencyToken : ""),
      Priority: typeof args.Priority === "number" ? args.Priority : 0,
    };
    return writeReply(this.deps.server.dispatch(call.namespace, jobId, request));
  }

  // -------------------------------------------------------------------------------------------
  // Allocations, evaluations, GC

  private async listAllocations(call: Call): Promise<Reply> {
    const subject = await this.subject(call);
    if (call.namespace !== "*" && !subject.allowNamespace(call.namespace, "read-job")) throw new NomadError(403, "Permission denied");
    const prefix = call.query.get("prefix") ?? "";
    const withTaskStates = parseBoolParam(call.query, "task_states") ?? true;
    const { state } = this.deps;
    return this.blockingQuery(call, () => ({
      index: state.allocsIndex,
      body: state
        .listAllocs()
        .filter((a) => (call.namespace === "*" || a.Namespace === call.namespace) && a.ID.startsWith(prefix) && subject.allowNamespace(a.Namespace, "read-job"))
        .map((alloc) => allocStub(alloc, withTaskStates)),
    }));
  }

  private async readAllocation(call: Call, allocId: string): Promise<Reply> {
    const subject = await this.subject(call);
    const { state } = this.deps;
    const existing = state.alloc(allocId);
    if (existing && !subject.allowNamespace(existing.Namespace, "read-job")) throw new NomadError(403, "Permission denied");
    return this.blockingQuery(
      call,
      () => {
        const alloc = state.alloc(allocId);
        return { index: alloc?.ModifyIndex ?? state.allocsIndex, body: alloc ? allocFull(alloc) : undefined };
      },
      "alloc not found",
    );
  }

  private async readEvaluation(call: Call, evalId: string): Promise<Reply> {
    const subject = await this.subject(call);
    const { state } = this.deps;
    const existing = state.evaluation(evalId);
    if (existing && !subject.allowNamespace(existing.Namespace, "read-job")) throw new NomadError(403, "Permission denied");
    return this.blockingQuery(
      call,
      () => {
        const evaluation = state.evaluation(evalId);
        return { index: evaluation?.ModifyIndex ?? state.evalsIndex, body: evaluation };
      },
      "eval not found",
    );
  }

  private async systemGc(call: Call): Promise<Reply> {
    const subject = await this.subject(call);
    if (!subject.management) throw new NomadError(403, "Permission denied");
    this.deps.server.gc();
    return { status: 200, body: "", headers: {} };
  }

  // -------------------------------------------------------------------------------------------
  // Blocking queries (`?index=N&wait=5s`): hold until the result's index passes N or wait elapses.

  private async blockingQuery(call: Call, compute: () => { index: number; body: unknown }, notFound?: string): Promise<Reply> {
    const { minIndex, waitMs } = blockingParams(call.query);
    const deadline = Date.now() + waitMs;
    let result = compute();
    while (minIndex > 0 && result.index <= minIndex && Date.now() < deadline && !this.closing) {
      await this.deps.state.nextWrite(deadline - Date.now());
      result = compute();
    }
    // Nomad never reports index 0, so a client's next blocking query cannot spin.
    const index = Math.max(1, result.index);
    if (result.body === undefined) {
      if (notFound === undefined) return queryReply(null, index);
      return { status: 404, body: notFound, headers: { ...plainText(), ...queryHeaders(index) } };
    }
    return queryReply(result.body, index);
  }
}
