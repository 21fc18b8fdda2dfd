import { DependencyError, errorMessage } from "./core/errors.js";

export interface ReadinessCheck {
  ok: boolean;
  detail?: string;
}

/** Accepted credentials are asked again after this long (one point of GitHub's budget each time). */
export const CREDENTIALS_GOOD_FOR_MS = 5 * 60_000;
/** Rejected ones are asked again this often, so a fixed secret shows within a probe or two. */
export const CREDENTIALS_RECHECK_MS = 30_000;

/**
 * Whether GitHub accepts our credentials, for /readyz: a rejected PAT or App key (401, or a 403
 * that is no rate limit) makes the service unready with GitHub's reason, since no runner can be
 * had with it. GitHub being unreachable does not: webhooks are still taken, and wait.
 */
export function credentialsReadiness(err: unknown): ReadinessCheck {
  if (err === undefined) return { ok: true, detail: "credentials accepted" };
  if (err instanceof DependencyError && (err.status === 401 || (err.status === 403 && !err.transient))) {
    return { ok: false, detail: `GitHub rejected the credentials: ${errorMessage(err)}` };
  }
  return { ok: true, detail: `credentials not checked now: ${errorMessage(err)}` };
}

/** The check above with its answer kept (good ones longer than bad ones); one question at a time. */
export function gitHubCredentialsCheck(identity: () => Promise<unknown>, now: () => number = Date.now): () => Promise<ReadinessCheck> {
  let cached: { at: number; check: ReadinessCheck } | undefined;
  let asking: Promise<ReadinessCheck> | undefined;
  return () => {
    if (cached && now() - cached.at < (cached.check.ok ? CREDENTIALS_GOOD_FOR_MS : CREDENTIALS_RECHECK_MS)) return Promise.resolve(cached.check);
    asking ??= identity()
      .then(
        () => credentialsReadiness(undefined),
        (err: unknown) => credentialsReadiness(err ?? new Error("unknown error")),
      )
      .then((check) => {
        cached = { at: now(), check };
        asking = undefined;
        return check;
      });
    return asking;
  };
}
