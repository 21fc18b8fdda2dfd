// Building blocks of the twin's REST handlers: route and reply types, GitHub's error body,
// pagination with Link headers, permission checks, and validation of the request bodies GitHub
// validates itself (with its wording).

import type { Credentials, Principal } from "./github-auth.js";
import type { GitHubState } from "./github-model.js";
import type { RateLimiter } from "./github-ratelimit.js";
import type { GitHubShapes, JsonObject } from "./github-shapes.js";
import type { TwinDelivery, WebhookSender } from "./github-webhooks.js";

export interface RouteContext {
  params: Record<string, string>;
  query: URLSearchParams;
  body: unknown;
  principal: Principal;
  /** The request URL against the twin's base (for Link headers). */
  url: URL;
}

export interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/**
 * Who may call: "app" = app JWT only; "installation" = installation token only; "user" = PAT
 * only; "token" = PAT or installation token; "any" = also anonymous and JWT.
 */
export type AuthRequirement = "app" | "installation" | "user" | "token" | "any";

export interface Route {
  method: string;
  template: string;
  docs: string;
  auth: AuthRequirement;
  /** Installation tokens need this permission (name, minimum level). */
  permission?: { name: string; level: "read" | "write" };
  /** Does not count against the primary rate limit (GET /rate_limit). */
  free?: boolean;
  handle: (ctx: RouteContext) => Reply | Promise<Reply>;
}

export interface RestDependencies {
  state: GitHubState;
  shapes: GitHubShapes;
  credentials: Credentials;
  webhooks: WebhookSender;
  limiter: RateLimiter;
}

/**
 * REST API versions GitHub accepts in `X-GitHub-Api-Version`: the initial calendar version and
 * the one the OpenAPI's `x-github-breaking-changes` entries name (@octokit/openapi,
 * generated/api.github.com.json: "version": "2026-03-10"). None of those breaking changes touch a
 * route the twin serves, so both get the same representations. Without the header GitHub uses
 * 2022-11-28; an unsupported value is a 400 ("API Versions", docs.github.com/rest/about-the-rest-api/api-versions).
 */
export const API_VERSIONS = ["2022-11-28", "2026-03-10"] as const;
export const DEFAULT_API_VERSION = "2022-11-28";
const API_VERSIONS_DOCS = "https://docs.github.com/rest/about-the-rest-api/api-versions";

/** The version a request selects, or GitHub's 400 for one it does not support. */
export function selectApiVersion(header: string | undefined): { version: string } | { reply: Reply } {
  if (header === undefined) return { version: DEFAULT_API_VERSION };
  const requested = header.trim();
  if ((API_VERSIONS as readonly string[]).includes(requested)) return { version: requested };
  // The docs give the status, not the wording; the message names the value like GitHub's errors do.
  return { reply: gitHubError(400, `Invalid API version: ${requested}`, API_VERSIONS_DOCS) };
}

export function gitHubError(status: number, message: string, docs = "https://docs.github.com/rest"): Reply {
  return { status, body: { message, documentation_url: docs, status: String(status) } };
}

export function notFound(docs: string): Reply {
  return gitHubError(404, "Not Found", docs);
}

export function isReply(value: unknown): value is Reply {
  return typeof value === "object" && value !== null && "status" in value && typeof (value as Reply).status === "number";
}

/** `?per_page` (default 30, at most 100) and `?page`, with GitHub's Link header. */
export function paginate<T>(items: T[], ctx: RouteContext): { items: T[]; headers: Record<string, string> } {
  const perPage = Math.min(100, Math.max(1, Number(ctx.query.get("per_page") ?? 30) || 30));
  const page = Math.max(1, Number(ctx.query.get("page") ?? 1) || 1);
  const lastPage = Math.max(1, Math.ceil(items.length / perPage));
  const pageUrl = (n: number) => {
    const url = new URL(ctx.url);
    url.searchParams.set("per_page", String(perPage));
    url.searchParams.set("page", String(n));
    return `<${url.toString()}>`;
  };
  const links: string[] = [];
  if (page > 1) links.push(`${pageUrl(page - 1)}; rel="prev"`);
  if (page < lastPage) links.push(`${pageUrl(page + 1)}; rel="next"`, `${pageUrl(lastPage)}; rel="last"`);
  if (page > 1) links.push(`${pageUrl(1)}; rel="first"`);
  return { items: items.slice((page - 1) * perPage, page * perPage), headers: links.length > 0 ? { link: links.join(", ") } : {} };
}

export function permits(granted: string | undefined, requested: string): boolean {
  if (granted === undefined) return false;
  return granted === "write" || requested === "read";
}

export function principalHasPermission(principal: Principal, permission: { name: string; level: "read" | "write" }): boolean {
  return principal.kind !== "installation" || permits(principal.permissions[permission.name], permission.level);
}

export function deliverySummary(delivery: TwinDelivery): JsonObject {
  const { id, guid, delivered_at, redelivery, duration, status, status_code, event, action, installation_id, repository_id } = delivery;
  return { id, guid, delivered_at, redelivery, duration, status, status_code, event, action, installation_id, repository_id, throttled_at: null };
}

/**
 * One page of a hook's deliveries (given newest first), as every deliveries listing pages them:
 * `per_page`, an opaque `cursor` (`v1_<delivery id>`: continue after that delivery), `status`.
 */
export function deliveryPage(all: TwinDelivery[], ctx: RouteContext, docs: string): Reply {
  const perPage = Math.min(100, Math.max(1, Number(ctx.query.get("per_page") ?? 30) || 30));
  const cursor = ctx.query.get("cursor");
  const after = cursor === null ? undefined : Number(/^v1_(\d+)$/.exec(cursor)?.[1]);
  if (Number.isNaN(after)) return gitHubError(400, "Invalid cursor", docs);
  const wanted = ctx.query.get("status");
  let deliveries = all;
  if (wanted === "success" || wanted === "failure") deliveries = deliveries.filter((d) => (d.status === "OK") === (wanted === "success"));
  if (after !== undefined) deliveries = deliveries.filter((d) => d.id < after);
  const page = deliveries.slice(0, perPage);
  const last = page.at(-1);
  const headers: Record<string, string> = {};
  if (deliveries.length > perPage && last) {
    const next = new URL(ctx.url);
    next.searchParams.set("per_page", String(perPage));
    next.searchParams.set("cursor", `v1_${last.id}`);
    headers["link"] = `<${next.toString()}>; rel="next"`;
  }
  return { status: 200, body: page.map(deliverySummary), headers };
}

export interface JitInput {
  name: string;
  runnerGroupId: number;
  labels: string[];
  workFolder: string;
}

/** GitHub validates the body against its JSON schema and words failures like this. */
export function jitRequest(body: unknown): JitInput | { problem: string } {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return { problem: "The request body must be a JSON object." };
  const fields = body as Record<string, unknown>;
  for (const key of ["name", "runner_group_id", "labels"]) {
    if (!(key in fields)) return { problem: `"${key}" wasn't supplied.` };
  }
  const { name, runner_group_id: group, labels, work_folder: workFolder = "_work" } = fields;
  if (typeof name !== "string" || name.trim() === "") return { problem: `For 'properties/name', ${JSON.stringify(name)} is not a non-empty string.` };
  if (typeof group !== "number" || !Number.isInteger(group))
    return { problem: `For 'properties/runner_group_id', ${JSON.stringify(group)} is not an integer.` };
  if (!Array.isArray(labels) || !labels.every((l): l is string => typeof l === "string" && l !== "")) {
    return { problem: `For 'properties/labels', ${JSON.stringify(labels)} is not an array of non-empty strings.` };
  }
  if (labels.length < 1) return { problem: `For 'properties/labels', ${JSON.stringify(labels)} has fewer items than 1.` };
  if (labels.length > 100) return { problem: `For 'properties/labels', the array has more items than 100.` };
  if (typeof workFolder !== "string") return { problem: `For 'properties/work_folder', ${JSON.stringify(workFolder)} is not a string.` };
  return { name, runnerGroupId: group, labels, workFolder };
}

export interface TokenInput {
  repositories: string[] | undefined;
  repositoryIds: number[] | undefined;
  permissions: Record<string, string> | undefined;
}

export function tokenRequest(body: unknown): TokenInput | { problem: string } {
  if (body === undefined) return { repositories: undefined, repositoryIds: undefined, permissions: undefined };
  if (typeof body !== "object" || body === null || Array.isArray(body)) return { problem: "Invalid request.\n\nThe request body must be a JSON object." };
  const { repositories, repository_ids: ids, permissions } = body as Record<string, unknown>;
  if (repositories !== undefined && !(Array.isArray(repositories) && repositories.every((r) => typeof r === "string"))) {
    return { problem: "Invalid request.\n\nFor 'properties/repositories', the value is not an array of strings." };
  }
  if (ids !== undefined && !(Array.isArray(ids) && ids.every((r) => typeof r === "number"))) {
    return { problem: "Invalid request.\n\nFor 'properties/repository_ids', the value is not an array of integers." };
  }
  if (
    permissions !== undefined &&
    (typeof permissions !== "object" || permissions === null || !Object.values(permissions).every((v) => v === "read" || v === "write"))
  ) {
    return { problem: "Invalid request.\n\nFor 'properties/permissions', the value is not a map of read/write levels." };
  }
  return {
    repositories: (repositories as string[] | undefined)?.map((r) => r.toLowerCase()),
    repositoryIds: ids as number[] | undefined,
    permissions: permissions as Record<string, string> | undefined,
  };
}
