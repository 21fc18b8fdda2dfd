// The client side of one allocation, modelled on Nomad's allocrunner: prestart tasks (the
// non-sidecar ones must succeed) before the main tasks, a failed task kills its siblings,
// poststop tasks run once everything else is dead (also after a failure or a stop) but never on a
// lost node. Task states and events are reported to the server like a client's updates.
//
// Each task runs for real (nomad-docker.ts): its directory is built on disk with the client's
// owners and modes (nomad-alloc-dir.ts), its templates are rendered into it (nomad-template.ts,
// with a Vault token from its workload identity when it has a vault block), and its command runs
// as the image's user.

import { appendFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { TwinImage } from "./contract.js";
import { AllocDir } from "./nomad-alloc-dir.js";
import { Container, taskPaths } from "./nomad-docker.js";
import { formatGoDuration } from "./nomad-hcl.js";
import { type ClientVaultConfig, type IdentitySigner, identitiesOf, identityClaims, vaultLogin, vaultRead } from "./nomad-identity.js";
import { renderTemplateFile } from "./nomad-template.js";
import type { JsonObject, TaskEvent, TaskState, TwinAllocation, TwinNomadJob, TwinTask, TwinTaskGroup } from "./nomad-types.js";

/** Go's zero time.Time, as Nomad encodes an unset StartedAt/FinishedAt. */
const ZERO_TIME = "0001-01-01T00:00:00Z";

export interface RunnerReport {
  taskStates: Record<string, TaskState>;
}

export interface AllocRunnerHost {
  /** The images the client can pull, by name; undefined for one it cannot. */
  image(name: string): TwinImage | undefined;
  /** The client's data_dir: allocation directories go under it. */
  dataDir: string;
  /** The client's `max_kill_timeout` in ns: caps a task's kill_timeout (default 30 s). */
  maxKillTimeoutNs: number;
  /** The client's docker plugin options (Nomad's defaults: neither). */
  docker: { allowPrivileged?: boolean; volumesEnabled?: boolean };
  /** The client's vault block; without it a task with a vault block cannot start. */
  vault?: ClientVaultConfig;
  signer: IdentitySigner;
  /** Faults drawn when a task starts (each call consumes one). */
  takePrestartFailure(): boolean;
  takeMainCrash(): boolean;
  /** How long a crashing runner lives before it dies. */
  crashAfterMs: number;
  /** Scheduling and image pull before the tasks start, by job ID. */
  startDelayMs: (jobId: string) => number;
  /** Delivers the client's view of the allocation to the server. */
  report(allocId: string, update: RunnerReport): void;
}

/**
 * What the docker driver refuses after pulling the image, as hashicorp/nomad
 * drivers/docker/driver.go does: a privileged task on a client whose plugin keeps
 * allow_privileged = false (createContainerConfig), a volume from a host path outside the
 * allocation directory while volumes are disabled (containerBinds; a relative path is inside it).
 */
function refuseDockerOptions(config: Record<string, unknown>, docker: AllocRunnerHost["docker"]): void {
  if (config.privileged === true && !docker.allowPrivileged) throw new Error("Docker privileged mode is disabled on this Nomad agent");
  const volumes = Array.isArray(config.volumes) ? config.volumes.map(String) : [];
  const hostPath = volumes.find((v) => v.startsWith("/"));
  if (hostPath !== undefined && !docker.volumesEnabled) throw new Error(`volumes are not enabled; cannot mount host path: "${hostPath}"`);
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

/** A prestart task that fails before it does anything (fault injection). */
const INJECTED_FAILURE = ["/bin/sh", "-c", "echo 'injected failure' >&2; exit 1"];

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
  private allocDir: AllocDir | undefined;
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
    await abortableSleep(this.host.startDelayMs(this.alloc.JobID), this.startGate.signal);
    if (this.killed()) return this.finishUnstarted();
    this.allocDir = await AllocDir.build(
      join(this.host.dataDir, "alloc"),
      this.alloc.ID,
      this.group.Tasks.map((t) => t.Name),
    );
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

  private async execute(run: TaskRun): Promise<void> {
    if (run.controller.signal.aborted || run.state.State === "dead") return;
    run.state.State = "running";
    run.state.StartedAt = new Date().toISOString();
    run.state.Events.push(taskEvent("Task Setup", "Building Task Directory", { Message: "Building Task Directory" }));
    this.publish();
    let exitCode: number;
    try {
      exitCode = await this.runContainer(run);
    } catch (err) {
      // A driver or template failure fails the task before its command runs (restart attempts 0).
      run.logs.push(String(err instanceof Error ? err.message : err));
      run.state.Events.push(taskEvent("Driver Failure", String(err instanceof Error ? err.message : err), { FailsTask: true }));
      exitCode = run.controller.signal.aborted ? 0 : 1;
    }
    this.finishTask(run, exitCode);
  }

  /** Templates first (the template hook runs in the task's prestart), then the container. */
  private async runContainer(run: TaskRun): Promise<number> {
    const allocDir = this.allocDir!;
    const taskDir = allocDir.task(run.task.Name);
    const config = run.task.Config ?? {};
    const imageName = typeof config.image === "string" ? config.image : "";
    const image = this.host.image(imageName);
    if (!image) throw new Error(`Failed to pull \`${imageName}\`: the Nomad twin has no such image`);
    refuseDockerOptions(config, this.host.docker);
    const env = this.environmentFor(run.task, taskPaths(taskDir, allocDir.shared));
    const vault = await this.vaultFor(run.task, taskDir.secrets, taskDir.private);
    if (vault?.env) env.VAULT_TOKEN = vault.token;
    for (const template of run.task.Templates ?? []) {
      const secret = vault ? (path: string) => this.readSecret(vault.token, path, run) : undefined;
      const text = await renderTemplateFile(template, taskDir.dir, { env: (name) => env[name] ?? "", secret });
      if (template.Envvars === true) Object.assign(env, parseEnvFile(text));
    }
    if (run.controller.signal.aborted) return 0;
    const interpolate = (value: unknown) => (Array.isArray(value) ? value.map((v) => interpolateEnv(String(v), env)) : undefined);
    const injected = run.task.Lifecycle?.Hook === "prestart" && this.host.takePrestartFailure();
    const container = await Container.start({
      image,
      entrypoint: injected ? INJECTED_FAILURE : interpolate(config.entrypoint),
      args: injected ? [] : (interpolate(config.args) ?? (typeof config.command === "string" ? [interpolateEnv(config.command, env)] : undefined)),
      user: typeof run.task.User === "string" && run.task.User !== "" ? run.task.User : undefined,
      env,
      taskDir,
      allocDir: allocDir.shared,
      containerRoot: join(allocDir.root, "containers", run.task.Name),
      onLine: (line, stream) => {
        run.logs.push(line);
        // logmon writes each task's output to <alloc>/alloc/logs/<task>.<stream>.<n>, created
        // 0644 by the client, so every task of the allocation can read it (hashicorp/nomad
        // client/logmon/logging/rotator.go, createFile: os.OpenFile(..., 0644)).
        appendFileSync(join(allocDir.shared, "logs", `${run.task.Name}.${stream}.0`), `${line}\n`, { mode: 0o644 });
      },
    });
    // Killed while its container was being created: it goes at once, never reported started.
    if (run.controller.signal.aborted || run.crash.signal.aborted) {
      container.kill();
      return (await container.exited).exitCode;
    }
    run.state.Events.push(taskEvent("Started", "Task started by client"));
    this.publish();
    const killTimeoutMs = Math.min(Number(run.task.KillTimeout ?? 5e9), this.host.maxKillTimeoutNs) / 1e6;
    const killSignal = typeof run.task.KillSignal === "string" && run.task.KillSignal !== "" ? run.task.KillSignal : "SIGTERM";
    const onKill = () => void container.stop(killSignal, killTimeoutMs);
    const onCrash = () => container.kill();
    run.controller.signal.addEventListener("abort", onKill, { once: true });
    run.crash.signal.addEventListener("abort", onCrash, { once: true });
    let crashTimer: NodeJS.Timeout | undefined;
    if (!run.task.Lifecycle && this.host.takeMainCrash()) crashTimer = setTimeout(onCrash, this.host.crashAfterMs);
    const exit = await container.exited;
    clearTimeout(crashTimer);
    run.controller.signal.removeEventListener("abort", onKill);
    run.crash.signal.removeEventListener("abort", onCrash);
    return exit.exitCode;
  }

  /** vault_hook.go: a token from the task's workload identity, written where the task finds it. */
  private async vaultFor(task: TwinTask, secretsDir: string, privateDir: string): Promise<{ token: string; env: boolean; namespace?: string } | undefined> {
    const block = task.Vault as JsonObject | null;
    if (!block) return undefined;
    const config = this.host.vault;
    if (!config) throw new Error("Vault is not enabled on this client but the task has a vault block");
    const identity = identitiesOf(task).find((i) => i.Name === "vault_default");
    if (!identity) throw new Error("failed to retrieve signed workload identity: no identity named vault_default");
    const role = typeof block.Role === "string" && block.Role !== "" ? block.Role : (config.role ?? "");
    const namespace = typeof block.Namespace === "string" && block.Namespace !== "" ? block.Namespace : undefined;
    const jwt = this.host.signer.sign(identityClaims(this.job, this.alloc, task, identity));
    const token = await vaultLogin(config, role, jwt, namespace);
    await writeFile(join(privateDir, "vault_token"), token, { mode: 0o600 });
    if (block.DisableFile !== true) await writeFile(join(secretsDir, "vault_token"), token, { mode: 0o666 });
    return { token, env: block.Env !== false, namespace };
  }

  /** consul-template waits for a secret that does not exist yet, retrying until the task is killed. */
  private async readSecret(token: string, path: string, run: TaskRun): Promise<JsonObject> {
    const config = this.host.vault!;
    const namespace = (run.task.Vault as JsonObject | null)?.Namespace;
    for (;;) {
      const secret = await vaultRead(config, token, path, typeof namespace === "string" && namespace !== "" ? namespace : undefined);
      if (secret) return secret;
      if (run.controller.signal.aborted) throw new Error(`template: no secret exists at ${path}`);
      await abortableSleep(200, run.controller.signal);
    }
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
          taskEvent("Not Restarting", "Policy allows no restarts", {
            FailsTask: true,
            Details: { fails_task: "true", restart_reason: "Policy allows no restarts" },
          }),
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
    // nomad/structs/structs.go TaskEvent.SetKillTimeout: the kill timeout capped by the client's
    // max_kill_timeout, in KillTimeout and as a Go duration in Details and the display message.
    const timeout = Math.min(Number(run.task.KillTimeout ?? 5e9), this.host.maxKillTimeoutNs);
    const shown = formatGoDuration(timeout);
    run.state.Events.push(
      taskEvent("Killing", `Sent interrupt. Waiting ${shown} before force killing`, { KillTimeout: timeout, Details: { kill_timeout: shown } }),
    );
    run.controller.abort();
    // A lost node takes its processes with it at once.
    if (reason.kind === "lost") run.crash.abort(new Error("node lost"));
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

  private environmentFor(task: TwinTask, paths: { alloc: string; local: string; secrets: string }): Record<string, string> {
    const meta = { ...(this.job.Meta ?? {}), ...(this.group.Meta ?? {}), ...(task.Meta ?? {}) };
    return taskEnvironment(this.alloc, this.job, task, meta, paths);
  }

  /** Client GC: the allocation's directory goes. */
  async destroy(): Promise<void> {
    await this.allocDir?.destroy();
  }
}

/** The NOMAD_* variables a task sees, then the task's `env` with `${...}` interpolated by the client. */
function taskEnvironment(
  alloc: TwinAllocation,
  job: TwinNomadJob,
  task: TwinTask,
  meta: Record<string, string>,
  paths: { alloc: string; local: string; secrets: string },
): Record<string, string> {
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
    NOMAD_ALLOC_DIR: paths.alloc,
    NOMAD_TASK_DIR: paths.local,
    NOMAD_SECRETS_DIR: paths.secrets,
  };
  for (const [key, value] of Object.entries(meta)) {
    runtime[`NOMAD_META_${key}`] = value;
    runtime[`NOMAD_META_${key.toUpperCase()}`] = value;
  }
  const env: Record<string, string> = { ...runtime };
  for (const [key, value] of Object.entries(task.Env ?? {})) env[key] = interpolateEnv(value, runtime, meta);
  return env;
}

/** client/taskenv ReplaceEnv: `${NOMAD_*}`, `${meta.x}` and the task's variables; unknown ones stay. */
function interpolateEnv(value: string, env: Record<string, string>, meta: Record<string, string> = {}): string {
  return value.replace(/\$\{([^}]+)\}/g, (whole, raw: string) => {
    const name = raw.trim();
    return (name.startsWith("meta.") ? meta[name.slice(5)] : env[name]) ?? whole;
  });
}

/** A template with `env = true` is read as an env file (KEY=value lines, values may be quoted). */
export function parseEnvFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const match = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!match) continue;
    const raw = match[2]!.trim();
    env[match[1]!] = raw.startsWith('"') ? (JSON.parse(raw) as string) : raw;
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
