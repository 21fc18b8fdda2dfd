import type { RunnerTarget } from "../../src/core/job-event.js";
import { CapacityGate } from "../../src/provisioning/capacity-gate.js";
import { DispatchQueue } from "../../src/provisioning/dispatch-queue.js";
import { type Backlog, Provisioner, type ProvisionObserver } from "../../src/provisioning/provisioner.js";
import type { FakeDeps } from "./deps.js";

/** A backlog (the reconciler's side of provisioning) that records what it was told. */
export class RecordingBacklog implements Backlog {
  passes = 0;
  readonly watched: RunnerTarget[] = [];
  readonly inFlight: string[] = [];

  passSoon(): void {
    this.passes += 1;
  }

  watchRepo(target: RunnerTarget): void {
    this.watched.push(target);
  }

  recheckInFlight(runnerName: string): void {
    this.inFlight.push(runnerName);
  }
}

/** The production provisioner (capacity gate, dispatch queue) on fakes. */
export function fakeProvisioner(deps: FakeDeps, limits = { maxRunners: Infinity, maxRunnersPerRepo: Infinity }, observer: ProvisionObserver = {}) {
  const backlog = new RecordingBacklog();
  const provisioner = new Provisioner(
    deps,
    new CapacityGate(deps, limits),
    new DispatchQueue(deps, { maxJobs: 100, concurrencyPerLane: 4, answerWithinMs: 1_000 }),
    observer,
  );
  provisioner.followUpWith(backlog);
  return { provisioner, backlog };
}
