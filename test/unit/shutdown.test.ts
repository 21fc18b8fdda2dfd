import { Writable } from "node:stream";
import { describe, expect, it, vi } from "vitest";
import { createLogger } from "../../src/log.js";
import { SHUTDOWN_BUDGET_MS, SHUTDOWN_MARGIN_MS, type ShutdownBudget, type ShutdownParts, shutDown, shutdownBudgetTotalMs } from "../../src/shutdown.js";

const SHORT: ShutdownBudget = { tunnel: 40, webhooks: 40, dispatchQueue: 40, reconciler: 40, metrics: 40 };
const never = () => new Promise<void>(() => {});

/** Parts that record what was done to them, in order; `hang` lists the ones that never finish. */
function parts(hang: Array<"tunnel" | "listener" | "webhooks" | "dispatchQueue" | "reconciler" | "metrics"> = []) {
  const events: string[] = [];
  const warnings: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split("\n").filter(Boolean)) warnings.push(String((JSON.parse(line) as { msg: string }).msg));
      done();
    },
  });
  const finish = (name: (typeof hang)[number], what: string) => {
    events.push(`${what} started`);
    if (hang.includes(name)) return never();
    return new Promise<void>((resolve) =>
      setTimeout(() => {
        events.push(`${what} done`);
        resolve();
      }, 5),
    );
  };
  const shutdown: ShutdownParts = {
    log: createLogger({ level: "warn", destination }),
    tunnel: { stop: () => finish("tunnel", "tunnel stop") },
    listener: { close: () => finish("listener", "listener close"), forceClose: () => events.push("listener force-closed") },
    webhooks: { drain: () => finish("webhooks", "webhooks drain") },
    dispatchQueue: {
      close: (ms) => {
        events.push(`queue close ${ms}`);
        return finish("dispatchQueue", "queue");
      },
    },
    github: { close: () => events.push("github closed") },
    reconciler: { stop: () => finish("reconciler", "reconciler stop") },
    metrics: { close: () => finish("metrics", "metrics close"), forceClose: () => events.push("metrics force-closed") },
  };
  return { shutdown, events, warnings };
}

describe("shutDown", () => {
  it("stops the tunnel first, with the listener still serving, then drains webhooks, then the dispatch queue", async () => {
    const { shutdown, events } = parts();
    await shutDown(shutdown, SHORT);
    expect(events[0]).toBe("reconciler stop started"); // no pass starts during the shutdown
    const at = (e: string) => events.indexOf(e);
    // Requests in flight through cloudflared during its grace period still reach the listener.
    expect(at("tunnel stop done")).toBeLessThan(at("listener close started"));
    expect(at("webhooks drain done")).toBeLessThan(at("queue close 40"));
    expect(at("listener close done")).toBeLessThan(at("queue close 40"));
    expect(at("queue close 40")).toBeLessThan(at("github closed"));
    expect(at("queue done")).toBeLessThan(at("metrics close started"));
    expect(events).not.toContain("listener force-closed");
  });

  it("keeps to its budget when every part hangs, cutting each step short and saying so", async () => {
    const { shutdown, events, warnings } = parts(["tunnel", "listener", "webhooks", "dispatchQueue", "reconciler", "metrics"]);
    // On a clock of its own: the budget is the promise, not how fast a shared machine runs.
    vi.useFakeTimers();
    let finished = false;
    const done = shutDown(shutdown, SHORT).then(() => {
      finished = true;
    });
    await vi.advanceTimersByTimeAsync(5 * 40);
    vi.useRealTimers();
    expect(finished).toBe(true);
    await done;
    expect(events).toContain("listener force-closed");
    expect(events).toContain("metrics force-closed");
    expect(events).toContain("github closed");
    expect(warnings).toEqual([
      "shutdown: could not stop the tunnel within its budget; going on",
      "shutdown: could not finish the webhooks in flight within its budget; going on",
      "shutdown: could not finish the dispatches started within its budget; going on",
      "shutdown: could not stop the reconciler within its budget; going on",
      "shutdown: could not close the metrics listener within its budget; going on",
    ]);
  });

  it("goes on past a step that fails", async () => {
    const { shutdown, events, warnings } = parts();
    shutdown.tunnel = { stop: () => Promise.reject(new Error("cloudflared: no such process")) };
    await shutDown(shutdown, SHORT);
    expect(warnings).toEqual(["shutdown: could not stop the tunnel; going on"]);
    expect(events).toContain("queue done");
  });

  it("fits Nomad's default max_kill_timeout of 30 s with its margin", () => {
    expect(shutdownBudgetTotalMs() + SHUTDOWN_MARGIN_MS).toBeLessThanOrEqual(30_000);
    // The tunnel's share covers cloudflared's grace period (10 s) and the wait for it to exit.
    expect(SHUTDOWN_BUDGET_MS.tunnel).toBeGreaterThan(10_000);
  });
});
