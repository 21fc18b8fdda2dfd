import { describe, expect, it } from "vitest";
import { isUnlimited, Occupancy } from "../../src/core/capacity.js";
import { CapacityGate } from "../../src/provisioning/capacity-gate.js";
import { addRunnerJob, fakeDeps, PREFIX, runnerClass } from "../fakes/deps.js";

const limits = { maxRunners: 3, maxRunnersPerRepo: 2 };

describe("Occupancy (the one capacity model)", () => {
  it("refuses a repository at its cap and admits another, case-insensitively", () => {
    const o = new Occupancy(["acme/app", "Acme/App"]);
    expect(o.admits("ACME/app", limits)).toBe(false);
    expect(o.admits("acme/lib", limits)).toBe(true);
  });

  it("refuses every repository at the total cap", () => {
    const o = new Occupancy(["a/1", "b/2"]);
    expect(o.admits("c/3", limits)).toBe(true);
    o.add("c/3");
    expect(o.total).toBe(3);
    expect(o.admits("d/4", limits)).toBe(false);
  });

  it("holds a class at its own caps, on top of the global ones, and says which cap holds", () => {
    const large = { name: "large", limits: { maxRunners: 2, maxRunnersPerRepo: 1 } };
    const o = new Occupancy([
      { repo: "a/1", cls: "large" },
      { repo: "b/2", cls: "small" },
    ]);
    expect(o.blockedBy("a/1", { maxRunners: 10, maxRunnersPerRepo: 10 }, large)).toBe("class-max-runners-per-repo");
    expect(o.blockedBy("c/3", { maxRunners: 10, maxRunnersPerRepo: 10 }, large)).toBeUndefined();
    o.add("c/3", "large");
    expect(o.inClass("large")).toBe(2);
    expect(o.blockedBy("d/4", { maxRunners: 10, maxRunnersPerRepo: 10 }, large)).toBe("class-max-runners");
    expect(o.admits("d/4", { maxRunners: 10, maxRunnersPerRepo: 10 })).toBe(true);
    // The global caps come first.
    expect(o.blockedBy("d/4", { maxRunners: 3, maxRunnersPerRepo: 10 }, large)).toBe("max-runners");
  });

  it("knows unlimited from limited", () => {
    expect(isUnlimited({ maxRunners: Infinity, maxRunnersPerRepo: Infinity })).toBe(true);
    expect(isUnlimited({ maxRunners: Infinity, maxRunnersPerRepo: 1 })).toBe(false);
  });
});

describe("CapacityGate", () => {
  it("refuses above the per-repository cap, counting live runner jobs in Nomad", async () => {
    const deps = fakeDeps();
    addRunnerJob(deps, 1);
    addRunnerJob(deps, 2);
    const gate = new CapacityGate(deps, limits);
    expect(await gate.reserve("acme/app", `${PREFIX}-3`)).toBe(false);
    expect(await gate.reserve("acme/lib", `${PREFIX}-4`)).toBe(true);
  });

  it("does not count dead runner jobs", async () => {
    const deps = fakeDeps();
    addRunnerJob(deps, 1, "acme/app", { Status: "dead" });
    addRunnerJob(deps, 2, "acme/app", { Status: "dead" });
    expect(await new CapacityGate(deps, limits).reserve("acme/app", `${PREFIX}-3`)).toBe(true);
  });

  it("counts its own reservations, so concurrent deliveries cannot overshoot the cap", async () => {
    const gate = new CapacityGate(fakeDeps(), { maxRunners: 10, maxRunnersPerRepo: 1 });
    const results = await Promise.all([gate.reserve("acme/app", `${PREFIX}-1`), gate.reserve("acme/app", `${PREFIX}-2`)]);
    expect(results.sort()).toEqual([false, true]);
  });

  it("frees a reservation whose dispatch failed, and keeps one whose dispatch Nomad does not list yet", async () => {
    const gate = new CapacityGate(fakeDeps(), { maxRunners: 10, maxRunnersPerRepo: 1 });
    expect(await gate.reserve("acme/app", `${PREFIX}-1`)).toBe(true);
    gate.settle(`${PREFIX}-1`, false);
    expect(await gate.reserve("acme/app", `${PREFIX}-2`)).toBe(true);
    gate.settle(`${PREFIX}-2`, true);
    expect(await gate.reserve("acme/app", `${PREFIX}-3`)).toBe(false);
  });

  it("admits a runner that holds its slot already (a redelivery)", async () => {
    const deps = fakeDeps();
    addRunnerJob(deps, 1);
    const gate = new CapacityGate(deps, { maxRunners: 1, maxRunnersPerRepo: 1 });
    expect(await gate.reserve("acme/app", `${PREFIX}-1`)).toBe(true);
  });

  it("holds a class at its max_runners on the webhook path, counting that class's runner jobs only", async () => {
    const large = runnerClass({
      name: "large",
      labels: ["large"],
      job: "runner-large",
      runnerPrefix: `${PREFIX}-large`,
      limits: { maxRunners: 1, maxRunnersPerRepo: 9 },
    });
    const deps = fakeDeps({ classes: [runnerClass(), large] });
    addRunnerJob(deps, 1);
    const gate = new CapacityGate(deps, { maxRunners: Infinity, maxRunnersPerRepo: Infinity });
    expect(gate.unlimited).toBe(false);
    expect(await gate.reserve("acme/app", `${PREFIX}-large-2`)).toBe(true);
    expect(await gate.reserve("acme/lib", `${PREFIX}-large-3`)).toBe(false);
    expect(await gate.reserve("acme/lib", `${PREFIX}-4`)).toBe(true);
  });

  it("asks Nomad nothing when unlimited", async () => {
    const deps = fakeDeps();
    expect(await new CapacityGate(deps, { maxRunners: Infinity, maxRunnersPerRepo: Infinity }).reserve("acme/app", `${PREFIX}-1`)).toBe(true);
    expect(deps.nomad.faults.calls).toEqual([]);
  });
});
