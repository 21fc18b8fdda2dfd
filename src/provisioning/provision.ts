import { type RunnerTarget, repoFullName, targetOf, type WorkflowJob } from "../core/job-event.js";
import { dispatchedJobPrefix, idempotencyTokenFor, poolIdempotencyTokenFor } from "../core/naming.js";
import { type JobStatusAtGitHub, replayGuard } from "../core/replay-guard.js";
import { probeRegistrationFirst } from "../core/resume.js";
import { classOfRunner, type RunnerClass } from "../core/runner-class.js";
import type { BudgetClaim, RunnerDeps, RunnerSecret } from "../ports/index.js";
import { withRetry } from "../ports/retry.js";
import { type AttemptMemory, type StoreOutcome, storeJitCredential } from "./credential.js";

/** A runner credential costs 5 points (JIT config or registration token). */
export const CREDENTIAL_POINTS = 5;

export type ProvisionOutcome =
  | { status: "dispatched"; nomadJobId: string }
  /** A runner job for this GitHub job exists already (redelivery, duplicate, other replica). */
  | { status: "duplicate"; nomadJobId: string }
  /**
   * Not now: another attempt is mid-way (it re-registers the runner, or a runner process uses the
   * registration), or the facts kept changing under this one. The caller backs off; a later
   * attempt decides again from the facts (src/core/resume.ts).
   */
  | { status: "in-flight" }
  /**
   * GitHub says the job is not waiting for a runner (running, finished, waiting for approval, or
   * unknown to us): a replayed or stale `queued` delivery. Nothing was issued or dispatched.
   */
  | { status: "not-queued"; jobStatus: JobStatusAtGitHub };

export interface ProvisionOptions {
  /**
   * The caller saw the job queued at GitHub moments ago (the reconciler's plan): GitHub is not
   * asked again, however old the job.
   */
  seenQueued?: boolean;
  /** What this process kept of the job's earlier attempts (a credential it could not store). */
  memory?: AttemptMemory;
  /**
   * Asked before every dispatch request (each retry too); throws when it may not be sent: the
   * slot it would fill may have been given away (SharedCapacityGate.fence).
   */
  beforeDispatch?: () => Promise<void>;
}

/**
 * Labels the runner registers with: exactly its class's, never labels copied from the job, so a
 * job cannot widen what a runner advertises (and so which other jobs GitHub hands it).
 */
export function runnerLabelsFor(cls: RunnerClass): string[] {
  return [...cls.labels];
}

/**
 * Makes sure one runner exists for `job`: credential from GitHub -> Vault -> Nomad dispatch.
 * Every step is idempotent, keyed by the runner name derived from the job id, so the whole
 * workflow can be repeated after any failure, by any replica, without creating a second runner.
 */
export async function provisionRunner(deps: RunnerDeps, job: WorkflowJob, runnerName: string, opts: ProvisionOptions = {}): Promise<ProvisionOutcome> {
  const { nomad, settings } = deps;
  const retry = <T>(fn: () => Promise<T>) => withRetry(fn, settings.retry);
  const target = targetOf(job);
  const cls = classOfRunner(settings.classes, runnerName)?.cls;
  // Callers name runners after the class of the job's labels; anything else is a bug, not a job to serve.
  if (!cls) throw new Error(`runner ${runnerName} belongs to no runner class`);

  // Cheap check first: a runner job already exists, so this is a repeat and costs GitHub nothing.
  const existing = await retry(() => nomad.listJobs(dispatchedJobPrefix(cls.job, runnerName)));
  const current = existing[0];
  const guard = replayGuard({
    now: Date.now(),
    createdAt: job.createdAt,
    retentionMs: settings.retentionMs,
    seenQueued: opts.seenQueued ?? false,
    runnerJobExists: current !== undefined,
  });
  if (guard === "runner-exists") return { status: "duplicate", nomadJobId: current!.ID };
  if (guard === "ask-github") {
    // Fails closed: an error propagates and nothing is issued; a job that really is queued is
    // found by the reconciler's next pass, which provisions it without asking again.
    const jobStatus = await retry(() => deps.github.jobStatus(target, job.id));
    if (jobStatus !== "queued") return { status: "not-queued", jobStatus };
  }

  const memory = opts.memory ?? {};
  const heard = memory.firstHeard ?? { at: Date.now(), seenQueued: opts.seenQueued ?? false };
  const probe = () =>
    probeRegistrationFirst({
      now: heard.at,
      createdAt: job.createdAt,
      seenQueued: heard.seenQueued,
      attemptedHere: memory.attemptedHere === true || memory.held !== undefined,
    });
  return credentialThenDispatch(deps, {
    target,
    runnerName,
    cls,
    probe,
    memory,
    beforeDispatch: opts.beforeDispatch,
    meta: { github_repo: repoFullName(job), github_job_id: String(job.id), github_run_id: String(job.runId) },
    idempotencyToken: idempotencyTokenFor(settings.dispatcherId, job.id),
  });
}

/**
 * Makes sure the warm pool runner `runnerName` exists: the same credential -> Vault -> dispatch,
 * for no job. Its repository is the pool's (`owner/*`: the organisation's) and its job id 0; its
 * name is a pool seat (core/warm-pool), so a repeat, by this replica or another, dispatches nothing twice.
 */
export async function provisionPoolRunner(
  deps: RunnerDeps,
  target: RunnerTarget,
  poolRepo: string,
  runnerName: string,
  opts: Pick<ProvisionOptions, "beforeDispatch"> = {},
): Promise<Exclude<ProvisionOutcome, { status: "not-queued" }>> {
  const { nomad, settings } = deps;
  const cls = classOfRunner(settings.classes, runnerName)?.cls;
  if (!cls) throw new Error(`runner ${runnerName} belongs to no runner class`);
  const existing = await withRetry(() => nomad.listJobs(dispatchedJobPrefix(cls.job, runnerName)), settings.retry);
  if (existing[0]) return { status: "duplicate", nomadJobId: existing[0].ID };
  return credentialThenDispatch(deps, {
    target,
    runnerName,
    cls,
    // A seat is reused once its runner is gone: its name may still be registered (a runner that
    // never started), which one read finds cheaper than a refused registration.
    probe: () => true,
    memory: {},
    beforeDispatch: opts.beforeDispatch,
    meta: { github_repo: poolRepo, github_job_id: "0", github_run_id: "0" },
    idempotencyToken: poolIdempotencyTokenFor(settings.dispatcherId, runnerName),
  });
}

interface DispatchRequest {
  target: RunnerTarget;
  runnerName: string;
  cls: RunnerClass;
  /** Look at GitHub's registration before registering (see probeRegistrationFirst). */
  probe: () => boolean;
  memory: AttemptMemory;
  beforeDispatch?: () => Promise<void>;
  /** What the runner job's meta says of the GitHub job it is for. */
  meta: { github_repo: string; github_job_id: string; github_run_id: string };
  idempotencyToken: string;
}

/** The credential into Vault, then the dispatch: what a job's runner and a pool's share. */
async function credentialThenDispatch(deps: RunnerDeps, req: DispatchRequest): Promise<Exclude<ProvisionOutcome, { status: "not-queued" }>> {
  const { nomad, settings } = deps;
  const { runnerName, cls, target } = req;
  const retry = <T>(fn: () => Promise<T>) => withRetry(fn, settings.retry);
  const stored = await storeCredential(deps, req);
  if (stored === "in-flight") return { status: "in-flight" };

  // With workload identity the allocation reads the secret itself; the dispatch carries nothing
  // Vault would accept. The fallback hands it a single-use wrapping token, visible in the meta.
  const credential: Record<string, string> = {};
  if (settings.credentialDelivery === "wrap") {
    credential.credential_wrap_token = await retry(() => deps.vault.wrapRunnerSecret(runnerName, settings.wrapTtl));
    deps.log.debug({ runner: runnerName, ttl: settings.wrapTtl }, "single-use wrapping token issued");
  }
  deps.runnerIndex?.dispatching(runnerName);
  const result = await retry(async () => {
    await req.beforeDispatch?.();
    return nomad.dispatch(cls.job, {
      meta: {
        ...req.meta,
        runner_name: runnerName,
        runner_labels: runnerLabelsFor(cls).join(","),
        runner_scope_url: deps.github.scopeUrl(target),
        ...credential,
        dispatcher_id: settings.dispatcherId,
      },
      idempotencyToken: req.idempotencyToken,
      idPrefixTemplate: runnerName,
    });
  });
  return result.created ? { status: "dispatched", nomadJobId: result.dispatchedJobId } : { status: "duplicate", nomadJobId: result.dispatchedJobId };
}

/**
 * `auto` spends JIT configs (single-use, 5 points each) while the budget has room right now,
 * and falls back to the cached registration token of the repository beyond that. The points are
 * claimed as the choice is made, so a burst of concurrent provisions cannot all choose JIT on
 * the same free points; and half the minute's budget stays free for the registration and remove
 * tokens (5 points per repository and hour each) the fallback needs.
 */
function registrationFor(deps: RunnerDeps, target: RunnerTarget): { kind: "jit"; claim?: BudgetClaim } | { kind: "token" } {
  const mode = deps.settings.registration;
  if (mode !== "auto") return { kind: mode };
  const budget = deps.github.budgetFor(target);
  const claim = budget.claim(CREDENTIAL_POINTS, budget.pointsPerMinute / 2);
  return claim ? { kind: "jit", claim } : { kind: "token" };
}

/** Gets a credential from GitHub and writes it to Vault; "resumed" when an earlier attempt did. */
async function storeCredential(deps: RunnerDeps, req: DispatchRequest): Promise<StoreOutcome> {
  const { github, vault, settings, log } = deps;
  const { target, runnerName, memory } = req;
  const registration = registrationFor(deps, target);
  if (registration.kind === "jit") {
    const labels = runnerLabelsFor(req.cls);
    return storeJitCredential(deps, { target, runnerName, labels, claim: registration.claim, probe: req.probe(), memory });
  }
  const retry = <T>(fn: () => Promise<T>) => withRetry(fn, settings.retry);
  // A registration token is the repository's, not the runner's: writing it again is harmless.
  const secret: RunnerSecret = { kind: "token", registration_token: await retry(() => github.registrationToken(target)) };
  log.info({ runner: runnerName, job: req.meta.github_job_id }, "credential obtained: registration token");
  await retry(() => vault.putRunnerSecret(runnerName, secret));
  log.info({ runner: runnerName, path: vault.secretPath(runnerName) }, "credential stored in Vault");
  return "stored";
}
