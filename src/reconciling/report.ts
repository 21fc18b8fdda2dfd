import type { ReconcileAction } from "../core/reconcile-plan.js";
import type { BoardEntry } from "../core/status.js";

/** What one pass did: metrics and logs are made from it. */
export interface ReconcileReport {
  /** Repairs made (a job left waiting for capacity is not one). */
  actions: Record<Exclude<ReconcileAction["kind"], "wait">, number>;
  queued: number;
  /** Repositories whose queued jobs this pass listed (the backstop scan's slice). */
  scanned: number;
  alive: number;
  /**
   * The live runner jobs and their states, as this pass saw them from `lookedAt` on (undefined:
   * it could not look), and each class's warm pool target (idle runners over all its pools).
   */
  runners?: { board: Map<string, BoardEntry>; lookedAt: number; poolTargets: Record<string, number> };
  /** Runners cleaned up because their allocation was refused its credential (possible theft). */
  credentialsRefused: number;
  errors: string[];
}

export function emptyReport(): ReconcileReport {
  return {
    actions: { purge: 0, provision: 0, release: 0, clean: 0, "delete-secret": 0, abandon: 0, fill: 0 },
    queued: 0,
    scanned: 0,
    alive: 0,
    credentialsRefused: 0,
    errors: [],
  };
}
