import type { RunnerClassConfig } from "./config/runner-classes.js";
import type { Config } from "./config.js";
import { errorMessage } from "./core/errors.js";
import type { CheckOutcome } from "./doctor.js";
import type { GitHubClient } from "./github/client.js";
import type { NomadClient } from "./nomad/client.js";
import {
  formatRunnerVersion,
  imageTag,
  parseRunnerVersion,
  RUNNER_UPDATE_WINDOW_DAYS,
  type RunnerVersion,
  runnerFreshness,
  runnerImageOf,
} from "./runner-image.js";

export interface RunnerImageCheckDeps {
  nomad: Pick<NomadClient, "readJob">;
  github: Pick<GitHubClient, "latestRunnerRelease">;
  /** Who our GitHub credentials are (an App's installations give the budget to ask through). */
  identity: () => ReturnType<GitHubClient["identity"]>;
  now?: () => Date;
}

/**
 * doctor: is the runner image the registered runner job uses recent enough for GitHub to keep
 * assigning jobs to its runners? A warning, never a failure: runners work until the deadline, and
 * whenever the answer cannot be had (no version tag, no release to compare with) it says so.
 */
export async function checkRunnerImage(config: Config, cls: RunnerClassConfig, deps: RunnerImageCheckDeps): Promise<CheckOutcome> {
  const jobId = cls.job;
  let job;
  try {
    job = await deps.nomad.readJob(jobId);
  } catch (err) {
    return cannotTell(`cannot read Nomad job ${jobId}: ${errorMessage(err)}`);
  }
  if (!job) return { level: "ok", detail: `not checked: Nomad job ${jobId} is not registered yet` };

  const image = runnerImageOf(job);
  if (image === undefined) return cannotTell(`the main task of Nomad job ${jobId} names no image`);
  const tag = imageTag(image);
  const version = tag === undefined ? undefined : parseRunnerVersion(tag);
  if (!version) {
    return cannotTell(`${image} names no runner version (${tag === undefined ? "no tag" : `tag "${tag}"`})`, {
      fix: `pin the runner image to a version tag, e.g. ghcr.io/actions/actions-runner:<version>, with the runner job's \`image\` variable (${varsHint(config, cls)})`,
    });
  }

  let installationId: number | undefined;
  if (config.github.auth.kind === "app") {
    try {
      const id = await deps.identity();
      installationId = id.kind === "app" ? id.installations[0]?.id : undefined;
    } catch (err) {
      return cannotTell(`cannot ask GitHub for the newest runner release: ${errorMessage(err)}`);
    }
    if (installationId === undefined) return cannotTell("the GitHub App has no installation to ask GitHub for the newest runner release with");
  }
  let release;
  try {
    release = await deps.github.latestRunnerRelease({ installationId });
  } catch (err) {
    return cannotTell(`cannot ask GitHub for the newest runner release: ${errorMessage(err)}`);
  }
  if (!release) {
    return cannotTell(
      `GitHub at ${config.github.apiUrl} has no actions/runner releases (GitHub Enterprise Server?); runner ${formatRunnerVersion(version)} in ${image}`,
      {
        fix: "compare the image's runner version with the newest one your GitHub supports",
      },
    );
  }
  const latest = parseRunnerVersion(release.tag);
  if (!latest) return cannotTell(`the newest actions/runner release has an unexpected tag "${release.tag}"`);

  const freshness = runnerFreshness(version, latest, release.publishedAt, (deps.now ?? (() => new Date()))());
  if (freshness.current) return { level: "ok", detail: `${image}: runner ${formatRunnerVersion(version)}, the newest release` };
  const deadline =
    freshness.refusedBy === undefined
      ? `GitHub stops assigning jobs to runners ${RUNNER_UPDATE_WINDOW_DAYS} days after a newer release`
      : freshness.overdue
        ? `GitHub may already refuse to assign jobs to it (${RUNNER_UPDATE_WINDOW_DAYS} days after ${day(release.publishedAt)} ended on ${day(freshness.refusedBy.toISOString())})`
        : `GitHub stops assigning jobs to it by ${day(freshness.refusedBy.toISOString())} at the latest (${RUNNER_UPDATE_WINDOW_DAYS} days after a newer release)`;
  return {
    level: "warn",
    detail: `${image} runs runner ${formatRunnerVersion(version)}, older than the newest release ${release.tag} (${release.url}): ${deadline}`,
    fix: `bump the runner job's \`image\` variable, e.g. image = "${withVersion(image, tag ?? "", version, latest)}" (${varsHint(config, cls)})`,
  };
}

function cannotTell(why: string, extra: { fix?: string } = {}): CheckOutcome {
  return { level: "warn", detail: `cannot tell whether GitHub still assigns jobs to this runner image: ${why}`, ...extra };
}

/** Where the image variable is set, and how the change reaches Nomad. */
function varsHint(config: Config, cls: RunnerClassConfig): string {
  const where =
    // A class of RUNNER_CLASSES_FILE: its runner names carry its name.
    cls.runnerPrefix !== config.runner.namePrefix
      ? `in the job_vars of class ${cls.name} in RUNNER_CLASSES_FILE (under jobs/dispatcher.nomad.hcl: its variable runner_classes)`
      : cls.varsFile
        ? `in ${cls.varsFile} (under jobs/dispatcher.nomad.hcl: its variable runner_image, set in the vars file, then the job run again)`
        : "in a file named by NOMAD_RUNNER_JOB_VARS_FILE";
  return config.nomad.registerRunnerJob
    ? `${where}; the service registers the changed job when it starts`
    : `${where}, then \`nomad job run -var-file=<that file> jobs/github-runner.nomad.hcl\``;
}

/** The image with its tag's runner version replaced by `latest` (any suffix kept). */
function withVersion(image: string, tag: string, current: RunnerVersion, latest: RunnerVersion): string {
  const currentText = formatRunnerVersion(current);
  const at = tag.indexOf(currentText);
  if (at === -1) return image;
  const newTag = `${tag.slice(0, at)}${formatRunnerVersion(latest)}${tag.slice(at + currentText.length)}`;
  const digest = image.indexOf("@");
  const name = (digest === -1 ? image : image.slice(0, digest)).slice(0, -tag.length);
  return `${name}${newTag}`;
}

function day(iso: string | undefined): string {
  return (iso ?? "").slice(0, 10);
}
