// Which runner process ran which job, as the GitHub twin saw them: the twin records every runner
// process that connected to its broker (the runner image stand-in, run by the Nomad twin), so the
// duplicate-runner checks see what GitHub would. Crashes are injected where they happen on a
// cluster: the runner's main task dies (the Nomad twin's crashNextMain).

import type { RunnerProcessRecord } from "../twins/contract.js";

export type RunnerProcess = RunnerProcessRecord;

export class RunnerRecorder {
  constructor(
    private readonly github: { readonly runnerProcesses: readonly RunnerProcessRecord[] },
    private readonly nomad: { faults: { crashNextMain(n?: number): void } },
  ) {}

  /** Every runner process GitHub saw, in the order they connected. */
  get processes(): readonly RunnerProcess[] {
    return this.github.runnerProcesses;
  }

  /** The runner of the next `n` main tasks crashes shortly after it started. */
  crashNext(n = 1): void {
    this.nomad.faults.crashNextMain(n);
  }

  /** Processes alive right now. */
  alive(): RunnerProcess[] {
    return this.processes.filter((p) => p.endedAt === undefined);
  }
}
