// api.Job.Canonicalize (what `/v1/jobs/parse?Canonicalize` and every registration apply), the
// server's own structs defaults, and the subset of Job.Validate the twin enforces, with Nomad's
// multierror texts.

import { isObject } from "./nomad-hcl.js";
import type {
  Json,
  JsonObject,
  ParameterizedJobConfig,
  ReschedulePolicy,
  RestartPolicy,
  TaskLifecycle,
  TwinNomadJob,
  TwinTask,
  TwinTaskGroup,
  TwinTemplate,
} from "./nomad-types.js";

const SECOND = 1e9;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

export const JOB_DEFAULT_PRIORITY = 50;
export const JOB_MIN_PRIORITY = 1;
export const JOB_MAX_PRIORITY = 100;

// ---------------------------------------------------------------------------------------------
// Readers for loosely typed JSON (request bodies, decoder output)

function optString(value: Json | undefined): string | undefined {
  return typeof value === "string" ? value : undefined;
}
function optNumber(value: Json | undefined): number | undefined {
  return typeof value === "number" ? value : undefined;
}
function optBool(value: Json | undefined): boolean | undefined {
  return typeof value === "boolean" ? value : undefined;
}
function optObject(value: Json | undefined): JsonObject | undefined {
  return isObject(value) ? value : undefined;
}
function optStrings(value: Json | undefined): string[] | null {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === "string") : null;
}
function optStringMap(value: Json | undefined): Record<string, string> | null {
  if (!isObject(value)) return null;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, typeof v === "string" ? v : String(v ?? "")]));
}
function objects(value: Json | undefined): JsonObject[] {
  return Array.isArray(value) ? value.filter(isObject) : [];
}

// ---------------------------------------------------------------------------------------------
// api.Job.Canonicalize

/** Fills the defaults the Go API client fills; the result is what Nomad's parse endpoint returns with Canonicalize. */
export function canonicalizeJob(raw: JsonObject): TwinNomadJob {
  const id = optString(raw.ID) ?? "";
  const type = optString(raw.Type) ?? "service";
  const jobReschedule = optObject(raw.Reschedule);
  const job: TwinNomadJob = {
    ...raw,
    ID: id,
    Name: optString(raw.Name) ?? id,
    ParentID: optString(raw.ParentID) ?? "",
    Namespace: optString(raw.Namespace) ?? "default",
    Priority: optNumber(raw.Priority) ?? JOB_DEFAULT_PRIORITY,
    Stop: optBool(raw.Stop) ?? false,
    Region: optString(raw.Region) ?? "global",
    NodePool: optString(raw.NodePool) ?? "",
    Type: type,
    AllAtOnce: optBool(raw.AllAtOnce) ?? false,
    Datacenters: optStrings(raw.Datacenters) ?? [],
    ConsulNamespace: optString(raw.ConsulNamespace) ?? "",
    VaultNamespace: optString(raw.VaultNamespace) ?? "",
    NomadTokenID: optString(raw.NomadTokenID) ?? "",
    Status: statusOf(raw.Status),
    StatusDescription: optString(raw.StatusDescription) ?? "",
    Stable: optBool(raw.Stable) ?? false,
    Version: optNumber(raw.Version) ?? 0,
    SubmitTime: optNumber(raw.SubmitTime) ?? 0,
    CreateIndex: optNumber(raw.CreateIndex) ?? 0,
    ModifyIndex: optNumber(raw.ModifyIndex) ?? 0,
    JobModifyIndex: optNumber(raw.JobModifyIndex) ?? 0,
    Dispatched: optBool(raw.Dispatched) ?? false,
    DispatchIdempotencyToken: optString(raw.DispatchIdempotencyToken) ?? "",
    Payload: optString(raw.Payload) ?? null,
    Meta: optStringMap(raw.Meta),
    ParameterizedJob: canonicalParameterized(raw.ParameterizedJob),
    Periodic: optObject(raw.Periodic) ?? null,
    Update: optObject(raw.Update) ?? (type === "service" || type === "system" ? defaultUpdateStrategy() : null),
    TaskGroups: [],
  };
  job.TaskGroups = objects(raw.TaskGroups).map((group) => canonicalizeGroup(group, type, jobReschedule));
  return job;
}

function statusOf(value: Json | undefined): TwinNomadJob["Status"] {
  return value === "pending" || value === "running" || value === "dead" ? value : "";
}

function canonicalParameterized(value: Json | undefined): ParameterizedJobConfig | null {
  const raw = optObject(value);
  if (!raw) return null;
  return { Payload: optString(raw.Payload) ?? "", MetaRequired: optStrings(raw.MetaRequired), MetaOptional: optStrings(raw.MetaOptional) };
}

function defaultUpdateStrategy(): JsonObject {
  return {
    Stagger: 30 * SECOND,
    MaxParallel: 1,
    HealthCheck: "checks",
    MinHealthyTime: 10 * SECOND,
    HealthyDeadline: 5 * MINUTE,
    ProgressDeadline: 10 * MINUTE,
    AutoRevert: false,
    AutoPromote: false,
    Canary: 0,
  };
}

function canonicalizeGroup(raw: JsonObject, jobType: string, jobReschedule: JsonObject | undefined): TwinTaskGroup {
  const disk = optObject(raw.EphemeralDisk);
  const restart = mergeDefined(defaultRestartPolicy(jobType), optObject(raw.RestartPolicy));
  const scalingMin = optNumber(optObject(raw.Scaling)?.Min);
  const group: TwinTaskGroup = {
    ...raw,
    Name: optString(raw.Name) ?? "",
    Count: optNumber(raw.Count) ?? scalingMin ?? 1,
    EphemeralDisk: {
      Sticky: optBool(disk?.Sticky) ?? false,
      Migrate: optBool(disk?.Migrate) ?? false,
      SizeMB: optNumber(disk?.SizeMB) ?? 300,
    },
    ReschedulePolicy: canonicalReschedule(jobType, jobReschedule, optObject(raw.ReschedulePolicy)),
    RestartPolicy: restart,
    Migrate:
      optObject(raw.Migrate) ??
      (jobType === "service" ? { MaxParallel: 1, HealthCheck: "checks", MinHealthyTime: 10 * SECOND, HealthyDeadline: 5 * MINUTE } : null),
    Meta: optStringMap(raw.Meta),
    Tasks: [],
  };
  group.Tasks = objects(raw.Tasks).map((task) => canonicalizeTask(task, restart));
  return group;
}

function mergeDefined<T extends object>(defaults: T, overrides: JsonObject | undefined): T {
  const merged = { ...defaults } as Record<string, unknown>;
  for (const [key, value] of Object.entries(overrides ?? {})) if (value !== null) merged[key] = value;
  return merged as T;
}

function defaultRestartPolicy(jobType: string): RestartPolicy {
  return jobType === "service" || jobType === "system"
    ? { Delay: 15 * SECOND, Attempts: 2, Interval: 30 * MINUTE, Mode: "fail", RenderTemplates: false }
    : { Delay: 15 * SECOND, Attempts: 3, Interval: 24 * HOUR, Mode: "fail", RenderTemplates: false };
}

function defaultReschedulePolicy(jobType: string): ReschedulePolicy {
  if (jobType === "service") {
    return { Delay: 30 * SECOND, DelayFunction: "exponential", MaxDelay: HOUR, Unlimited: true, Attempts: 0, Interval: 0 };
  }
  if (jobType === "batch") {
    return { Attempts: 1, Interval: 24 * HOUR, Delay: 5 * SECOND, DelayFunction: "constant", MaxDelay: 0, Unlimited: false };
  }
  return { Attempts: 0, Interval: 0, Delay: 0, DelayFunction: "", MaxDelay: 0, Unlimited: false };
}

/** The group's policy merged over the job's; system and sysbatch jobs have none. */
function canonicalReschedule(jobType: string, jobLevel: JsonObject | undefined, groupLevel: JsonObject | undefined): ReschedulePolicy | null {
  if (!jobLevel && !groupLevel && (jobType === "system" || jobType === "sysbatch")) return null;
  const explicit = { ...(jobLevel ?? {}), ...Object.fromEntries(Object.entries(groupLevel ?? {}).filter(([, v]) => v !== null)) };
  return mergeDefined(defaultReschedulePolicy(jobType), explicit);
}

function canonicalizeTask(raw: JsonObject, groupRestart: RestartPolicy): TwinTask {
  const resources = optObject(raw.Resources) ?? {};
  const cores = optNumber(resources.Cores);
  const lifecycle = canonicalLifecycle(raw.Lifecycle);
  const logs = optObject(raw.LogConfig);
  return {
    ...raw,
    Name: optString(raw.Name) ?? "",
    Driver: optString(raw.Driver) ?? "",
    Config: optObject(raw.Config) ?? null,
    Env: optStringMap(raw.Env),
    Meta: optStringMap(raw.Meta),
    Lifecycle: lifecycle,
    Resources: {
      ...resources,
      // api.Resources.Canonicalize: the CPU default applies only when cores are not requested.
      CPU: optNumber(resources.CPU) ?? (cores === undefined ? 100 : 0),
      Cores: cores ?? 0,
      MemoryMB: optNumber(resources.MemoryMB) ?? 300,
    },
    KillTimeout: optNumber(raw.KillTimeout) ?? 5 * SECOND,
    LogConfig: {
      MaxFiles: optNumber(logs?.MaxFiles) ?? 10,
      MaxFileSizeMB: optNumber(logs?.MaxFileSizeMB) ?? 10,
      Disabled: optBool(logs?.Disabled) ?? optBool(logs?.Enabled) === false,
    },
    Templates: Array.isArray(raw.Templates) ? objects(raw.Templates).map(canonicalTemplate) : null,
    RestartPolicy: mergeDefined(groupRestart, optObject(raw.RestartPolicy)),
    Vault: canonicalVault(raw.Vault),
  };
}

/** api/tasks.go Vault.Canonicalize. */
function canonicalVault(value: Json | undefined): JsonObject | null {
  const raw = optObject(value);
  if (!raw) return null;
  return {
    ...raw,
    Env: optBool(raw.Env) ?? true,
    DisableFile: optBool(raw.DisableFile) ?? false,
    Namespace: optString(raw.Namespace) ?? "",
    Cluster: optString(raw.Cluster) || "default",
    ChangeMode: optString(raw.ChangeMode) ?? "restart",
    ChangeSignal: optString(raw.ChangeSignal) ?? "SIGHUP",
    AllowTokenExpiration: optBool(raw.AllowTokenExpiration) ?? false,
  };
}

/** A lifecycle block without a hook is no lifecycle at all (api.TaskLifecycle.Empty). */
function canonicalLifecycle(value: Json | undefined): TaskLifecycle | null {
  const raw = optObject(value);
  const hook = optString(raw?.Hook) ?? "";
  if (!raw || hook === "") return null;
  return { Hook: hook, Sidecar: optBool(raw.Sidecar) ?? false };
}

function canonicalTemplate(raw: JsonObject): TwinTemplate {
  const changeMode = optString(raw.ChangeMode) ?? "restart";
  const signal = optString(raw.ChangeSignal);
  return {
    ...raw,
    SourcePath: optString(raw.SourcePath) ?? "",
    DestPath: optString(raw.DestPath) ?? "",
    EmbeddedTmpl: optString(raw.EmbeddedTmpl) ?? "",
    ChangeMode: changeMode,
    ChangeSignal: signal === undefined ? (changeMode === "signal" ? "SIGHUP" : "") : signal.toUpperCase(),
    Once: optBool(raw.Once) ?? false,
    Splay: optNumber(raw.Splay) ?? 5 * SECOND,
    Perms: optString(raw.Perms) ?? "0644",
    LeftDelim: optString(raw.LeftDelim) ?? "{{",
    RightDelim: optString(raw.RightDelim) ?? "}}",
    Envvars: optBool(raw.Envvars) ?? false,
    ErrMissingKey: optBool(raw.ErrMissingKey) ?? false,
  };
}

// ---------------------------------------------------------------------------------------------
// Server side (structs.Job.Canonicalize) and validation

/** Defaults the server applies on top of the API's when it stores a job. */
export function applyServerDefaults(job: TwinNomadJob): void {
  if (!job.Datacenters || job.Datacenters.length === 0) job.Datacenters = ["*"];
  if (job.NodePool === "") job.NodePool = "default";
  if (job.ParameterizedJob && job.ParameterizedJob.Payload === "") job.ParameterizedJob.Payload = "optional";
  for (const group of job.TaskGroups) addImpliedVaultConstraint(group);
}

/**
 * hashicorp/nomad nomad/job_endpoint_hooks.go jobImpliedConstraints: a group with a task that has
 * a vault block gets vaultConstraintFn's constraint, unless one on the same LTarget is there
 * (mutateConstraint with constraintMatcherLeft). The twin's scheduler does not evaluate it.
 */
function addImpliedVaultConstraint(group: TwinTaskGroup): void {
  const vault = group.Tasks.map((task) => optObject(task.Vault as Json | undefined)).find((block) => block !== undefined);
  if (!vault) return;
  const cluster = optString(vault.Cluster) ?? "";
  const constraint =
    cluster !== "" && cluster !== "default"
      ? { LTarget: `\${attr.vault.${cluster}.version}`, RTarget: ">= 1.11.0", Operand: "semver" }
      : { LTarget: "${attr.vault.version}", RTarget: ">= 0.6.1", Operand: "semver" };
  const existing = Array.isArray(group.Constraints) ? (group.Constraints as JsonObject[]) : [];
  if (existing.some((c) => c.LTarget === constraint.LTarget)) return;
  group.Constraints = [...existing, constraint];
}

/** Formats errors the way hashicorp/go-multierror does. */
export function multiError(errors: string[]): string {
  if (errors.length === 1) return `1 error occurred:\n\t* ${errors[0]}\n\n`;
  return `${errors.length} errors occurred:\n\t${errors.map((e) => `* ${e}`).join("\n\t")}\n\n`;
}

const JOB_TYPES = new Set(["service", "batch", "system", "sysbatch", "_core"]);

/** Job.Validate plus the register admission checks; returns the multierror text or undefined. */
export function validateJob(job: TwinNomadJob): string | undefined {
  const errors = [...jobLevelErrors(job), ...groupErrors(job), ...admissionErrors(job)];
  return errors.length > 0 ? multiError(errors) : undefined;
}

function jobLevelErrors(job: TwinNomadJob): string[] {
  const errors: string[] = [];
  if (job.Region === "") errors.push("Missing job region");
  if (job.ID === "") errors.push("Missing job ID");
  else if (job.ID.includes(" ")) errors.push("Job ID contains a space");
  if (job.Name === "") errors.push("Missing job name");
  if (job.Namespace === "") errors.push("Job must be in a namespace");
  if (job.Type === "") errors.push("Missing job type");
  else if (!JOB_TYPES.has(job.Type)) errors.push(`Invalid job type: ${JSON.stringify(job.Type)}`);
  if (job.Datacenters?.some((dc) => dc === "")) errors.push("Job datacenter must be non-empty string");
  if (job.TaskGroups.length === 0) errors.push("Missing job task groups");
  if (job.ParameterizedJob && !job.Dispatched) errors.push(...parameterizedErrors(job, job.ParameterizedJob));
  return errors;
}

function parameterizedErrors(job: TwinNomadJob, config: ParameterizedJobConfig): string[] {
  const errors: string[] = [];
  if (job.Type !== "batch" && job.Type !== "sysbatch") {
    errors.push(`Parameterized job can only be used with "batch" or "sysbatch" scheduler`);
  }
  if (!["optional", "required", "forbidden"].includes(config.Payload)) {
    errors.push(`Unknown payload requirement: ${JSON.stringify(config.Payload)}`);
  }
  const optional = new Set(config.MetaOptional ?? []);
  const overlap = (config.MetaRequired ?? []).filter((key) => optional.has(key));
  if (overlap.length > 0) {
    errors.push(`Required and optional meta keys should be disjoint. Following keys exist in both: [${overlap.join(" ")}]`);
  }
  return errors;
}

function groupErrors(job: TwinNomadJob): string[] {
  const errors: string[] = [];
  const seen = new Map<string, number>();
  job.TaskGroups.forEach((group, index) => {
    if (group.Name === "") errors.push(`Job task group ${index + 1} missing name`);
    else if (seen.has(group.Name)) errors.push(`Job task group ${index + 1} redefines '${group.Name}' from group ${(seen.get(group.Name) ?? 0) + 1}`);
    else seen.set(group.Name, index);
  });
  for (const group of job.TaskGroups) {
    const inner = taskGroupErrors(group);
    if (inner.length > 0) errors.push(`Task group ${group.Name} validation failed: ${multiError(inner)}`);
  }
  return errors;
}

function taskGroupErrors(group: TwinTaskGroup): string[] {
  const errors: string[] = [];
  if (group.Count < 0) errors.push("Task group count can't be negative");
  if (group.Tasks.length === 0) errors.push("Missing tasks for task group");
  const names = new Set<string>();
  group.Tasks.forEach((task, index) => {
    if (task.Name === "") errors.push(`Task ${index + 1} missing name`);
    else if (names.has(task.Name)) errors.push(`Task ${index + 1} redefines '${task.Name}'`);
    names.add(task.Name);
    if (task.Driver === "") errors.push(`Task ${task.Name} validation failed: ${multiError(["Missing task driver"])}`);
    const hook = task.Lifecycle?.Hook;
    if (hook !== undefined && !["prestart", "poststart", "poststop"].includes(hook)) {
      errors.push(`Task ${task.Name} validation failed: ${multiError([`invalid hook: ${hook}`])}`);
    }
  });
  return errors;
}

function admissionErrors(job: TwinNomadJob): string[] {
  const errors: string[] = [];
  if (job.Type === "_core") errors.push("job type cannot be core");
  if (job.Payload) errors.push("job can't be submitted with a payload, only dispatched");
  if (job.Priority < JOB_MIN_PRIORITY || job.Priority > JOB_MAX_PRIORITY) {
    errors.push(`job priority must be between [${JOB_MIN_PRIORITY}, ${JOB_MAX_PRIORITY}]`);
  }
  return errors;
}

/** The fields the server owns; a re-registration that differs only in these is "unchanged". */
const SERVER_FIELDS = ["Status", "StatusDescription", "Stable", "Version", "SubmitTime", "CreateIndex", "ModifyIndex", "JobModifyIndex", "NomadTokenID"];

export function specChanged(existing: TwinNomadJob, next: TwinNomadJob): boolean {
  const strip = (job: TwinNomadJob): string => {
    const copy: Record<string, unknown> = { ...job };
    for (const field of SERVER_FIELDS) delete copy[field];
    return stableStringify(copy);
  };
  return strip(existing) !== strip(next);
}

function stableStringify(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}
