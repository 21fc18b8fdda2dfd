import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Budget, burstLowerBoundMs, paceMs, pointsFor } from "../../src/github/budget.js";

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
    const { granted, releases } = track(budget, [
      [5, "credential"],
      [5, "credential"],
      [5, "credential"],
    ]);
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
    const { granted, releases } = track(budget, [
      [1, "poll"],
      [1, "poll"],
      [1, "poll"],
    ]);
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
    first.releases[0]!();
    const { granted } = track(budget, [
      [5, "credential"],
      [1, "poll"],
      [1, "cleanup"],
    ]);
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

  it("holds a request's points until 60 s after its response, as GitHub counts from arrival", async () => {
    const budget = new Budget({ pointsPerMinute: 5, maxConcurrent: 100 });
    const { granted, releases } = track(budget, [
      [5, "credential"],
      [5, "credential"],
    ]);
    await vi.advanceTimersByTimeAsync(0);
    expect(granted).toEqual([0]);
    // A slow request: 10 s in flight. Counting from when it was sent would free its points 10 s
    // before GitHub does, and the next request would be refused.
    await vi.advanceTimersByTimeAsync(10_000);
    releases[0]!();
    await vi.advanceTimersByTimeAsync(59_000);
    expect(granted).toEqual([0]);
    await vi.advanceTimersByTimeAsync(1_100);
    expect(granted).toEqual([0, 1]);
  });

  it("claims points synchronously, so concurrent decisions see each other's", async () => {
    const budget = new Budget({ pointsPerMinute: 20, maxConcurrent: 100 });
    const first = budget.claim(5, 6);
    const second = budget.claim(5, 6);
    const third = budget.claim(5, 6); // would leave 5 free, under keepFree
    expect([first, second, third].map(Boolean)).toEqual([true, true, false]);
    expect(budget.available()).toBe(10);
    // A claimed request does not pay again, and does not queue behind unpaid ones.
    const blocked = track(budget, [
      [5, "credential"],
      [5, "credential"],
      [5, "credential"],
    ]);
    await vi.advanceTimersByTimeAsync(0);
    expect(blocked.granted).toEqual([0, 1]);
    const release = await budget.acquire(5, "credential", first!);
    release();
    // Once something waits, nobody may claim ahead of it.
    expect(budget.claim(1)).toBeUndefined();
  });

  it("gives the points of an unused claim back", async () => {
    const budget = new Budget({ pointsPerMinute: 10, maxConcurrent: 100 });
    expect(budget.claim(10)).toBeDefined();
    expect(budget.available()).toBe(0);
    const { granted } = track(budget, [[5, "credential"]]);
    await vi.advanceTimersByTimeAsync(29_000);
    expect(granted).toEqual([]);
    await vi.advanceTimersByTimeAsync(1_100);
    expect(granted).toEqual([0]);
  });

  it("a claim is used once; a retry pays like any request", async () => {
    const budget = new Budget({ pointsPerMinute: 10, maxConcurrent: 100 });
    const claim = budget.claim(5)!;
    (await budget.acquire(5, "credential", claim))();
    (await budget.acquire(5, "credential", claim))();
    expect(budget.available()).toBe(0);
  });

  it("on close fails the requests waiting for budget and any that ask later", async () => {
    const budget = new Budget({ pointsPerMinute: 5, maxConcurrent: 100 });
    await budget.acquire(5, "credential");
    const waiting = budget.acquire(5, "credential");
    budget.close(new Error("shutting down"));
    await expect(waiting).rejects.toThrow("shutting down");
    await expect(budget.acquire(1, "poll")).rejects.toThrow("shutting down");
  });

  it("paces a spend to a share of the budget", () => {
    expect(paceMs(100, 90)).toBe(66_667);
    expect(paceMs(45, 90)).toBe(30_000);
    expect(paceMs(10, 0)).toBe(0);
  });

  it("computes the lower bound a burst needs under the budget", () => {
    const limits = { pointsPerMinute: 900, maxConcurrent: 100 };
    expect(burstLowerBoundMs(180, 5, limits)).toBe(0);
    expect(burstLowerBoundMs(181, 5, limits)).toBe(60_000);
    expect(burstLowerBoundMs(1000, 5, limits)).toBe(300_000);
  });
});
