// The subset of Nomad's API shapes the dispatcher reads; field names as Nomad sends them.

import type { PlacementConstraint, PlacementNode } from "../core/placement.js";

/** structs.Constraint: `LTarget Operand RTarget`, targets often `${attr.cpu.arch}` and the like. */
export type NomadConstraint = PlacementConstraint;

/** structs.Node, the fields a placement check reads (GET /v1/node/:id); core/placement judges them. */
export type NomadNode = PlacementNode;

export interface NomadJob {
  ID: string;
  Datacenters?: string[] | null;
  NodePool?: string;
  Constraints?: NomadConstraint[] | null;
  Name?: string;
  Namespace?: string;
  Type?: string;
  Status?: string;
  Stop?: boolean;
  ParentID?: string;
  Dispatched?: boolean;
  Meta?: Record<string, string> | null;
  ParameterizedJob?: { Payload?: string; MetaRequired?: string[] | null; MetaOptional?: string[] | null } | null;
  TaskGroups?: Array<{
    Name: string;
    Constraints?: NomadConstraint[] | null;
    Tasks?: Array<{
      Name: string;
      Constraints?: NomadConstraint[] | null;
      Driver?: string;
      /** Driver settings; for docker, `image` among them. */
      Config?: Record<string, unknown> | null;
      Lifecycle?: { Hook: string; Sidecar?: boolean } | null;
      /** The task's vault block: present when Nomad logs the task in to Vault with its workload identity. */
      Vault?: { Role?: string; Env?: boolean } | null;
    }>;
  }>;
  JobModifyIndex?: number;
  [field: string]: unknown;
}

/** api.AllocationListStub, the part that says how its tasks ended. */
export interface AllocationStub {
  ID: string;
  ClientStatus?: string;
  TaskStates?: Record<
    string,
    { State?: string; Failed?: boolean; Events?: Array<{ Type: string; ExitCode?: number; Details?: Record<string, string> | null }> | null }
  > | null;
}

export interface NomadJobStub {
  ID: string;
  ParentID: string;
  Name: string;
  Type: string;
  Status: "pending" | "running" | "dead";
  Stop: boolean;
  Meta?: Record<string, string> | null;
  SubmitTime: number;
  ModifyIndex?: number;
  /** Allocation counts per task group (api.JobSummary), as /v1/jobs lists them. */
  JobSummary?: {
    Summary?: Record<string, Partial<Record<"Queued" | "Starting" | "Running" | "Complete" | "Failed" | "Lost" | "Unknown", number>>> | null;
  } | null;
}

export interface DispatchResult {
  dispatchedJobId: string;
  /** false when Nomad returned an existing child for the idempotency token. */
  created: boolean;
}
