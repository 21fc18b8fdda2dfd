import type { Octokit } from "@octokit/rest";
import type { Octokits } from "./auth.js";

/**
 * Redelivers the App's failed webhook deliveries of `workflow_job` since `since` (App only);
 * GitHub does not retry failed deliveries by itself. Returns how many were redelivered.
 */
export async function redeliverFailedDeliveries(octokits: Octokits, since: number): Promise<number> {
  if (octokits.auth.kind !== "app") return 0;
  const failed = await octokits.callApp("list webhook deliveries", (app) => failedDeliveries(app, since));
  let count = 0;
  for (const deliveryId of failed) {
    await octokits.callApp("redeliver webhook", (app) => app.rest.apps.redeliverWebhookDelivery({ delivery_id: deliveryId }));
    count += 1;
  }
  return count;
}

/** The ids of deliveries since `since` whose GUID never got through, newest first. */
async function failedDeliveries(app: Octokit, since: number): Promise<number[]> {
  const seen = new Set<string>();
  const failed: Array<{ id: number; guid: string }> = [];
  const delivered = new Set<string>();
  listing: for await (const page of app.paginate.iterator(app.rest.apps.listWebhookDeliveries, { per_page: 100 })) {
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
