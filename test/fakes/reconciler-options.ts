import type { ReconcilerOptions } from "../../src/reconciling/reconciler.js";
import { runnerClass } from "./deps.js";

/** Reconciler options for tests on the fakes: passes only when asked, no grace, one repository. */
export function reconcilerOptions(overrides: Partial<ReconcilerOptions> = {}): ReconcilerOptions {
  return {
    intervalMs: 3_600_000,
    minGapMs: 0,
    retentionMs: 3_600_000,
    graceMs: 0,
    classes: [runnerClass()],
    staticRepos: ["acme/app"],
    owners: [],
    redeliverWindowMs: 0,
    maxRunners: 10,
    maxRunnersPerRepo: 10,
    ...overrides,
  };
}
