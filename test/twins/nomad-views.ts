// How the twin's records look on the wire: JobListStub, JobSummary, AllocListStub and the full
// Allocation, with the fields Nomad's structs encode.

import { isParameterizedParent, type NomadState } from "./nomad-state.js";
import type { AclToken, TwinAllocation, TwinNomadJob } from "./nomad-types.js";

export function jobSummary(state: NomadState, job: TwinNomadJob, queued: (group: string) => number): Record<string, unknown> {
  const allocs = state.allocsOfJob(job.Namespace, job.ID);
  const summary: Record<string, Record<string, number>> = {};
  for (const group of job.TaskGroups) {
    const mine = allocs.filter((alloc) => alloc.TaskGroup === group.Name);
    const count = (status: string): number => mine.filter((alloc) => alloc.ClientStatus === status).length;
    summary[group.Name] = {
      Queued: queued(group.Name),
      Complete: count("complete"),
      Failed: count("failed"),
      Running: count("running"),
      Starting: count("pending"),
      Lost: count("lost"),
      Unknown: count("unknown"),
    };
  }
  return {
    JobID: job.ID,
    Namespace: job.Namespace,
    Summary: summary,
    Children: isParameterizedParent(job) || job.Periodic !== null ? childrenSummary(state, job) : null,
    CreateIndex: job.CreateIndex,
    ModifyIndex: Math.max(job.ModifyIndex, ...allocs.map((alloc) => alloc.ModifyIndex)),
  };
}

function childrenSummary(state: NomadState, parent: TwinNomadJob): Record<string, number> {
  const children = state.childrenOf(parent);
  const count = (status: string): number => children.filter((child) => child.Status === status).length;
  return { Pending: count("pending"), Running: count("running"), Dead: count("dead") };
}

/** structs.Job.Stub; Meta only when the list was asked for it (`?meta=true`). */
export function jobStub(job: TwinNomadJob, summary: Record<string, unknown>, withMeta: boolean): Record<string, unknown> {
  const stub: Record<string, unknown> = {
    ID: job.ID,
    ParentID: job.ParentID,
    Name: job.Name,
    Namespace: job.Namespace,
    Datacenters: job.Datacenters,
    NodePool: job.NodePool,
    Multiregion: null,
    Type: job.Type,
    Priority: job.Priority,
    Periodic: job.Periodic !== null,
    ParameterizedJob: isParameterizedParent(job),
    Stop: job.Stop,
    Status: job.Status,
    StatusDescription: job.StatusDescription,
    JobSummary: summary,
    CreateIndex: job.CreateIndex,
    ModifyIndex: job.ModifyIndex,
    JobModifyIndex: job.JobModifyIndex,
    SubmitTime: job.SubmitTime,
  };
  if (withMeta && job.Meta && Object.keys(job.Meta).length > 0) stub.Meta = job.Meta;
  return stub;
}

const NO_DESIRED_TRANSITION = { Migrate: null, Reschedule: null, ForceReschedule: null, NoShutdownDelay: null };

/** structs.AllocListStub */
export function allocStub(alloc: TwinAllocation, withTaskStates: boolean): Record<string, unknown> {
  return {
    ID: alloc.ID,
    EvalID: alloc.EvalID,
    Name: alloc.Name,
    Namespace: alloc.Namespace,
    NodeID: alloc.NodeID,
    NodeName: alloc.NodeName,
    JobID: alloc.JobID,
    JobType: alloc.Job.Type,
    JobVersion: alloc.Job.Version,
    TaskGroup: alloc.TaskGroup,
    DesiredStatus: alloc.DesiredStatus,
    DesiredDescription: alloc.DesiredDescription,
    ClientStatus: alloc.ClientStatus,
    ClientDescription: alloc.ClientDescription,
    DesiredTransition: NO_DESIRED_TRANSITION,
    TaskStates: withTaskStates ? alloc.TaskStates : null,
    DeploymentStatus: null,
    FollowupEvalID: alloc.FollowupEvalID,
    NextAllocation: alloc.NextAllocation,
    RescheduleTracker: alloc.RescheduleTracker,
    PreemptedAllocations: null,
    PreemptedByAllocation: "",
    CreateIndex: alloc.CreateIndex,
    ModifyIndex: alloc.ModifyIndex,
    CreateTime: alloc.CreateTime,
    ModifyTime: alloc.ModifyTime,
  };
}

/** structs.Allocation, as `GET /v1/allocation/:id` returns it. */
export function allocFull(alloc: TwinAllocation): Record<string, unknown> {
  return {
    ...alloc,
    Resources: null,
    SharedResources: null,
    TaskResources: null,
    AllocatedResources: null,
    Metrics: null,
    DesiredTransition: NO_DESIRED_TRANSITION,
    AllocStates: null,
    DeploymentID: "",
    DeploymentStatus: null,
    NetworkStatus: null,
    PreemptedAllocations: null,
    PreemptedByAllocation: "",
    SigningKeyID: "",
  };
}

/** The token `GET /v1/acl/token/self` answers while ACLs are disabled (structs.ACLsDisabledToken). */
export const ACLS_DISABLED_TOKEN: AclToken = {
  AccessorID: "acls-disabled",
  SecretID: "",
  Name: "ACLs disabled token",
  Type: "client",
  Policies: null,
  Roles: null,
  Global: false,
  CreateTime: "0001-01-01T00:00:00Z",
  ExpirationTime: null,
  CreateIndex: 0,
  ModifyIndex: 0,
};

/** structs.AnonymousACLToken: what an ACL-enabled cluster sees without a token. */
export const ANONYMOUS_TOKEN: AclToken = { ...ACLS_DISABLED_TOKEN, AccessorID: "anonymous", Name: "Anonymous Token", Policies: ["anonymous"] };

/** structs.NodeListStub of the twin's one client, as `GET /v1/nodes` lists it. */
export function nodeStub(node: { ID: string; Name: string }): Record<string, unknown> {
  return {
    Address: "127.0.0.1",
    ID: node.ID,
    Datacenter: "dc1",
    Name: node.Name,
    NodePool: "default",
    NodeClass: "",
    Version: "1.10.5",
    Drain: false,
    SchedulingEligibility: "eligible",
    Status: "ready",
    StatusDescription: "",
    Drivers: { docker: { Attributes: null, Detected: true, Healthy: true, HealthDescription: "Healthy", UpdateTime: "0001-01-01T00:00:00Z" } },
    HostVolumes: null,
    LastDrain: null,
    CreateIndex: 7,
    ModifyIndex: 7,
  };
}

/**
 * structs.SchedulerConfigurationResponse with the defaults a fresh cluster has (hashicorp/nomad
 * nomad/structs/operator.go; QueryMeta is embedded, so its fields sit at the top level).
 */
export function schedulerConfiguration(index: number): Record<string, unknown> {
  return {
    SchedulerConfig: {
      SchedulerAlgorithm: "binpack",
      PreemptionConfig: { SystemSchedulerEnabled: true, SysBatchSchedulerEnabled: false, BatchSchedulerEnabled: false, ServiceSchedulerEnabled: false },
      MemoryOversubscriptionEnabled: false,
      RejectJobRegistration: false,
      PauseEvalBroker: false,
      CreateIndex: 5,
      ModifyIndex: 5,
    },
    Index: index,
    LastContact: 0,
    KnownLeader: true,
    NextToken: "",
  };
}
