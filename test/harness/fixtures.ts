import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { onTestFinished } from "vitest";
import type { WorkflowJob } from "../../src/core/job-event.js";

/** When the fixture's jobs were queued: as the test file loads, so every job of a file is equal. */
const QUEUED_JUST_NOW = new Date().toISOString();

/** A job of acme/app queued just now, asking for our labels; tests override what they are about. */
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
    createdAt: QUEUED_JUST_NOW,
    ...overrides,
  };
}

/** A fresh directory under the system's temporary one, removed when the calling test ends. */
export function scratchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
