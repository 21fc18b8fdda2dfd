import type { RunnerSecret, SecretStore } from "../../src/ports/index.js";
import { Faults } from "./faults.js";

/** Vault KV in memory: one secret per runner name; wrapping tokens are plain strings. */
export class FakeSecretStore implements SecretStore {
  readonly secrets = new Map<string, RunnerSecret>();
  readonly faults = new Faults("vault");

  secretPath(runnerName: string): string {
    return `dispatcher/runners/${runnerName}`;
  }

  async putRunnerSecret(runnerName: string, secret: RunnerSecret): Promise<void> {
    this.faults.enter("putRunnerSecret");
    this.secrets.set(runnerName, secret);
  }

  async hasRunnerSecret(runnerName: string): Promise<boolean> {
    this.faults.enter("hasRunnerSecret");
    return this.secrets.has(runnerName);
  }

  async wrapRunnerSecret(runnerName: string, ttl: string): Promise<string> {
    this.faults.enter("wrapRunnerSecret");
    // Like Vault: wrapping a secret that is not there is an error, not an empty token.
    if (!this.secrets.has(runnerName)) throw new Error(`no secret at ${this.secretPath(runnerName)}`);
    return `wrapped:${runnerName}:${ttl}`;
  }

  async deleteRunnerSecret(runnerName: string): Promise<void> {
    this.faults.enter("deleteRunnerSecret");
    this.secrets.delete(runnerName);
  }

  async listRunnerSecrets(): Promise<string[]> {
    this.faults.enter("listRunnerSecrets");
    return [...this.secrets.keys()];
  }
}
