import type { TaskExit } from "../../src/core/credential-refused.js";
import type { RunnerJobStub, RunnerJobs } from "../../src/ports/index.js";
import { Faults } from "./faults.js";

/** A dispatched child as the fake keeps it: what Nomad lists, plus what it was dispatched with. */
export interface FakeChild extends RunnerJobStub {
  Meta: Record<string, string>;
  token: string;
  /** How its tasks ended (what the allocations' "Terminated" events say). */
  exits?: TaskExit[];
}

/**
 * Nomad's parameterized runner job in memory: dispatch is idempotent per token while the child
 * exists (as Nomad's is), children are named `<parent>/dispatch-<prefix>-<n>-<hex>`.
 */
export class FakeRunnerJobs implements RunnerJobs {
  readonly children: FakeChild[] = [];
  readonly faults = new Faults("nomad");
  private seq = 0;

  async listJobs(prefix: string): Promise<RunnerJobStub[]> {
    this.faults.enter("listJobs");
    return this.children.filter((c) => c.ID.startsWith(prefix)).map((c) => ({ ...c }));
  }

  async dispatch(
    parentId: string,
    input: { meta: Record<string, string>; idempotencyToken: string; idPrefixTemplate?: string },
  ): Promise<{ dispatchedJobId: string; created: boolean }> {
    this.faults.enter("dispatch");
    const existing = this.children.find((c) => c.token === input.idempotencyToken);
    if (existing) return { dispatchedJobId: existing.ID, created: false };
    const id = `${parentId}/dispatch-${input.idPrefixTemplate ?? ""}-${1_700_000_000 + this.seq}-${(this.seq++).toString(16).padStart(8, "0")}`;
    this.children.push({ ID: id, Status: "running", Stop: false, Meta: input.meta, SubmitTime: Date.now() * 1e6, token: input.idempotencyToken });
    return { dispatchedJobId: id, created: true };
  }

  async stopJob(id: string, opts: { purge: boolean }): Promise<void> {
    this.faults.enter(opts.purge ? "purgeJob" : "stopJob");
    const i = this.children.findIndex((c) => c.ID === id);
    if (i < 0) return;
    if (opts.purge) this.children.splice(i, 1);
    else this.children[i] = { ...this.children[i]!, Stop: true, Status: "dead" };
  }

  async taskExits(id: string): Promise<TaskExit[]> {
    this.faults.enter("taskExits");
    return [...(this.children.find((c) => c.ID === id)?.exits ?? [])];
  }

  /** A child as another process (or an earlier run) left it. */
  add(child: Partial<FakeChild> & { ID: string; Meta: Record<string, string> }): void {
    this.children.push({ Status: "running", Stop: false, SubmitTime: Date.now() * 1e6, token: `preset-${child.ID}`, ...child });
  }
}
