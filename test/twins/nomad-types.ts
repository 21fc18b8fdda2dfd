// JSON shapes the Nomad twin stores and serves, named and laid out as Nomad's own structs
// (nomad/structs, api/) encode them. Only the fields the twin reasons about are typed; the rest of
// a job travels through untouched in the index signature.

/** A JSON value as decoded from a request body or produced by the HCL decoder. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export interface ParameterizedJobConfig {
  Payload: string;
  MetaRequired: string[] | null;
  MetaOptional: string[] | null;
}

export interface TaskLifecycle {
  Hook: string;
  Sidecar: boolean;
}

export interface TwinTemplate {
  SourcePath: string;
  DestPath: string;
  EmbeddedTmpl: string;
  Perms: string;
  [field: string]: unknown;
}

export interface TwinTask {
  Name: string;
  Driver: string;
  Config: { [key: string]: unknown } | null;
  Env: Record<string, string> | null;
  Lifecycle: TaskLifecycle | null;
  Templates: TwinTemplate[] | null;
  Resources: { CPU: number; Cores: number; MemoryMB: number; [field: string]: unknown };
  Meta: Record<string, string> | null;
  [field: string]: unknown;
}

export interface RestartPolicy {
  Interval: number;
  Attempts: number;
  Delay: number;
  Mode: string;
  RenderTemplates: boolean;
}

export interface ReschedulePolicy {
  Attempts: number;
  Interval: number;
  Delay: number;
  DelayFunction: string;
  MaxDelay: number;
  Unlimited: boolean;
}

export interface TwinTaskGroup {
  Name: string;
  Count: number;
  Tasks: TwinTask[];
  RestartPolicy: RestartPolicy;
  ReschedulePolicy: ReschedulePolicy | null;
  EphemeralDisk: { Sticky: boolean; Migrate: boolean; SizeMB: number };
  Meta: Record<string, string> | null;
  [field: string]: unknown;
}

export type JobStatus = "pending" | "running" | "dead";

/** A job as the twin's state store holds it: canonical, with the server-set fields filled in. */
export interface TwinNomadJob {
  Region: string;
  Namespace: string;
  ID: string;
  Name: string;
  Type: string;
  Priority: number;
  AllAtOnce: boolean;
  Datacenters: string[];
  NodePool: string;
  TaskGroups: TwinTaskGroup[];
  ParameterizedJob: ParameterizedJobConfig | null;
  Periodic: { [field: string]: unknown } | null;
  Meta: Record<string, string> | null;
  Stop: boolean;
  ParentID: string;
  Dispatched: boolean;
  DispatchIdempotencyToken: string;
  /** Base64, as Nomad's JSON encodes `[]byte`; null when the dispatch carried no payload. */
  Payload: string | null;
  Status: JobStatus | "";
  StatusDescription: string;
  Stable: boolean;
  Version: number;
  SubmitTime: number;
  CreateIndex: number;
  ModifyIndex: number;
  JobModifyIndex: number;
  [field: string]: unknown;
}

export type TaskStateName = "pending" | "running" | "dead";

export interface TaskEvent {
  Type: string;
  Time: number;
  Message: string;
  DisplayMessage: string;
  Details: Record<string, string>;
  FailsTask: boolean;
  ExitCode: number;
  Signal: number;
  FailedSibling: string;
  KillTimeout: number;
}

export interface TaskState {
  State: TaskStateName;
  Failed: boolean;
  Restarts: number;
  LastRestart: string;
  StartedAt: string;
  FinishedAt: string;
  Events: TaskEvent[];
}

export type ClientStatus = "pending" | "running" | "complete" | "failed" | "lost" | "unknown";
export type DesiredStatus = "run" | "stop" | "evict";

/** An allocation as `GET /v1/allocation/:id` returns it (the list endpoints return a stub of it). */
export interface TwinAllocation {
  ID: string;
  Namespace: string;
  EvalID: string;
  Name: string;
  NodeID: string;
  NodeName: string;
  JobID: string;
  TaskGroup: string;
  DesiredStatus: DesiredStatus;
  DesiredDescription: string;
  ClientStatus: ClientStatus;
  ClientDescription: string;
  TaskStates: Record<string, TaskState>;
  PreviousAllocation: string;
  NextAllocation: string;
  RescheduleTracker: { Events: Array<{ RescheduleTime: number; PrevAllocID: string; PrevNodeID: string; Delay: number }> } | null;
  /** The job version the allocation was placed for (list endpoints leave it out). */
  Job: TwinNomadJob;
  FollowupEvalID: string;
  CreateIndex: number;
  ModifyIndex: number;
  AllocModifyIndex: number;
  CreateTime: number;
  ModifyTime: number;
}

export type EvalStatus = "pending" | "blocked" | "complete" | "failed" | "canceled";

export interface TwinEvaluation {
  ID: string;
  Namespace: string;
  Priority: number;
  Type: string;
  TriggeredBy: string;
  JobID: string;
  Status: EvalStatus;
  StatusDescription: string;
  CreateIndex: number;
  ModifyIndex: number;
  CreateTime: number;
  ModifyTime: number;
}

export interface AclToken {
  AccessorID: string;
  SecretID: string;
  Name: string;
  Type: "client" | "management";
  Policies: string[] | null;
  Roles: null;
  Global: boolean;
  CreateTime: string;
  ExpirationTime: null;
  CreateIndex: number;
  ModifyIndex: number;
}
