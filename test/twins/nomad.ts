// Nomad twin: an in-process stand-in for a Nomad cluster (server + one client) that speaks
// Nomad's HTTP API faithfully enough for nomad-gha-dispatcher, parses the real job files, and
// runs each allocation's tasks for real: directories on disk with the client's owners and modes,
// templates rendered (Vault secrets through workload identity), commands run by bash as the
// image's user, kill timeouts capped by max_kill_timeout.
//
// Pieces: nomad-jobspec/nomad-hcl (HCL -> API JSON), nomad-canonical (defaults, validation),
// nomad-state (store, statuses, blocking), nomad-server (register/dispatch/deregister/gc),
// nomad-scheduler (slots, placement, replacement), nomad-runner (the client's alloc runner),
// nomad-alloc-dir, nomad-template, nomad-docker, nomad-identity, nomad-acl, nomad-namespaces,
// nomad-http, nomad-views.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FaultPlan, RecordedRequest, TwinImage } from "./contract.js";
import { AclRegistry } from "./nomad-acl.js";
import { type AgentTls, NomadHttp } from "./nomad-http.js";
import { type ClientVaultConfig, IdentitySigner } from "./nomad-identity.js";
import { defaultNamespace, parseNamespaceSpec } from "./nomad-namespaces.js";
import type { TwinNodeOptions } from "./nomad-nodes.js";
import { Scheduler } from "./nomad-scheduler.js";
import { NomadServer } from "./nomad-server.js";
import { NomadState } from "./nomad-state.js";
import type { TwinAllocation, TwinNomadJob } from "./nomad-types.js";
import { type TwinVariable, VariableStore } from "./nomad-variables.js";

export type { ClientStatus, TaskEvent, TaskState, TwinAllocation, TwinNomadJob } from "./nomad-types.js";
export type { TwinVariable } from "./nomad-variables.js";

export interface NomadTwinOptions {
  /** The images the client can pull, by name (e.g. the actions-runner stand-in). */
  images: (name: string) => TwinImage | undefined;
  /** The client's vault block: where tasks with a vault block log in. */
  vault?: ClientVaultConfig;
  /** The client's max_kill_timeout (default 30 s, command/agent/config.go). */
  maxKillTimeoutMs?: number;
  /** Enforce ACL tokens. Off (the default), every request may do everything, as with ACLs disabled. */
  acl?: boolean;
  /** Allocations the "cluster" runs at once (default unlimited); more wait, FIFO, with their job pending. */
  slots?: number;
  /**
   * Scheduling and image pull time before an allocation's tasks start (default 5 ms); a function
   * of the job ID models it per job (a runner class with a larger image, a busier node pool).
   */
  startDelayMs?: number | ((jobId: string) => number);
  /** Serve the HTTP API over TLS (nomad-http.ts). */
  tls?: AgentTls;
  /** The client node's pool, attributes and meta, and the node pools the cluster has. */
  node?: TwinNodeOptions;
}

export interface NomadFaults extends FaultPlan {
  /** The prestart task of the next `n` allocations fails (exit 1) before unwrapping anything. */
  failNextPrestart(n?: number): void;
  /** The runner of the next `n` main tasks crashes shortly after it started. */
  crashNextMain(n?: number): void;
  /**
   * The runner process of this allocation's running main task crashes now (exit 1, allocation
   * failed, poststop runs). Returns false when the allocation has no main task running.
   */
  crashMain(allocId: string): boolean;
  /**
   * The allocation's node goes down: its tasks die, no poststop runs. The allocation is "lost" and
   * replaced, or, running in a group with `disconnect { replace = false }`, "unknown" and not
   * replaced (its job then stays running until stopped).
   */
  loseAllocation(allocId: string): void;
}

/** Counters the allocation runners draw from when a prestart or main task starts. */
class TaskFaults {
  prestartFailures = 0;
  mainCrashes = 0;

  takePrestartFailure(): boolean {
    if (this.prestartFailures <= 0) return false;
    this.prestartFailures -= 1;
    return true;
  }

  takeMainCrash(): boolean {
    if (this.mainCrashes <= 0) return false;
    this.mainCrashes -= 1;
    return true;
  }
}

export class NomadTwin {
  readonly requests: RecordedRequest[];
  readonly faults: NomadFaults;
  /** A management token's SecretID when ACLs are on; "" otherwise. */
  managementToken: string;
  private leader = true;

  private constructor(
    readonly url: string,
    private readonly state: NomadState,
    private readonly server: NomadServer,
    private readonly scheduler: Scheduler,
    private readonly http: NomadHttp,
    private readonly acl: AclRegistry | undefined,
    faults: NomadFaults,
    requests: RecordedRequest[],
    private readonly dataDir: string,
    readonly signer: IdentitySigner,
    private readonly variableStore: VariableStore,
  ) {
    this.faults = faults;
    this.requests = requests;
    this.managementToken = acl?.managementToken ?? "";
  }

  static async start(opts: NomadTwinOptions): Promise<NomadTwin> {
    const state = new NomadState();
    const taskFaults = new TaskFaults();
    const delay = opts.startDelayMs ?? 5;
    const startDelayMs = typeof delay === "number" ? () => delay : delay;
    const dataDir = mkdtempSync(join(tmpdir(), "nomad-twin-"));
    const signer = new IdentitySigner();
    const scheduler = new Scheduler(state, {
      image: opts.images,
      dataDir,
      maxKillTimeoutNs: (opts.maxKillTimeoutMs ?? 30_000) * 1e6,
      vault: opts.vault,
      docker: opts.node?.docker ?? {},
      signer,
      slots: opts.slots ?? Number.POSITIVE_INFINITY,
      startDelayMs,
      crashAfterMs: Math.max(typeof delay === "number" ? delay : 5, 5),
      takePrestartFailure: () => taskFaults.takePrestartFailure(),
      takeMainCrash: () => taskFaults.takeMainCrash(),
    });
    const server = new NomadServer(state, scheduler);
    const acl = opts.acl ? new AclRegistry() : undefined;
    const requests: RecordedRequest[] = [];
    const faults: NomadFaults = {
      failNextPrestart: (n = 1) => void (taskFaults.prestartFailures += n),
      crashNextMain: (n = 1) => void (taskFaults.mainCrashes += n),
      crashMain: (allocId) => scheduler.crashMain(allocId),
      loseAllocation: (allocId) => scheduler.loseAllocation(allocId),
    };
    let twin: NomadTwin | undefined;
    const variables = new VariableStore(state);
    const http = new NomadHttp({
      state,
      variables,
      server,
      scheduler,
      acl,
      faults,
      requests,
      hasLeader: () => twin?.leader ?? true,
      tls: opts.tls,
      node: opts.node ?? {},
    });
    const url = await http.listen();
    twin = new NomadTwin(url, state, server, scheduler, http, acl, faults, requests, dataDir, signer, variables);
    return twin;
  }

  /** A client token with one policy made of `policyRules` (Nomad ACL policy HCL). */
  createToken(policyRules: string, name?: string): string {
    if (!this.acl) throw new Error("NomadTwin: ACLs are disabled; start the twin with { acl: true }");
    return this.acl.createToken(policyRules, name);
  }

  /** Namespaces other than "default" must exist before jobs are registered in them, as in Nomad. */
  createNamespace(name: string): void {
    this.state.namespaces.set(name, {
      ...defaultNamespace(),
      Name: name,
      Description: "",
      CreateIndex: this.state.latestIndex,
      ModifyIndex: this.state.latestIndex,
    });
  }

  /** `nomad namespace apply <file>`: a namespace spec file, its capabilities enforced on Job.Register. */
  async applyNamespace(specHcl: string): Promise<string> {
    const namespace = await parseNamespaceSpec(specHcl, this.state.latestIndex);
    this.state.namespaces.set(namespace.Name, namespace);
    return namespace.Name;
  }

  /** Snapshot of the jobs of one namespace, or of all namespaces when omitted. */
  jobs(namespace?: string): TwinNomadJob[] {
    return structuredClone(this.state.listJobs(namespace ?? "*"));
  }

  /** Snapshot of the variables under `prefix` in a namespace (with their items). */
  variables(namespace = "default", prefix = ""): TwinVariable[] {
    return this.variableStore.list(namespace, prefix);
  }

  allocations(): TwinAllocation[] {
    return structuredClone(this.state.listAllocs());
  }

  /** Dispatched children that are not dead yet. */
  runningRunnerJobs(): TwinNomadJob[] {
    return this.jobs().filter((job) => job.Dispatched && job.Status !== "dead");
  }

  /** What each task of an allocation printed, stdout and stderr by line (curl errors, "runner ... configured", ...). */
  allocationLogs(allocId: string): Record<string, string[]> | undefined {
    return this.scheduler.logsOf(allocId);
  }

  /**
   * The host directory of an allocation (`<data_dir>/alloc/<id>`, what `nomad alloc fs` browses),
   * there until client GC (gc() or close()) removes it.
   */
  allocDirPath(allocId: string): string {
    return join(this.dataDir, "alloc", allocId);
  }

  /** `nomad system gc`: dead jobs (freeing their idempotency tokens), their allocations and evaluations. */
  gc(): void {
    this.server.gc();
    void this.scheduler.gcAllocDirs();
  }

  /** Without a leader the servers answer 500 `No cluster leader`; clients keep running their allocations. */
  setLeader(ok: boolean): void {
    this.leader = ok;
  }

  /** Resolves when no allocation is pending or running and nothing placeable waits in the queue. */
  waitIdle(): Promise<void> {
    return this.scheduler.waitIdle();
  }

  async close(): Promise<void> {
    this.variableStore.stopTimers();
    await this.scheduler.close();
    await this.http.close();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
