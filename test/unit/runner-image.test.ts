import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { DependencyError } from "../../src/core/errors.js";
import { formatChecklist } from "../../src/doctor.js";
import { checkRunnerImage, type RunnerImageCheckDeps } from "../../src/doctor-runner-image.js";
import type { RunnerRelease } from "../../src/github/client.js";
import type { NomadJob } from "../../src/nomad/types.js";
import { imageTag, parseRunnerVersion, runnerFreshness, runnerImageOf } from "../../src/runner-image.js";

const NOW = new Date("2026-08-20T12:00:00Z");
const RELEASE: RunnerRelease = { tag: "v2.336.0", publishedAt: "2026-08-10T09:00:00Z", url: "https://github.com/actions/runner/releases/tag/v2.336.0" };

/** The runner job's shape as Nomad returns it: prestart, main and poststop tasks. */
function runnerJob(mainImage: string, sideImage = "curlimages/curl:8.9.1"): NomadJob {
  return {
    ID: "github-runner",
    TaskGroups: [
      {
        Name: "runner",
        Tasks: [
          { Name: "fetch-credential", Driver: "docker", Config: { image: sideImage }, Lifecycle: { Hook: "prestart" } },
          { Name: "runner", Driver: "docker", Config: { image: mainImage }, Lifecycle: null },
          { Name: "remove-runner", Driver: "docker", Config: { image: sideImage }, Lifecycle: { Hook: "poststop" } },
        ],
      },
    ],
  };
}

const baseEnv = { GITHUB_WEBHOOK_SECRET: "a-webhook-secret-long-enough", GITHUB_TOKEN: "ghp_unit", ALLOWED_OWNERS: "acme", VAULT_TOKEN: "hvs.unit" };
const patConfig = loadConfig(baseEnv);

function deps(job: NomadJob | undefined, release: RunnerRelease | undefined | Error, asked: Array<number | undefined> = []): RunnerImageCheckDeps {
  return {
    nomad: { readJob: async () => job },
    github: {
      latestRunnerRelease: async (via = {}) => {
        asked.push(via.installationId);
        if (release instanceof Error) throw release;
        return release;
      },
    },
    identity: async () => ({ kind: "app", slug: "app", installations: [{ id: 77, account: "octo-org", permissions: {} }] }),
    now: () => NOW,
  };
}

describe("runner image versions", () => {
  it("reads the version from the image tag, never from a digest or a floating tag", () => {
    expect(imageTag("ghcr.io/actions/actions-runner:2.336.0")).toBe("2.336.0");
    expect(imageTag("registry.example.com:5000/ci/runner:2.329.0-ubuntu@sha256:abc")).toBe("2.329.0-ubuntu");
    expect(imageTag("registry.example.com:5000/ci/runner")).toBeUndefined();
    expect(imageTag("ghcr.io/actions/actions-runner@sha256:abc")).toBeUndefined();
    expect(parseRunnerVersion("v2.336.0")).toEqual({ major: 2, minor: 336, patch: 0 });
    expect(parseRunnerVersion("2.329.0-ubuntu-22.04")).toEqual({ major: 2, minor: 329, patch: 0 });
    for (const tag of ["latest", "2.329", "ubuntu-2.329.0", "2.329.0rc1"]) expect(parseRunnerVersion(tag), tag).toBeUndefined();
  });

  it("takes the main task's image, not the prestart or poststop task's", () => {
    expect(runnerImageOf(runnerJob("ghcr.io/actions/actions-runner:2.329.0"))).toBe("ghcr.io/actions/actions-runner:2.329.0");
    expect(runnerImageOf({ ID: "x", TaskGroups: [{ Name: "g", Tasks: [{ Name: "t", Config: {} }] }] })).toBeUndefined();
  });

  it("counts the 30 days from the newest release", () => {
    const old = { major: 2, minor: 329, patch: 0 };
    const latest = { major: 2, minor: 336, patch: 0 };
    expect(runnerFreshness(latest, latest, RELEASE.publishedAt, NOW)).toEqual({ current: true });
    expect(runnerFreshness(old, latest, RELEASE.publishedAt, NOW)).toEqual({ current: false, refusedBy: new Date("2026-09-09T09:00:00Z"), overdue: false });
    expect(runnerFreshness(old, latest, "2026-06-01T00:00:00Z", NOW)).toMatchObject({ current: false, overdue: true });
    expect(runnerFreshness(old, latest, undefined, NOW)).toEqual({ current: false, refusedBy: undefined, overdue: false });
  });
});

describe("doctor: runner image check", () => {
  it("warns about an image behind the newest runner release, with the deadline and the fix", async () => {
    const result = await checkRunnerImage(patConfig, patConfig.runner.classes[0]!, deps(runnerJob("ghcr.io/actions/actions-runner:2.329.0"), RELEASE));
    expect(result.level).toBe("warn");
    expect(result.detail).toContain("ghcr.io/actions/actions-runner:2.329.0 runs runner 2.329.0, older than the newest release v2.336.0");
    expect(result.detail).toContain("by 2026-09-09 at the latest");
    expect(result.fix).toContain('image = "ghcr.io/actions/actions-runner:2.336.0"');
    expect(result.fix).toContain("NOMAD_RUNNER_JOB_VARS_FILE");
    // A warning prints [warn] with its fix, and doctor still passes.
    const text = formatChecklist([{ name: "runner image", ...result }]);
    expect(text).toMatch(/^\[warn\] runner image: /);
    expect(text).toMatch(/\n {7}fix: bump the runner job's `image` variable/);
    expect(text.split("\n").at(-1)).toBe("all checks passed, 1 warning(s)");
  });

  it("says when GitHub may refuse the image already", async () => {
    const result = await checkRunnerImage(
      patConfig,
      patConfig.runner.classes[0]!,
      deps(runnerJob("ghcr.io/actions/actions-runner:2.329.0-ubuntu"), { ...RELEASE, publishedAt: "2026-06-01T00:00:00Z" }),
    );
    expect(result.level).toBe("warn");
    expect(result.detail).toContain("GitHub may already refuse to assign jobs to it");
    expect(result.fix).toContain('image = "ghcr.io/actions/actions-runner:2.336.0-ubuntu"');
  });

  it("passes an image on the newest release", async () => {
    const result = await checkRunnerImage(patConfig, patConfig.runner.classes[0]!, deps(runnerJob("ghcr.io/actions/actions-runner:2.336.0"), RELEASE));
    expect(result).toEqual({ level: "ok", detail: "ghcr.io/actions/actions-runner:2.336.0: runner 2.336.0, the newest release" });
  });

  it("says it cannot tell: no version tag, no release on GHES, GitHub failing", async () => {
    const byDigest = await checkRunnerImage(patConfig, patConfig.runner.classes[0]!, deps(runnerJob("ghcr.io/actions/actions-runner@sha256:0123"), RELEASE));
    expect(byDigest).toMatchObject({
      level: "warn",
      detail: expect.stringContaining("cannot tell") as string,
      fix: expect.stringContaining("pin the runner image to a version tag") as string,
    });
    expect(
      (await checkRunnerImage(patConfig, patConfig.runner.classes[0]!, deps(runnerJob("ghcr.io/actions/actions-runner:latest"), RELEASE))).detail,
    ).toContain('tag "latest"');
    const ghes = await checkRunnerImage(patConfig, patConfig.runner.classes[0]!, deps(runnerJob("ghcr.io/actions/actions-runner:2.329.0"), undefined));
    expect(ghes.level).toBe("warn");
    expect(ghes.detail).toMatch(/cannot tell.*has no actions\/runner releases \(GitHub Enterprise Server\?\)/);
    const failing = await checkRunnerImage(
      patConfig,
      patConfig.runner.classes[0]!,
      deps(
        runnerJob("ghcr.io/actions/actions-runner:2.329.0"),
        new DependencyError("github", "GitHub read the latest actions/runner release: 502 Bad Gateway", 502, true),
      ),
    );
    expect(failing).toMatchObject({ level: "warn", detail: expect.stringContaining("502 Bad Gateway") as string });
  });

  it("does not check a runner job that is not registered yet", async () => {
    expect(await checkRunnerImage(patConfig, patConfig.runner.classes[0]!, deps(undefined, RELEASE))).toMatchObject({
      level: "ok",
      detail: expect.stringContaining("not registered yet") as string,
    });
  });

  it("asks through an installation's budget with App credentials", async () => {
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const appConfig = loadConfig({
      GITHUB_WEBHOOK_SECRET: baseEnv.GITHUB_WEBHOOK_SECRET,
      VAULT_TOKEN: baseEnv.VAULT_TOKEN,
      GITHUB_APP_ID: "123",
      GITHUB_APP_PRIVATE_KEY: privateKey.export({ type: "pkcs1", format: "pem" }).toString(),
    });
    const asked: Array<number | undefined> = [];
    await checkRunnerImage(appConfig, appConfig.runner.classes[0]!, deps(runnerJob("ghcr.io/actions/actions-runner:2.336.0"), RELEASE, asked));
    expect(asked).toEqual([77]);
    await checkRunnerImage(patConfig, patConfig.runner.classes[0]!, deps(runnerJob("ghcr.io/actions/actions-runner:2.336.0"), RELEASE, asked));
    expect(asked).toEqual([77, undefined]);
  });
});
