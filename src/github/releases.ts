import type { Octokits } from "./auth.js";
import { hasStatus } from "./errors.js";
import type { RunnerTarget } from "./target.js";

/** A release of the runner (actions/runner) as GitHub lists it. */
export interface RunnerRelease {
  /** e.g. "v2.336.0". */
  tag: string;
  /** ISO 8601; absent for a release never published. */
  publishedAt: string | undefined;
  url: string;
}

/**
 * The newest actions/runner release (`GET /repos/actions/runner/releases/latest`: the latest
 * that is neither a draft nor a prerelease), read through the budget of `via` (with App auth
 * any installation: the repository is public). undefined when GitHub has no such repository
 * (404, e.g. GitHub Enterprise Server without it).
 */
export async function latestRunnerRelease(octokits: Octokits, via: Pick<RunnerTarget, "installationId"> = {}): Promise<RunnerRelease | undefined> {
  const target = { owner: "actions", repo: "runner", installationId: via.installationId };
  try {
    const res = await octokits.call(target, "read the latest actions/runner release", (o) =>
      o.rest.repos.getLatestRelease({ owner: "actions", repo: "runner" }),
    );
    return { tag: res.data.tag_name, publishedAt: res.data.published_at ?? undefined, url: res.data.html_url };
  } catch (err) {
    if (hasStatus(err, 404)) return undefined;
    throw err;
  }
}
