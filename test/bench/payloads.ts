// Signed, real `workflow_job` deliveries for the ingest bench: the examples from
// @octokit/webhooks-examples, given distinct job ids so that no two requests are the same event.
import { createHmac, randomUUID } from "node:crypto";
import { createRequire } from "node:module";

export type IngestKind = "ignored" | "in_progress" | "completed";

export interface SignedDelivery {
  body: string;
  headers: Record<string, string>;
}

type Json = Record<string, unknown>;

const require = createRequire(import.meta.url);

function example(action: string, predicate: (job: Json) => boolean = () => true): Json {
  const all = (require("@octokit/webhooks-examples") as Array<{ name: string; examples: Json[] }>).find((e) => e.name === "workflow_job")?.examples ?? [];
  const found = all.find((e) => e["action"] === action && predicate(e["workflow_job"] as Json));
  if (!found) throw new Error(`no workflow_job.${action} example`);
  return structuredClone(found);
}

/**
 * - ignored: the real `queued` example as is (runs-on ubuntu-latest): not our labels.
 * - in_progress: the real `in_progress` example for a job with our labels, taken by one of our
 *   runners (`nomad-gha-<id>`): the service logs it, nothing else.
 * - completed: the real `completed` example for a job with our labels that ran on a runner that
 *   is not ours ("GitHub Actions 5"): the service looks for the runner it may have dispatched for
 *   that job (one Nomad list; nothing was dispatched, so nothing more).
 */
export function deliveries(kind: IngestKind, secret: string, count: number, labels = ["self-hosted", "nomad"]): SignedDelivery[] {
  const base =
    kind === "ignored" ? example("queued") : kind === "in_progress" ? example("in_progress", (j) => j["status"] === "in_progress") : example("completed");
  const out: SignedDelivery[] = [];
  for (let i = 0; i < count; i++) {
    const payload = structuredClone(base);
    const job = payload["workflow_job"] as Json;
    const id = 9_000_000_000 + i;
    job["id"] = id;
    if (kind !== "ignored") job["labels"] = labels;
    if (kind === "in_progress") job["runner_name"] = `nomad-gha-${id}`;
    if (kind === "completed") job["runner_name"] = "GitHub Actions 5";
    const body = JSON.stringify(payload);
    out.push({
      body,
      headers: {
        "content-type": "application/json",
        "user-agent": "GitHub-Hookshot/bench",
        "x-github-event": "workflow_job",
        "x-github-delivery": randomUUID(),
        "x-hub-signature-256": `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`,
      },
    });
  }
  return out;
}
