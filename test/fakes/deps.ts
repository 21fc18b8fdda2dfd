import type { RunnerClass } from "../../src/core/runner-class.js";
import { RunnerIndex } from "../../src/core/runner-index.js";
import { createLogger } from "../../src/log.js";
import type { RunnerDeps, RunnerSettings } from "../../src/ports/index.js";
import { FakeGitHub } from "./github.js";
import { FakeRunnerJobs } from "./runner-jobs.js";
import { FakeSecretStore } from "./secret-store.js";

export const PREFIX = "nomad-gha";
export const RUNNER_JOB = "github-runner";

/** A runner class; by default the one the environment's defaults make (RUNNER_LABELS, NOMAD_RUNNER_JOB). */
export function runnerClass(overrides: Partial<RunnerClass> = {}): RunnerClass {
  const unlimited = { maxRunners: Number.POSITIVE_INFINITY, maxRunnersPerRepo: Number.POSITIVE_INFINITY };
  return { name: "default", labels: ["nomad", "self-hosted"], job: RUNNER_JOB, runnerPrefix: PREFIX, limits: unlimited, ...overrides };
}

/** The workflows' ports on in-memory fakes; retries as many as production's, milliseconds apart. */
export function fakeDeps(settings: Partial<RunnerSettings> = {}) {
  const github = new FakeGitHub();
  const vault = new FakeSecretStore();
  const nomad = new FakeRunnerJobs();
  const deps = {
    github,
    vault,
    nomad,
    log: createLogger({ level: "silent" }),
    runnerIndex: new RunnerIndex(),
    settings: {
      classes: [runnerClass()],
      registration: "jit",
      dispatcherId: "test-dispatcher",
      runnerNamePrefix: PREFIX,
      credentialDelivery: "workload-identity",
      wrapTtl: "10m",
      retentionMs: 600_000,
      retry: { retries: 4, minTimeoutMs: 1, maxTimeoutMs: 2 },
      ...settings,
    },
  } satisfies RunnerDeps;
  return deps;
}

export type FakeDeps = ReturnType<typeof fakeDeps>;

/** A live runner job for `jobId` of `repo`, as an earlier dispatch (or another replica) left it. */
export function addRunnerJob(
  deps: FakeDeps,
  jobId: number,
  repo = "acme/app",
  state: { Status?: "pending" | "running" | "dead"; SubmitTime?: number } = {},
): string {
  const runner = `${PREFIX}-${jobId}`;
  const id = `${RUNNER_JOB}/dispatch-${runner}-1700000000-${jobId.toString(16).padStart(8, "0").slice(-8)}`;
  deps.nomad.add({
    ID: id,
    Meta: { github_repo: repo, github_job_id: String(jobId), runner_name: runner, dispatcher_id: deps.settings.dispatcherId },
    ...state,
  });
  return id;
}
