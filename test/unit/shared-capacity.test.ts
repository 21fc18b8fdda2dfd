import { afterEach, describe, expect, it } from "vitest";
import { ledgerPaths } from "../../src/core/slot-ledger.js";
import { SharedCapacityGate, type SharedCapacityOptions } from "../../src/provisioning/shared-capacity.js";
import { addRunnerJob, type FakeDeps, fakeDeps, PREFIX } from "../fakes/deps.js";
import { FakeVariables } from "../fakes/variables.js";

const OPTS: SharedCapacityOptions = { heartbeatMs: 60_000, leaseMs: 8_000, requestMs: 12_000, holderTtlMs: 20_000, releaseFlushMs: 5 };
const slots = ledgerPaths("test-dispatcher").slots;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let gates: SharedCapacityGate[] = [];
afterEach(async () => {
  for (const gate of gates) await gate.close(100);
  gates = [];
});

async function gateOn(deps: FakeDeps, variables: FakeVariables, limits: { maxRunners: number; maxRunnersPerRepo: number }, holder: string) {
  const gate = new SharedCapacityGate(deps, variables, limits, { ...OPTS, holder });
  await gate.start();
  gates.push(gate);
  return gate;
}

describe("SharedCapacityGate (the slot ledger in Nomad Variables)", () => {
  it("two replicas on one Nomad never hand out more slots than MAX_RUNNERS, however the reservations interleave", async () => {
    const deps = fakeDeps();
    const variables = new FakeVariables();
    const limits = { maxRunners: 5, maxRunnersPerRepo: 3 };
    const a = await gateOn(deps, variables, limits, "a");
    const b = await gateOn(deps, variables, limits, "b");
    const asks = Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).reserve(`acme/r${i % 3}`, `${PREFIX}-${i}`));
    const granted = (await Promise.all(asks)).filter(Boolean).length;
    expect(granted).toBe(5);
    // Entries in the ledger: one per granted runner, by whichever replica granted it.
    expect(Object.keys(variables.peek(slots)?.items ?? {}).filter((k) => k !== "_ledger")).toHaveLength(5);
  });

  it("counts live runner jobs, and a reservation ends when its job is listed or it is settled", async () => {
    const deps = fakeDeps();
    const variables = new FakeVariables();
    const gate = await gateOn(deps, variables, { maxRunners: 2, maxRunnersPerRepo: 2 }, "a");
    addRunnerJob(deps, 1);
    expect(await gate.reserve("acme/app", `${PREFIX}-2`)).toBe(true);
    expect(await gate.reserve("acme/app", `${PREFIX}-3`)).toBe(false);
    // The dispatch of 2 fails: its slot comes back once the release is written.
    gate.settle(`${PREFIX}-2`, false);
    await sleep(20);
    expect(variables.peek(slots)?.items).toEqual({ _ledger: "1" });
    expect(await gate.reserve("acme/app", `${PREFIX}-3`)).toBe(true);
  });

  it("a dead replica's reservations are reclaimed once its heartbeat is older than the TTL on the servers' clock", async () => {
    const deps = fakeDeps();
    const variables = new FakeVariables();
    const limits = { maxRunners: 2, maxRunnersPerRepo: 2 };
    const dead = new SharedCapacityGate(deps, variables, limits, { ...OPTS, holder: "dead" });
    await dead.start();
    expect(await dead.reserve("acme/app", `${PREFIX}-1`)).toBe(true);
    expect(await dead.reserve("acme/app", `${PREFIX}-2`)).toBe(true);
    // SIGKILLed: no close, no more beats. The survivor is refused while the dead one's beat is fresh.
    const survivor = await gateOn(deps, variables, limits, "alive");
    expect(await survivor.reserve("acme/app", `${PREFIX}-3`)).toBe(false);
    variables.nowNs += 25e9;
    // Its next reservation beats first only when its own beat is old (locally); make it beat now.
    const later = await gateOn(deps, variables, limits, "later");
    expect(await later.reserve("acme/app", `${PREFIX}-3`)).toBe(true);
    expect(await later.reserve("acme/app", `${PREFIX}-4`)).toBe(true);
    expect(Object.keys(variables.peek(slots)?.items ?? {}).sort()).toEqual(["_ledger", `${PREFIX}-3`, `${PREFIX}-4`]);
    // Its heartbeat variable went with it.
    expect(variables.peek(ledgerPaths("test-dispatcher").holder("dead"))).toBeUndefined();
    gates.push(dead); // its timers
  });

  it("a dead replica's slots are reclaimed on a listing taken after it was judged dead: a dispatch of its that landed meanwhile counts", async () => {
    const deps = fakeDeps();
    // The dead replica's last dispatch lands while the survivor looks at the heartbeats: after the
    // survivor's first listing, before the judgment's answer.
    let landing: (() => void) | undefined;
    class LandingVariables extends FakeVariables {
      override async list(prefix: string) {
        landing?.();
        landing = undefined;
        return super.list(prefix);
      }
    }
    const variables = new LandingVariables();
    const limits = { maxRunners: 2, maxRunnersPerRepo: 2 };
    const dead = new SharedCapacityGate(deps, variables, limits, { ...OPTS, holder: "dead" });
    await dead.start();
    gates.push(dead); // its timers
    expect(await dead.reserve("acme/app", `${PREFIX}-1`)).toBe(true);
    expect(await dead.reserve("acme/app", `${PREFIX}-2`)).toBe(true);
    variables.nowNs += 25e9;
    const landed: string[] = [];
    landing = () => landed.push(addRunnerJob(deps, 1), addRunnerJob(deps, 2));
    const later = await gateOn(deps, variables, limits, "later");
    // Its two runner jobs count: no slot for runner 3 (reclaiming on the listing taken before the
    // judgment gave it one: three live runner jobs against two).
    expect(await later.reserve("acme/app", `${PREFIX}-3`)).toBe(false);
    expect(landed).toHaveLength(2);
    // Its reservations are gone from the ledger all the same, and once its runners end the slots are free.
    expect(Object.keys(variables.peek(slots)?.items ?? {})).toEqual(["_ledger"]);
    for (const child of deps.nomad.children) child.Status = "dead";
    expect(await later.reserve("acme/app", `${PREFIX}-3`)).toBe(true);
  });

  it("a dispatch is fenced by the lease: refused once it lapsed, even after the replica beats again, until the slot is reserved anew", async () => {
    const deps = fakeDeps();
    const variables = new FakeVariables();
    const gate = new SharedCapacityGate(deps, variables, { maxRunners: 2, maxRunnersPerRepo: 2 }, { ...OPTS, leaseMs: 300, requestMs: 0, holder: "paused" });
    await gate.start();
    gates.push(gate);
    expect(await gate.reserve("acme/app", `${PREFIX}-1`)).toBe(true);
    await expect(gate.fence(`${PREFIX}-1`)).resolves.toBeUndefined();
    // No beat for longer than the lease (the process paused), and the one it tries then fails.
    await sleep(350);
    variables.faults.transient("put");
    await expect(gate.fence(`${PREFIX}-1`)).rejects.toMatchObject({ name: "DependencyError", transient: false });
    // It beats again (this fence renews the lease), which does not bring the old grant back: the
    // others may have judged it dead and reclaimed the slot meanwhile.
    await expect(gate.fence(`${PREFIX}-1`)).rejects.toMatchObject({ name: "DependencyError" });
    expect(variables.faults.count("put")).toBeGreaterThanOrEqual(3);
    // Reserved anew (its own entry is still there: no new slot), it may be dispatched.
    expect(await gate.reserve("acme/app", `${PREFIX}-1`)).toBe(true);
    await expect(gate.fence(`${PREFIX}-1`)).resolves.toBeUndefined();
  });

  it("releases a contended round could not write are kept and written later, not left counted until the replica dies", async () => {
    const deps = fakeDeps();
    let lose = 0;
    class ContendedVariables extends FakeVariables {
      override async compareAndSet(path: string, items: Record<string, string>, index: number) {
        if (lose > 0) {
          lose -= 1;
          // Another replica wrote first, every time (its write changes nothing here).
          return { conflict: await this.read(path) };
        }
        return super.compareAndSet(path, items, index);
      }
    }
    const variables = new ContendedVariables();
    const gate = await gateOn(deps, variables, { maxRunners: 1, maxRunnersPerRepo: 1 }, "busy");
    expect(await gate.reserve("acme/app", `${PREFIX}-1`)).toBe(true);
    lose = 8; // every attempt of the next round
    gate.settle(`${PREFIX}-1`, false);
    while (lose > 0) await sleep(5);
    await sleep(30);
    expect(Object.keys(variables.peek(slots)?.items ?? {})).toEqual(["_ledger"]);
    expect(await gate.reserve("acme/app", `${PREFIX}-2`)).toBe(true);
  });

  it("single replica: one extra Nomad call per reservation once warm (the CAS write); releases ride along", async () => {
    const deps = fakeDeps();
    const variables = new FakeVariables();
    const gate = await gateOn(deps, variables, { maxRunners: 10, maxRunnersPerRepo: 10 }, "solo");
    await gate.reserve("acme/app", `${PREFIX}-0`); // cold: reads the ledger once
    const before = variables.faults.calls.length;
    for (let i = 1; i <= 5; i++) {
      expect(await gate.reserve("acme/app", `${PREFIX}-${i}`)).toBe(true);
      gate.settle(`${PREFIX}-${i - 1}`, true);
      addRunnerJob(deps, i - 1);
    }
    expect(variables.faults.calls.slice(before)).toEqual(Array(5).fill("compareAndSet"));
  });

  it("Nomad failing: the reservation fails with Nomad's error (a delivery gets its 5xx), and the next round works", async () => {
    const deps = fakeDeps();
    const variables = new FakeVariables();
    const gate = await gateOn(deps, variables, { maxRunners: 1, maxRunnersPerRepo: 1 }, "a");
    variables.faults.transient("read");
    await expect(gate.reserve("acme/app", `${PREFIX}-1`)).rejects.toMatchObject({ name: "DependencyError", transient: true });
    deps.nomad.faults.transient("listJobs");
    await expect(gate.reserve("acme/app", `${PREFIX}-1`)).rejects.toMatchObject({ name: "DependencyError" });
    expect(await gate.reserve("acme/app", `${PREFIX}-1`)).toBe(true);
  });

  it("close gives back this replica's reservations and heartbeat at once", async () => {
    const deps = fakeDeps();
    const variables = new FakeVariables();
    const gate = new SharedCapacityGate(deps, variables, { maxRunners: 1, maxRunnersPerRepo: 1 }, { ...OPTS, holder: "leaving" });
    await gate.start();
    expect(await gate.reserve("acme/app", `${PREFIX}-1`)).toBe(true);
    await gate.close(1_000);
    expect(variables.peek(slots)?.items).toEqual({ _ledger: "1" });
    expect(variables.peek(ledgerPaths("test-dispatcher").holder("leaving"))).toBeUndefined();
  });
});
