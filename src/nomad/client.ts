import type { Dispatcher } from "undici";
import type { TaskExit } from "../core/credential-refused.js";
import { DependencyError } from "../core/errors.js";
import { type NomadClientOptions, nomadAgent, nomadOk, nomadRequest } from "./http.js";
import type { AllocationStub, DispatchResult, NomadJob, NomadJobStub, NomadNode } from "./types.js";

export type { NomadClientOptions } from "./http.js";
export { isTransientNomadFailure } from "./http.js";

/** Thin client for the few Nomad HTTP API endpoints the dispatcher needs. */
export class NomadClient {
  private readonly dispatcher: Dispatcher;

  constructor(private readonly opts: NomadClientOptions) {
    this.dispatcher = nomadAgent(opts.tls);
  }

  get namespace(): string {
    return this.opts.namespace;
  }

  leader(): Promise<string> {
    return this.call("GET", "/v1/status/leader");
  }

  /** Token introspection (doctor): the token's policies and type. */
  tokenSelf(): Promise<{ AccessorID: string; Type: string; Policies: string[] | null; Name: string }> {
    return this.call("GET", "/v1/acl/token/self");
  }

  /** The namespaces this token has any capability in: Nomad filters the list by the token's ACL. */
  listNamespaces(): Promise<Array<{ Name: string }>> {
    return this.call("GET", "/v1/namespaces");
  }

  /** Whether the token may read `path` (doctor's probe of rules it should not hold): 200 yes, 403 no. */
  async mayRead(path: string): Promise<boolean> {
    try {
      await this.call("GET", path);
      return true;
    } catch (err) {
      if (err instanceof DependencyError && err.status === 403) return false;
      throw err;
    }
  }

  /** A node pool by name (GET /v1/node/pool/:name); undefined when Nomad has none of that name. */
  nodePool(name: string): Promise<{ Name: string } | undefined> {
    return this.orNotFound(this.call("GET", `/v1/node/pool/${encodeURIComponent(name)}`));
  }

  /** The nodes of a pool (GET /v1/node/pool/:name/nodes; needs node:read too). */
  nodePoolNodes(name: string): Promise<Array<Pick<NomadNode, "ID" | "Name" | "Status" | "SchedulingEligibility">>> {
    return this.call("GET", `/v1/node/pool/${encodeURIComponent(name)}/nodes`);
  }

  /** One node with its attributes and meta (GET /v1/node/:id). */
  readNode(id: string): Promise<NomadNode | undefined> {
    return this.orNotFound(this.call("GET", `/v1/node/${encodeURIComponent(id)}`));
  }

  private async orNotFound<T>(call: Promise<T>): Promise<T | undefined> {
    try {
      return await call;
    } catch (err) {
      if (err instanceof DependencyError && err.status === 404) return undefined;
      throw err;
    }
  }

  parseJob(hcl: string, variables?: string): Promise<NomadJob> {
    return this.call("POST", "/v1/jobs/parse", { JobHCL: hcl, Variables: variables, Canonicalize: true });
  }

  async readJob(id: string): Promise<NomadJob | undefined> {
    try {
      return await this.call<NomadJob>("GET", `/v1/job/${encodeURIComponent(id)}`);
    } catch (err) {
      if (err instanceof DependencyError && err.status === 404) return undefined;
      throw err;
    }
  }

  async registerJob(job: NomadJob): Promise<void> {
    await this.call("POST", "/v1/jobs", { Job: job });
  }

  async dispatch(parentId: string, input: { meta: Record<string, string>; idempotencyToken: string; idPrefixTemplate?: string }): Promise<DispatchResult> {
    const query = { idempotency_token: input.idempotencyToken };
    const body = { Meta: input.meta, IdPrefixTemplate: input.idPrefixTemplate };
    const res = await this.call<{ DispatchedJobID: string; EvalID: string }>("POST", `/v1/job/${encodeURIComponent(parentId)}/dispatch`, body, query);
    // Nomad answers a repeated idempotency token with the existing child and no new evaluation.
    return { dispatchedJobId: res.DispatchedJobID, created: res.EvalID !== "" };
  }

  listJobs(prefix: string): Promise<NomadJobStub[]> {
    return this.call("GET", "/v1/jobs", undefined, { prefix, meta: "true" });
  }

  /**
   * Every "Terminated" task event of the job's allocations: `/v1/job/:id/allocations` lists each
   * allocation with its TaskStates (api.AllocationListStub), whose events carry the exit code in
   * Details.exit_code (hashicorp/nomad nomad/structs/structs.go, NewTaskEvent(TaskTerminated)
   * .SetExitCode).
   */
  async taskExits(id: string): Promise<TaskExit[]> {
    const allocs = await this.call<AllocationStub[]>("GET", `/v1/job/${encodeURIComponent(id)}/allocations`);
    return allocs.flatMap((alloc) =>
      Object.entries(alloc.TaskStates ?? {}).flatMap(([task, state]) =>
        (state.Events ?? []).filter((e) => e.Type === "Terminated").map((e) => ({ task, exitCode: Number(e.Details?.exit_code ?? e.ExitCode ?? 0) })),
      ),
    );
  }

  async stopJob(id: string, opts: { purge: boolean }): Promise<void> {
    await this.call("DELETE", `/v1/job/${encodeURIComponent(id)}`, undefined, opts.purge ? { purge: "true" } : {});
  }

  private async call<T>(method: Dispatcher.HttpMethod, path: string, body?: unknown, query: Record<string, string> = {}): Promise<T> {
    const text = nomadOk(await nomadRequest(this.dispatcher, this.opts, method, path, body, query), method, path);
    return (text ? JSON.parse(text) : {}) as T;
  }
}
