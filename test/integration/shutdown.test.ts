// SIGTERM's drain as the service runs it (src/shutdown.ts): bounded however slow a dependency is,
// so Nomad's kill_timeout (jobs/dispatcher.nomad.hcl) is never what ends it.
import { describe, expect, it } from "vitest";
import { SHUTDOWN_BUDGET_MS } from "../../src/shutdown.js";
import { startTestWorld } from "../harness/test-world.js";
import { eventually } from "../harness/world.js";

const labels = ["self-hosted", "nomad"];

describe("shutdown", () => {
  it("ends within its budget while a webhook waits on a Nomad that does not answer", async () => {
    const w = await startTestWorld({ nomadSlots: 0 });
    const job = await w.github.queueJob({ repo: "octo-org/app", labels });
    await eventually(() => w.nomad.jobs().some((j) => j.Dispatched), "runner dispatched");
    // Nomad hangs from now on: releasing the runner of the job cancelled below waits on it.
    let nomadCalled = false;
    w.nomad.faults.intercept = () => {
      nomadCalled = true;
      return { delayMs: 60_000 };
    };
    void w.github.cancelJob(job.id);
    await eventually(() => nomadCalled, "the completed webhook's handler reached Nomad");

    const started = performance.now();
    await w.service.close();
    const took = performance.now() - started;
    expect(took).toBeGreaterThanOrEqual(SHUTDOWN_BUDGET_MS.webhooks - 100);
    expect(took).toBeLessThan(SHUTDOWN_BUDGET_MS.webhooks + 2_000);
    expect(w.logs.join("\n")).toContain("shutdown: could not finish the webhooks in flight within its budget");
    // close() is idempotent: the world's own close at the end of the test finds it done.
    await w.service.close();
  });
});
