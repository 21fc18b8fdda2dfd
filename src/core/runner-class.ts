import type { Limits } from "./capacity.js";
import type { WorkflowJob } from "./job-event.js";
import { jobIdOfRunner, poolSeatOfRunner, runnerNameFor } from "./naming.js";

/**
 * One kind of runner (RUNNER_CLASSES_FILE, or the one class built from RUNNER_LABELS and
 * NOMAD_RUNNER_JOB): the exact label set it serves, the parameterized Nomad job it dispatches and
 * its own caps. Plain data, so the decisions that use it stay pure.
 */
export interface RunnerClass {
  /** [a-z0-9-]; in metrics and (file classes) in runner names. */
  name: string;
  /** Lower-cased, unique, sorted: the runner's full label set, and what a job must request. */
  labels: string[];
  /** The parameterized Nomad job its runners are dispatched from. */
  job: string;
  /**
   * Runner names of this class are `<runnerPrefix>-<job id>`: RUNNER_NAME_PREFIX for the class
   * built from the environment (names as before classes), `<prefix>-<name>` for file classes, so
   * a runner name alone says its class (and so its Vault path and Nomad parent job) after a restart.
   */
  runnerPrefix: string;
  /** max_runners / max_runners_per_repo (Infinity: none), on top of the global ones. */
  limits: Limits;
  /** min_idle / idle_ttl: runners kept registered and idle (core/warm-pool); none when absent. */
  pool?: WarmPool;
}

/** A class's warm pool: `minIdle` idle runners per registration scope, none idle longer than `idleTtlMs`. */
export interface WarmPool {
  minIdle: number;
  idleTtlMs: number;
}

/** A label set as one comparable key: lower-cased, unique, sorted (GitHub matches labels case-insensitively). */
export function labelSet(labels: readonly string[]): string[] {
  return [...new Set(labels.map((l) => l.trim().toLowerCase()))].filter(Boolean).sort();
}

export const labelKey = (labels: readonly string[]): string => labelSet(labels).join(",");

/** Why a job is not served by any class; bounded, so it can be a metric label. */
export type NoClassReason = "no-labels" | "no-class";

export type ClassMatch = { ok: true; cls: RunnerClass } | { ok: false; reason: NoClassReason };

/**
 * The class whose labels equal the job's requested labels as a set. Equality, not "contains":
 * a runner is registered with exactly its class's labels, and GitHub gives a job only to a runner
 * that has every label it asks for, so a job asking for more would never be taken, and one asking
 * for less belongs to the smallest class that fits, which equality makes unambiguous.
 */
export function classForLabels(classes: readonly RunnerClass[], labels: readonly string[]): ClassMatch {
  const key = labelKey(labels);
  if (key === "") return { ok: false, reason: "no-labels" };
  const cls = classes.find((c) => c.labels.join(",") === key);
  return cls ? { ok: true, cls } : { ok: false, reason: "no-class" };
}

/**
 * The class a runner name belongs to and the GitHub job it was made for (none for a warm pool's
 * runner), or undefined: not ours.
 */
export function classOfRunner<C extends Pick<RunnerClass, "runnerPrefix">>(
  classes: readonly C[],
  runnerName: string | null | undefined,
): { cls: C; jobId?: number } | undefined {
  for (const cls of classes) {
    const jobId = jobIdOfRunner(cls.runnerPrefix, runnerName);
    if (jobId !== undefined) return { cls, jobId };
    if (poolSeatOfRunner(cls.runnerPrefix, runnerName)) return { cls };
  }
  return undefined;
}

/** The class serving a job and its runner's name; undefined when no class has the job's labels. */
export function runnerForJob(classes: readonly RunnerClass[], job: Pick<WorkflowJob, "id" | "labels">): { cls: RunnerClass; runnerName: string } | undefined {
  const match = classForLabels(classes, job.labels);
  return match.ok ? { cls: match.cls, runnerName: runnerNameFor(match.cls.runnerPrefix, job.id) } : undefined;
}
