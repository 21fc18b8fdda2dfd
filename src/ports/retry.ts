import { setTimeout } from "node:timers/promises";
import pRetry, { AbortError } from "p-retry";
import { DependencyError, isTransient } from "../core/errors.js";
import type { RetrySchedule } from "./index.js";

/**
 * Retries transient dependency failures with exponential backoff. Permanent failures, and rate
 * limits asking for a longer wait than our schedule allows, surface at once: the caller answers
 * the delivery with an error and the reconciler takes the job over later.
 */
export function withRetry<T>(fn: () => Promise<T>, schedule: RetrySchedule): Promise<T> {
  return pRetry(
    async () => {
      try {
        return await fn();
      } catch (err) {
        if (!isTransient(err)) throw new AbortError(err as Error);
        const wait = err instanceof DependencyError ? err.retryAfterSeconds : undefined;
        if (wait !== undefined && wait * 1000 > schedule.maxTimeoutMs) throw new AbortError(err as Error);
        throw err;
      }
    },
    {
      // Never call again before a rate limit's Retry-After has passed.
      onFailedAttempt: async (err) => {
        const wait = err instanceof DependencyError ? err.retryAfterSeconds : undefined;
        if (wait) await setTimeout(wait * 1000);
      },
      retries: schedule.retries,
      minTimeout: schedule.minTimeoutMs,
      maxTimeout: schedule.maxTimeoutMs,
      factor: 2,
      randomize: true,
    },
  );
}
