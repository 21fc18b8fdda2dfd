// Releases of actions/runner as the twin knows them, and GitHub's rules about runner versions.
//
// Dates are the tag commits' dates in github.com/actions/runner
// (`git -C actions/runner log -1 --format=%cI v2.336.0`, ...); a release is published the day its
// tag is cut. The rules are the ones GitHub announced when it resumed version enforcement on
// github.com (github.com/orgs/community/discussions/194762, enforced from 2026-09-25):
//  - to configure or (re)register, a runner must be 2.329.0 or later;
//  - to keep running jobs, a runner must install each new release within 30 days of its
//    publication: it is refused once a newer release has been out for more than 30 days.
// A runner with updates enabled is told to update instead (a RunnerRefresh message; see
// actions/runner src/Runner.Listener/Runner.cs and SelfUpdaterV2.cs); a runner with
// `--disableupdate` gets the broker's RunnerVersionTooOld error (src/Sdk/WebApi/WebApi/
// BrokerHttpClient.cs), which Program.cs turns into "An error occurred: ..." and exit 1 (or 7 with
// ACTIONS_RUNNER_RETURN_VERSION_DEPRECATED_EXIT_CODE). The refusal's wording is the one runners
// print (actions/runner issue #3653: "Runner version v2.316.0 is deprecated and cannot receive messages.").

import { createHash } from "node:crypto";
import type { Route } from "./github-rest.js";
import { notFound, paginate } from "./github-rest.js";
import type { RunnerRoute } from "./github-runner-http.js";
import { type JsonObject, legacyNodeId, type TwinUrls } from "./github-shapes.js";

export interface RunnerRelease {
  version: string;
  /** Publication time, ms since epoch. */
  published: number;
}

/** actions/runner releases: tag -> tag commit date (git log -1 --format=%cI <tag>). */
const TAG_DATES: ReadonlyArray<[string, string]> = [
  ["2.317.0", "2024-05-30T14:36:22+01:00"],
  ["2.318.0", "2024-07-26T10:07:25-05:00"],
  ["2.319.0", "2024-08-08T07:11:47-07:00"],
  ["2.319.1", "2024-08-13T11:28:22-05:00"],
  ["2.320.0", "2024-10-03T12:20:00-07:00"],
  ["2.321.0", "2024-11-13T12:31:14-05:00"],
  ["2.322.0", "2025-01-24T09:07:41-05:00"],
  ["2.320.1", "2025-02-26T15:42:43-05:00"],
  ["2.323.0", "2025-03-19T14:24:36-04:00"],
  ["2.324.0", "2025-05-12T21:49:26-04:00"],
  ["2.325.0", "2025-06-02T14:42:04-04:00"],
  ["2.326.0", "2025-07-07T16:12:58-04:00"],
  ["2.327.0", "2025-07-22T19:44:29+01:00"],
  ["2.327.1", "2025-07-25T17:15:09+01:00"],
  ["2.328.0", "2025-08-13T17:44:53+01:00"],
  ["2.329.0", "2025-10-14T10:48:35-04:00"],
  ["2.330.0", "2025-11-19T09:34:20-05:00"],
  ["2.331.0", "2026-01-09T12:22:08-05:00"],
  ["2.332.0", "2026-02-25T13:46:12+00:00"],
  ["2.333.0", "2026-03-18T17:26:07+00:00"],
  ["2.333.1", "2026-03-27T16:55:20+00:00"],
  ["2.334.0", "2026-04-21T19:49:15+01:00"],
  ["2.335.0", "2026-06-08T18:04:53+01:00"],
  ["2.335.1", "2026-06-08T21:28:02-04:00"],
  ["2.336.0", "2026-07-20T13:42:20-04:00"],
];

export const RUNNER_RELEASES: readonly RunnerRelease[] = TAG_DATES.map(([version, date]) => ({ version, published: Date.parse(date) }));
/** The release GitHub calls latest: the most recently published one. */
export const LATEST_RUNNER_VERSION = [...RUNNER_RELEASES].sort((a, b) => b.published - a.published)[0]!.version;
export const MIN_REGISTRATION_VERSION = "2.329.0";
const UPDATE_WINDOW_MS = 30 * 24 * 60 * 60 * 1000;
const RUNNER_PLATFORMS = ["linux-x64", "linux-arm64", "linux-arm", "osx-x64", "osx-arm64", "win-x64", "win-arm64"] as const;
/** The platform the runner image stand-in reports (the official image is linux-x64 or linux-arm64). */
export const RUNNER_PLATFORM = "linux-x64";

/** Compares dotted versions numerically (2.330.0 > 2.329.10 > 2.329.0). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export type VersionVerdict = { kind: "current" } | { kind: "update"; target: string } | { kind: "refuse"; message: string };

/**
 * What the broker does with a runner of `version` polling at `now`. A version newer than every
 * known release counts as current (a runner built ahead of the table is not refused).
 */
export function versionVerdict(version: string, disableUpdate: boolean, now: number): VersionVerdict {
  const newer = RUNNER_RELEASES.filter((r) => compareVersions(r.version, version) > 0 && r.published <= now);
  if (newer.length === 0) return { kind: "current" };
  if (!disableUpdate) return { kind: "update", target: LATEST_RUNNER_VERSION };
  const overdue = newer.some((r) => now - r.published > UPDATE_WINDOW_MS);
  return overdue ? { kind: "refuse", message: `Runner version v${version} is deprecated and cannot receive messages.` } : { kind: "current" };
}

export function assetName(version: string, platform: string): string {
  return `actions-runner-${platform}-${version}.${platform.startsWith("win") ? "zip" : "tar.gz"}`;
}

/**
 * The bytes the twin serves for a release asset. Not a runner package: the stand-in's self-update
 * only checks the SHA-256 the update message names (as SelfUpdaterV2 does) and takes the version.
 */
export function assetContent(version: string, platform: string): Buffer {
  return Buffer.from(`github twin: stand-in for ${assetName(version, platform)}\n`);
}

export function assetSha256(version: string, platform: string): string {
  return createHash("sha256").update(assetContent(version, platform)).digest("hex");
}

/** `GET /repos/actions/runner/releases[/latest]` over the twin's table. */
export function releaseRoutes(urls: TwinUrls, clock: () => number): Route[] {
  const listDocs = "https://docs.github.com/rest/releases/releases#list-releases";
  const latestDocs = "https://docs.github.com/rest/releases/releases#get-the-latest-release";
  const isRunnerRepo = (params: Record<string, string>) =>
    (params["owner"] ?? "").toLowerCase() === "actions" && (params["repo"] ?? "").toLowerCase() === "runner";
  // Only what is published by the twin's clock, newest first (GitHub sorts by creation).
  const published = () => RUNNER_RELEASES.filter((r) => r.published <= clock()).sort((a, b) => b.published - a.published);
  return [
    {
      method: "GET",
      template: "/repos/{owner}/{repo}/releases",
      docs: listDocs,
      auth: "any",
      handle: (ctx) => {
        if (!isRunnerRepo(ctx.params)) return notFound(listDocs);
        const page = paginate(published(), ctx);
        return { status: 200, body: page.items.map((r) => releaseShape(r, urls)), headers: page.headers };
      },
    },
    {
      method: "GET",
      template: "/repos/{owner}/{repo}/releases/latest",
      docs: latestDocs,
      auth: "any",
      handle: (ctx) => {
        const latest = published()[0];
        return isRunnerRepo(ctx.params) && latest ? { status: 200, body: releaseShape(latest, urls) } : notFound(latestDocs);
      },
    },
  ];
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

function releaseShape(release: RunnerRelease, urls: TwinUrls): JsonObject {
  const index = RUNNER_RELEASES.indexOf(release);
  const id = 200_000_000 + index;
  const tag = `v${release.version}`;
  const api = `${urls.api}/repos/actions/runner`;
  const web = `${urls.web}/actions/runner`;
  const author = {
    login: "github-actions[bot]",
    id: 41898282,
    node_id: legacyNodeId("Bot", 41898282),
    avatar_url: "https://avatars.githubusercontent.com/in/15368?v=4",
    gravatar_id: "",
    url: `${urls.api}/users/github-actions%5Bbot%5D`,
    html_url: `${urls.web}/apps/github-actions`,
    followers_url: `${urls.api}/users/github-actions%5Bbot%5D/followers`,
    following_url: `${urls.api}/users/github-actions%5Bbot%5D/following{/other_user}`,
    gists_url: `${urls.api}/users/github-actions%5Bbot%5D/gists{/gist_id}`,
    starred_url: `${urls.api}/users/github-actions%5Bbot%5D/starred{/owner}{/repo}`,
    subscriptions_url: `${urls.api}/users/github-actions%5Bbot%5D/subscriptions`,
    organizations_url: `${urls.api}/users/github-actions%5Bbot%5D/orgs`,
    repos_url: `${urls.api}/users/github-actions%5Bbot%5D/repos`,
    events_url: `${urls.api}/users/github-actions%5Bbot%5D/events{/privacy}`,
    received_events_url: `${urls.api}/users/github-actions%5Bbot%5D/received_events`,
    type: "Bot",
    site_admin: false,
  };
  const when = iso(release.published);
  return {
    url: `${api}/releases/${id}`,
    html_url: `${web}/releases/tag/${tag}`,
    assets_url: `${api}/releases/${id}/assets`,
    upload_url: `${urls.web}/api/uploads/repos/actions/runner/releases/${id}/assets{?name,label}`,
    tarball_url: `${api}/tarball/${tag}`,
    zipball_url: `${api}/zipball/${tag}`,
    id,
    node_id: `RE_${Buffer.from(`release:${id}`).toString("base64url")}`,
    tag_name: tag,
    target_commitish: "main",
    name: tag,
    body: `Runner ${tag}`,
    draft: false,
    prerelease: false,
    immutable: false,
    created_at: when,
    published_at: when,
    updated_at: when,
    author,
    assets: RUNNER_PLATFORMS.map((platform, i) => {
      const assetId = id * 10 + i;
      const name = assetName(release.version, platform);
      return {
        url: `${api}/releases/assets/${assetId}`,
        browser_download_url: `${web}/releases/download/${tag}/${name}`,
        id: assetId,
        node_id: `RA_${Buffer.from(`asset:${assetId}`).toString("base64url")}`,
        name,
        label: "",
        state: "uploaded",
        content_type: platform.startsWith("win") ? "application/zip" : "application/gzip",
        size: assetContent(release.version, platform).length,
        digest: `sha256:${assetSha256(release.version, platform)}`,
        download_count: 0,
        created_at: when,
        updated_at: when,
        uploader: author,
      };
    }),
  };
}

/**
 * The web host's release downloads (`{web}/actions/runner/releases/download/v2.336.0/<asset>`,
 * where github.com serves them), used by a runner's self-update. Each download takes `delayMs`
 * (standing for fetching and unpacking the package) and counts as one runner update.
 */
export function releaseDownloadRoute(o: { delayMs: number; downloaded: () => void }): RunnerRoute {
  return {
    method: "GET",
    template: "/actions/runner/releases/download/{tag}/{asset}",
    handle: async (call) => {
      const version = (call.params["tag"] ?? "").replace(/^v/, "");
      const platform = RUNNER_PLATFORMS.find((p) => assetName(version, p) === call.params["asset"]);
      if (!RUNNER_RELEASES.some((r) => r.version === version) || !platform) return { status: 404, body: "Not Found" };
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, o.delayMs);
        call.signal.addEventListener(
          "abort",
          () => {
            clearTimeout(timer);
            resolve();
          },
          { once: true },
        );
      });
      if (call.signal.aborted) return { status: 499, body: "" };
      o.downloaded();
      return { status: 200, headers: { "content-type": "application/octet-stream" }, body: assetContent(version, platform).toString("utf8") };
    },
  };
}
