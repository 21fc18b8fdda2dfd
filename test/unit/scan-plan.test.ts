import { describe, expect, it } from "vitest";
import {
  affordableRepos,
  availablePoints,
  INITIAL_POINTS_PER_REPO,
  inWindow,
  nextCostEstimate,
  planScan,
  RECENT_ACTIVITY_MS,
  type ScanCandidate,
  scanOrder,
} from "../../src/core/scan-plan.js";

const NOW = 10_000_000;
const budget = (over: Partial<Parameters<typeof planScan>[1]> = {}) => ({ now: NOW, pointsPerMinute: 90, spent: [], pointsPerRepo: 3, ...over });
const repos = (n: number, extra: (i: number) => Partial<ScanCandidate> = () => ({})): ScanCandidate[] =>
  Array.from({ length: n }, (_, i) => ({ key: `o/r${i}`, ...extra(i) }));

describe("the scan's share of the budget", () => {
  it("counts only the last minute's reads", () => {
    const spent = [
      { at: NOW - 60_000, points: 50 },
      { at: NOW - 59_999, points: 20 },
      { at: NOW, points: 5 },
    ];
    expect(inWindow(spent, NOW)).toEqual(spent.slice(1));
    expect(availablePoints({ now: NOW, pointsPerMinute: 90, spent })).toBe(65);
  });

  it("is never negative when other reads overshot it", () => {
    expect(availablePoints({ now: NOW, pointsPerMinute: 90, spent: [{ at: NOW, points: 500 }] })).toBe(0);
  });

  it("affords whole repositories only", () => {
    expect(affordableRepos(budget())).toBe(30);
    expect(affordableRepos(budget({ spent: [{ at: NOW - 1, points: 88 }] }))).toBe(0);
    expect(affordableRepos(budget({ pointsPerRepo: 0 }))).toBe(90);
  });

  it("visits a repository dearer than the whole share once the window is empty, never twice a minute", () => {
    expect(affordableRepos(budget({ pointsPerMinute: 2 }))).toBe(1);
    expect(affordableRepos(budget({ pointsPerMinute: 2, spent: [{ at: NOW - 1_000, points: 1 }] }))).toBe(0);
    expect(affordableRepos(budget({ pointsPerMinute: 0 }))).toBe(0);
  });
});

describe("which repositories a pass visits", () => {
  it("at start (nothing spent) visits only what a minute's share affords: 1,000 repositories are no burst", () => {
    const chosen = planScan(repos(1_000), budget());
    expect(chosen).toHaveLength(30);
    expect(chosen[0]).toBe("o/r0");
  });

  it("visits nothing once the share is spent", () => {
    expect(planScan(repos(10), budget({ spent: [{ at: NOW - 10_000, points: 90 }] }))).toEqual([]);
  });

  it("goes round-robin: least recently listed first, never listed before all", () => {
    const candidates = [{ key: "a", scannedAt: NOW - 5_000 }, { key: "b", scannedAt: NOW - 50_000 }, { key: "c" }, { key: "d", scannedAt: NOW - 20_000 }];
    expect(planScan(candidates, budget({ pointsPerMinute: 9 }))).toEqual(["c", "b", "d"]);
  });

  it("successive passes cover every repository before visiting one again", () => {
    const candidates = repos(100);
    const visits = new Map<string, number>();
    let now = NOW;
    const spent: Array<{ at: number; points: number }> = [];
    for (let pass = 0; pass < 10; pass++) {
      const chosen = planScan(candidates, { now, pointsPerMinute: 30, spent: inWindow(spent, now), pointsPerRepo: 3 });
      for (const key of chosen) {
        visits.set(key, (visits.get(key) ?? 0) + 1);
        candidates.find((c) => c.key === key)!.scannedAt = now;
      }
      spent.push({ at: now, points: chosen.length * 3 });
      now += 60_000;
    }
    expect(visits.size).toBe(100);
    expect([...visits.values()].every((n) => n === 1)).toBe(true);
  });

  it("puts recently active repositories not listed since first, newest activity first", () => {
    const candidates = repos(10, () => ({ scannedAt: NOW - 1_000 }));
    candidates[7]!.activeAt = NOW - 100;
    candidates[3]!.activeAt = NOW - 10;
    expect(planScan(candidates, budget({ pointsPerMinute: 12 }))).toEqual(["o/r3", "o/r7", "o/r0", "o/r1"]);
  });

  it("does not prefer activity already covered by a listing, or activity older than an hour", () => {
    const candidates: ScanCandidate[] = [
      { key: "listed-since", activeAt: NOW - 5_000, scannedAt: NOW - 1_000 },
      { key: "old", activeAt: NOW - RECENT_ACTIVITY_MS - 1 },
      { key: "never", scannedAt: undefined },
    ];
    const { fresh, rest } = scanOrder(candidates, NOW);
    expect(fresh).toEqual([]);
    expect(rest.map((c) => c.key)).toEqual(["old", "never", "listed-since"]);
  });

  it("gives active repositories at most half the visits while others wait, all of them when none wait", () => {
    const active = repos(20, () => ({ activeAt: NOW - 1, scannedAt: NOW - 10_000 })).map((c, i) => ({ ...c, key: `active${i}` }));
    const idle = repos(20, () => ({ scannedAt: NOW - 5_000 }));
    const chosen = planScan([...idle, ...active], budget({ pointsPerMinute: 30 }));
    expect(chosen).toHaveLength(10);
    expect(chosen.filter((k) => k.startsWith("active"))).toHaveLength(5);
    expect(planScan(active, budget({ pointsPerMinute: 30 }))).toHaveLength(10);
    // Few waiting: active ones take the slots they leave.
    const two = planScan([...idle.slice(0, 2), ...active], budget({ pointsPerMinute: 30 }));
    expect(two.filter((k) => k.startsWith("active"))).toHaveLength(8);
  });

  it("never visits more repositories than there are", () => {
    expect(planScan(repos(3), budget())).toHaveLength(3);
    expect(planScan([], budget())).toEqual([]);
  });
});

describe("the cost estimate", () => {
  it("moves toward what repositories cost, a step at a time", () => {
    expect(nextCostEstimate(INITIAL_POINTS_PER_REPO, 20, 10)).toBeCloseTo(2.7);
    expect(nextCostEstimate(3, 300, 10)).toBeCloseTo(11.1);
  });

  it("never drops below one point, and ignores passes that listed nothing", () => {
    expect(nextCostEstimate(1, 0, 10)).toBe(1);
    expect(nextCostEstimate(4, 10, 0)).toBe(4);
    expect(nextCostEstimate(4, Number.NaN, 3)).toBe(4);
  });
});
