// The client side of one allocation, modelled on Nomad's allocrunner: prestart tasks (the
// non-sidecar ones must succeed) before the main tasks, a failed task kills its siblings,
// poststop tasks run once everything else is dead (also after a failure or a stop) but never on a
// lost node. Task states and events are reported to the server like a client's updates.

import type { AllocDir, ScriptHost, TaskContext, TaskScript } from "./nomad-runner-scripts.js";
import { scriptFor } from "./nomad-runner-scripts.js";
import type { TaskEvent, TaskState, TwinAllocation, TwinNomadJob, TwinTask, TwinTaskGroup } from "./nomad-types.js";

/** Go's zero time.Time, as Nomad encodes an unset StartedAt/FinishedAt. */
const ZERO_TIME = "0001-01-01T00:00:00Z";
const KILL_TIMEOUT_NS = 5e9;

export interface RunnerReport {
  taskStates: Record<string, TaskState>;
}

export interface AllocRunnerHost extends ScriptHost {
  /** Scheduling and image pull before the tasks start. */
  startDelayMs: number;
  /** Delivers the client's view of the allocation to the server. */
  report(allocId: string, update: RunnerReport): void;
}

type KillReason = { kind: "stop" } | { kind: "sibling"; failedTask: string } | { kind: "lost" };

interface TaskRun {
  task: TwinTask;
  state: TaskState;
  controller: AbortController;
  /** Aborted to make the task's process crash by itself (exit 1). */
  crash: AbortController;
  logs: string[];
}

export function taskEvent(type: string, displayMessage: string, extra: Partial<TaskEvent> = {}): TaskEvent {
  return {
    Type: type,
    Time: Date.now() * 1e6,
    Message: "",
    DisplayMessage: displayMessage,
    Details: {},
    FailsTask: false,
    ExitCode: 0,
    Signal: 0,
    FailedSibling: "",
    KillTimeout: 0,
    ...extra,
  };
}

/** A task the client has just received and not started. */
function receivedTaskState(): TaskState {
  return {
    State: "pending",
    Failed: false,
    Restarts: 0,
    LastRestart: ZERO_TIME,
    StartedAt: ZERO_TIME,
    FinishedAt: ZERO_TIME,
    Events: [taskEvent("Received", "Task received by client")],
  };
}

/** The initial state of every task of a new allocation. */
export function receivedTaskStates(group: TwinTaskGroup): Record<string, TaskState> {
  return Object.fromEntries(group.Tasks.map((task) => [task.Name, receivedTaskState()]));
}

export class AllocRunner {
  private readonly runs: Map<string, TaskRun>;
  private readonly allocDir: AllocDir = {};
  private readonly startGate = new AbortController();
  private killReason: KillReason | undefined;
  private flushScheduled = false;
  /** Settles when every task is dead (or the node was lost). */
  readonly done: Promise<void>;

  constructor(
    private readonly host: AllocRunnerHost,
    private readonly alloc: TwinAllocation,
    private readonly job: TwinNomadJob,
    private readonly group: TwinTaskGroup,
  ) {
    this.runs = new Map(
      group.Tasks.map((task) => {
        const state = structuredClone(alloc.TaskStates[task.Name] ?? receivedTaskState());
        return [task.Name, { task, state, controller: new AbortController(), crash: new AbortController(), logs: [] }];
      }),
    );
    this.done = this.run();
  }

  /** The server set DesiredStatus=stop: kill the tasks, then run poststop. */
  stop(): void {
    this.kill({ kind: "stop" });
  }

  /** The node is gone: tasks die with it, nothing more reaches the server, no poststop runs. */
  lose(): void {
    this.kill({ kind: "lost" });
  }

  /**
   * The runner process of a running main task dies by itself now (exit 1): the task fails, its
   * siblings are killed and poststop runs. False when no main task is running.
   */
  crashMain(): boolean {
    if (this.killed()) return false;
    const running = this.tasksWhere((t) => !t.Lifecycle).filter((run) => run.state.State === "running" && !run.crash.signal.aborted);
    for (const run of running) run.crash.abort(new Error("runner crashed"));
    return running.length > 0;
  }

  private killed(): boolean {
    return this.killReason !== undefined;
  }

  private lost(): boolean {
    return this.killReason?.kind === "lost";
  }

  logs(): Record<string, string[]> {
    return Object.fromEntries([...this.runs].map(([name, run]) => [name, [...run.logs]]));
  }

  // -------------------------------------------------------------------------------------------
  // The lifecycle

  private async run(): Promise<void> {
    await abortableSleep(this.host.startDelayMs, this.startGate.signal);
    if (this.killed()) return this.finishUnstarted();
    const failed = (await this.runPrestart()) ?? (this.killed() ? undefined : await this.runMain());
    this.killLiveTasks(failed);
    if (!this.lost()) await this.runTasks(this.tasksWhere((t) => t.Lifecycle?.Hook === "poststop"));
    this.flushNow();
  }

  /** Sidecars start and keep running; the others must all exit 0 before the main tasks start. */
  private async runPrestart(): Promise<string | undefined> {
    const prestart = this.tasksWhere((t) => t.Lifecycle?.Hook === "prestart");
    for (const run of prestart.filter((r) => r.task.Lifecycle?.Sidecar)) void this.execute(run);
    return this.runTasks(prestart.filter((r) => !r.task.Lifecycle?.Sidecar));
  }

  private async runMain(): Promise<string | undefined> {
    const main = this.tasksWhere((t) => !t.Lifecycle);
    const poststart = this.tasksWhere((t) => t.Lifecycle?.Hook === "poststart");
    const mainDone = this.runTasks(main);
    for (const run of poststart.filter((r) => r.task.Lifecycle?.Sidecar)) void this.execute(run);
    const poststartDone = this.runTasks(poststart.filter((r) => !r.task.Lifecycle?.Sidecar));
    const [mainFailure, poststartFailure] = await Promise.all([mainDone, poststartDone]);
    return mainFailure ?? poststartFailure;
  }

  /** Runs tasks side by side; the first failure kills the rest (Nomad's "Sibling Task Failed"). */
  private async runTasks(runs: TaskRun[]): Promise<string | undefined> {
    let failed: string | undefined;
    await Promise.all(
      runs.map(async (run) => {
        await this.execute(run);
        if (run.state.Failed && failed === undefined) {
          failed = run.task.Name;
          for (const sibling of runs) if (sibling !== run) this.killTask(sibling, { kind: "sibling", failedTask: run.task.Name });
        }
      }),
    );
    return failed;
  }

  private async execute(run: TaskRun, script: TaskScript = scriptFor(run.task)): Promise<void> {
    if (run.controller.signal.aborted || run.state.State === "dead") return;
    run.state.State = "running";
    run.state.StartedAt = new Date().toISOString();
    run.state.Events.push(taskEvent("Task Setup", "Building Task Directory", { Message: "Building Task Directory" }), taskEvent("Started", "Task started by client"));
    this.publish();
    const exitCode = await script(this.contextFor(run), this.host).catch((err: unknown) => {
      run.logs.push(String(err));
      return 1;
    });
    this.finishTask(run, exitCode);
  }

  private finishTask(run: TaskRun, exitCode: number): void {
    const state = run.state;
    state.State = "dead";
    state.FinishedAt = new Date().toISOString();
    if (run.controller.signal.aborted) {
      state.Events.push(taskEvent("Killed", "Task successfully killed"));
    } else {
      const details = { exit_code: String(exitCode), signal: "0", oom_killed: "false", exit_message: "" };
      state.Events.push(taskEvent("Terminated", `Exit Code: ${exitCode}`, { ExitCode: exitCode, Details: details }));
      if (exitCode !== 0) {
        // restart { attempts = 0, mode = "fail" }: the first failure is final.
        state.Failed = true;
        state.Events.push(
          taskEvent("Not Restarting", "Policy allows no restarts", { FailsTask: true, Details: { fails_task: "true", restart_reason: "Policy allows no restarts" } }),
        );
      }
    }
    this.publish();
  }

  // -------------------------------------------------------------------------------------------
  // Killing

  private kill(reason: KillReason): void {
    if (this.lost() || (this.killed() && reason.kind !== "lost")) return;
    this.killReason = reason;
    this.startGate.abort();
    for (const run of this.runs.values()) {
      if (reason.kind === "lost" || run.task.Lifecycle?.Hook !== "poststop") this.killTask(run, reason);
    }
  }

  private killTask(run: TaskRun, reason: KillReason): void {
    if (run.state.State === "dead" || run.controller.signal.aborted) return;
    if (reason.kind === "sibling") {
      run.state.Events.push(taskEvent("Sibling Task Failed", `Task's sibling "${reason.failedTask}" failed`, { FailedSibling: reason.failedTask }));
    }
    run.state.Events.push(taskEvent("Killing", `Sent interrupt. Waiting 5s before force killing`, { KillTimeout: KILL_TIMEOUT_NS }));
    run.controller.abort();
    this.publish();
  }

  /** Tasks that never started (their prestart failed, or the alloc was stopped) end dead but not failed. */
  private killLiveTasks(failedTask: string | undefined): void {
    for (const run of this.runs.values()) {
      if (run.task.Lifecycle?.Hook === "poststop") continue;
      this.killTask(run, failedTask ? { kind: "sibling", failedTask } : { kind: "stop" });
      if (run.state.State === "pending") {
        run.state.State = "dead";
        run.state.FinishedAt = new Date().toISOString();
      }
    }
    this.publish();
  }

  /** Stopped before the client started anything: every task ends dead, nothing ran. */
  private finishUnstarted(): void {
    if (this.lost()) return;
    for (const run of this.runs.values()) {
      run.state.State = "dead";
      run.state.FinishedAt = new Date().toISOString();
    }
    this.flushNow();
  }

  // -------------------------------------------------------------------------------------------
  // Reporting

  /**
   * Coalesces the updates of one turn of the event loop into one report, as the client batches
   * its alloc updates; a task dying and the next phase starting therefore land together.
   */
  private publish(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flushNow();
    });
  }

  private flushNow(): void {
    if (this.lost()) return;
    const taskStates = Object.fromEntries([...this.runs].map(([name, run]) => [name, structuredClone(run.state)]));
    this.host.report(this.alloc.ID, { taskStates });
  }

  // -------------------------------------------------------------------------------------------
  // Task environment

  private tasksWhere(predicate: (task: TwinTask) => boolean): TaskRun[] {
    return [...this.runs.values()].filter((run) => predicate(run.task));
  }

  private contextFor(run: TaskRun): TaskContext {
    const meta = { ...(this.job.Meta ?? {}), ...(this.group.Meta ?? {}), ...(run.task.Meta ?? {}) };
    const env = taskEnvironment(this.alloc, this.job, run.task, meta);
    return { task: run.task, env, meta, allocDir: this.allocDir, signal: run.controller.signal, crash: run.crash.signal, log: (line: string) => void run.logs.push(line) };
  }
}

/** The NOMAD_* variables a task sees, then the task's `env` with `${...}` interpolated by the client. */
function taskEnvironment(alloc: TwinAllocation, job: TwinNomadJob, task: TwinTask, meta: Record<string, string>): Record<string, string> {
  const runtime: Record<string, string> = {
    NOMAD_ALLOC_ID: alloc.ID,
    NOMAD_ALLOC_NAME: alloc.Name,
    NOMAD_ALLOC_INDEX: "0",
    NOMAD_JOB_ID: job.ID,
    NOMAD_JOB_NAME: job.Name,
    NOMAD_JOB_PARENT_ID: job.ParentID,
    NOMAD_GROUP_NAME: alloc.TaskGroup,
    NOMAD_TASK_NAME: task.Name,
    NOMAD_NAMESPACE: job.Namespace,
    NOMAD_REGION: job.Region,
    NOMAD_DC: "dc1",
    NOMAD_ALLOC_DIR: "/alloc",
    NOMAD_TASK_DIR: "/local",
    NOMAD_SECRETS_DIR: "/secrets",
  };
  for (const [key, value] of Object.entries(meta)) {
    runtime[`NOMAD_META_${key}`] = value;
    runtime[`NOMAD_META_${key.toUpperCase()}`] = value;
  }
  const lookup = (name: string): string | undefined => (name.startsWith("meta.") ? meta[name.slice(5)] : runtime[name]);
  const env: Record<string, string> = { ...runtime };
  for (const [key, value] of Object.entries(task.Env ?? {})) {
    env[key] = value.replace(/\$\{([^}]+)\}/g, (whole, name: string) => lookup(name.trim()) ?? whole);
  }
  return env;
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}
