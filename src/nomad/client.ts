import { Agent, type Dispatcher } from "undici";
import type { TaskExit } from "../core/credential-refused.js";
import { DependencyError } from "../core/errors.js";
import type { AllocationStub, DispatchResult, NomadJob, NomadJobStub } from "./types.js";

export interface NomadClientOptions {
  addr: string;
  token?: string;
  namespace: string;
  region?: string;
}

/** Per-request timeout: Nomad answers in milliseconds unless it has no leader. */
const REQUEST_TIMEOUT_MS = 10_000;

/** Thin client for the few Nomad HTTP API endpoints the dispatcher needs. */
export class NomadClient {
  private readonly dispatcher: Dispatcher;

  constructor(private readonly opts: NomadClientOptions) {
    this.dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: 32 });
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
    const params = new URLSearchParams({ ...query, namespace: this.opts.namespace });
    if (this.opts.region) params.set("region", this.opts.region);
    const headers: Record<string, string> = { accept: "application/json" };
    if (this.opts.token) headers["x-nomad-token"] = this.opts.token;
    if (body !== undefined) headers["content-type"] = "application/json";
    let res: Dispatcher.ResponseData;
    try {
      res = await this.dispatcher.request({
        origin: this.opts.addr,
        path: `${path}?${params}`,
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        headersTimeout: REQUEST_TIMEOUT_MS,
        bodyTimeout: REQUEST_TIMEOUT_MS,
      });
    } catch (err) {
      throw new DependencyError("nomad", `Nomad ${method} ${path}: ${(err as Error).message}`, undefined, true);
    }
    const text = await res.body.text();
    if (res.statusCode >= 400) {
      throw new DependencyError(
        "nomad",
        `Nomad ${method} ${path}: ${res.statusCode} ${text.trim().slice(0, 300)}`,
        res.statusCode,
        isTransientNomadFailure(res.statusCode, text),
      );
    }
    return (text ? JSON.parse(text) : {}) as T;
  }
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
