import { describe, expect, it } from "vitest";
import type { RunnerChild } from "../../src/core/reconcile-plan.js";
import { countRunners, currentBoard, githubHealth, RecentFailures, renderStatusText, runnerStates, type StatusReport } from "../../src/core/status.js";
import { renderStatusPage } from "../../src/http/status-page.js";
import { resultLabel } from "../../src/metrics.js";
import { RunnerBoard } from "../../src/runner-board.js";
import { defaultStatusUrl } from "../../src/status-command.js";

// Issue 15 (2): the operators' status page and `status` command, over one plain report.

const NOW = Date.parse("2026-12-02T12:00:00Z");
const child = (name: string, alive = true, cls = "default"): RunnerChild => ({
  id: `c-${name}`,
  runnerName: name,
  jobId: 1,
  repo: "acme/app",
  cls,
  alive,
  changedAt: NOW,
});

function report(overrides: Partial<StatusReport> = {}): StatusReport {
  return {
    generatedAt: NOW,
    ready: false,
    health: {
      nomad: { ok: true, detail: "leader 10.0.0.1:4647" },
      vault: { ok: false, detail: "sealed" },
      github: { ok: true, detail: "pat 880/900 points free" },
    },
    waiting: {
      count: 1,
      byReason: { vault: 1 },
      jobs: [{ job: 42, repo: "acme/app", runner: "r-42", reason: "vault", waitingSeconds: 75, reasonSeconds: 70 }],
    },
    runners: {
      byState: { starting: 1, idle: 2, busy: 3 },
      byClass: { small: { starting: 1, idle: 1, busy: 3, poolTarget: 0 }, large: { starting: 0, idle: 1, busy: 0, poolTarget: 2 } },
      asOf: NOW - 20_000,
    },
    budgets: [{ key: "pat", pointsPerMinute: 900, available: 880, waiting: 0, pausedSeconds: 0 }],
    failures: [{ at: NOW - 5_000, source: "dispatch", dependency: "vault", message: "Vault PUT secret/data/x: 503 Vault is sealed" }],
    ...overrides,
  };
}

function emptyReport(): StatusReport {
  return report({ waiting: { count: 0, byReason: {}, jobs: [] }, failures: [] });
}

describe("runnerStates", () => {
  it("counts live runner jobs as busy (GitHub says so), idle (online) or starting (not online yet); dead ones not at all", () => {
    const world = {
      children: [child("a"), child("b"), child("c"), child("d", false)],
      busyRunners: new Set(["a"]),
      registered: [
        { id: 1, name: "a", repo: "acme/app", busy: true, online: true },
        { id: 2, name: "b", repo: "acme/app", busy: false, online: true },
        { id: 3, name: "c", repo: "acme/app", busy: false, online: false },
        { id: 4, name: "d", repo: "acme/app", busy: false, online: true },
      ],
    };
    expect(countRunners(runnerStates(world)).byState).toEqual({ busy: 1, idle: 1, starting: 1 });
  });

  it("counts per class, every class with a pool listed even with no runner, with its pool target", () => {
    const world = { children: [child("a", true, "small"), child("b", true, "large")], busyRunners: new Set(["a"]), registered: [] };
    expect(countRunners(runnerStates(world), { large: 2, gpu: 1 }).byClass).toEqual({
      small: { starting: 0, idle: 0, busy: 1, poolTarget: 0 },
      large: { starting: 1, idle: 0, busy: 0, poolTarget: 2 },
      gpu: { starting: 0, idle: 0, busy: 0, poolTarget: 1 },
    });
  });
});

describe("currentBoard: the runners between passes", () => {
  const pass = new Map([
    ["r-1", { cls: "small", state: "idle" as const }],
    ["r-2", { cls: "small", state: "starting" as const }],
  ]);
  it("moves the last pass's look on by what was heard since it began to look", () => {
    const board = currentBoard(pass, NOW, [
      { at: NOW + 1, kind: "busy", runner: "r-1", cls: "small" },
      { at: NOW + 2, kind: "dispatched", runner: "r-3", cls: "large" },
      { at: NOW + 3, kind: "gone", runner: "r-2" },
    ]);
    expect(countRunners(board).byState).toEqual({ starting: 1, idle: 0, busy: 1 });
    expect(countRunners(board).byClass.large).toEqual({ starting: 1, idle: 0, busy: 0, poolTarget: 0 });
  });

  it("ignores what the pass already saw, and a repeated dispatch of a runner it has", () => {
    const board = currentBoard(pass, NOW, [
      { at: NOW - 1, kind: "gone", runner: "r-1" },
      { at: NOW + 1, kind: "dispatched", runner: "r-1", cls: "small" },
    ]);
    expect(countRunners(board).byState).toEqual({ starting: 1, idle: 1, busy: 0 });
  });
});

describe("githubHealth", () => {
  const budgets = [{ key: "pat", pointsPerMinute: 900, available: 700, waiting: 2, pausedSeconds: 0 }];
  it("is failing while a budget is paused by GitHub, or a GitHub call failed in the last minute", () => {
    expect(githubHealth([], [{ ...budgets[0]!, pausedSeconds: 30 }], NOW)).toEqual({ ok: false, detail: "rate-limited: pat paused 30 s" });
    const failure = { at: NOW - 10_000, source: "dispatch", dependency: "github", message: "GitHub create JIT runner: 502" };
    expect(githubHealth([failure], budgets, NOW)).toMatchObject({ ok: false, detail: expect.stringContaining("502") });
    expect(githubHealth([{ ...failure, at: NOW - 61_000 }], budgets, NOW)).toEqual({ ok: true, detail: "pat 700/900 points free" });
    expect(githubHealth([{ ...failure, dependency: "vault" }], budgets, NOW).ok).toBe(true);
  });
});

describe("RecentFailures", () => {
  it("keeps the last N, newest last, with long messages cut", () => {
    const recent = new RecentFailures(2);
    for (let i = 0; i < 3; i++) recent.add({ at: i, source: "reconcile", message: `m${i}${"x".repeat(i === 2 ? 1000 : 0)}` });
    expect(recent.list().map((f) => f.at)).toEqual([1, 2]);
    expect(recent.list()[1]!.message).toHaveLength(500);
  });

  it("counts a failure repeated in a row instead of listing it again", () => {
    const recent = new RecentFailures();
    for (let i = 0; i < 5; i++) recent.add({ at: i, source: "reconcile", message: "Vault list runner secrets: 503 Vault is sealed" });
    recent.add({ at: 9, source: "dispatch", dependency: "vault", message: "Vault write runner secret: 503 Vault is sealed" });
    expect(recent.list()).toEqual([
      { at: 4, source: "reconcile", message: "Vault list runner secrets: 503 Vault is sealed", count: 5 },
      { at: 9, source: "dispatch", dependency: "vault", message: "Vault write runner secret: 503 Vault is sealed" },
    ]);
    expect(renderStatusText({ ...emptyReport(), failures: recent.list() })).toContain("reconcile: Vault list runner secrets: 503 Vault is sealed (x5)");
  });
});

describe("renderStatusText", () => {
  it("says at a glance what is wrong and what waits for what", () => {
    const text = renderStatusText(report());
    expect(text).toContain("nomad-gha-dispatcher: NOT READY");
    expect(text).toContain("FAIL vault   sealed");
    expect(text).toContain("runners: 1 starting, 2 idle, 3 busy (as of 20s ago)");
    expect(text).toContain("waiting for a runner: 1 (1 vault)");
    expect(text).toContain("job 42  acme/app  vault for 70s, queued 75s ago");
    expect(text).toContain("pat: 880/900 points free this minute, 0 waiting");
    expect(text).toContain("5s ago  dispatch/vault: Vault PUT secret/data/x: 503 Vault is sealed");
  });
});

describe("renderStatusPage", () => {
  it("is one document with no script and no external asset, escaping what GitHub and the dependencies wrote", async () => {
    const hostile = report({
      failures: [{ at: NOW, source: "webhook", message: '<script>alert(1)</script><img src="https://evil.example/x">' }],
    });
    const page = String(await renderStatusPage(hostile));
    expect(page).toContain("<!doctype html>");
    expect(page).not.toMatch(/<script|<img|<link|\ssrc="|\shref="http|@import/i);
    expect(page).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
    expect(page).toContain('<span class="bad" id="ready">NOT READY</span>');
    expect(page).toMatch(/<td>42<\/td><td>acme\/app<\/td><td>vault<\/td>/);
  });

  it("says so when nothing waits and nothing failed", async () => {
    const page = String(await renderStatusPage(report({ ready: true, waiting: { count: 0, byReason: {}, jobs: [] }, failures: [] })));
    expect(page).toContain("None: every accepted job has a runner.");
    expect(page).toContain('id="ready">ready</span>');
  });
});

describe("defaultStatusUrl", () => {
  it("asks the operators' listener of a service with the same environment", () => {
    expect(defaultStatusUrl({})).toBe("http://127.0.0.1:9102/status.json");
    expect(defaultStatusUrl({ HOST: "0.0.0.0", METRICS_PORT: "9200" })).toBe("http://127.0.0.1:9200/status.json");
    expect(defaultStatusUrl({ HOST: "::1", METRICS_PORT: "off" })).toBe("http://[::1]:9102/status.json");
  });
});

describe("resultLabel", () => {
  it("keeps GitHub's conclusions and folds anything else into 'other' (bounded series)", () => {
    for (const c of ["success", "failure", "cancelled", "skipped", "timed_out", "neutral", "action_required"]) expect(resultLabel(c)).toBe(c);
    expect(resultLabel(null)).toBe("other");
    expect(resultLabel("<script>")).toBe("other");
  });
});

describe("RunnerBoard", () => {
  it("keeps each runner's last event only, forgets those a pass has seen, and stays bounded", () => {
    const board = new RunnerBoard({ small: 0 });
    board.passed(new Map(), NOW, { small: 0 });
    board.heard({ at: NOW + 1, kind: "dispatched", runner: "r-1", cls: "small" });
    board.heard({ at: NOW + 2, kind: "busy", runner: "r-1", cls: "small" });
    expect(board.counts().byClass.small).toEqual({ starting: 0, idle: 0, busy: 1, poolTarget: 0 });
    // The next pass looked after the events: its look is the truth.
    board.passed(new Map([["r-1", { cls: "small", state: "idle" as const }]]), NOW + 10, { small: 2 });
    expect(board.counts().byClass.small).toEqual({ starting: 0, idle: 1, busy: 0, poolTarget: 2 });
    for (let i = 0; i < 20_000; i++) board.heard({ at: NOW + 20 + i, kind: "busy", runner: `x-${i}`, cls: "small" });
    expect(board.counts().byState.busy).toBeLessThanOrEqual(20_000);
    expect(board.counts().byState.busy).toBeGreaterThanOrEqual(10_000);
  });
});
