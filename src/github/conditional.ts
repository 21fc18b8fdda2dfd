import type { Octokit } from "@octokit/rest";
import type { Octokits } from "./auth.js";
import { hasStatus } from "./errors.js";
import type { RunnerTarget } from "./target.js";

/** Conditional listings remembered (validator + what was kept of the body), least recently used out. */
const CONDITIONAL_CACHE_ENTRIES = 2_048;

/**
 * GETs with If-None-Match when an earlier answer is remembered: a 304 reuses what was kept of
 * that answer (`keep`), so only the parts we use stay in memory. One cache for every listing, so
 * the bound holds for all of them together.
 */
export class ConditionalGets {
  private readonly remembered = new Map<string, { etag: string; value: unknown }>();

  constructor(private readonly octokits: Octokits) {}

  async get<D, V>(
    target: RunnerTarget,
    what: string,
    key: string,
    get: (o: Octokit, headers: Record<string, string>) => Promise<{ data: D; headers: { etag?: string } }>,
    keep: (data: D) => V,
  ): Promise<V> {
    const cached = this.remembered.get(key) as { etag: string; value: V } | undefined;
    try {
      const res = await this.octokits.call(target, what, (o) => get(o, cached ? { "if-none-match": cached.etag } : {}));
      const value = keep(res.data);
      this.remembered.delete(key);
      if (res.headers.etag) this.remember(key, { etag: res.headers.etag, value });
      return value;
    } catch (err) {
      if (!cached || !hasStatus(err, 304)) throw err;
      this.remember(key, cached);
      return cached.value;
    }
  }

  private remember(key: string, entry: { etag: string; value: unknown }): void {
    this.remembered.delete(key);
    this.remembered.set(key, entry);
    if (this.remembered.size > CONDITIONAL_CACHE_ENTRIES) this.remembered.delete(this.remembered.keys().next().value!);
  }
}
