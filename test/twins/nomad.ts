// Nomad twin: an in-process stand-in for a Nomad cluster (server + one client) that speaks
// Nomad's HTTP API faithfully enough for nomad-gha-dispatcher, parses the real
// jobs/github-runner.nomad.hcl, and plays each dispatched runner allocation's lifecycle:
// prestart unwraps the credential from Vault (real HTTP), main runs the runner against the GitHub
// twin's ActionsService, poststop deregisters it.
//
// Pieces: nomad-jobspec/nomad-hcl (HCL -> API JSON), nomad-canonical (defaults, validation),
// nomad-state (store, statuses, blocking), nomad-server (register/dispatch/deregister/gc),
// nomad-scheduler (slots, placement, replacement), nomad-runner(+scripts) (the client),
// nomad-acl, nomad-http, nomad-views.

import type { ActionsService, FaultPlan, RecordedRequest } from "./contract.js";
import { AclRegistry } from "./nomad-acl.js";
import { NomadHttp } from "./nomad-http.js";
import { Scheduler } from "./nomad-scheduler.js";
import { NomadServer } from "./nomad-server.js";
import { NomadState } from "./nomad-state.js";
import type { TwinAllocation, TwinNomadJob } from "./nomad-types.js";

export type { TwinAllocation, TwinNomadJob, TaskState, TaskEvent, ClientStatus } from "./nomad-types.js";

export interface NomadTwinOptions {
  /** The GitHub twin's runner side: what a runner process talks to. */
  actions: ActionsService;
  /** Enforce ACL tokens. Off (the default), every request may do everything, as with ACLs disabled. */
  acl?: boolean;
  /** Allocations the "cluster" runs at once (default unlimited); more wait, FIFO, with their job pending. */
  slots?: number;
  /** Scheduling and image pull time before an allocation's tasks start (default 5 ms). */
  startDelayMs?: number;
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
  /** The allocation's node is lost: ClientStatus "lost", tasks killed, no poststop; Nomad places a replacement. */
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
  ) {
    this.faults = faults;
    this.requests = requests;
    this.managementToken = acl?.managementToken ?? "";
  }

  static async start(opts: NomadTwinOptions): Promise<NomadTwin> {
    const state = new NomadState();
    const taskFaults = new TaskFaults();
    const startDelayMs = opts.startDelayMs ?? 5;
    const scheduler = new Scheduler(state, {
      actions: opts.actions,
      slots: opts.slots ?? Number.POSITIVE_INFINITY,
      startDelayMs,
      crashAfterMs: Math.max(startDelayMs, 5),
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
    const http = new NomadHttp({ state, server, scheduler, acl, faults, requests, hasLeader: () => twin?.leader ?? true });
    const url = await http.listen();
    twin = new NomadTwin(url, state, server, scheduler, http, acl, faults, requests);
    return twin;
  }

  /** A client token with one policy made of `policyRules` (Nomad ACL policy HCL). */
  createToken(policyRules: string, name?: string): string {
    if (!this.acl) throw new Error("NomadTwin: ACLs are disabled; start the twin with { acl: true }");
    return this.acl.createToken(policyRules, name);
  }

  /** Namespaces other than "default" must exist before jobs are registered in them, as in Nomad. */
  createNamespace(name: string): void {
    this.state.namespaces.add(name);
  }

  /** Snapshot of the jobs of one namespace, or of all namespaces when omitted. */
  jobs(namespace?: string): TwinNomadJob[] {
    return structuredClone(this.state.listJobs(namespace ?? "*"));
  }

  allocations(): TwinAllocation[] {
    return structuredClone(this.state.listAllocs());
  }

  /** Dispatched children that are not dead yet. */
  runningRunnerJobs(): TwinNomadJob[] {
    return this.jobs().filter((job) => job.Dispatched && job.Status !== "dead");
  }

  /** What each task of an allocation printed (curl errors, "credential for ... unwrapped", ...). */
  allocationLogs(allocId: string): Record<string, string[]> | undefined {
    return this.scheduler.logsOf(allocId);
  }

  /** `nomad system gc`: dead jobs (freeing their idempotency tokens), their allocations and evaluations. */
  gc(): void {
    this.server.gc();
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
    await this.scheduler.close();
    await this.http.close();
  }
}
