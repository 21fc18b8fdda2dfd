// The narrow ports the workflows (intake, provisioning, teardown, reconciling) call. Each names
// only what a workflow uses of an external system, so a workflow can be read, and tested with the
// in-memory fakes in test/fakes/, without knowing the adapters. The adapters (src/github,
// src/vault, src/nomad) satisfy them structurally; src/deps.ts wires them.

import type { CredentialDelivery, RunnerRegistration } from "../config.js";
import type { TaskExit } from "../core/credential-refused.js";
import type { RunnerTarget, WorkflowJob } from "../core/job-event.js";
import type { JobStatusAtGitHub } from "../core/replay-guard.js";
import type { SecretSlot } from "../core/resume.js";
import type { RunnerClass } from "../core/runner-class.js";
import type { RunnerIndex } from "../core/runner-index.js";
import type { Logger } from "../log.js";

export type { RunnerTarget } from "../core/job-event.js";
export type { JobStatusAtGitHub } from "../core/replay-guard.js";
export type { SecretSlot } from "../core/resume.js";

/** A self-hosted runner registration at GitHub. */
export interface RegisteredRunner {
  id: number;
  name: string;
  /** "online" or "offline". */
  status: string;
  busy: boolean;
}

/** Runner registrations at GitHub: find, list, deregister. */
export interface RunnerRegistry {
  findRunner(target: RunnerTarget, name: string): Promise<RegisteredRunner | undefined>;
  /** Our registrations (by name prefix) in the target's scope. */
  listRunners(target: RunnerTarget, prefix: string): Promise<RegisteredRunner[]>;
  /** Deregisters; a busy runner is left alone ("busy"), a missing one is "gone". */
  deleteRunner(target: RunnerTarget, runnerId: number): Promise<"deleted" | "busy" | "gone">;
  /** Repositories that share a key share their runner registrations (org scope: the owner). */
  scopeKey(target: RunnerTarget): string;
}

/** Points taken ahead of the request that spends them; opaque to the workflows. */
export interface BudgetClaim {
  readonly points: number;
}

/** GitHub's rate-limit budget of one token or installation, as the workflows consult it. */
export interface RateBudget {
  readonly pointsPerMinute: number;
  available(): number;
  /** Requests waiting for budget. */
  waiting(): number;
  /** Takes `points` now if that leaves `keepFree` free; undefined otherwise. */
  claim(points: number, keepFree?: number): BudgetClaim | undefined;
}

/** Runner credentials from GitHub, paid for from a rate-limit budget per token or installation. */
export interface CredentialIssuer {
  /**
   * Registers the runner and returns its single-use JIT config; rejects with an error named
   * "RunnerExistsError" (see isRunnerExists) when a runner of that name is registered already.
   */
  createJitRunner(target: RunnerTarget, name: string, labels: string[], claim?: BudgetClaim): Promise<{ runnerId: number; jitconfig: string }>;
  registrationToken(target: RunnerTarget): Promise<string>;
  /** The URL `config.sh --url` takes for the target's scope. */
  scopeUrl(target: RunnerTarget): string;
  budgetFor(target: Pick<RunnerTarget, "installationId">): RateBudget;
  /** Targets with the same key share one budget (one dispatch queue lane). */
  budgetKey(target: Pick<RunnerTarget, "installationId">): string;
}

/** What the workflows read at GitHub about jobs: work the webhooks did not bring, and replays. */
export interface JobSource {
  /** App auth: every call needs the installation the repository belongs to. */
  readonly usesApp: boolean;
  listQueuedJobs(target: RunnerTarget): Promise<WorkflowJob[]>;
  /** One job's status now (one conditional GET); "not-found" for a 404. */
  jobStatus(target: RunnerTarget, jobId: number): Promise<JobStatusAtGitHub>;
  listInstallationRepos(): Promise<RunnerTarget[]>;
  listOwnerRepos(owner: string): Promise<RunnerTarget[]>;
  /**
   * Asks GitHub to deliver again our hooks' failed webhook deliveries since `since` (ms), oldest
   * first and at most `max`; says how many were redelivered and how many are left.
   */
  redeliverFailedDeliveries(since: number, max?: number): Promise<{ redelivered: number; left: number }>;
  /** Runs `fn` and reports the GitHub read points it spent. */
  metered<T>(fn: () => Promise<T>): Promise<{ result: T; points: number }>;
}

export type GitHubPorts = RunnerRegistry & CredentialIssuer & JobSource;

/**
 * The credential a runner allocation unwraps: exactly one way to become a runner. A JIT config
 * names the registration it belongs to (`runner_id`), so an attempt that finds it can tell whether
 * it is the credential of the runner GitHub has under that name now, or of one deleted since.
 */
export type RunnerSecret = { kind: "jit"; jitconfig: string; runner_id?: number } | { kind: "token"; registration_token: string };

/** Runner credentials in Vault, one secret per runner name. */
export interface SecretStore {
  /** The secret's path, for log lines. */
  secretPath(runnerName: string): string;
  /**
   * With `cas`, a check-and-set write: only if the secret's current version is `cas` (0: no
   * secret); otherwise it rejects with an error named "SecretConflictError" (see isSecretConflict).
   */
  putRunnerSecret(runnerName: string, secret: RunnerSecret, opts?: { cas?: number }): Promise<void>;
  hasRunnerSecret(runnerName: string): Promise<boolean>;
  /** What the runner's secret slot holds (its version and whose credential), never the credential. */
  readRunnerSecret(runnerName: string): Promise<SecretSlot | undefined>;
  /**
   * Claims the slot by check-and-set at `cas` before an orphaned registration is deleted and
   * reissued; rejects with "SecretConflictError" when the slot changed since it was read.
   */
  claimRunnerSecret(runnerName: string, cas: number, claim: { claimedAt: number; claimant: string }): Promise<void>;
  /** A single-use token that unwraps to one read of the secret, valid for `ttl`. */
  wrapRunnerSecret(runnerName: string, ttl: string): Promise<string>;
  /** Idempotent: an absent secret is fine. */
  deleteRunnerSecret(runnerName: string): Promise<void>;
  listRunnerSecrets(): Promise<string[]>;
}

/** A dispatched runner job as Nomad lists it (the fields the workflows read). */
export interface RunnerJobStub {
  ID: string;
  Status: "pending" | "running" | "dead";
  Stop: boolean;
  Meta?: Record<string, string> | null;
  /** Nanoseconds since epoch. */
  SubmitTime: number;
  JobSummary?: {
    Summary?: Record<string, Partial<Record<"Queued" | "Starting" | "Running" | "Complete" | "Failed" | "Lost" | "Unknown", number>>> | null;
  } | null;
}

/** Runner jobs in Nomad: children of the parameterized runner job. */
export interface RunnerJobs {
  listJobs(prefix: string): Promise<RunnerJobStub[]>;
  /** Idempotent per token while the child exists; `created` is false for a repeat. */
  dispatch(
    parentId: string,
    input: { meta: Record<string, string>; idempotencyToken: string; idPrefixTemplate?: string },
  ): Promise<{ dispatchedJobId: string; created: boolean }>;
  stopJob(id: string, opts: { purge: boolean }): Promise<void>;
  /** How the tasks of a runner job's allocations ended (Nomad's "Terminated" task events). */
  taskExits(id: string): Promise<TaskExit[]>;
}

/** A Nomad Variable as the workflows read it; times are nanoseconds on the Nomad servers' clock. */
export interface NomadVariable {
  path: string;
  items: Record<string, string>;
  modifyIndex: number;
  modifyTimeNs: number;
}

export type VariableMeta = Omit<NomadVariable, "items">;

/** Nomad Variables in the service's namespace: where replicas coordinate (capacity). */
export interface Variables {
  read(path: string): Promise<NomadVariable | undefined>;
  /**
   * Check-and-set: writes only if the variable's ModifyIndex is `index` (0: only if absent).
   * A lost race answers the variable that won (undefined: there is none).
   */
  compareAndSet(path: string, items: Record<string, string>, index: number): Promise<{ written: NomadVariable } | { conflict: NomadVariable | undefined }>;
  /** Unconditional write. */
  put(path: string, items: Record<string, string>): Promise<NomadVariable>;
  /** Metadata of the variables under `prefix`. */
  list(prefix: string): Promise<VariableMeta[]>;
  /** Deletes; with `index`, only if the variable is still at that ModifyIndex. Absent is fine. */
  remove(path: string, index?: number): Promise<void>;
}

/** Everything the runner workflows need: the ports and the settings that steer them. */
export interface RunnerDeps {
  github: GitHubPorts;
  vault: SecretStore;
  nomad: RunnerJobs;
  log: Logger;
  settings: RunnerSettings;
  /** What this process knows of dispatched runner jobs; without it, Nomad is asked every time. */
  runnerIndex?: RunnerIndex;
}

export interface RunnerSettings {
  /**
   * The runner classes: each dispatches its own parameterized job, and a runner's name says its
   * class (src/core/runner-class.ts), so every workflow finds the class from the name alone.
   */
  classes: RunnerClass[];
  registration: RunnerRegistration;
  dispatcherId: string;
  runnerNamePrefix: string;
  /** Workload identity: nothing in the dispatch. Wrap: a single-use wrapping token valid `wrapTtl`. */
  credentialDelivery: CredentialDelivery;
  wrapTtl: string;
  /**
   * RUNNER_RETENTION: how long a dead runner job stays in Nomad. A job queued longer ago may have
   * had a runner whose record is gone, so GitHub confirms it is queued before it gets another.
   */
  retentionMs: number;
  /** Retry schedule for transient failures; on the webhook path it must fit GitHub's 10 s timeout. */
  retry: RetrySchedule;
}

export interface RetrySchedule {
  retries: number;
  minTimeoutMs: number;
  maxTimeoutMs: number;
}

/** The CredentialIssuer's name clash: the runner was registered by an earlier attempt. */
export function isRunnerExists(err: unknown): boolean {
  return err instanceof Error && err.name === "RunnerExistsError";
}

/** A check-and-set write found the secret changed since it was read (another attempt wrote). */
export function isSecretConflict(err: unknown): boolean {
  return err instanceof Error && err.name === "SecretConflictError";
}
