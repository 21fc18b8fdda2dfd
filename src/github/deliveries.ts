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

/**
 * Redelivers failed `workflow_job` deliveries since `since`: GitHub does not retry failed
 * deliveries by itself. With an App, its own hook's; with a PAT, those of this service's
 * organization and repository hooks (`hooks`, found by WEBHOOK_URL). What it costs grows with the
 * hooks and the deliveries, never with the repositories an organization hook covers. Returns how
 * many were redelivered.
 */
export async function redeliverFailedDeliveries(octokits: Octokits, since: number, hooks?: HookFinder): Promise<number> {
  if (octokits.auth.kind === "app") {
    // Operations apps/list-webhook-deliveries and apps/redeliver-webhook-delivery.
    const failed = await octokits.callApp("list webhook deliveries", (app) =>
      failedDeliveries(app.paginate.iterator(app.rest.apps.listWebhookDeliveries, { per_page: 100 }), since),
    );
    for (const deliveryId of failed) {
      await octokits.callApp("redeliver webhook", (app) => app.rest.apps.redeliverWebhookDelivery({ delivery_id: deliveryId }));
    }
    return failed.length;
  }
  if (!hooks) return 0;
  let count = 0;
  for (const hook of await hooks.find()) count += await redeliverHook(octokits, hook, since);
  return count;
}

async function redeliverHook(octokits: Octokits, hook: OurHook, since: number): Promise<number> {
  if (hook.kind === "org") {
    const target = { owner: hook.org, repo: "" };
    // Operation orgs/list-webhook-deliveries (GET /orgs/{org}/hooks/{hook_id}/deliveries).
    const failed = await octokits.call(target, "list organization webhook deliveries", (o) =>
      failedDeliveries(o.paginate.iterator(o.rest.orgs.listWebhookDeliveries, { org: hook.org, hook_id: hook.id, per_page: 100 }), since),
    );
    for (const deliveryId of failed) {
      // Operation orgs/redeliver-webhook-delivery (POST .../deliveries/{delivery_id}/attempts).
      await octokits.call(target, "redeliver organization webhook", (o) =>
        o.rest.orgs.redeliverWebhookDelivery({ org: hook.org, hook_id: hook.id, delivery_id: deliveryId }),
      );
    }
    return failed.length;
  }
  const target = { owner: hook.owner, repo: hook.repo };
  // Operation repos/list-webhook-deliveries (GET /repos/{owner}/{repo}/hooks/{hook_id}/deliveries).
  const failed = await octokits.call(target, "list repository webhook deliveries", (o) =>
    failedDeliveries(o.paginate.iterator(o.rest.repos.listWebhookDeliveries, { owner: hook.owner, repo: hook.repo, hook_id: hook.id, per_page: 100 }), since),
  );
  for (const deliveryId of failed) {
    // Operation repos/redeliver-webhook-delivery (POST .../deliveries/{delivery_id}/attempts).
    await octokits.call(target, "redeliver repository webhook", (o) =>
      o.rest.repos.redeliverWebhookDelivery({ owner: hook.owner, repo: hook.repo, hook_id: hook.id, delivery_id: deliveryId }),
    );
  }
  return failed.length;
}

/** The ids of deliveries since `since` whose GUID never got through, newest first. */
async function failedDeliveries(pages: AsyncIterable<{ data: DeliverySummary[] }>, since: number): Promise<number[]> {
  const seen = new Set<string>();
  const failed: Array<{ id: number; guid: string }> = [];
  const delivered = new Set<string>();
  listing: for await (const page of pages) {
    for (const d of page.data) {
      if (Date.parse(d.delivered_at) < since) break listing;
      if (d.event !== "workflow_job") continue;
      // Newest first: a later success for the same GUID means it already got through.
      if (d.status_code >= 200 && d.status_code < 300) delivered.add(d.guid);
      else if (!seen.has(d.guid)) failed.push({ id: d.id, guid: d.guid });
      seen.add(d.guid);
    }
  }
  return failed.filter((d) => !delivered.has(d.guid)).map((d) => d.id);
}
