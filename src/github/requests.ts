import { RequestError } from "@octokit/request-error";
import type { Octokit } from "@octokit/rest";
import { DependencyError } from "../core/errors.js";
import { Budget, type BudgetLimits, type Claim, GITHUB_SECONDARY_LIMITS, type Priority, pointsFor } from "./budget.js";

/**
 * The REST API version every request asks for (X-GitHub-Api-Version). Without it GitHub answers
 * with its default version, which moves when GitHub changes the default; with it, a request keeps
 * the shapes this code was written against (REST docs, "API Versions").
 */
export const GITHUB_API_VERSION = "2022-11-28";

export type ResponseHeaders = Record<string, string | number | undefined>;

/**
 * What every request goes through: one Budget per auth key (see authKey), made on first use,
 * and the hook that makes each request wait for it.
 */
/** One rate-limit budget (a token, an App, an installation) as of now. */
export interface BudgetUsage {
  key: string;
  pointsPerMinute: number;
  available: number;
  /** Requests waiting for points. */
  waiting: number;
  /** Seconds left of a pause GitHub asked for (secondary limit). */
  pausedSeconds: number;
}

export class Budgets {
  private readonly byKey = new Map<string, Budget>();
  private closed: DependencyError | undefined;
  private reads = 0;

  constructor(
    private readonly limits: BudgetLimits | undefined,
    private readonly onResponse: ((headers: ResponseHeaders) => void) | undefined,
  ) {}

  /** Points spent on reads (GETs) since start, all budgets. */
  get readPoints(): number {
    return this.reads;
  }

  /** Each budget in use: what the status page shows. */
  usage(): BudgetUsage[] {
    return [...this.byKey].map(([key, b]) => ({
      key,
      pointsPerMinute: b.pointsPerMinute,
      available: Math.max(0, b.available()),
      waiting: b.waiting(),
      pausedSeconds: Math.ceil(b.pausedForMs() / 1000),
    }));
  }

  get(key: string): Budget {
    let budget = this.byKey.get(key);
    if (!budget) {
      budget = new Budget(this.limits ?? GITHUB_SECONDARY_LIMITS);
      if (this.closed) budget.close(this.closed);
      this.byKey.set(key, budget);
    }
    return budget;
  }

  /**
   * Shutdown: requests waiting for rate-limit budget fail now rather than in up to a minute, and
   * so does any request made from now on.
   */
  close(): void {
    this.closed = new DependencyError("github", "shutting down: request not sent", undefined, false);
    for (const budget of this.byKey.values()) budget.close(this.closed);
  }

  /**
   * Every request carries the API version, waits for budget first, and a secondary-limit answer
   * pauses the whole budget until its retry-after: GitHub blocks integrations that keep pushing
   * past it.
   */
  throttle(octokit: Octokit, key: string): Octokit {
    const onResponse = this.onResponse;
    const budget = this.get(key);
    octokit.hook.wrap("request", async (request, options) => {
      // Here rather than per call: this hook sees every request of the instance, including the
      // installation-token requests the App auth strategy makes on its own.
      options.headers["x-github-api-version"] = GITHUB_API_VERSION;
      const points = pointsFor(options.method);
      if (points === 1) this.reads += points;
      const claim = (options.request as { budgetClaim?: Claim } | undefined)?.budgetClaim;
      const release = await budget.acquire(points, priorityOf(options.method, options.url), claim);
      try {
        const res = await request(options);
        onResponse?.(res.headers);
        return res;
      } catch (err) {
        const headers = err instanceof RequestError ? err.response?.headers : undefined;
        if (headers) onResponse?.(headers);
        const retryAfter = Number(headers?.["retry-after"]);
        if (err instanceof RequestError && (err.status === 403 || err.status === 429) && Number.isFinite(retryAfter)) {
          budget.pause(retryAfter);
        }
        throw err;
      } finally {
        release();
      }
    });
    return octokit;
  }
}

/**
 * Credentials first (a runner waits on them), then clean-up, then polling. A single job's look-up
 * (the replay check) goes with the credentials: the runner's credential waits on it.
 */
function priorityOf(method: string, url: string): Priority {
  if (/generate-jitconfig|registration-token|access_tokens|\/actions\/jobs\//.test(url)) return "credential";
  return method.toUpperCase() === "GET" ? "poll" : "cleanup";
}
