// Small statistics and formatting helpers for the bench.

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  // Nearest rank: the smallest value with at least p% of the samples at or below it.
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1]!;
}

export const median = (values: number[]) => percentile(values, 50);

export function fmt(n: number, digits = 1): string {
  if (!Number.isFinite(n)) return String(n);
  return n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export const mb = (bytes: number) => `${fmt(bytes / 1024 / 1024, 1)} MB`;

/** "ok" / "MISS" against a target. */
export function verdict(ok: boolean): string {
  return ok ? "ok" : "MISS";
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
