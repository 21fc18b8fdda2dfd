import type { NomadJob } from "./nomad/types.js";

/**
 * GitHub stops assigning jobs to a self-hosted runner that is more than 30 days behind a newer
 * runner release (GitHub Docs, "Self-hosted runners reference", runner software updates;
 * github.com/orgs/community/discussions/194762 on the enforcement). Runners started from an image
 * cannot update themselves for good (each job starts from the image again), so the image has to.
 */
export const RUNNER_UPDATE_WINDOW_DAYS = 30;

const DAY_MS = 24 * 60 * 60 * 1000;

/** A runner version, as in its release tag (v2.336.0) or an image tag (2.336.0). */
export interface RunnerVersion {
  major: number;
  minor: number;
  patch: number;
}

/** "2.336.0", "v2.336.0", "2.336.0-ubuntu-22.04" -> 2.336.0; anything else (latest, 2.3) -> undefined. */
export function parseRunnerVersion(text: string): RunnerVersion | undefined {
  const m = /^v?(\d+)\.(\d+)\.(\d+)(?:$|[-+_.])/.exec(text.trim());
  return m ? { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]) } : undefined;
}

export function formatRunnerVersion(v: RunnerVersion): string {
  return `${v.major}.${v.minor}.${v.patch}`;
}

/** Negative when `a` is older than `b`, 0 when equal, positive when newer. */
export function compareRunnerVersions(a: RunnerVersion, b: RunnerVersion): number {
  return a.major - b.major || a.minor - b.minor || a.patch - b.patch;
}

/**
 * The tag of a container image reference, if it has one: `registry:5000/org/name:tag@sha256:...`
 * has the tag `tag`; a reference by digest only, or by name only, has none.
 */
export function imageTag(image: string): string | undefined {
  const withoutDigest = image.split("@")[0] ?? "";
  const lastSegment = withoutDigest.slice(withoutDigest.lastIndexOf("/") + 1);
  const colon = lastSegment.indexOf(":");
  return colon === -1 ? undefined : lastSegment.slice(colon + 1) || undefined;
}

/**
 * The image the runner itself runs in: the runner job's main task (the one without a lifecycle
 * hook; prestart and poststop tasks may use other images). undefined when it has none.
 */
export function runnerImageOf(job: NomadJob): string | undefined {
  for (const group of job.TaskGroups ?? []) {
    for (const task of group.Tasks ?? []) {
      if (task.Lifecycle) continue;
      const image = task.Config?.["image"];
      if (typeof image === "string" && image.trim() !== "") return image.trim();
    }
  }
  return undefined;
}

/** How an image's runner version stands against the newest release. */
export type Freshness =
  | { current: true }
  | {
      current: false;
      /** When GitHub stops assigning jobs to it at the latest: 30 days after the newest release. */
      refusedBy: Date | undefined;
      /** That date has passed: GitHub may refuse it already. */
      overdue: boolean;
    };

/**
 * Compares the image's runner version with the newest release. The deadline is counted from the
 * newest release; an older release that was already newer than the image started the 30 days
 * earlier, so the real deadline may come sooner, never later.
 */
export function runnerFreshness(image: RunnerVersion, latest: RunnerVersion, latestPublishedAt: string | undefined, now: Date): Freshness {
  if (compareRunnerVersions(image, latest) >= 0) return { current: true };
  const published = latestPublishedAt === undefined ? Number.NaN : Date.parse(latestPublishedAt);
  if (!Number.isFinite(published)) return { current: false, refusedBy: undefined, overdue: false };
  const refusedBy = new Date(published + RUNNER_UPDATE_WINDOW_DAYS * DAY_MS);
  return { current: false, refusedBy, overdue: refusedBy.getTime() <= now.getTime() };
}
