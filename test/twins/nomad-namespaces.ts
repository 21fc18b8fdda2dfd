// Namespaces of the Nomad twin: the spec `nomad namespace apply` reads, the record Nomad stores
// and lists, and the driver restriction every Job.Register is held to.

import { isObject, parseHcl } from "./nomad-hcl.js";
import type { Json, TwinNomadJob } from "./nomad-types.js";

/** structs.NamespaceCapabilities (hashicorp/nomad nomad/structs/structs.go). */
export interface NamespaceCapabilities {
  EnabledTaskDrivers: string[] | null;
  DisabledTaskDrivers: string[] | null;
  EnabledNetworkModes: string[] | null;
  DisabledNetworkModes: string[] | null;
}

/** structs.Namespace, the fields a Community Edition server keeps. */
export interface TwinNamespace {
  Name: string;
  Description: string;
  Quota: string;
  Capabilities: NamespaceCapabilities | null;
  NodePoolConfiguration: null;
  VaultConfiguration: null;
  ConsulConfiguration: null;
  Meta: Record<string, string> | null;
  CreateIndex: number;
  ModifyIndex: number;
}

/** The namespace every cluster starts with (structs.DefaultNamespaceDescription). */
export function defaultNamespace(): TwinNamespace {
  return namespaceRecord("default", "Default shared namespace", null, 1);
}

function namespaceRecord(name: string, description: string, capabilities: NamespaceCapabilities | null, index: number): TwinNamespace {
  return {
    Name: name,
    Description: description,
    Quota: "",
    Capabilities: capabilities,
    NodePoolConfiguration: null,
    VaultConfiguration: null,
    ConsulConfiguration: null,
    Meta: null,
    CreateIndex: index,
    ModifyIndex: index,
  };
}

/**
 * A namespace spec file as `nomad namespace apply <file>` reads it (hashicorp/nomad
 * command/namespace_apply.go parseNamespaceSpecImpl): name, description, quota and a
 * `capabilities` block. node_pool_config is accepted but, as on Community Edition, not enforced.
 */
export async function parseNamespaceSpec(hcl: string, index: number): Promise<TwinNamespace> {
  const spec = await parseHcl("namespace.hcl", hcl);
  const name = typeof spec.name === "string" ? spec.name : "";
  if (!/^[a-zA-Z0-9-]{1,128}$/.test(name)) throw new Error(`invalid name ${JSON.stringify(name)}`);
  const description = typeof spec.description === "string" ? spec.description : "";
  const block = Array.isArray(spec.capabilities) ? spec.capabilities[0] : spec.capabilities;
  const capabilities = isObject(block)
    ? {
        EnabledTaskDrivers: strings(block.enabled_task_drivers),
        DisabledTaskDrivers: strings(block.disabled_task_drivers),
        EnabledNetworkModes: strings(block.enabled_network_modes),
        DisabledNetworkModes: strings(block.disabled_network_modes),
      }
    : null;
  return namespaceRecord(name, description, capabilities, index);
}

function strings(value: Json | undefined): string[] | null {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : null;
}

/** nomad/job_endpoint_validators.go taskValidateDriver. */
function driverAllowed(driver: string, ns: TwinNamespace): boolean {
  if (!ns.Capabilities) return true;
  const enabled = ns.Capabilities.EnabledTaskDrivers ?? [];
  let allow = enabled.length === 0 || enabled.includes(driver);
  if ((ns.Capabilities.DisabledTaskDrivers ?? []).includes(driver)) allow = false;
  return allow;
}

/**
 * jobNamespaceConstraintCheckHook.Validate (nomad/job_endpoint_validators.go), as the admission
 * validators report it: a go-multierror (nomad/job_endpoint_hooks.go admissionValidators).
 */
export function namespaceDriverError(job: TwinNomadJob, ns: TwinNamespace): string | undefined {
  const disallowed = job.TaskGroups.flatMap((group) => group.Tasks.map((task) => task.Driver)).filter((driver) => !driverAllowed(driver, ns));
  if (disallowed.length === 0) return undefined;
  const reason =
    disallowed.length === 1
      ? `used task driver ${JSON.stringify(disallowed[0])} is not allowed in namespace ${JSON.stringify(ns.Name)}`
      : `used task drivers [${disallowed.map((d) => JSON.stringify(d)).join(" ")}] are not allowed in namespace ${JSON.stringify(ns.Name)}`;
  return `1 error occurred:\n\t* ${reason}\n\n`;
}
