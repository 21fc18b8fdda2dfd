import type { RunnerRegistration } from "../config.js";
import type { GitHubClient } from "../github/client.js";
import type { Logger } from "../log.js";
import type { NomadClient } from "../nomad/client.js";
import type { VaultStore } from "../vault/client.js";
import type { RunnerIndex } from "./runner-index.js";

/** Everything the runner workflows need: the three adapters and the settings that steer them. */
export interface RunnerDeps {
  github: GitHubClient;
  vault: VaultStore;
  nomad: NomadClient;
  log: Logger;
  settings: RunnerSettings;
  /** What this process knows of dispatched runner jobs; without it, Nomad is asked every time. */
  runnerIndex?: RunnerIndex;
}

export interface RunnerSettings {
  runnerJob: string;
  registration: RunnerRegistration;
  dispatcherId: string;
  runnerNamePrefix: string;
  /** Labels every runner gets in addition to the ones its job asked for. */
  runnerLabels: string[];
  wrapTtl: string;
  /** Retry schedule for transient failures on the webhook path; must fit GitHub's 10 s timeout. */
  retry: { retries: number; minTimeoutMs: number; maxTimeoutMs: number };
}
