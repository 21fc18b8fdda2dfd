import { RequestError } from "@octokit/request-error";
import { DependencyError, isNetworkError } from "../core/errors.js";

/** GitHub signals both primary and secondary rate limits with 403 or 429. */
export function toDependencyError(what: string, err: unknown): DependencyError {
  if (err instanceof DependencyError) return err;
  if (err instanceof RequestError) {
    const headers = err.response?.headers ?? {};
    const retryAfter = Number(headers["retry-after"] ?? NaN);
    const remaining = headers["x-ratelimit-remaining"];
    const reset = Number(headers["x-ratelimit-reset"] ?? NaN);
    const rateLimited = err.status === 429 || (err.status === 403 && (remaining === "0" || /rate limit/i.test(err.message)));
    const waitSeconds = Number.isFinite(retryAfter)
      ? retryAfter
      : rateLimited && Number.isFinite(reset)
        ? Math.max(1, reset - Math.floor(Date.now() / 1000))
        : undefined;
    const transient = rateLimited || err.status >= 500;
    return new DependencyError("github", `GitHub ${what}: ${err.status} ${err.message}`, err.status, transient, waitSeconds);
  }
  const message = err instanceof Error ? err.message : String(err);
  return new DependencyError("github", `GitHub ${what}: ${message}`, undefined, isNetworkError(err));
}

/** GitHub answered `status`: callers read some statuses as answers, not failures (404 gone, 409 exists). */
export function hasStatus(err: unknown, status: number): boolean {
  return err instanceof DependencyError && err.status === status;
}
