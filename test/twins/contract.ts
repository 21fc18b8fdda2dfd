// Shared shapes between the twins. The twins are test infrastructure (and the engine of
// `npm run demo`); nothing under src/ may import from test/.

/** One HTTP request as a twin received it, kept so tests can assert what crossed the wire. */
export interface RecordedRequest {
  method: string;
  /** Path and query exactly as received, e.g. `/v1/job/github-runner/dispatch?idempotency_token=x`. */
  url: string;
  headers: Record<string, string>;
  body: string;
  status: number;
  /** Response body as sent (text). */
  response: string;
  at: number;
}

/** Fault injection knobs every twin understands (used by the chaos suite). */
export interface FaultPlan {
  /**
   * Called for every request before it is handled; return a response to inject a fault
   * (e.g. `{ status: 503, body: ... }`), or undefined to handle it normally.
   */
  intercept?: (req: {
    method: string;
    path: string;
  }) => { status: number; headers?: Record<string, string>; body: string; delayMs?: number } | { delayMs: number } | undefined;
}

/**
 * What a runner process submits when it starts. A JIT runner brings the encoded JIT config it was
 * given; a classic runner brings a registration token plus the settings `config.sh` takes.
 */
export type RunnerStart =
  | { kind: "jit"; jitconfig: string }
  | { kind: "token"; registrationToken: string; url: string; name: string; labels: string[]; ephemeral: boolean };

/** Outcome of the runner's main task, as the Nomad twin turns it into a task state. */
export interface RunnerExit {
  ok: boolean;
  /** GitHub job the runner ran, if it got one. */
  jobId?: number;
  message: string;
}

/**
 * The Actions service as a runner sees it (not REST: the real runner speaks a private protocol).
 * The GitHub twin implements it; the Nomad twin's runner player calls it from the main and
 * poststop tasks of a runner allocation.
 */
export interface ActionsService {
  /**
   * The runner comes online (`run.sh`): registers (token) or activates (JIT), then waits for a
   * matching queued job, runs it to completion (sending in_progress and completed webhooks),
   * and, being ephemeral, is deregistered by GitHub afterwards. Resolves when the runner process
   * exits. `signal` aborts when Nomad stops the task: the runner exits without a job.
   */
  runRunner(start: RunnerStart, signal: AbortSignal): Promise<RunnerExit>;
  /**
   * `config.sh remove --token <removeToken>` for the runner configured by `start` (poststop).
   * Resolves `removed: false` when the registration was already gone (not an error).
   */
  removeRunner(start: RunnerStart, removeToken: string): Promise<{ removed: boolean }>;
}

/**
 * One runner process as GitHub saw it, from the moment it connected until it went away: for the
 * in-process ActionsService a `runRunner` call; over HTTP a broker session of the listener
 * (created when it starts listening, ended when it deletes the session or stops polling).
 */
export interface RunnerProcessRecord {
  /** Runner name (`.runner` AgentName, or the config.sh `--name`). */
  name: string;
  agentId: number | undefined;
  startedAt: number;
  endedAt: number | undefined;
  /** The GitHub job it ran, if it got one. */
  jobId: number | undefined;
  ok: boolean | undefined;
  message: string | undefined;
}

/**
 * A container image as the Nomad twin runs it: numeric user, working directory, environment, and
 * the image's files for one container. Implemented by `actionsRunnerImage()` (runner-image.ts),
 * the stand-in for ghcr.io/actions/actions-runner.
 */
export interface TwinImage {
  /**
   * The image's USER as numeric ids (official runner image: runner = uid 1001, gid 1001; see
   * images/Dockerfile in actions/runner: adduser --uid 1001 runner, USER runner).
   */
  uid: number;
  gid: number;
  /** WORKDIR inside the image, e.g. /home/runner */
  workdir: string;
  /** ENV lines of the image (RUNNER_MANUALLY_TRAP_SIG=1, ACTIONS_RUNNER_PRINT_LOG_TO_STDOUT=1, ImageOS=ubuntu24) plus HOME. */
  env: Record<string, string>;
  /**
   * Writes this container's private copy of the image's workdir under `root` (a fresh empty host
   * dir) with the owners and modes the image has; returns the host path standing for `workdir`.
   * Called once per task: each Nomad docker task is its own container, so files one task writes
   * are not visible to another except through the shared alloc dir. Chowns to uid/gid when
   * running as root; works (without chown) when not.
   */
  materialize(root: string): Promise<string>;
}

/**
 * Waits until `deadline` (a performance.now() time): how a twin answers at a fixed latency after
 * a request arrived, its own processing included, the way a remote API's latency is measured by
 * its caller. A timer alone fires up to a few ms late, which a latency benchmark would then
 * charge to the service; the last millisecond is waited out on the event loop instead.
 */
export async function holdUntil(deadline: number, signal?: AbortSignal): Promise<void> {
  const early = deadline - performance.now() - 1.5;
  if (early > 0) {
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, early);
      signal?.addEventListener("abort", done, { once: true });
    });
  }
  while (performance.now() < deadline && !signal?.aborted) await new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * A container image as the Nomad twin's docker driver runs it. Each task is its own container:
 * `materialize` gives it a private copy of the image's working directory.
 */
export interface TwinImage {
  /** The image's USER as numeric ids. */
  uid: number;
  gid: number;
  /** WORKDIR inside the image, e.g. /home/runner. */
  workdir: string;
  /** ENV lines of the image (HOME included). */
  env: Record<string, string>;
  /** ENTRYPOINT and CMD, used when the task's config does not set them. */
  entrypoint?: string[];
  cmd?: string[];
  /**
   * Writes this container's private copy of the image's workdir under `root` (a fresh empty host
   * directory), with the owners and modes the image has, and returns the host path standing for
   * `workdir`.
   */
  materialize(root: string): Promise<string>;
}
