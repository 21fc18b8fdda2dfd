import { afterEach, describe, expect, it } from "vitest";
import { twinImage } from "./images.js";
import type { TwinAllocation } from "./nomad.js";
import { NomadTwin } from "./nomad.js";
import { api, bashTask, group, runHcl, waitForAllocations } from "./nomad-fakes.js";

// The node and node pool reads a placement check makes, as hashicorp/nomad answers them
// (command/agent/node_endpoint.go, command/agent/node_pool_endpoint.go, nomad/node_pool_endpoint.go).

let twin: NomadTwin | undefined;
afterEach(async () => twin?.close());

describe("Nomad twin: nodes and node pools", () => {
  it("lists the built-in pools and the operator's, reads one, and 404s an unknown one", async () => {
    twin = await NomadTwin.start({ images: twinImage, node: { pool: "arm", pools: ["arm"], attributes: { "cpu.arch": "arm64" } } });
    const pools = (await api(twin, "GET", "/v1/node/pools")).json<Array<{ Name: string; Description: string }>>();
    expect(pools.map((p) => [p.Name, p.Description])).toEqual([
      ["all", "Node pool with all nodes in the cluster."],
      ["default", "Default node pool."],
      ["arm", ""],
    ]);
    expect((await api(twin, "GET", "/v1/node/pool/arm")).json()).toMatchObject({ Name: "arm" });
    expect(await api(twin, "GET", "/v1/node/pool/gpu")).toMatchObject({ status: 404, text: "node pool not found" });
  });

  it("lists a pool's nodes ('all' has every node), and reads a node with its attributes", async () => {
    twin = await NomadTwin.start({ images: twinImage, node: { pool: "arm", pools: ["arm"], attributes: { "cpu.arch": "arm64" } } });
    const [stub] = (await api(twin, "GET", "/v1/node/pool/arm/nodes")).json<Array<{ ID: string; NodePool: string }>>();
    expect(stub).toMatchObject({ NodePool: "arm" });
    expect((await api(twin, "GET", "/v1/node/pool/all/nodes")).json<unknown[]>()).toHaveLength(1);
    expect((await api(twin, "GET", "/v1/node/pool/default/nodes")).json<unknown[]>()).toEqual([]);
    const node = (await api(twin, "GET", `/v1/node/${stub!.ID}`)).json<{ NodePool: string; Attributes: Record<string, string> }>();
    expect(node).toMatchObject({ NodePool: "arm", Attributes: { "cpu.arch": "arm64", "kernel.name": "linux" } });
    expect(await api(twin, "GET", "/v1/node/00000000-0000-0000-0000-000000000000")).toMatchObject({ status: 404, text: "node not found" });
  });

  it("fingerprints the docker driver's privileged and volumes options only when the client's plugin config allows them", async () => {
    const attributesOf = async (docker?: { allowPrivileged?: boolean; volumesEnabled?: boolean }) => {
      twin = await NomadTwin.start({ images: twinImage, node: { docker } });
      const [stub] = (await api(twin, "GET", "/v1/node/pool/default/nodes")).json<Array<{ ID: string }>>();
      const node = (await api(twin, "GET", `/v1/node/${stub!.ID}`)).json<{ Attributes: Record<string, string> }>();
      await twin.close();
      twin = undefined;
      return Object.fromEntries(Object.entries(node.Attributes).filter(([k]) => k.startsWith("driver.docker")));
    };
    // Nomad's defaults: allow_privileged = false, volumes { enabled = false }: neither attribute.
    const defaults = await attributesOf();
    expect(defaults).toMatchObject({ "driver.docker": "1", "driver.docker.os_type": "linux" });
    expect(defaults).not.toHaveProperty("driver.docker.privileged.enabled");
    expect(defaults).not.toHaveProperty("driver.docker.volumes.enabled");
    expect(await attributesOf({ allowPrivileged: true, volumesEnabled: true })).toMatchObject({
      "driver.docker.privileged.enabled": "true",
      "driver.docker.volumes.enabled": "true",
    });
  });

  it("a client fails a privileged task, or one with a host path volume, unless its docker plugin allows it (drivers/docker/driver.go)", async () => {
    const job = (config: string) => `job "opts" {\n  type = "batch"\n${group("g", bashTask("exit 0", "", config))}\n}`;
    const outcome = async (docker: { allowPrivileged?: boolean; volumesEnabled?: boolean } | undefined, config: string) => {
      twin = await NomadTwin.start({ images: twinImage, node: { docker }, startDelayMs: 1 });
      const id = await runHcl(twin, job(config));
      const done = (a: TwinAllocation[]) => a.length > 0 && a.every((x) => x.ClientStatus === "complete" || x.ClientStatus === "failed");
      const [alloc] = await waitForAllocations(twin, id, done);
      await twin.close();
      twin = undefined;
      const failure = alloc!.TaskStates.t?.Events.find((e) => e.Type === "Driver Failure");
      return [alloc!.ClientStatus, failure?.DisplayMessage ?? failure?.Message ?? ""];
    };
    expect(await outcome(undefined, "privileged = true")).toEqual(["failed", "Docker privileged mode is disabled on this Nomad agent"]);
    expect(await outcome({ allowPrivileged: true }, "privileged = true")).toEqual(["complete", ""]);
    const socket = 'volumes = ["/var/run/docker.sock:/var/run/docker.sock"]';
    expect(await outcome(undefined, socket)).toEqual([
      "failed",
      'volumes are not enabled; cannot mount host path: "/var/run/docker.sock:/var/run/docker.sock"',
    ]);
    // Relative to the task directory: inside the allocation, allowed with volumes disabled.
    expect(await outcome(undefined, 'volumes = ["local/docker:/var/lib/docker"]')).toEqual(["complete", ""]);
  });

  it("refuses a token without node read", async () => {
    twin = await NomadTwin.start({ images: twinImage, acl: true });
    const token = twin.createToken('namespace "default" { policy = "read" }');
    expect((await api(twin, "GET", "/v1/node/pool/default", undefined, token)).status).toBe(403);
    expect((await api(twin, "GET", "/v1/node/pool/default", undefined, twin.managementToken)).status).toBe(200);
  });
});
