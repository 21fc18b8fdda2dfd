// Everything of the GitHub twin a runner deals with, put together: the runner-facing HTTP surface
// (registration with RemoteAuth, OAuth, broker, run service, release downloads) that the runner
// image stand-in talks to, and the in-process ActionsService kept for callers that do not run the
// stand-in yet. Both report the runner processes they see into one list.

import type { FaultPlan, RecordedRequest, RunnerProcessRecord } from "./contract.js";
import type { Credentials } from "./github-auth.js";
import { Broker } from "./github-broker.js";
import type { GitHubState } from "./github-model.js";
import { releaseDownloadRoute } from "./github-releases.js";
import { runnerAdminRoutes } from "./github-runner-admin.js";
import { RunnerSurface } from "./github-runner-http.js";
import { RunnerService } from "./github-runners.js";
import type { GitHubShapes, TwinUrls } from "./github-shapes.js";
import type { WebhookSender } from "./github-webhooks.js";

export interface RunnerSideOptions {
  state: GitHubState;
  credentials: Credentials;
  shapes: GitHubShapes;
  webhooks: WebhookSender;
  urls: TwinUrls;
  clock: () => number;
  lifetime: AbortSignal;
  jobDurationMs: number;
  updateDelayMs: number;
  pollTimeoutMs: number;
  lostAfterMs: number;
}

export class RunnerSide {
  /** Runner-side exchanges (not the REST API a service calls). */
  readonly requests: RecordedRequest[] = [];
  /** Faults injected into runner-side requests only (`GitHubTwin.faults` covers the REST API). */
  readonly faults: FaultPlan = {};
  readonly processes: RunnerProcessRecord[] = [];
  readonly service: RunnerService;
  readonly surface: RunnerSurface;
  private readonly broker: Broker;
  private updates = 0;

  constructor(o: RunnerSideOptions) {
    const { state, credentials, webhooks, urls, lifetime } = o;
    this.service = new RunnerService({ state, credentials, webhooks, urls, jobDurationMs: o.jobDurationMs, lifetime, processes: this.processes });
    this.broker = new Broker({
      state,
      credentials,
      webhooks,
      urls,
      processes: this.processes,
      jobDurationMs: o.jobDurationMs,
      pollTimeoutMs: o.pollTimeoutMs,
      lostAfterMs: o.lostAfterMs,
      lifetime,
    });
    this.surface = new RunnerSurface({
      routes: [
        ...runnerAdminRoutes({ state, credentials, shapes: o.shapes, urls }),
        ...this.broker.routes(),
        releaseDownloadRoute({ delayMs: o.updateDelayMs, downloaded: () => (this.updates += 1) }),
      ],
      faults: this.faults,
      requests: this.requests,
      clock: o.clock,
      lifetime,
    });
  }

  /** Self-updates runners performed (release packages downloaded). */
  get updatesDone(): number {
    return this.updates;
  }

  close(): void {
    this.broker.close();
  }
}
