import type { Octokits } from "./auth.js";
import { hasStatus } from "./errors.js";

/**
 * Where a PAT setup's webhooks may be: organization hooks of ALLOWED_OWNERS (one hook covers every
 * repository of its organization) and repository hooks of ALLOWED_REPOS.
 */
export interface HookScopes {
  orgs: string[];
  /** `owner/repo`. */
  repos: string[];
}

/** A webhook of this service (its URL is WEBHOOK_URL). */
export type OurHook = { kind: "org"; org: string; id: number } | { kind: "repo"; owner: string; repo: string; id: number };

/** Hooks are created by hand and rarely change: looking again every hour is enough. */
const HOOK_CACHE_MS = 60 * 60_000;

/** A URL as GitHub may have it stored: case of scheme and host, and a trailing slash, do not matter. */
export function sameWebhookUrl(a: string, b: string): boolean {
  const norm = (u: string) => {
    try {
      return new URL(u).href.replace(/\/+$/, "");
    } catch {
      return u.replace(/\/+$/, "");
    }
  };
  return norm(a) === norm(b);
}

/**
 * Finds this service's hooks by their URL, and remembers them: the look-up costs one request per
 * organization (and per ALLOWED_REPOS entry whose owner has no such organization hook) an hour,
 * however many repositories the organizations hold.
 */
export class HookFinder {
  private readonly cache = new Map<string, { at: number; ids: number[] }>();

  constructor(
    private readonly octokits: Octokits,
    private readonly webhookUrl: string,
    private readonly scopes: HookScopes,
  ) {}

  async find(): Promise<OurHook[]> {
    const hooks: OurHook[] = [];
    const coveredOwners = new Set<string>();
    for (const org of this.scopes.orgs) {
      // Operation orgs/list-webhooks (GET /orgs/{org}/hooks). A user (not an organization), or a
      // token without admin:org_hook, gets a 404: no organization hook to find there.
      const ids = await this.cached(`org:${org}`, () =>
        this.octokits.call({ owner: org, repo: "" }, `list webhooks of ${org}`, (o) => o.paginate(o.rest.orgs.listWebhooks, { org, per_page: 100 })),
      );
      for (const id of ids) hooks.push({ kind: "org", org, id });
      if (ids.length > 0) coveredOwners.add(org.toLowerCase());
    }
    for (const full of this.scopes.repos) {
      const [owner = "", repo = ""] = full.split("/");
      // An organization hook of ours gets this repository's events already.
      if (coveredOwners.has(owner.toLowerCase())) continue;
      // Operation repos/list-webhooks (GET /repos/{owner}/{repo}/hooks).
      const ids = await this.cached(`repo:${full}`, () =>
        this.octokits.call({ owner, repo }, `list webhooks of ${full}`, (o) => o.paginate(o.rest.repos.listWebhooks, { owner, repo, per_page: 100 })),
      );
      for (const id of ids) hooks.push({ kind: "repo", owner, repo, id });
    }
    return hooks;
  }

  private async cached(key: string, list: () => Promise<Array<{ id: number; config: { url?: string } }>>): Promise<number[]> {
    const hit = this.cache.get(key);
    if (hit && Date.now() - hit.at < HOOK_CACHE_MS) return hit.ids;
    let ids: number[];
    try {
      ids = (await list()).filter((h) => h.config.url !== undefined && sameWebhookUrl(h.config.url, this.webhookUrl)).map((h) => h.id);
    } catch (err) {
      if (!hasStatus(err, 404) && !hasStatus(err, 403)) throw err;
      ids = [];
    }
    this.cache.set(key, { at: Date.now(), ids });
    return ids;
  }
}
