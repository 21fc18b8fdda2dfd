// Stands between the Nomad twin's runner allocations and the GitHub twin's Actions service and
// writes down every runner process: which registration it ran as, when it lived, and which job
// it ran. The duplicate-runner check is made from these records.

import type { ActionsService, RunnerExit, RunnerStart } from "../twins/contract.js";

export interface RunnerProcess {
  /** Runner name from the JIT config (`.runner` AgentName) or the config.sh arguments. */
  name: string;
  agentId: number | undefined;
  startedAt: number;
  endedAt: number | undefined;
  /** The GitHub job it ran, if it got one. */
  jobId: number | undefined;
  ok: boolean | undefined;
  message: string | undefined;
}

export class RunnerRecorder implements ActionsService {
  readonly processes: RunnerProcess[] = [];
  private crashes = 0;

  constructor(private readonly inner: ActionsService) {}

  /**
   * The next `n` runner processes crash right after they connected: the JIT config is spent, the
   * runner never takes a job, and the main task exits 1.
   */
  crashNext(n = 1): void {
    this.crashes += n;
  }

  async runRunner(start: RunnerStart, signal: AbortSignal): Promise<RunnerExit> {
    const identity = identityOf(start);
    const record: RunnerProcess = { ...identity, startedAt: Date.now(), endedAt: undefined, jobId: undefined, ok: undefined, message: undefined };
    this.processes.push(record);
    try {
      if (this.crashes > 0) {
        this.crashes -= 1;
        // An aborted signal: the runner activates, then stops before it waits for a job.
        const connected = await this.inner.runRunner(start, AbortSignal.abort(new Error("runner crashed")));
        const exit: RunnerExit = { ok: false, message: `runner process crashed after connecting (${connected.message})` };
        record.ok = false;
        record.message = exit.message;
        return exit;
      }
      const exit = await this.inner.runRunner(start, signal);
      record.jobId = exit.jobId;
      record.ok = exit.ok;
      record.message = exit.message;
      return exit;
    } finally {
      record.endedAt = Date.now();
    }
  }

  removeRunner(start: RunnerStart, removeToken: string): Promise<{ removed: boolean }> {
    return this.inner.removeRunner(start, removeToken);
  }

  /** Processes alive right now. */
  alive(): RunnerProcess[] {
    return this.processes.filter((p) => p.endedAt === undefined);
  }
}

function identityOf(start: RunnerStart): { name: string; agentId: number | undefined } {
  if (start.kind === "token") return { name: start.name, agentId: undefined };
  try {
    const files = JSON.parse(Buffer.from(start.jitconfig, "base64").toString("utf8")) as Record<string, string>;
    const runner = JSON.parse(Buffer.from(files[".runner"] ?? "", "base64").toString("utf8")) as { AgentName?: string; AgentId?: number };
    return { name: runner.AgentName ?? "?", agentId: runner.AgentId };
  } catch {
    return { name: "?", agentId: undefined };
  }
}
