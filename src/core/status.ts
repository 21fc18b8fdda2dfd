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

/**
 * The state of each live runner job: busy (GitHub says it runs a job), idle (registered and
 * online, waiting for one), starting (Nomad placing it, the runner configuring or connecting).
 */
export function runnerStates(world: Pick<World, "children" | "busyRunners" | "registered">): Record<RunnerState, number> {
  const online = new Set(world.registered.filter((r) => r.online).map((r) => r.name));
  const counts: Record<RunnerState, number> = { starting: 0, idle: 0, busy: 0 };
  for (const child of world.children.filter((c: RunnerChild) => c.alive)) {
    if (world.busyRunners.has(child.runnerName)) counts.busy += 1;
    else if (online.has(child.runnerName)) counts.idle += 1;
    else counts.starting += 1;
  }
  return counts;
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
