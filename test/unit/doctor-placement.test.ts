import { describe, expect, it } from "vitest";
import { DependencyError } from "../../src/core/errors.js";
import { checkPlacement, constraintsOf, dockerOptionsAtStart, meets, nodeFits } from "../../src/doctor-placement.js";
import type { NomadJob, NomadNode } from "../../src/nomad/types.js";

const node: NomadNode = {
  ID: "n1",
  Name: "client-1",
  Datacenter: "dc1",
  NodeClass: "big",
  NodePool: "arm",
  Status: "ready",
  SchedulingEligibility: "eligible",
  Attributes: { "cpu.arch": "arm64", "kernel.name": "linux", "driver.docker.volumes": "a, b" },
  Meta: { rack: "r1" },
};

describe("constraints as Nomad's scheduler judges them (scheduler/feasible/feasible.go)", () => {
  const cases: Array<[string, string, string, boolean | undefined]> = [
    ["${attr.cpu.arch}", "=", "arm64", true],
    ["${attr.cpu.arch}", "==", "amd64", false],
    ["${attr.cpu.arch}", "!=", "amd64", true],
    ["${attr.gpu}", "!=", "x", true],
    ["${attr.gpu}", "=", "x", false],
    ["${node.class}", "is", "big", true],
    ["${node.pool}", "=", "arm", true],
    ["${node.datacenter}", "regexp", "^dc[0-9]$", true],
    ["${meta.rack}", "=", "r1", true],
    ["${attr.cpu.arch}", "is_set", "", true],
    ["${attr.gpu}", "is_not_set", "", true],
    ["${attr.driver.docker.volumes}", "set_contains", "b,a", true],
    ["${attr.driver.docker.volumes}", "set_contains_any", "c, b", true],
    ["${attr.driver.docker.volumes}", "set_contains_all", "a,c", false],
    ["", "distinct_hosts", "", true],
    ["${attr.nomad.version}", "version", ">= 1.7", undefined],
  ];
  it.each(cases)("%s %s %s -> %s", (LTarget, Operand, RTarget, expected) => {
    expect(meets(node, { LTarget, Operand, RTarget })).toBe(expected);
  });

  it("gathers job, group and task constraints, and fits a node in the job's datacenters meeting all of them", () => {
    const job: NomadJob = {
      ID: "j",
      Datacenters: ["dc*"],
      Constraints: [{ LTarget: "${attr.kernel.name}", Operand: "=", RTarget: "linux" }],
      TaskGroups: [{ Name: "g", Constraints: [{ LTarget: "${attr.cpu.arch}", Operand: "=", RTarget: "arm64" }], Tasks: [{ Name: "t", Constraints: [] }] }],
    };
    expect(constraintsOf(job)).toHaveLength(2);
    expect(nodeFits(node, job)).toBe(true);
    expect(nodeFits(node, { ...job, Datacenters: ["eu-*"] })).toBe(false);
    expect(nodeFits({ ...node, SchedulingEligibility: "ineligible" }, job)).toBe(false);
    expect(nodeFits({ ...node, Attributes: { "cpu.arch": "amd64" } }, job)).toBe(false);
    expect(nodeFits(node, { ...job, Constraints: [{ LTarget: "${attr.nomad.version}", Operand: "semver", RTarget: ">= 1.7" }] })).toBeUndefined();
  });
});

describe("checkPlacement (doctor)", () => {
  const job: NomadJob = { ID: "j", NodePool: "arm", Constraints: [{ LTarget: "${attr.cpu.arch}", Operand: "=", RTarget: "arm64" }] };
  const nomad = (nodes: NomadNode[], pools = ["default", "arm"]) => ({
    nodePool: async (name: string) => (pools.includes(name) ? { Name: name } : undefined),
    nodePoolNodes: async (name: string) => nodes.filter((n) => n.NodePool === name),
    readNode: async (id: string) => nodes.find((n) => n.ID === id),
  });

  it("is ok when some node of the pool fits, and fails, naming the constraints, when none does", async () => {
    expect(await checkPlacement(nomad([node]), job, "small")).toMatchObject({ level: "ok", detail: expect.stringContaining("1 node(s) fit") as string });
    const amd = { ...node, Attributes: { "cpu.arch": "amd64" } };
    expect(await checkPlacement(nomad([amd]), job, "small")).toMatchObject({
      level: "fail",
      detail: 'no node fits (pool "arm", constraints ${attr.cpu.arch} = arm64; 1 of its 1 ready node(s) read)',
    });
  });

  it("fails a pool that does not exist or has no ready node", async () => {
    expect(await checkPlacement(nomad([node], ["default"]), job, "small")).toMatchObject({ level: "fail", detail: 'node pool "arm" does not exist' });
    expect(await checkPlacement(nomad([{ ...node, Status: "down" }]), job, "small")).toMatchObject({
      level: "fail",
      detail: 'node pool "arm" has no ready, eligible node (1 in all)',
    });
  });

  it("does not count a token that may not read nodes as a finding", async () => {
    const denied = {
      ...nomad([node]),
      nodePool: async () => Promise.reject(new DependencyError("nomad", "Nomad read node pool: 403 Permission denied", 403, false)),
    };
    expect(await checkPlacement(denied, job, "small")).toMatchObject({
      level: "ok",
      detail: expect.stringMatching(/^not checked: the Nomad token may not read node pool arm/) as string,
    });
  });

  const dind: NomadJob = {
    ...job,
    TaskGroups: [
      { Name: "runner", Tasks: [{ Name: "docker", Driver: "docker", Config: { privileged: true }, Lifecycle: { Hook: "prestart", Sidecar: true } }] },
    ],
  };

  it("fails a job with a privileged task when no fitting node allows privileged containers, naming the class, the pool and the fix", async () => {
    expect(await checkPlacement(nomad([node]), dind, "large")).toEqual({
      level: "fail",
      detail:
        'class large: its runner job\'s task "docker" needs privileged containers, but no ready node of pool "arm" allows them (none of the 1 ready node(s) it fits has driver.docker.privileged.enabled)',
      fix: "set plugin \"docker\" { config { allow_privileged = true } } on the pool's clients and restart them, or change the class's docker job_var",
    });
    // A node that allows them but does not fit the job's constraints does not count.
    const amdPrivileged = { ...node, ID: "n2", Attributes: { "cpu.arch": "amd64", "driver.docker.privileged.enabled": "true" } };
    expect(await checkPlacement(nomad([node, amdPrivileged]), dind, "large")).toMatchObject({ level: "fail" });
    const privileged = { ...node, Attributes: { ...node.Attributes, "driver.docker.privileged.enabled": "true" } };
    expect(await checkPlacement(nomad([privileged]), dind, "large")).toMatchObject({ level: "ok" });
  });
});

describe("dockerOptionsAtStart (start-up)", () => {
  const job: NomadJob = { ID: "j", NodePool: "arm" };
  const dind: NomadJob = { ...job, TaskGroups: [{ Name: "g", Tasks: [{ Name: "docker", Driver: "docker", Config: { privileged: true } }] }] };
  const nomad = (nodes: NomadNode[], pools = ["arm"]) => ({
    nodePool: async (name: string) => (pools.includes(name) ? { Name: name } : undefined),
    nodePoolNodes: async (name: string) => nodes.filter((n) => n.NodePool === name),
    readNode: async (id: string) => nodes.find((n) => n.ID === id),
  });
  const untouchable = {
    nodePool: () => Promise.reject(new Error("read")),
    nodePoolNodes: () => Promise.reject(new Error("read")),
    readNode: () => Promise.reject(new Error("read")),
  };

  it("reads no node for a job that uses no docker option", async () => {
    expect(await dockerOptionsAtStart(untouchable, job, "small")).toEqual({ problems: [] });
  });

  it("finds the problem on a pool without such a node, or on a pool that does not exist", async () => {
    expect((await dockerOptionsAtStart(nomad([node]), dind, "large")).problems).toHaveLength(1);
    expect((await dockerOptionsAtStart(nomad([node], []), dind, "large")).problems[0]?.problem).toMatch(/none of the 0 ready node\(s\)/);
    const privileged = { ...node, Attributes: { "driver.docker.privileged.enabled": "true" } };
    expect(await dockerOptionsAtStart(nomad([privileged]), dind, "large")).toEqual({ problems: [] });
  });

  it("says it could not check when the token may not read nodes, and passes other errors on", async () => {
    const denied = { ...untouchable, nodePool: () => Promise.reject(new DependencyError("nomad", "403 Permission denied", 403, false)) };
    expect(await dockerOptionsAtStart(denied, dind, "large")).toEqual({ problems: [], unchecked: "the Nomad token may not read the nodes of pool arm" });
    await expect(dockerOptionsAtStart(untouchable, dind, "large")).rejects.toThrow("read");
  });
});
