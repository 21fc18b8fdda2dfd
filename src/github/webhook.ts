import { Webhooks } from "@octokit/webhooks";
import type { JobEvent } from "../core/job-event.js";
import { z } from "../validation.js";

/**
 * Step one of receiving a webhook: is the body signed with one of our secrets? More than one
 * secret is accepted so that a secret can be rotated without dropping deliveries.
 */
export class WebhookVerifier {
  private readonly verifiers: Webhooks[];

  constructor(secrets: string[]) {
    if (secrets.length === 0) throw new Error("at least one webhook secret is required");
    this.verifiers = secrets.map((secret) => new Webhooks({ secret }));
  }

  async verify(rawBody: string, signature: string | undefined): Promise<boolean> {
    // GitHub never sends an empty body (and Octokit's verify throws on one).
    if (!signature || rawBody.length === 0 || !/^sha256=[0-9a-f]{64}$/i.test(signature)) return false;
    for (const verifier of this.verifiers) {
      if (await verifier.verify(rawBody, signature)) return true;
    }
    return false;
  }
}

/** The headers every GitHub delivery carries. */
export interface DeliveryHeaders {
  id: string;
  event: string;
  signature: string | undefined;
  hookId?: string;
}

export function readDeliveryHeaders(get: (name: string) => string | undefined): DeliveryHeaders | string {
  const id = get("x-github-delivery");
  const event = get("x-github-event");
  if (!id) return "missing X-GitHub-Delivery header";
  if (!event) return "missing X-GitHub-Event header";
  return { id, event, signature: get("x-hub-signature-256"), hookId: get("x-github-hook-id") };
}

const KNOWN_ACTIONS = new Set(["queued", "waiting", "in_progress", "completed"]);

const positiveInt = z.int().check(z.positive());
const nullableString = z.optional(z.nullable(z.string()));

const workflowJobPayload = z.object({
  action: z.enum(["queued", "waiting", "in_progress", "completed"]),
  workflow_job: z.object({
    id: positiveInt,
    run_id: positiveInt,
    status: z.string(),
    conclusion: nullableString,
    labels: z.array(z.string()),
    runner_name: nullableString,
    // Older deliveries (before GitHub added it) have no created_at; started_at stands in.
    created_at: z.optional(z.string()),
    started_at: nullableString,
  }),
  repository: z.object({
    name: z.string().check(z.minLength(1)),
    owner: z.object({ login: z.string().check(z.minLength(1)) }),
  }),
  installation: z.optional(z.object({ id: positiveInt })),
});

/**
 * Step two, after verification: the `workflow_job` payload as plain data. Unknown actions are
 * reported as such rather than as malformed, so a future GitHub action is ignored, not rejected.
 */
export function parseWorkflowJob(payload: unknown): { ok: true; event: JobEvent } | { ok: false; error: string } | { ok: "ignore"; reason: string } {
  const action = (payload as { action?: unknown } | null)?.action;
  if (typeof action === "string" && !KNOWN_ACTIONS.has(action)) {
    return { ok: "ignore", reason: `workflow_job action ${action} is not one we act on` };
  }
  const parsed = workflowJobPayload.safeParse(payload);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    return { ok: false, error: `invalid workflow_job payload: ${first?.path.join(".") || "body"}: ${first?.message ?? "malformed"}` };
  }
  const p = parsed.data;
  return {
    ok: true,
    event: {
      action: p.action,
      job: {
        id: p.workflow_job.id,
        runId: p.workflow_job.run_id,
        owner: p.repository.owner.login,
        repo: p.repository.name,
        labels: p.workflow_job.labels,
        status: p.workflow_job.status as JobEvent["job"]["status"],
        conclusion: p.workflow_job.conclusion ?? null,
        runnerName: p.workflow_job.runner_name ?? null,
        // Neither: the job's age is unknown, and provisioning asks GitHub before it trusts the
        // delivery (a signed delivery carries no time of its own and may be a replay).
        createdAt: p.workflow_job.created_at ?? p.workflow_job.started_at ?? "",
        // Only beside its own created_at: one standing in for the other would measure nothing.
        startedAt: p.workflow_job.created_at === undefined ? undefined : (p.workflow_job.started_at ?? undefined),
        installationId: p.installation?.id,
      },
    },
  };
}
