// `workflow_job` webhook deliveries. Payloads start from a real example out of
// @octokit/webhooks-examples (deep-cloned) and take the twin's repository, job, sender and
// installation. Requests carry GitHub's headers and signatures. Every attempt is recorded for the
// deliveries API; a failed delivery is not retried (GitHub does not retry either), but it can be
// redelivered.

import { createHmac, randomBytes, randomUUID } from "node:crypto";
import { createRequire } from "node:module";
import { sign } from "@octokit/webhooks-methods";
import { Agent, request } from "undici";
import type { Account, GitHubState, Job, Repo } from "./github-model.js";
import type { GitHubShapes, JsonObject } from "./github-shapes.js";
import { legacyNodeId } from "./github-shapes.js";

export type WorkflowJobAction = "queued" | "waiting" | "in_progress" | "completed";

export interface WebhookHook {
  id: number;
  url: string;
  secret: string;
  /** App webhook: receives events of that app's installations only, listed under /app/hook/deliveries. */
  appId: number | undefined;
  /**
   * Organization webhook (its login, lower-cased): events of that organization's repositories,
   * listed under /orgs/{org}/hooks. Repository webhook (`owner/repo`, lower-cased): that
   * repository's events, under /repos/{owner}/{repo}/hooks. Neither: every event (tests).
   */
  org?: string;
  repo?: string;
  createdAt: string;
}

/**
 * One delivery attempt: the deliveries API's fields (GitHub's names), the body exactly as sent
 * (`payload`, e.g. to re-post it or check its signature) and the exchange in detail.
 */
export interface TwinDelivery {
  id: number;
  guid: string;
  hook_id: number;
  url: string;
  delivered_at: string;
  redelivery: boolean;
  /** "OK" for a 2xx, otherwise GitHub's failure text. */
  status: string;
  /** 0 when no HTTP response came back. */
  status_code: number;
  event: string;
  action: string | null;
  installation_id: number | null;
  repository_id: number | null;
  /** Seconds. */
  duration: number;
  payload: string;
  request: { headers: Record<string, string>; payload: JsonObject };
  response: { headers: Record<string, string>; payload: string | null };
}

interface ExampleCollection {
  name: string;
  examples: JsonObject[];
}

const require = createRequire(import.meta.url);
const DELIVERY_TIMEOUT_MS = 10_000;
const MAX_RECORDED_RESPONSE = 64 * 1024;

let workflowJobExamples: JsonObject[] | undefined;

function examplesFor(action: WorkflowJobAction, status: string): JsonObject {
  workflowJobExamples ??= (require("@octokit/webhooks-examples") as ExampleCollection[]).find((e) => e.name === "workflow_job")?.examples ?? [];
  const ofAction = workflowJobExamples.filter((e) => e["action"] === action);
  const statusOf = (e: JsonObject) => (e["workflow_job"] as JsonObject | undefined)?.["status"];
  // Prefer an example whose job is in the same state and that came to an app (has installation).
  const ranked = [...ofAction].sort(
    (a, b) => Number(statusOf(b) === status) - Number(statusOf(a) === status) || Number("installation" in b) - Number("installation" in a),
  );
  const example = ranked[0];
  if (!example) throw new Error(`@octokit/webhooks-examples has no workflow_job.${action} example`);
  return structuredClone(example);
}

export class WebhookSender {
  readonly hooks: WebhookHook[] = [];
  private readonly records: TwinDelivery[] = [];
  private readonly pending = new Set<Promise<unknown>>();
  /** Per job, the tail of its delivery chain: a job's events go out in the order they happened. */
  private readonly jobChains = new Map<number, Promise<void>>();
  private readonly agent = new Agent({ keepAliveTimeout: 1_000, connections: 64 });
  private readonly hookshotVersion = randomBytes(4).toString("hex").slice(0, 7);
  private nextHookId = 500_000_000;
  private nextDeliveryId = 80_000_000_000;

  constructor(
    private readonly state: GitHubState,
    private readonly shapes: GitHubShapes,
    private readonly sender: Account,
    private readonly lifetime: AbortSignal,
  ) {}

  addHook(hook: Omit<WebhookHook, "id" | "createdAt">): number {
    const id = ++this.nextHookId;
    this.hooks.push({ ...hook, id, createdAt: this.state.nowIso() });
    return id;
  }

  /** Deliveries to one hook, newest first (the order of the hook deliveries listings). */
  forHook(hookId: number): TwinDelivery[] {
    return this.records.filter((d) => d.hook_id === hookId).reverse();
  }

  deliveries(): TwinDelivery[] {
    return this.records.map((d) => structuredClone(d));
  }

  find(id: number): TwinDelivery | undefined {
    return this.records.find((d) => d.id === id);
  }

  /** Deliveries to hooks of this app, newest first (the order of /app/hook/deliveries). */
  forApp(appId: number): TwinDelivery[] {
    const hookIds = new Set(this.hooks.filter((h) => h.appId === appId).map((h) => h.id));
    return this.records.filter((d) => hookIds.has(d.hook_id)).reverse();
  }

  /**
   * Sends the event for the job's current state to every interested hook; resolves once every
   * delivery got its response (or failed). The payload is taken now, the sending is queued behind
   * the job's earlier events.
   */
  sendJobEvent(job: Job, action: WorkflowJobAction): Promise<void> {
    const messages = this.hooks.filter((hook) => this.hookWants(hook, job.run.repo)).map((hook) => ({ hook, payload: this.payload(job, action, hook) }));
    const previous = this.jobChains.get(job.id) ?? Promise.resolve();
    const sending = previous.then(async () => {
      await Promise.all(messages.map((m) => this.deliver(m.hook, "workflow_job", m.payload, randomUUID(), false)));
    });
    this.jobChains.set(job.id, sending);
    return this.track(sending);
  }

  /** Sends a recorded delivery again: new delivery id, same GUID, `redelivery: true`. */
  redeliver(deliveryId: number): Promise<TwinDelivery> | undefined {
    const original = this.find(deliveryId);
    const hook = this.hooks.find((h) => h.id === original?.hook_id);
    if (!original || !hook) return undefined;
    return this.track(this.deliver(hook, original.event, structuredClone(original.request.payload), original.guid, true));
  }

  /** Resolves when every delivery started so far has finished. */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  async close(): Promise<void> {
    await this.agent.destroy();
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.pending.add(promise);
    void promise.then(
      () => this.pending.delete(promise),
      () => this.pending.delete(promise),
    );
    return promise;
  }

  private hookWants(hook: WebhookHook, repo: Repo): boolean {
    if (hook.org !== undefined) return repo.owner.login.toLowerCase() === hook.org;
    if (hook.repo !== undefined) return repo.fullName.toLowerCase() === hook.repo;
    if (hook.appId === undefined) return true;
    const installation = repo.installationId === undefined ? undefined : this.state.installations.get(repo.installationId);
    return installation?.appId === hook.appId;
  }

  private payload(job: Job, action: WorkflowJobAction, hook: WebhookHook): JsonObject {
    const repo = job.run.repo;
    const payload = examplesFor(action, job.status);
    payload["action"] = action;
    payload["workflow_job"] = this.shapes.job(job);
    payload["repository"] = overlay(payload["repository"], this.shapes.repository(repo));
    payload["sender"] = this.shapes.simpleUser(this.sender);
    delete payload["deployment"];
    delete payload["enterprise"];
    if (repo.owner.type === "Organization") payload["organization"] = this.organization(repo.owner, payload["organization"]);
    else delete payload["organization"];
    const installation = repo.installationId === undefined ? undefined : this.state.installations.get(repo.installationId);
    if (installation && (hook.appId === undefined || hook.appId === installation.appId)) {
      payload["installation"] = { id: installation.id, node_id: legacyNodeId("IntegrationInstallation", installation.id) };
    } else {
      delete payload["installation"];
    }
    return payload;
  }

  private organization(org: Account, example: unknown): JsonObject {
    const api = `${this.shapes.urls.api}/orgs/${org.login}`;
    return overlay(example, {
      login: org.login,
      id: org.id,
      node_id: legacyNodeId("Organization", org.id),
      url: api,
      repos_url: `${api}/repos`,
      events_url: `${api}/events`,
      hooks_url: `${api}/hooks`,
      issues_url: `${api}/issues`,
      members_url: `${api}/members{/member}`,
      public_members_url: `${api}/public_members{/member}`,
      avatar_url: `https://avatars.githubusercontent.com/u/${org.id}?v=4`,
      description: null,
    });
  }

  private async deliver(hook: WebhookHook, event: string, payload: JsonObject, guid: string, redelivery: boolean): Promise<TwinDelivery> {
    const body = JSON.stringify(payload);
    const targetIsApp = hook.appId !== undefined;
    const headers: Record<string, string> = {
      Accept: "*/*",
      "Content-Type": "application/json",
      "User-Agent": `GitHub-Hookshot/${this.hookshotVersion}`,
      "X-GitHub-Delivery": guid,
      "X-GitHub-Event": event,
      "X-GitHub-Hook-ID": String(hook.id),
      "X-GitHub-Hook-Installation-Target-ID": String(
        hook.appId ?? (hook.org !== undefined ? (payload["organization"] as JsonObject | undefined)?.["id"] : (payload["repository"] as JsonObject)["id"]),
      ),
      "X-GitHub-Hook-Installation-Target-Type": targetIsApp ? "integration" : hook.org !== undefined ? "organization" : "repository",
      "X-Hub-Signature": `sha1=${createHmac("sha1", hook.secret).update(body).digest("hex")}`,
      "X-Hub-Signature-256": await sign(hook.secret, body),
    };
    const started = performance.now();
    const deliveredAt = this.state.nowIso();
    const outcome = await this.post(hook.url, headers, body);
    const record: TwinDelivery = {
      id: ++this.nextDeliveryId,
      guid,
      hook_id: hook.id,
      url: hook.url,
      delivered_at: deliveredAt,
      redelivery,
      ...outcome.summary,
      event,
      action: typeof payload["action"] === "string" ? payload["action"] : null,
      installation_id: numberAt(payload, "installation"),
      repository_id: numberAt(payload, "repository"),
      duration: Math.round(performance.now() - started) / 1000,
      payload: body,
      request: { headers, payload },
      response: outcome.response,
    };
    this.records.push(record);
    return structuredClone(record);
  }

  private async post(url: string, headers: Record<string, string>, body: string) {
    try {
      const response = await request(url, {
        method: "POST",
        headers,
        body,
        dispatcher: this.agent,
        signal: AbortSignal.any([this.lifetime, AbortSignal.timeout(DELIVERY_TIMEOUT_MS)]),
      });
      const text = (await response.body.text()).slice(0, MAX_RECORDED_RESPONSE);
      const ok = response.statusCode >= 200 && response.statusCode < 300;
      return {
        summary: { status: ok ? "OK" : `Invalid HTTP Response: ${response.statusCode}`, status_code: response.statusCode },
        response: { headers: flattenHeaders(response.headers), payload: text },
      };
    } catch (error) {
      const timedOut = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
      return {
        summary: { status: timedOut ? "timed out" : "failed to connect to host", status_code: 0 },
        response: { headers: {}, payload: null },
      };
    }
  }
}

/**
 * Webhook objects have their own field sets (a webhook repository is not a REST one), so keep the
 * real example's keys, taking the twin's value wherever it has one.
 */
function overlay(example: unknown, ours: JsonObject): JsonObject {
  const base = typeof example === "object" && example !== null && !Array.isArray(example) ? (example as JsonObject) : ours;
  const merged: JsonObject = {};
  for (const key of Object.keys(base)) merged[key] = key in ours ? ours[key] : base[key];
  return merged;
}

function numberAt(payload: JsonObject, key: string): number | null {
  const value = payload[key];
  if (typeof value !== "object" || value === null) return null;
  const id = (value as JsonObject)["id"];
  return typeof id === "number" ? id : null;
}

function flattenHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined) out[name] = Array.isArray(value) ? value.join(", ") : value;
  return out;
}
