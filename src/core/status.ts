import type { RunnerChild, World } from "./reconcile-plan.js";
import type { WaitingSummary } from "./waiting.js";

// What the operators' status page (/status, /status.json) and `nomad-gha-dispatcher status` show:
// one plain object, made by the shell from what the service already knows, rendered here.

export type RunnerState = "starting" | "idle" | "busy";

export interface Check {
  ok: boolean;
  detail?: string;
}

/** One rate-limit budget (same shape as the GitHub adapter's). */
export interface BudgetView {
  key: string;
  pointsPerMinute: number;
  available: number;
  waiting: number;
  pausedSeconds: number;
}

export interface Failure {
  at: number;
  /** What was being done: dispatch, reconcile, webhook. */
  source: string;
  /** Which system failed, when known. */
  dependency?: string;
  message: string;
  /** The same failure in a row this many times (the last one's time is `at`). */
  count?: number;
}

export interface RunnerCounts {
  byState: Record<RunnerState, number>;
  /** The same per runner class (a class with no live runner is absent), and each class's warm pool target. */
  byClass: Record<string, Record<RunnerState, number> & { poolTarget: number }>;
  /** When the reconciler last looked (ms since epoch); undefined before its first pass. */
  asOf?: number;
}

export interface StatusReport {
  generatedAt: number;
  ready: boolean;
  health: Record<string, Check>;
  waiting: WaitingSummary;
  runners: RunnerCounts;
  budgets: BudgetView[];
  failures: Failure[];
}

/** A live runner as the status page counts it. */
export interface BoardEntry {
  cls: string;
  state: RunnerState;
}

/**
 * The state of each live runner job, by runner name: busy (GitHub says it runs a job), idle
 * (registered and online, waiting for one), starting (Nomad placing it, the runner configuring or
 * connecting).
 */
export function runnerStates(world: Pick<World, "children" | "busyRunners" | "registered">): Map<string, BoardEntry> {
  const online = new Set(world.registered.filter((r) => r.online).map((r) => r.name));
  const board = new Map<string, BoardEntry>();
  for (const child of world.children.filter((c: RunnerChild) => c.alive)) {
    const state = world.busyRunners.has(child.runnerName) ? "busy" : online.has(child.runnerName) ? "idle" : "starting";
    board.set(child.runnerName, { cls: child.cls, state });
  }
  return board;
}

/**
 * What happened to a runner since the reconciler last looked, as the service hears it: its
 * dispatch, the `in_progress` event of the job it took, the `completed` event of that job.
 * (Coming online has no event: a runner counts as starting until the next pass sees it idle.)
 */
export type RunnerEvent = { at: number; runner: string } & ({ kind: "dispatched"; cls: string } | { kind: "busy"; cls: string } | { kind: "gone" });

/**
 * The runners now: the last pass's board (taken at `asOf`), with every event heard since the
 * pass began to look applied in order, so the counts move within seconds, not once a pass.
 */
export function currentBoard(snapshot: ReadonlyMap<string, BoardEntry>, asOf: number, events: readonly RunnerEvent[]): Map<string, BoardEntry> {
  const board = new Map(snapshot);
  for (const event of events) {
    if (event.at < asOf) continue;
    if (event.kind === "gone") board.delete(event.runner);
    else if (event.kind === "busy") board.set(event.runner, { cls: event.cls, state: "busy" });
    // A repeated dispatch of a runner the board has (a duplicate) changes nothing.
    else if (!board.has(event.runner)) board.set(event.runner, { cls: event.cls, state: "starting" });
  }
  return board;
}

/** Counts by state, in total and per class (with each class's pool target, 0 without a pool). */
export function countRunners(board: ReadonlyMap<string, BoardEntry>, poolTargets: Readonly<Record<string, number>> = {}): Omit<RunnerCounts, "asOf"> {
  const empty = () => ({ starting: 0, idle: 0, busy: 0 });
  const byState: Record<RunnerState, number> = empty();
  const byClass: RunnerCounts["byClass"] = {};
  for (const [cls, poolTarget] of Object.entries(poolTargets)) byClass[cls] = { ...empty(), poolTarget };
  for (const { cls, state } of board.values()) {
    byState[state] += 1;
    byClass[cls] ??= { ...empty(), poolTarget: 0 };
    byClass[cls][state] += 1;
  }
  return { byState, byClass };
}

/** GitHub's health, from what the service saw: recent failures and paused budgets. */
export function githubHealth(failures: readonly Failure[], budgets: readonly BudgetView[], now: number, windowMs = 60_000): Check {
  const paused = budgets.filter((b) => b.pausedSeconds > 0);
  if (paused.length > 0) return { ok: false, detail: `rate-limited: ${paused.map((b) => `${b.key} paused ${b.pausedSeconds} s`).join(", ")}` };
  const recent = failures.filter((f) => f.dependency === "github" && now - f.at < windowMs);
  if (recent.length > 0) return { ok: false, detail: `${recent.length} failure(s) in the last minute: ${recent[recent.length - 1]!.message}` };
  return {
    ok: true,
    detail: budgets.length === 0 ? "no request yet" : budgets.map((b) => `${b.key} ${b.available}/${b.pointsPerMinute} points free`).join(", "),
  };
}

/** The last `capacity` failures, newest last. */
export class RecentFailures {
  private readonly items: Failure[] = [];

  constructor(private readonly capacity = 20) {}

  add(failure: Failure): void {
    const message = failure.message.slice(0, 500);
    // A failure repeated by every retry or pass is one line with a count, not the whole list.
    const last = this.items[this.items.length - 1];
    if (last && last.source === failure.source && last.dependency === failure.dependency && last.message === message) {
      last.at = failure.at;
      last.count = (last.count ?? 1) + 1;
      return;
    }
    this.items.push({ ...failure, message });
    if (this.items.length > this.capacity) this.items.shift();
  }

  list(): Failure[] {
    return [...this.items];
  }
}

const ago = (now: number, at: number) => {
  const s = Math.max(0, Math.round((now - at) / 1000));
  return s < 120 ? `${s}s ago` : `${Math.round(s / 60)}m ago`;
};

/** The report for a terminal (`nomad-gha-dispatcher status`). */
export function renderStatusText(r: StatusReport): string {
  const lines: string[] = [];
  lines.push(`nomad-gha-dispatcher: ${r.ready ? "ready" : "NOT READY"} (as of ${new Date(r.generatedAt).toISOString()})`);
  lines.push("");
  lines.push("health");
  for (const [name, check] of Object.entries(r.health)) lines.push(`  ${check.ok ? "ok  " : "FAIL"} ${name.padEnd(7)} ${check.detail ?? ""}`.trimEnd());
  lines.push("");
  const s = r.runners.byState;
  const asOf = r.runners.asOf === undefined ? "no reconcile pass yet" : `as of ${ago(r.generatedAt, r.runners.asOf)}`;
  lines.push(`runners: ${s.starting} starting, ${s.idle} idle, ${s.busy} busy (${asOf})`);
  for (const [cls, c] of Object.entries(r.runners.byClass)) {
    const pool = c.poolTarget > 0 ? `, warm pool ${c.idle}/${c.poolTarget} idle` : "";
    lines.push(`  ${cls}: ${c.starting} starting, ${c.idle} idle, ${c.busy} busy${pool}`);
  }
  lines.push("");
  const reasons = Object.entries(r.waiting.byReason).map(([reason, n]) => `${n} ${reason}`);
  lines.push(`waiting for a runner: ${r.waiting.count}${reasons.length > 0 ? ` (${reasons.join(", ")})` : ""}`);
  for (const j of r.waiting.jobs) {
    lines.push(`  job ${j.job}  ${j.repo}  ${j.reason} for ${j.reasonSeconds}s, queued ${j.waitingSeconds}s ago`);
  }
  lines.push("");
  lines.push("GitHub budget");
  if (r.budgets.length === 0) lines.push("  (no request yet)");
  for (const b of r.budgets) {
    const paused = b.pausedSeconds > 0 ? `, PAUSED ${b.pausedSeconds}s` : "";
    lines.push(`  ${b.key}: ${b.available}/${b.pointsPerMinute} points free this minute, ${b.waiting} waiting${paused}`);
  }
  lines.push("");
  lines.push(`last failures${r.failures.length === 0 ? ": none" : ""}`);
  for (const f of [...r.failures].reverse()) {
    const times = f.count && f.count > 1 ? ` (x${f.count})` : "";
    lines.push(`  ${ago(r.generatedAt, f.at)}  ${f.source}${f.dependency ? `/${f.dependency}` : ""}: ${f.message}${times}`);
  }
  return `${lines.join("\n")}\n`;
}
