import { errorMessage } from "../core/errors.js";
import type { RunnerTarget } from "../core/job-event.js";
import type { ReconcileAction } from "../core/reconcile-plan.js";
import type { RunnerDeps } from "../ports/index.js";
import type { Provisioner } from "../provisioning/provisioner.js";
import { deleteRunnerSecret, purgeRunnerJob, releaseRunner } from "../teardown/release.js";
import type { Targets } from "./discovery.js";
import { forEachLimited } from "./for-each-limited.js";
import type { ReconcileReport } from "./report.js";

/** How the reconciler asks for a runner: the same entry point as the webhooks (the Provisioner). */
export type RunnerDemand = Pick<Provisioner, "needsRunner" | "waitsForCapacity" | "stillQueued" | "fillPool">;

/** Clean-up first (it frees capacity and idempotency tokens), then purges, then dispatches: jobs' first, then pools'. */
const PHASES: Array<Exclude<ReconcileAction["kind"], "wait">[]> = [["clean", "abandon", "release", "delete-secret"], ["purge"], ["provision"], ["fill"]];

/** Applies a plan, counting what was done and what failed in `report`; one failure stops nothing. */
export async function applyPlan(
  deps: Pick<RunnerDeps, "github" | "nomad" | "vault" | "log" | "settings">,
  demand: RunnerDemand,
  actions: ReconcileAction[],
  targets: Targets,
  report: ReconcileReport,
): Promise<void> {
  const targetOf = (repo: string): RunnerTarget => {
    const known = targets.get(repo.toLowerCase());
    if (known) return known;
    const [owner = "", name = ""] = repo.split("/");
    // An organisation's pool (`owner/*`) registers at the organisation: any of its repositories' installation will do.
    const installationId = [...targets.values()].find((t) => t.owner.toLowerCase() === owner.toLowerCase())?.installationId;
    return { owner, repo: name, installationId };
  };
  for (const action of actions) if (action.kind === "wait") demand.waitsForCapacity(action.job, action.runnerName, action.cap);
  for (const kinds of PHASES) {
    const batch = actions.filter((a): a is Exclude<ReconcileAction, { kind: "wait" }> => a.kind !== "wait" && kinds.includes(a.kind));
    await forEachLimited(batch, 8, async (action) => {
      try {
        await apply(deps, demand, action, targetOf, report);
        report.actions[action.kind] += 1;
      } catch (err) {
        report.errors.push(`${action.kind} ${"runnerName" in action ? action.runnerName : ""}: ${errorMessage(err)}`);
      }
    });
  }
}

async function apply(
  deps: Pick<RunnerDeps, "github" | "nomad" | "vault" | "log" | "settings">,
  demand: RunnerDemand,
  action: Exclude<ReconcileAction, { kind: "wait" }>,
  targetOf: (repo: string) => RunnerTarget,
  report: ReconcileReport,
): Promise<void> {
  switch (action.kind) {
    case "clean":
      // Another replica or a delivery may have provisioned this runner again since this pass
      // looked: then the name's registration and credential are the new runner's (teardown checks).
      if ((await releaseRunner(deps, targetOf(action.repo), action.runnerName, "leftovers")) === "credential-refused") report.credentialsRefused += 1;
      return;
    case "abandon":
    case "release":
      await releaseRunner(deps, targetOf(action.repo), action.runnerName, "unneeded");
      return;
    case "delete-secret":
      await deleteRunnerSecret(deps, action.runnerName);
      return;
    case "purge":
      await purgeRunnerJob(deps, action.childId);
      return;
    case "provision": {
      const job = { ...action.job, installationId: action.job.installationId ?? targetOf(`${action.job.owner}/${action.job.repo}`).installationId };
      // Capacity is in the plan; the dispatch queue provisions it and reports the outcome.
      const need = await demand.needsRunner(job, action.runnerName, { planned: true });
      if (need.status === "queue-full") throw new Error(`dispatch queue full or closed (${need.waiting} waiting); next pass`);
      return;
    }
    case "fill":
      await demand.fillPool(targetOf(action.repo), action.repo, action.runnerName);
      return;
  }
}
