import type { Octokits } from "./auth.js";
import type { HookFinder, OurHook } from "./hooks.js";

/** One page of a hook's deliveries, as every deliveries listing returns them (newest first). */
interface DeliverySummary {
  id: number;
  guid: string;
  delivered_at: string;
  event: string;
  status_code: number;
}

/** A failed delivery of one of our hooks, and how to ask for it again. */
interface FailedDelivery {
  at: number;
  /** GitHub's delivery ids grow with time: the order within one second. */
  id: number;
  redeliver: () => Promise<unknown>;
}

/** What a redelivery run did: `left` failed deliveries wait for a later run (over `max`). */
export interface Redelivered {
  redelivered: number;
  left: number;
}

/**
 * Redelivers failed `workflow_job` deliveries since `since`, oldest first and at most `max`:
 * GitHub does not retry failed deliveries by itself. With an App, its own hook's; with a PAT,
 * those of this service's organization and repository hooks (`hooks`, found by WEBHOOK_URL).
 * What it costs grows with the hooks and the deliveries, never with the repositories an
 * organization hook covers.
 */
export async function redeliverFailedDeliveries(
  octokits: Octokits,
  since: number,
  hooks: HookFinder | undefined,
  max = Number.POSITIVE_INFINITY,
): Promise<Redelivered> {
  const failed: FailedDelivery[] = [];
  if (octokits.auth.kind === "app") {
    // Operations apps/list-webhook-deliveries and apps/redeliver-webhook-delivery.
    const found = await octokits.callApp("list webhook deliveries", (app) =>
      failedDeliveries(app.paginate.iterator(app.rest.apps.listWebhookDeliveries, { per_page: 100 }), since),
    );
    for (const d of found) {
      failed.push({
        at: d.at,
        id: d.id,
        redeliver: () => octokits.callApp("redeliver webhook", (app) => app.rest.apps.redeliverWebhookDelivery({ delivery_id: d.id })),
      });
    }
  } else if (hooks) {
    for (const hook of await hooks.find()) failed.push(...(await failedOfHook(octokits, hook, since)));
  }
  // The longest-waiting jobs first when not all fit.
  failed.sort((a, b) => a.at - b.at || a.id - b.id);
  const now = failed.slice(0, Math.max(0, max));
  for (const d of now) await d.redeliver();
  return { redelivered: now.length, left: failed.length - now.length };
}

async function failedOfHook(octokits: Octokits, hook: OurHook, since: number): Promise<FailedDelivery[]> {
  if (hook.kind === "org") {
    const target = { owner: hook.org, repo: "" };
    // Operation orgs/list-webhook-deliveries (GET /orgs/{org}/hooks/{hook_id}/deliveries).
    const found = await octokits.call(target, "list organization webhook deliveries", (o) =>
      failedDeliveries(o.paginate.iterator(o.rest.orgs.listWebhookDeliveries, { org: hook.org, hook_id: hook.id, per_page: 100 }), since),
    );
    // Operation orgs/redeliver-webhook-delivery (POST .../deliveries/{delivery_id}/attempts).
    return found.map((d) => ({
      at: d.at,
      id: d.id,
      redeliver: () =>
        octokits.call(target, "redeliver organization webhook", (o) =>
          o.rest.orgs.redeliverWebhookDelivery({ org: hook.org, hook_id: hook.id, delivery_id: d.id }),
        ),
    }));
  }
  const target = { owner: hook.owner, repo: hook.repo };
  // Operation repos/list-webhook-deliveries (GET /repos/{owner}/{repo}/hooks/{hook_id}/deliveries).
  const found = await octokits.call(target, "list repository webhook deliveries", (o) =>
    failedDeliveries(o.paginate.iterator(o.rest.repos.listWebhookDeliveries, { owner: hook.owner, repo: hook.repo, hook_id: hook.id, per_page: 100 }), since),
  );
  // Operation repos/redeliver-webhook-delivery (POST .../deliveries/{delivery_id}/attempts).
  return found.map((d) => ({
    at: d.at,
    id: d.id,
    redeliver: () =>
      octokits.call(target, "redeliver repository webhook", (o) =>
        o.rest.repos.redeliverWebhookDelivery({ owner: hook.owner, repo: hook.repo, hook_id: hook.id, delivery_id: d.id }),
      ),
  }));
}

/** The deliveries since `since` whose GUID never got through (id, and when it was attempted). */
async function failedDeliveries(pages: AsyncIterable<{ data: DeliverySummary[] }>, since: number): Promise<Array<{ id: number; at: number }>> {
  const seen = new Set<string>();
  const failed: Array<{ id: number; guid: string; at: number }> = [];
  const delivered = new Set<string>();
  listing: for await (const page of pages) {
    for (const d of page.data) {
      const at = Date.parse(d.delivered_at);
      if (at < since) break listing;
      if (d.event !== "workflow_job") continue;
      // Newest first: a later success for the same GUID means it already got through.
      if (d.status_code >= 200 && d.status_code < 300) delivered.add(d.guid);
      else if (!seen.has(d.guid)) failed.push({ id: d.id, guid: d.guid, at });
      seen.add(d.guid);
    }
  }
  return failed.filter((d) => !delivered.has(d.guid)).map(({ id, at }) => ({ id, at }));
}
