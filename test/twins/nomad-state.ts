// The twin's state store: jobs, allocations and evaluations behind one raft-like index, with the
// job status rules of Nomad's state store (getJobStatus) and wake-ups for blocking queries.

import { defaultNamespace, type TwinNamespace } from "./nomad-namespaces.js";
import type { JobStatus, TwinAllocation, TwinEvaluation, TwinNomadJob } from "./nomad-types.js";

const TERMINAL_CLIENT_STATUSES = new Set(["complete", "failed", "lost"]);

/** The server's view: an allocation told to stop is terminal even while its client still runs poststop tasks. */
export function allocIsTerminal(alloc: TwinAllocation): boolean {
  return alloc.DesiredStatus !== "run" || TERMINAL_CLIENT_STATUSES.has(alloc.ClientStatus);
}

export function evalIsTerminal(evaluation: TwinEvaluation): boolean {
  return evaluation.Status === "complete" || evaluation.Status === "failed" || evaluation.Status === "canceled";
}

export function isParameterizedParent(job: TwinNomadJob): boolean {
  return job.ParameterizedJob !== null && !job.Dispatched;
}

/** Nanoseconds since the epoch, as Nomad stamps CreateTime/ModifyTime. */
export function nowNanos(): number {
  return Date.now() * 1e6;
}

function jobKey(namespace: string, id: string): string {
  return `${namespace}\u0000${id}`;
}

/** The handle a write gets: every change goes through it so indexes and statuses stay consistent. */
export interface WriteTxn {
  readonly index: number;
  putJob(job: TwinNomadJob): void;
  deleteJob(namespace: string, id: string): void;
  putAlloc(alloc: TwinAllocation): void;
  deleteAlloc(id: string): void;
  putEval(evaluation: TwinEvaluation): void;
  deleteEval(id: string): void;
}

export class NomadState {
  /** Nomad's raft index never starts at zero; a few bootstrap entries precede any job. */
  private index = 10;
  private readonly tableIndex = { jobs: 1, allocs: 1, evals: 1 };
  private readonly jobs = new Map<string, TwinNomadJob>();
  private readonly allocs = new Map<string, TwinAllocation>();
  private readonly evals = new Map<string, TwinEvaluation>();
  private readonly wakeups = new Set<() => void>();
  /** By name; "default" always exists. */
  readonly namespaces = new Map<string, TwinNamespace>([["default", defaultNamespace()]]);

  get latestIndex(): number {
    return this.index;
  }

  get jobsIndex(): number {
    return this.tableIndex.jobs;
  }

  get allocsIndex(): number {
    return this.tableIndex.allocs;
  }

  get evalsIndex(): number {
    return this.tableIndex.evals;
  }

  // -------------------------------------------------------------------------------------------
  // Reads

  job(namespace: string, id: string): TwinNomadJob | undefined {
    return this.jobs.get(jobKey(namespace, id));
  }

  /** Jobs sorted like Nomad's memdb index (namespace, then ID); "*" means every namespace. */
  listJobs(namespace: string | "*"): TwinNomadJob[] {
    return [...this.jobs.values()]
      .filter((job) => namespace === "*" || job.Namespace === namespace)
      .sort((a, b) => (a.Namespace === b.Namespace ? compare(a.ID, b.ID) : compare(a.Namespace, b.Namespace)));
  }

  childrenOf(parent: TwinNomadJob): TwinNomadJob[] {
    return this.listJobs(parent.Namespace).filter((job) => job.ParentID === parent.ID);
  }

  alloc(id: string): TwinAllocation | undefined {
    return this.allocs.get(id);
  }

  listAllocs(): TwinAllocation[] {
    return [...this.allocs.values()].sort((a, b) => a.CreateIndex - b.CreateIndex || compare(a.ID, b.ID));
  }

  allocsOfJob(namespace: string, id: string): TwinAllocation[] {
    return this.listAllocs().filter((alloc) => alloc.Namespace === namespace && alloc.JobID === id);
  }

  evaluation(id: string): TwinEvaluation | undefined {
    return this.evals.get(id);
  }

  listEvals(): TwinEvaluation[] {
    return [...this.evals.values()].sort((a, b) => a.CreateIndex - b.CreateIndex);
  }

  evalsOfJob(namespace: string, id: string): TwinEvaluation[] {
    return [...this.evals.values()].filter((e) => e.Namespace === namespace && e.JobID === id).sort((a, b) => a.CreateIndex - b.CreateIndex);
  }

  // -------------------------------------------------------------------------------------------
  // Writes

  /**
   * Applies one write at a fresh index, then recomputes the status of every job it touched
   * (directly or through its allocations and evaluations) and wakes blocking queries.
   */
  write(apply: (txn: WriteTxn) => void): number {
    const index = ++this.index;
    const touchedJobs = new Set<string>();
    const touch = (namespace: string, id: string): void => void touchedJobs.add(jobKey(namespace, id));
    apply({
      index,
      putJob: (job) => {
        this.jobs.set(jobKey(job.Namespace, job.ID), job);
        this.tableIndex.jobs = index;
        touch(job.Namespace, job.ID);
      },
      deleteJob: (namespace, id) => {
        if (this.jobs.delete(jobKey(namespace, id))) this.tableIndex.jobs = index;
      },
      putAlloc: (alloc) => {
        this.allocs.set(alloc.ID, alloc);
        this.tableIndex.allocs = index;
        touch(alloc.Namespace, alloc.JobID);
      },
      deleteAlloc: (id) => {
        if (this.allocs.delete(id)) this.tableIndex.allocs = index;
      },
      putEval: (evaluation) => {
        this.evals.set(evaluation.ID, evaluation);
        this.tableIndex.evals = index;
        touch(evaluation.Namespace, evaluation.JobID);
      },
      deleteEval: (id) => {
        if (this.evals.delete(id)) this.tableIndex.evals = index;
      },
    });
    for (const key of touchedJobs) this.refreshStatus(key, index);
    this.wakeAll();
    return index;
  }

  private refreshStatus(key: string, index: number): void {
    const job = this.jobs.get(key);
    if (!job) return;
    const status = this.computeStatus(job);
    if (status === job.Status) return;
    job.Status = status;
    job.ModifyIndex = index;
    this.tableIndex.jobs = index;
  }

  /** nomad/state getJobStatus */
  private computeStatus(job: TwinNomadJob): JobStatus {
    if (job.Type === "system" || isParameterizedParent(job) || job.Periodic !== null) return job.Stop ? "dead" : "running";
    if (this.allocsOfJob(job.Namespace, job.ID).some((alloc) => !allocIsTerminal(alloc))) return "running";
    const evals = this.evalsOfJob(job.Namespace, job.ID);
    if (evals.some((e) => !evalIsTerminal(e))) return "pending";
    return evals.length > 0 || job.Stop ? "dead" : "pending";
  }

  // -------------------------------------------------------------------------------------------
  // Blocking queries

  /** Resolves at the next write, or after `timeoutMs`, whichever comes first. */
  nextWrite(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.wakeups.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, Math.max(0, timeoutMs));
      this.wakeups.add(wake);
    });
  }

  /** Releases every blocked query (used on close). */
  wakeAll(): void {
    for (const wake of [...this.wakeups]) wake();
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
