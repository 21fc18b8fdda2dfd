import type { WorkflowJob } from "../../src/core/job-event.js";

/** A queued job of acme/app asking for our labels; tests override what they are about. */
export function workflowJob(overrides: Partial<WorkflowJob> = {}): WorkflowJob {
  return {
    id: 42,
    runId: 7,
    owner: "acme",
    repo: "app",
    labels: ["self-hosted", "nomad"],
    status: "queued",
    conclusion: null,
    runnerName: null,
    createdAt: "2026-11-23T08:00:00Z",
    ...overrides,
  };
}
