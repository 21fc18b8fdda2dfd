import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  DOCKER_OPTIONS,
  type DockerOption,
  dockerOptionsProblems,
  dockerOptionsUsed,
  type PlacementJob,
  type PlacementNode,
  type PlacementTask,
} from "../../src/core/placement.js";

// core/placement: which docker driver options a runner job's tasks use, and whether some ready,
// eligible node of the class's pool allows each (its fingerprint attribute is "true").

const node = (attributes: Record<string, string>, over: Partial<PlacementNode> = {}): PlacementNode => ({
  ID: "n1",
  Name: "client-1",
  Datacenter: "dc1",
  NodePool: "arm",
  Status: "ready",
  SchedulingEligibility: "eligible",
  Attributes: { "driver.docker": "1", ...attributes },
  ...over,
});

const jobOf = (...tasks: PlacementTask[]): PlacementJob => ({ TaskGroups: [{ Tasks: tasks }] });
const runner: PlacementTask = { Name: "runner", Driver: "docker", Config: { image: "runner" } };
const dind: PlacementTask = {
  Name: "docker",
  Driver: "docker",
  Config: { image: "docker:29.4.3-dind", privileged: true, volumes: ["../alloc:/home/runner", "local/docker:/var/lib/docker"] },
};
const socket: PlacementTask = { Name: "runner", Driver: "docker", Config: { image: "runner", volumes: ["/var/run/docker.sock:/var/run/docker.sock"] } };
const PRIVILEGED = { "driver.docker.privileged.enabled": "true" };
const VOLUMES = { "driver.docker.volumes.enabled": "true" };

describe("dockerOptionsUsed", () => {
  it("finds privileged = true and absolute host paths in volumes, on docker tasks only; relative volumes stay in the allocation", () => {
    expect(dockerOptionsUsed(jobOf(runner))).toEqual([]);
    expect(dockerOptionsUsed(jobOf(runner, dind))).toEqual([{ option: "privileged", task: "docker" }]);
    expect(dockerOptionsUsed(jobOf(socket))).toEqual([{ option: "host-volumes", task: "runner" }]);
    expect(dockerOptionsUsed(jobOf({ ...dind, Config: { ...dind.Config, volumes: ["/srv:/srv"] } }))).toEqual([
      { option: "privileged", task: "docker" },
      { option: "host-volumes", task: "docker" },
    ]);
    expect(dockerOptionsUsed(jobOf({ ...dind, Driver: "podman" }))).toEqual([]);
    expect(dockerOptionsUsed(jobOf({ ...runner, Config: { privileged: "true" } }))).toEqual([]);
    expect(dockerOptionsUsed(jobOf({ ...runner, Config: null }))).toEqual([]);
    expect(dockerOptionsUsed({})).toEqual([]);
  });
});

describe("dockerOptionsProblems", () => {
  it("has nothing to say of a job that uses no option, whatever the nodes", () => {
    expect(dockerOptionsProblems("small", "arm", jobOf(runner), [])).toEqual([]);
  });

  it("is satisfied by one ready, eligible node with the option's attribute", () => {
    expect(dockerOptionsProblems("large", "arm", jobOf(runner, dind), [node({}), node(PRIVILEGED, { ID: "n2" })])).toEqual([]);
    expect(dockerOptionsProblems("large", "arm", jobOf(socket), [node(VOLUMES)])).toEqual([]);
  });

  it("refuses in one line naming the class, the task, the pool and the attribute, with the client config as the fix", () => {
    expect(dockerOptionsProblems("large", "arm", jobOf(runner, dind), [node({}), node(VOLUMES)])).toEqual([
      {
        problem:
          'class large: its runner job\'s task "docker" needs privileged containers, but no ready node of pool "arm" allows them ' +
          "(none of the 2 ready node(s) it fits has driver.docker.privileged.enabled)",
        fix: "set plugin \"docker\" { config { allow_privileged = true } } on the pool's clients and restart them, or change the class's docker job_var",
      },
    ]);
    expect(dockerOptionsProblems("sock", "default", jobOf(socket), [])[0]?.fix).toMatch(/^set plugin "docker" \{ config \{ volumes \{ enabled = true \} \} \}/);
  });

  it('does not count a node that is down or ineligible, nor an attribute that is not "true"', () => {
    const job = jobOf(dind);
    for (const n of [
      node(PRIVILEGED, { Status: "down" }),
      node(PRIVILEGED, { SchedulingEligibility: "ineligible" }),
      node({ "driver.docker.privileged.enabled": "false" }),
      node({}, { Attributes: null }),
    ]) {
      expect(dockerOptionsProblems("c", "p", job, [n])).toHaveLength(1);
    }
  });

  it("for any nodes and any options used: a problem for exactly the options no ready, eligible node allows", () => {
    const options = Object.keys(DOCKER_OPTIONS) as DockerOption[];
    const arbNode = fc.record({
      status: fc.constantFrom("ready", "down", "initializing"),
      eligible: fc.boolean(),
      allows: fc.subarray(options),
    });
    fc.assert(
      fc.property(fc.array(arbNode, { maxLength: 5 }), fc.subarray(options), (specs, used) => {
        const nodes = specs.map((s, i) =>
          node(Object.fromEntries(s.allows.map((o) => [DOCKER_OPTIONS[o].attribute, "true"])), {
            ID: `n${i}`,
            Status: s.status,
            SchedulingEligibility: s.eligible ? "eligible" : "ineligible",
          }),
        );
        const task: PlacementTask = {
          Name: "t",
          Driver: "docker",
          Config: { ...(used.includes("privileged") && { privileged: true }), ...(used.includes("host-volumes") && { volumes: ["/var/run/docker.sock:/s"] }) },
        };
        const problems = dockerOptionsProblems("c", "p", jobOf(task), nodes);
        const unmet = used.filter((o) => !specs.some((s) => s.status === "ready" && s.eligible && s.allows.includes(o)));
        expect(problems.map((p) => p.problem.match(/has (\S+)\)$/)?.[1])).toEqual(
          options.filter((o) => unmet.includes(o)).map((o) => DOCKER_OPTIONS[o].attribute),
        );
      }),
    );
  });
});
