// Scheduler and client pool of the twin's one-node "cluster". Evaluations queue placements FIFO;
// a placement becomes an allocation when a slot is free (until then its evaluation is blocked and
// the job stays pending, as in Nomad when the cluster is full). Allocation runners report task
// states back; failed allocations are rescheduled per the group's reschedule policy and lost ones
// are replaced, as Nomad's reconciler does.

import { randomUUID } from "node:crypto";
import { AllocRunner, type AllocRunnerHost, type RunnerReport, receivedTaskStates } from "./nomad-runner.js";
import { allocIsTerminal, type NomadState, nowNanos, type WriteTxn } from "./nomad-state.js";
import type { ClientStatus, TaskState, TwinAllocation, TwinEvaluation, TwinNomadJob, TwinTaskGroup } from "./nomad-types.js";

export const NODE = { ID: randomUUID(), Name: "nomad-twin-client-1" };

export interface SchedulerOptions extends Omit<AllocRunnerHost, "report"> {
  slots: number;
}

interface Placement {
  evalId: string;
  namespace: string;
  jobId: string;
  group: string;
  /** The allocation this one replaces (lost or rescheduled). */
  previous?: TwinAllocation;
}

/**
 * What an evaluation asks the scheduler to do: bring the job to its groups' counts (register,
 * dispatch), place specific replacements (lost, rescheduled), or stop everything (deregister).
 */
export type EvalWork = { reconcile: true } | { place: Array<{ group: string; previous: TwinAllocation }> } | { stopAll: true };

/** allocrunner getClientStatus: a failed task fails the allocation at once, even while poststop runs. */
export function clientStatusOf(states: Record<string, TaskState>): { status: ClientStatus; description: string } {
  const list = Object.values(states);
  if (list.some((s) => s.State === "dead" && s.Failed)) return { status: "failed", description: "Failed tasks" };
  if (list.some((s) => s.State === "running")) return { status: "running", description: "Tasks are running" };
  if (list.some((s) => s.State === "pending")) return { status: "pending", description: "No tasks have started" };
  return { status: "complete", description: "All tasks have completed" };
}

export class Scheduler {
  private readonly queue: Placement[] = [];
  /** Allocations whose client is still busy with them; each holds a slot. */
  private readonly runners = new Map<string, AllocRunner>();
  /** Runners whose node was lost: no slot, but the twin still waits for them to wind down on close. */
  private readonly orphans = new Set<AllocRunner>();
  private readonly pendingEvals: Array<{ evaluation: TwinEvaluation; work: EvalWork }> = [];
  /** Allocations on a down node the scheduler will mark lost and replace on its turn (loseAllocation). */
  private readonly pendingLosses: Array<() => void> = [];
  private readonly finishedLogs = new Map<string, Record<string, string[]>>();
  /** Runners done with their allocation; their directories stay until client GC. */
  private readonly finished = new Set<AllocRunner>();
  private tickScheduled = false;
  private idleWaiters: Array<() => void> = [];
  private closed = false;

  constructor(
    private readonly state: NomadState,
    private readonly opts: SchedulerOptions,
  ) {}

  /** A new evaluation for a job; the scheduler picks it up on its next turn. */
  newEvaluation(txn: WriteTxn, job: TwinNomadJob, triggeredBy: string, work: EvalWork): TwinEvaluation {
    const now = nowNanos();
    const evaluation: TwinEvaluation = {
      ID: randomUUID(),
      Namespace: job.Namespace,
      Priority: job.Priority,
      Type: job.Type,
      TriggeredBy: triggeredBy,
      JobID: job.ID,
      Status: "pending",
      StatusDescription: "",
      CreateIndex: txn.index,
      ModifyIndex: txn.index,
      CreateTime: now,
      ModifyTime: now,
    };
    txn.putEval(evaluation);
    this.pendingEvals.push({ evaluation, work });
    this.scheduleTick();
    return evaluation;
  }

  // -------------------------------------------------------------------------------------------
  // The scheduler's turn

  private scheduleTick(): void {
    if (this.tickScheduled || this.closed) return;
    this.tickScheduled = true;
    setImmediate(() => {
      this.tickScheduled = false;
      for (const lose of this.pendingLosses.splice(0)) lose();
      this.processEvaluations();
      this.placeWhileSlotsFree();
      this.checkIdle();
    });
  }

  private processEvaluations(): void {
    for (const { evaluation, work } of this.pendingEvals.splice(0)) {
      if ("stopAll" in work) this.stopJobAllocations(evaluation);
      else if ("place" in work) for (const p of work.place) this.enqueue(evaluation, p.group, p.previous);
      else for (const group of this.missingPlacements(evaluation)) this.enqueue(evaluation, group);
    }
  }

  private enqueue(evaluation: TwinEvaluation, group: string, previous?: TwinAllocation): void {
    this.queue.push({ evalId: evaluation.ID, namespace: evaluation.Namespace, jobId: evaluation.JobID, group, previous });
  }

  /**
   * Groups short of their count. Allocations still meant to run count, finished ones too (a
   * batch job does not rerun what completed); replaced ones and stopped ones do not.
   */
  private missingPlacements(evaluation: TwinEvaluation): string[] {
    const job = this.state.job(evaluation.Namespace, evaluation.JobID);
    if (!job || job.Stop) return [];
    const allocs = this.state.allocsOfJob(job.Namespace, job.ID).filter((a) => a.DesiredStatus === "run" && a.NextAllocation === "");
    return job.TaskGroups.flatMap((group) => {
      const have =
        allocs.filter((a) => a.TaskGroup === group.Name).length +
        this.queue.filter((p) => p.namespace === job.Namespace && p.jobId === job.ID && p.group === group.Name).length;
      return Array.from({ length: Math.max(0, group.Count - have) }, () => group.Name);
    });
  }

  private placeWhileSlotsFree(): void {
    while (this.runners.size < this.opts.slots && this.queue.length > 0) {
      const placement = this.queue.shift();
      if (placement) this.place(placement);
    }
    this.settleEvaluations();
  }

  /** Evaluations with nothing left in the queue are complete; the others wait, blocked, for capacity. */
  private settleEvaluations(): void {
    const waiting = new Set(this.queue.map((p) => p.evalId));
    const changed = [...this.evaluationsInFlight()].filter((e) => {
      const next = waiting.has(e.ID) ? "blocked" : "complete";
      return e.Status !== next;
    });
    if (changed.length === 0) return;
    this.state.write((txn) => {
      for (const evaluation of changed) {
        evaluation.Status = waiting.has(evaluation.ID) ? "blocked" : "complete";
        evaluation.ModifyIndex = txn.index;
        evaluation.ModifyTime = nowNanos();
        txn.putEval(evaluation);
      }
    });
  }

  /** Evaluations already handed to the scheduler (not the ones still waiting for its turn). */
  private evaluationsInFlight(): TwinEvaluation[] {
    const waitingForTurn = new Set(this.pendingEvals.map((p) => p.evaluation.ID));
    return this.state.listEvals().filter((e) => (e.Status === "pending" || e.Status === "blocked") && !waitingForTurn.has(e.ID));
  }

  private place(placement: Placement): void {
    const job = this.state.job(placement.namespace, placement.jobId);
    const group = job?.TaskGroups.find((g) => g.Name === placement.group);
    if (!job || !group || job.Stop) return;
    let alloc: TwinAllocation | undefined;
    this.state.write((txn) => {
      alloc = this.newAllocation(txn, job, group, placement);
      txn.putAlloc(alloc);
      if (placement.previous) {
        placement.previous.NextAllocation = alloc.ID;
        txn.putAlloc(placement.previous);
      }
    });
    if (alloc) this.startRunner(alloc, job, group);
  }

  private newAllocation(txn: WriteTxn, job: TwinNomadJob, group: TwinTaskGroup, placement: Placement): TwinAllocation {
    const now = nowNanos();
    const previous = placement.previous;
    return {
      ID: randomUUID(),
      Namespace: job.Namespace,
      EvalID: placement.evalId,
      Name: `${job.ID}.${group.Name}[0]`,
      NodeID: NODE.ID,
      NodeName: NODE.Name,
      JobID: job.ID,
      Job: structuredClone(job),
      TaskGroup: group.Name,
      DesiredStatus: "run",
      DesiredDescription: "",
      ClientStatus: "pending",
      ClientDescription: "No tasks have started",
      TaskStates: receivedTaskStates(group),
      PreviousAllocation: previous?.ID ?? "",
      NextAllocation: "",
      RescheduleTracker: previous ? rescheduleTrackerAfter(previous) : null,
      FollowupEvalID: "",
      CreateIndex: txn.index,
      ModifyIndex: txn.index,
      AllocModifyIndex: txn.index,
      CreateTime: now,
      ModifyTime: now,
    };
  }

  // -------------------------------------------------------------------------------------------
  // Clients

  private startRunner(alloc: TwinAllocation, job: TwinNomadJob, group: TwinTaskGroup): void {
    const host: AllocRunnerHost = {
      ...this.opts,
      image: (name) => this.opts.image(name),
      takePrestartFailure: () => this.opts.takePrestartFailure(),
      takeMainCrash: () => this.opts.takeMainCrash(),
      report: (allocId, update) => this.applyClientUpdate(allocId, update),
    };
    const runner = new AllocRunner(host, alloc, job, group);
    this.runners.set(alloc.ID, runner);
    void runner.done.then(() => this.onRunnerDone(alloc.ID, runner));
  }

  private applyClientUpdate(allocId: string, update: RunnerReport): void {
    const alloc = this.state.alloc(allocId);
    // A down node's client reports nothing more.
    if (!alloc || alloc.ClientStatus === "lost" || alloc.ClientStatus === "unknown") return;
    const { status, description } = clientStatusOf(update.taskStates);
    this.state.write((txn) => {
      alloc.TaskStates = update.taskStates;
      alloc.ClientStatus = status;
      alloc.ClientDescription = description;
      alloc.ModifyIndex = txn.index;
      alloc.ModifyTime = nowNanos();
      txn.putAlloc(alloc);
    });
  }

  private onRunnerDone(allocId: string, runner: AllocRunner): void {
    this.finishedLogs.set(allocId, runner.logs());
    this.finished.add(runner);
    this.orphans.delete(runner);
    if (this.runners.get(allocId) === runner) this.runners.delete(allocId);
    const alloc = this.state.alloc(allocId);
    if (alloc?.ClientStatus === "failed" && alloc.DesiredStatus === "run") this.maybeReschedule(alloc);
    this.scheduleTick();
    this.checkIdle();
  }

  /** A failed allocation is replaced while its group's reschedule policy has attempts left. */
  private maybeReschedule(alloc: TwinAllocation): void {
    const job = this.state.job(alloc.Namespace, alloc.JobID);
    const policy = job?.TaskGroups.find((g) => g.Name === alloc.TaskGroup)?.ReschedulePolicy;
    if (!job || job.Stop || !policy) return;
    const attempts = alloc.RescheduleTracker?.Events.length ?? 0;
    if (!policy.Unlimited && attempts >= policy.Attempts) return;
    this.state.write((txn) => {
      const evaluation = this.newEvaluation(txn, job, "alloc-failure", { place: [{ group: alloc.TaskGroup, previous: alloc }] });
      alloc.FollowupEvalID = evaluation.ID;
      alloc.ModifyIndex = txn.index;
      txn.putAlloc(alloc);
    });
  }

  /** Deregistration: every allocation of the job is told to stop, queued placements are dropped. */
  private stopJobAllocations(evaluation: TwinEvaluation): void {
    const dropped = new Set<string>();
    for (let i = this.queue.length - 1; i >= 0; i -= 1) {
      const placement = this.queue[i];
      if (placement && placement.namespace === evaluation.Namespace && placement.jobId === evaluation.JobID) {
        dropped.add(placement.evalId);
        this.queue.splice(i, 1);
      }
    }
    const stopping = this.state.allocsOfJob(evaluation.Namespace, evaluation.JobID).filter((alloc) => !allocIsTerminal(alloc));
    this.state.write((txn) => {
      for (const alloc of stopping) {
        alloc.DesiredStatus = "stop";
        alloc.DesiredDescription = "alloc not needed due to job update";
        alloc.ModifyIndex = txn.index;
        alloc.AllocModifyIndex = txn.index;
        txn.putAlloc(alloc);
      }
      for (const id of dropped) {
        const blocked = this.state.evaluation(id);
        if (blocked && (blocked.Status === "pending" || blocked.Status === "blocked")) {
          blocked.Status = "canceled";
          blocked.ModifyIndex = txn.index;
          txn.putEval(blocked);
        }
      }
    });
    for (const alloc of stopping) this.runners.get(alloc.ID)?.stop();
  }

  /**
   * The node of an allocation went down: its tasks die with it (no poststop, nothing more from its
   * client). What the server then does follows the reconciler (hashicorp/nomad
   * scheduler/reconciler/filters.go classificationRules, reconcile_cluster.go):
   * - by default the allocation is lost (ClientStatus "lost", DesiredStatus "stop") and a
   *   replacement is placed, whatever the reschedule policy (computePlacements replaces lost
   *   allocations up to the group's count);
   * - with `disconnect { replace = false }` (TaskGroup.Replace in nomad/structs/structs.go; it
   *   defaults to true), a running allocation on a down node is "disconnecting" instead:
   *   appendUnknownDisconnectingUpdates marks it ClientStatus "unknown" (DesiredStatus stays
   *   "run") and updateByReschedulable never replaces it. An unknown allocation is not terminal
   *   (Allocation.TerminalStatus), so its job stays "running" (state_store.go getJobStatus) until
   *   it is stopped. A pending one ("Remaining terminal node allocs are lost") is lost and replaced.
   */
  loseAllocation(allocId: string): void {
    const alloc = this.state.alloc(allocId);
    if (!alloc || allocIsTerminal(alloc) || alloc.ClientStatus === "unknown") return;
    const runner = this.runners.get(allocId);
    if (runner) {
      this.runners.delete(allocId);
      this.orphans.add(runner);
      runner.lose();
    }
    const job = this.state.job(alloc.Namespace, alloc.JobID);
    const group = job?.TaskGroups.find((g) => g.Name === alloc.TaskGroup);
    const replace = (group?.Disconnect as { Replace?: boolean } | null | undefined)?.Replace !== false;
    if (!replace && alloc.ClientStatus === "running") {
      this.state.write((txn) => {
        alloc.ClientStatus = "unknown";
        alloc.ClientDescription = "alloc is unknown since its node is disconnected";
        alloc.ModifyIndex = txn.index;
        alloc.ModifyTime = nowNanos();
        txn.putAlloc(alloc);
      });
    } else {
      // Lost and replaced in the scheduler's turn, in one go: Nomad stops the lost allocation and
      // places its replacement in one plan (scheduler/reconciler/reconcile_cluster.go markStop
      // with AllocClientStatusLost, and the placements of the same results), applied as one raft
      // entry (nomad/plan_apply.go: AllocsStopped and AllocsUpdated of one
      // ApplyPlanResultsRequest). Until then the allocation is what it was, so no reader sees the
      // job with a lost allocation and nothing placed in between (a replacement that cannot be
      // placed yet is Queued in its JobSummary).
      this.pendingLosses.push(() => {
        if (allocIsTerminal(alloc)) return;
        this.state.write((txn) => {
          alloc.ClientStatus = "lost";
          alloc.ClientDescription = "alloc is lost since its node is down";
          alloc.DesiredStatus = "stop";
          alloc.DesiredDescription = "alloc is lost since its node is down";
          alloc.AllocModifyIndex = txn.index;
          alloc.ModifyIndex = txn.index;
          alloc.ModifyTime = nowNanos();
          txn.putAlloc(alloc);
          if (job && !job.Stop) this.newEvaluation(txn, job, "node-update", { place: [{ group: alloc.TaskGroup, previous: alloc }] });
        });
      });
    }
    this.scheduleTick();
    this.checkIdle();
  }

  /** The runner process of a running allocation crashes by itself; false when none is running. */
  crashMain(allocId: string): boolean {
    return this.runners.get(allocId)?.crashMain() ?? false;
  }

  /** What the tasks of an allocation printed (the twin's `nomad alloc logs`). */
  logsOf(allocId: string): Record<string, string[]> | undefined {
    return this.runners.get(allocId)?.logs() ?? this.finishedLogs.get(allocId);
  }

  /** Placements of a job's group waiting for capacity (JobSummary's Queued). */
  queuedCount(namespace: string, jobId: string, group: string): number {
    return this.queue.filter((p) => p.namespace === namespace && p.jobId === jobId && p.group === group).length;
  }

  /** The client still works on the allocation (tasks or poststop running). */
  clientBusy(allocId: string): boolean {
    return this.runners.has(allocId);
  }

  // -------------------------------------------------------------------------------------------
  // Idleness and shutdown

  private isIdle(): boolean {
    const queueCanMove = this.queue.length > 0 && this.opts.slots > 0;
    return this.runners.size === 0 && this.pendingEvals.length === 0 && !this.tickScheduled && !queueCanMove;
  }

  private checkIdle(): void {
    if (!this.isIdle()) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  /** Resolves once no allocation is pending or running and nothing placeable is queued. */
  waitIdle(): Promise<void> {
    return new Promise((resolve) => {
      this.idleWaiters.push(resolve);
      this.checkIdle();
    });
  }

  /** Client GC: the directories of allocations that are done go. */
  async gcAllocDirs(): Promise<void> {
    const done = [...this.finished];
    this.finished.clear();
    await Promise.all(done.map((runner) => runner.destroy()));
  }

  /** Stops scheduling and kills every allocation's tasks as a node shutdown would (no poststop). */
  async close(): Promise<void> {
    this.closed = true;
    this.queue.length = 0;
    const runners = [...this.runners.values(), ...this.orphans];
    for (const runner of runners) runner.lose();
    await Promise.all(runners.map((runner) => runner.done));
    for (const runner of runners) this.finished.add(runner);
    await this.gcAllocDirs();
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}

function rescheduleTrackerAfter(previous: TwinAllocation): TwinAllocation["RescheduleTracker"] {
  const events = previous.RescheduleTracker?.Events ?? [];
  if (previous.ClientStatus === "lost") return previous.RescheduleTracker;
  return { Events: [...events, { RescheduleTime: nowNanos(), PrevAllocID: previous.ID, PrevNodeID: previous.NodeID, Delay: 0 }] };
}
