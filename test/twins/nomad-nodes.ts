import { NODE } from "./nomad-scheduler.js";
import { nodeStub } from "./nomad-views.js";

// The twin's one client node and the cluster's node pools, as the node and node pool endpoints
// show them (hashicorp/nomad command/agent/node_endpoint.go, command/agent/node_pool_endpoint.go,
// nomad/node_pool_endpoint.go).

export interface TwinNodeOptions {
  /** The client's node_pool (default "default"). */
  pool?: string;
  /** Fingerprinted attributes, merged over the twin's (kernel.name linux, cpu.arch amd64, ...). */
  attributes?: Record<string, string>;
  meta?: Record<string, string>;
  /**
   * The client's docker plugin config (`plugin "docker" { config { ... } }`): Nomad's defaults
   * are allow_privileged = false and volumes { enabled = false }.
   */
  docker?: { allowPrivileged?: boolean; volumesEnabled?: boolean };
  /** Node pools created with `nomad node pool apply`, beside the built-in "all" and "default". */
  pools?: string[];
}

export const NODE_INDEX = 7;

/** The built-in pools (nomad/structs/node_pool.go NodePoolAll, NodePoolDefault) and the operator's. */
export function nodePools(opts: TwinNodeOptions): Array<Record<string, unknown>> {
  const builtIn: Array<[string, string]> = [
    ["all", "Node pool with all nodes in the cluster."],
    ["default", "Default node pool."],
  ];
  const created = (opts.pools ?? []).filter((p) => p !== "all" && p !== "default").map((name): [string, string] => [name, ""]);
  return [...builtIn, ...created].map(([Name, Description]) => ({
    Name,
    Description,
    Meta: null,
    SchedulerConfiguration: null,
    CreateIndex: 1,
    ModifyIndex: 1,
  }));
}

/** The node's stub, in its pool. */
export function twinNodeStub(opts: TwinNodeOptions): Record<string, unknown> {
  return { ...nodeStub(NODE), NodePool: opts.pool ?? "default" };
}

/** structs.Node as GET /v1/node/:id returns it (the fields a placement check reads, and the stub's). */
export function twinNode(opts: TwinNodeOptions): Record<string, unknown> {
  return {
    ...twinNodeStub(opts),
    Attributes: {
      "kernel.name": "linux",
      "os.name": "ubuntu",
      "cpu.arch": "amd64",
      ...dockerAttributes(opts.docker ?? {}),
      "nomad.version": "1.10.5",
      "unique.hostname": NODE.Name,
      ...opts.attributes,
    },
    Meta: { ...opts.meta },
  };
}

/** Nodes of a pool (NodePool.ListNodes): "all" has every node; an unknown pool none. */
export function nodesOfPool(opts: TwinNodeOptions, pool: string): Array<Record<string, unknown>> {
  return pool === "all" || pool === (opts.pool ?? "default") ? [twinNodeStub(opts)] : [];
}

/**
 * The docker driver's fingerprint as node attributes: hashicorp/nomad drivers/docker/fingerprint.go
 * buildFingerprint sets driver.docker.privileged.enabled only when the plugin's allow_privileged is
 * true and driver.docker.volumes.enabled only when its volumes are enabled (bool attributes, which
 * the driver manager turns into "true": client/pluginmanager/drivermanager/instance.go GoString),
 * and client/node_updater.go updateNodeFromDriver copies them into the node's attributes, then sets
 * the old driver.docker = "1" over the fingerprint's own driver.docker.
 */
function dockerAttributes(docker: NonNullable<TwinNodeOptions["docker"]>): Record<string, string> {
  return {
    "driver.docker": "1",
    "driver.docker.version": "29.4.3",
    ...(docker.allowPrivileged ? { "driver.docker.privileged.enabled": "true" } : {}),
    ...(docker.volumesEnabled ? { "driver.docker.volumes.enabled": "true" } : {}),
    "driver.docker.bridge_ip": "172.17.0.1",
    "driver.docker.runtimes": "io.containerd.runc.v2,runc",
    "driver.docker.os_type": "linux",
  };
}
