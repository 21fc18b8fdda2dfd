import type { RunnerSecret, SecretSlot, SecretStore } from "../../src/ports/index.js";
import { SecretConflictError } from "../../src/vault/client.js";
import { Faults } from "./faults.js";

/**
 * Vault KV v2 in memory: one secret per runner name, versioned for check-and-set (deleting a
 * secret deletes its metadata, so the version starts again at 0); wrapping tokens are plain strings.
 */
export class FakeSecretStore implements SecretStore {
  readonly secrets = new Map<string, RunnerSecret>();
  /** "reissuing" claims, by runner name. */
  readonly claims = new Map<string, { claimedAt: number; claimant?: string }>();
  readonly versions = new Map<string, number>();
  readonly faults = new Faults("vault");
  /** Called after a write took effect (tests stop an attempt right there). */
  afterWrite: ((runnerName: string) => void) | undefined;

  secretPath(runnerName: string): string {
    return `dispatcher/runners/${runnerName}`;
  }

  async putRunnerSecret(runnerName: string, secret: RunnerSecret, opts: { cas?: number } = {}): Promise<void> {
    this.faults.enter("putRunnerSecret");
    this.bump(runnerName, opts.cas);
    this.claims.delete(runnerName);
    this.secrets.set(runnerName, secret);
    this.afterWrite?.(runnerName);
  }

  async readRunnerSecret(runnerName: string): Promise<SecretSlot | undefined> {
    this.faults.enter("readRunnerSecret");
    const version = this.versionOf(runnerName);
    const claim = this.claims.get(runnerName);
    if (claim !== undefined) return { kind: "reissuing", version, ...claim };
    const secret = this.secrets.get(runnerName);
    if (!secret) return undefined;
    return { kind: "credential", version, runnerId: secret.kind === "jit" ? secret.runner_id : undefined };
  }

  async claimRunnerSecret(runnerName: string, cas: number, claim: { claimedAt: number; claimant: string }): Promise<void> {
    this.faults.enter("claimRunnerSecret");
    this.bump(runnerName, cas);
    this.secrets.delete(runnerName);
    this.claims.set(runnerName, { ...claim });
  }

  /** A secret a test put in `secrets` directly is at version 1. */
  private versionOf(runnerName: string): number {
    return this.versions.get(runnerName) ?? (this.secrets.has(runnerName) || this.claims.has(runnerName) ? 1 : 0);
  }

  /** Check-and-set like KV v2: the write goes only over version `cas`. */
  private bump(runnerName: string, cas: number | undefined): void {
    const current = this.versionOf(runnerName);
    if (cas !== undefined && cas !== current) throw new SecretConflictError(runnerName);
    this.versions.set(runnerName, current + 1);
  }

  async hasRunnerSecret(runnerName: string): Promise<boolean> {
    this.faults.enter("hasRunnerSecret");
    return this.secrets.has(runnerName) || this.claims.has(runnerName);
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
    this.claims.delete(runnerName);
    this.versions.delete(runnerName);
  }

  async listRunnerSecrets(): Promise<string[]> {
    this.faults.enter("listRunnerSecrets");
    return [...new Set([...this.secrets.keys(), ...this.claims.keys()])];
  }
}
