// The server's RPCs the twin serves (Job.Register, Job.Dispatch, Job.Deregister, System.GarbageCollect),
// validating like nomad/job_endpoint.go and answering with its error texts. Errors that are plain
// `fmt.Errorf`s in Nomad surface over HTTP as 500, as in Nomad.

import { randomBytes } from "node:crypto";
import { applyServerDefaults, canonicalizeJob, JOB_MAX_PRIORITY, JOB_MIN_PRIORITY, specChanged, validateJob } from "./nomad-canonical.js";
import { namespaceDriverError } from "./nomad-namespaces.js";
import type { Scheduler } from "./nomad-scheduler.js";
import { allocIsTerminal, evalIsTerminal, isParameterizedParent, type NomadState, nowNanos } from "./nomad-state.js";
import type { JsonObject, TwinNomadJob } from "./nomad-types.js";

/** An error with the HTTP status and text/plain body Nomad's agent would answer. */
export class NomadError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const DISPATCH_PAYLOAD_SIZE_LIMIT = 16 * 1024;

/** QueryMeta fields Nomad embeds in write responses. */
const RESPONSE_META = { LastContact: 0, KnownLeader: false, NextToken: "" };

export interface RegisterOptions {
  namespace: string;
  enforceIndex: boolean;
  jobModifyIndex: number;
}

export interface DispatchRequest {
  /** Base64, as Go encodes []byte. */
  Payload?: string | null;
  Meta?: Record<string, string> | null;
  IdPrefixTemplate?: string;
  IdempotencyToken?: string;
  Priority?: number;
}

export class NomadServer {
  constructor(
    private readonly state: NomadState,
    private readonly scheduler: Scheduler,
  ) {}

  // -------------------------------------------------------------------------------------------
  // Job.Register

  register(rawJob: JsonObject, opts: RegisterOptions): JsonObject {
    const job = canonicalizeJob(rawJob);
    job.Namespace = opts.namespace;
    applyServerDefaults(job);
    const invalid = validateJob(job);
    if (invalid) throw new NomadError(500, invalid);
    const existing = this.state.job(job.Namespace, job.ID);
    if (opts.enforceIndex) enforceIndex(existing, opts.jobModifyIndex);
    validateJobUpdate(existing, job);
    const namespace = this.state.namespaces.get(job.Namespace);
    if (!namespace) throw new NomadError(500, `job ${JSON.stringify(job.ID)} is in nonexistent namespace ${JSON.stringify(job.Namespace)}`);
    const driverError = namespaceDriverError(job, namespace);
    if (driverError) throw new NomadError(500, driverError);
    return existing && !specChanged(existing, job) ? this.reRegisterUnchanged(existing) : this.storeNewVersion(job, existing);
  }

  /** An identical spec is not a new version; service and batch jobs still get a fresh evaluation. */
  private reRegisterUnchanged(existing: TwinNomadJob): JsonObject {
    if (!needsEvaluation(existing)) {
      return { EvalID: "", EvalCreateIndex: 0, JobModifyIndex: existing.ModifyIndex, Warnings: "", Index: existing.ModifyIndex, ...RESPONSE_META };
    }
    let evalId = "";
    const index = this.state.write((txn) => {
      evalId = this.scheduler.newEvaluation(txn, existing, "job-register", { reconcile: true }).ID;
    });
    return { EvalID: evalId, EvalCreateIndex: index, JobModifyIndex: existing.ModifyIndex, Warnings: "", Index: index, ...RESPONSE_META };
  }

  private storeNewVersion(job: TwinNomadJob, existing: TwinNomadJob | undefined): JsonObject {
    let evalId = "";
    const index = this.state.write((txn) => {
      Object.assign(job, {
        // upsertJobImpl: a new job keeps the version it came with; an update moves past the stored one.
        Version: existing && job.Version <= existing.Version ? existing.Version + 1 : job.Version,
        CreateIndex: existing?.CreateIndex ?? txn.index,
        ModifyIndex: txn.index,
        JobModifyIndex: txn.index,
        SubmitTime: nowNanos(),
        Status: "",
        StatusDescription: "",
        Stable: false,
      });
      txn.putJob(job);
      if (needsEvaluation(job)) evalId = this.scheduler.newEvaluation(txn, job, "job-register", { reconcile: true }).ID;
    });
    return { EvalID: evalId, EvalCreateIndex: evalId ? index : 0, JobModifyIndex: index, Warnings: "", Index: index, ...RESPONSE_META };
  }

  // -------------------------------------------------------------------------------------------
  // Job.Dispatch

  dispatch(namespace: string, parentId: string, request: DispatchRequest): JsonObject {
    if (parentId === "") throw new NomadError(500, "missing parameterized job ID");
    const parent = this.state.job(namespace, parentId);
    if (!parent) throw new NomadError(500, "parameterized job not found");
    if (!isParameterizedParent(parent)) throw new NomadError(500, `Specified job ${JSON.stringify(parentId)} is not a parameterized job`);
    if (parent.Stop) throw new NomadError(500, `Specified job ${JSON.stringify(parentId)} is stopped`);
    const priority = request.Priority || parent.Priority;
    const payload = decodePayload(request.Payload);
    validateDispatch(parent, request.Meta ?? {}, payload, priority);

    const token = request.IdempotencyToken ?? "";
    const existing = token === "" ? undefined : this.childWithToken(parent, token);
    if (existing) {
      // Not an error: the caller gets the child that token already made, and no new evaluation.
      return { DispatchedJobID: existing.ID, EvalID: "", EvalCreateIndex: 0, JobCreateIndex: existing.CreateIndex, Index: existing.ModifyIndex };
    }
    return this.createChild(parent, { meta: request.Meta ?? {}, payload, priority, token, idPrefixTemplate: request.IdPrefixTemplate ?? "" });
  }

  /** state.CheckIdempotencyToken: children count until they are garbage collected, dead or not. */
  private childWithToken(parent: TwinNomadJob, token: string): TwinNomadJob | undefined {
    return this.state.childrenOf(parent).find((child) => child.DispatchIdempotencyToken === token);
  }

  private createChild(
    parent: TwinNomadJob,
    input: { meta: Record<string, string>; payload: Buffer; priority: number; token: string; idPrefixTemplate: string },
  ): JsonObject {
    const child: TwinNomadJob = structuredClone(parent);
    child.ID = dispatchedId(parent.ID, input.idPrefixTemplate);
    Object.assign(child, {
      ParentID: parent.ID,
      Name: child.ID,
      SubmitTime: nowNanos(),
      Dispatched: true,
      Status: "",
      StatusDescription: "",
      DispatchIdempotencyToken: input.token,
      Priority: input.priority,
      Meta: { ...(parent.Meta ?? {}), ...input.meta },
      Payload: input.payload.length > 0 ? input.payload.toString("base64") : null,
    });
    let evalId = "";
    const index = this.state.write((txn) => {
      Object.assign(child, { CreateIndex: txn.index, ModifyIndex: txn.index, JobModifyIndex: txn.index });
      txn.putJob(child);
      evalId = this.scheduler.newEvaluation(txn, child, "job-register", { reconcile: true }).ID;
    });
    return { DispatchedJobID: child.ID, EvalID: evalId, EvalCreateIndex: index, JobCreateIndex: index, Index: index };
  }

  // -------------------------------------------------------------------------------------------
  // Job.Deregister

  deregister(namespace: string, id: string, purge: boolean): JsonObject {
    const job = this.state.job(namespace, id);
    if (!job) {
      return { EvalID: "", EvalCreateIndex: 0, JobModifyIndex: 0, VolumeEvalID: "", VolumeEvalIndex: 0, Index: 0, ...RESPONSE_META };
    }
    let evalId = "";
    const index = this.state.write((txn) => {
      if (purge) txn.deleteJob(namespace, id);
      else {
        Object.assign(job, { Stop: true, Version: job.Version + 1, ModifyIndex: txn.index, JobModifyIndex: txn.index, SubmitTime: nowNanos() });
        txn.putJob(job);
      }
      // Periodic and parameterized parents have no allocations of their own to stop.
      if (needsEvaluation(job)) evalId = this.scheduler.newEvaluation(txn, job, "job-deregister", { stopAll: true }).ID;
    });
    return { EvalID: evalId, EvalCreateIndex: index, JobModifyIndex: index, VolumeEvalID: "", VolumeEvalIndex: 0, Index: index, ...RESPONSE_META };
  }

  // -------------------------------------------------------------------------------------------
  // System.GarbageCollect (forced): dead jobs whose allocations and evaluations are all terminal.

  gc(): void {
    const jobs = this.state.listJobs("*").filter((job) => job.Status === "dead" && this.allTerminal(job.Namespace, job.ID));
    const orphanAllocs = this.state.listAllocs().filter((alloc) => !this.state.job(alloc.Namespace, alloc.JobID) && allocIsTerminal(alloc));
    const orphanEvals = this.state.listEvals().filter((e) => !this.state.job(e.Namespace, e.JobID) && evalIsTerminal(e));
    if (jobs.length + orphanAllocs.length + orphanEvals.length === 0) return;
    this.state.write((txn) => {
      for (const job of jobs) {
        for (const alloc of this.state.allocsOfJob(job.Namespace, job.ID)) txn.deleteAlloc(alloc.ID);
        for (const evaluation of this.state.evalsOfJob(job.Namespace, job.ID)) txn.deleteEval(evaluation.ID);
        txn.deleteJob(job.Namespace, job.ID);
      }
      for (const alloc of orphanAllocs) txn.deleteAlloc(alloc.ID);
      for (const evaluation of orphanEvals) txn.deleteEval(evaluation.ID);
    });
  }

  private allTerminal(namespace: string, id: string): boolean {
    return this.state.allocsOfJob(namespace, id).every(allocIsTerminal) && this.state.evalsOfJob(namespace, id).every(evalIsTerminal);
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

function needsEvaluation(job: TwinNomadJob): boolean {
  return !isParameterizedParent(job) && job.Periodic === null;
}

function enforceIndex(existing: TwinNomadJob | undefined, index: number): void {
  const prefix = "Enforcing job modify index";
  if (existing) {
    if (index === 0) throw new NomadError(500, `${prefix} 0: job already exists`);
    if (index !== existing.JobModifyIndex) {
      throw new NomadError(500, `${prefix} ${index}: job exists with conflicting job modify index: ${existing.JobModifyIndex}`);
    }
  } else if (index !== 0) {
    throw new NomadError(500, `${prefix} ${index}: job does not exist`);
  }
}

/** nomad/job_endpoint.go validateJobUpdate */
function validateJobUpdate(existing: TwinNomadJob | undefined, next: TwinNomadJob): void {
  if (!existing) {
    if (next.Dispatched) throw new NomadError(500, "job can't be submitted with 'Dispatched' set");
    return;
  }
  if (existing.Type !== next.Type) throw new NomadError(500, `cannot update job from type ${JSON.stringify(existing.Type)} to ${JSON.stringify(next.Type)}`);
  if (existing.Periodic !== null && next.Periodic === null) throw new NomadError(500, "cannot update periodic job to being non-periodic");
  if (existing.Periodic === null && next.Periodic !== null) throw new NomadError(500, "cannot update non-periodic job to being periodic");
  if (isParameterizedParent(existing) && !isParameterizedParent(next)) {
    throw new NomadError(500, "cannot update parameterized job to being non-parameterized");
  }
  if (!isParameterizedParent(existing) && isParameterizedParent(next)) {
    throw new NomadError(500, "cannot update non-parameterized job to being parameterized");
  }
  if (existing.Dispatched !== next.Dispatched) throw new NomadError(500, "field 'Dispatched' is read-only");
}

function decodePayload(payload: string | null | undefined): Buffer {
  if (!payload) return Buffer.alloc(0);
  return Buffer.from(payload, "base64");
}

/** nomad/job_endpoint.go validateDispatchRequest, in its order. */
function validateDispatch(parent: TwinNomadJob, meta: Record<string, string>, payload: Buffer, priority: number): void {
  const config = parent.ParameterizedJob;
  if (!config) return;
  if (config.Payload === "required" && payload.length === 0) {
    throw new NomadError(500, "Payload is not provided but required by parameterized job");
  }
  if (config.Payload === "forbidden" && payload.length > 0) throw new NomadError(500, "Payload provided but forbidden by parameterized job");
  if (payload.length > DISPATCH_PAYLOAD_SIZE_LIMIT) {
    throw new NomadError(500, `Payload exceeds maximum size; ${payload.length} > ${DISPATCH_PAYLOAD_SIZE_LIMIT}`);
  }
  const allowed = new Set([...(config.MetaRequired ?? []), ...(config.MetaOptional ?? [])]);
  const unpermitted = Object.keys(meta).filter((key) => !allowed.has(key));
  if (unpermitted.length > 0) throw new NomadError(500, `Dispatch request included unpermitted metadata keys: ${goList(unpermitted)}`);
  const missing = (config.MetaRequired ?? []).filter((key) => !Object.hasOwn(meta, key));
  if (missing.length > 0) throw new NomadError(500, `Dispatch did not provide required meta keys: ${goList(missing)}`);
  if (priority < JOB_MIN_PRIORITY || priority > JOB_MAX_PRIORITY) {
    throw new NomadError(500, `dispatch job priority must be between [${JOB_MIN_PRIORITY}, ${JOB_MAX_PRIORITY}]`);
  }
}

/** Go's `%v` of a []string. */
function goList(items: string[]): string {
  return `[${items.join(" ")}]`;
}

/** structs.DispatchedID: `<parent>/dispatch-[<template>-]<unix seconds>-<8 hex>`. */
export function dispatchedId(parentId: string, idPrefixTemplate: string): string {
  const unix = Math.floor(Date.now() / 1000);
  const suffix = randomBytes(4).toString("hex");
  const template = idPrefixTemplate ? `${idPrefixTemplate}-` : "";
  return `${parentId}/dispatch-${template}${unix}-${suffix}`;
}
