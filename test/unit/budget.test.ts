import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Budget, burstLowerBoundMs, pointsFor } from "../../src/github/budget.js";

beforeEach(() => vi.useFakeTimers({ now: 1_000_000 }));
afterEach(() => vi.useRealTimers());

/** Resolves which acquisitions were granted so far, in order. */
function track(budget: Budget, requests: Array<[number, "credential" | "cleanup" | "poll"]>) {
  const granted: number[] = [];
  const releases: Array<() => void> = [];
  requests.forEach(([points, priority], i) =>
    budget.acquire(points, priority).then((release) => {
      granted.push(i);
      releases.push(release);
    }),
  );
  return { granted, releases };
}

describe("Budget", () => {
  it("charges GitHub's points: 1 for reads, 5 for writes", () => {
    expect(pointsFor("GET")).toBe(1);
    expect(pointsFor("head")).toBe(1);
    expect(pointsFor("POST")).toBe(5);
    expect(pointsFor("DELETE")).toBe(5);
  });

  it("grants within the points of a sliding minute, then waits for points to expire", async () => {
    const budget = new Budget({ pointsPerMinute: 10, maxConcurrent: 100 });
    const { granted, releases } = track(budget, [[5, "credential"], [5, "credential"], [5, "credential"]]);
    await vi.advanceTimersByTimeAsync(0);
    expect(granted).toEqual([0, 1]);
    releases.forEach((r) => r());
    await vi.advanceTimersByTimeAsync(59_000);
    expect(granted).toEqual([0, 1]);
    await vi.advanceTimersByTimeAsync(1_100);
    expect(granted).toEqual([0, 1, 2]);
    expect(budget.available()).toBe(5);
  });

  it("caps concurrent requests", async () => {
    const budget = new Budget({ pointsPerMinute: 1000, maxConcurrent: 2 });
    const { granted, releases } = track(budget, [[1, "poll"], [1, "poll"], [1, "poll"]]);
    await vi.advanceTimersByTimeAsync(0);
    expect(granted).toEqual([0, 1]);
    releases[0]!();
    releases[0]!(); // releasing twice must not free two slots
    await vi.advanceTimersByTimeAsync(0);
    expect(granted).toEqual([0, 1, 2]);
  });

  it("serves runner credentials before clean-up and polling", async () => {
    const budget = new Budget({ pointsPerMinute: 6, maxConcurrent: 100 });
    const first = track(budget, [[5, "poll"]]);
    await vi.advanceTimersByTimeAsync(0);
    expect(first.granted).toEqual([0]);
    const { granted } = track(budget, [[5, "credential"], [1, "poll"], [1, "cleanup"]]);
    await vi.advanceTimersByTimeAsync(0);
    // 1 point left: the waiting credential (5) comes first, so polling may not take the point.
    expect(granted).toEqual([]);
    await vi.advanceTimersByTimeAsync(60_100);
    expect(granted).toEqual([0, 2]); // 6 points: credential then clean-up; the poll waits its turn
  });

  it("sends nothing before a secondary limit's retry-after", async () => {
    const budget = new Budget({ pointsPerMinute: 1000, maxConcurrent: 100 });
    budget.pause(30);
    const { granted } = track(budget, [[1, "credential"]]);
    await vi.advanceTimersByTimeAsync(29_000);
    expect(granted).toEqual([]);
    await vi.advanceTimersByTimeAsync(1_100);
    expect(granted).toEqual([0]);
  });

  it("computes the lower bound a burst needs under the budget", () => {
    const limits = { pointsPerMinute: 900, maxConcurrent: 100 };
    expect(burstLowerBoundMs(180, 5, limits)).toBe(0);
    expect(burstLowerBoundMs(181, 5, limits)).toBe(60_000);
    expect(burstLowerBoundMs(1000, 5, limits)).toBe(300_000);
  });
});
