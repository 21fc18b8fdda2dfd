// What the tasks of jobs/github-runner.nomad.hcl do, played step by step from their template
// scripts: fetch-credential.sh (prestart), run-runner.sh (main), remove-runner.sh (poststop).
// Exit codes are the ones the real tools would give (curl -f: 22, connection failure: 7, `jq -e`
// on a missing key: 1), so task events read like a real client's.

import type { ActionsService, RunnerStart } from "./contract.js";
import { isObject } from "./nomad-hcl.js";
import type { Json, JsonObject, TwinTask } from "./nomad-types.js";

/** `$NOMAD_ALLOC_DIR/runner`: shared by the tasks of one allocation, gone with it. */
export interface AllocDir {
  /** credential.json as the prestart task wrote it (the whole unwrap response). */
  credential?: JsonObject;
  /** The runner was configured (`.runner` exists), so poststop can deregister it. */
  runnerStart?: RunnerStart;
}

export interface TaskContext {
  task: TwinTask;
  /** The task's environment after client-side interpolation. */
  env: Record<string, string>;
  /** Job, group and task meta merged, as NOMAD_META_* exposes it. */
  meta: Record<string, string>;
  allocDir: AllocDir;
  /** Aborts when the client kills the task. */
  signal: AbortSignal;
  /** Aborts when the task's process crashes on its own (an injected fault), not killed by the client. */
  crash?: AbortSignal;
  log(line: string): void;
}

export interface ScriptHost {
  actions: ActionsService;
  /** Faults drawn when a task starts (each call consumes one). */
  takePrestartFailure(): boolean;
  takeMainCrash(): boolean;
  /** How long a crashing runner lives before it dies. */
  crashAfterMs: number;
}

/** A task's behaviour: resolves with the process exit code. */
export type TaskScript = (ctx: TaskContext, host: ScriptHost) => Promise<number>;

// ---------------------------------------------------------------------------------------------
// fetch-credential.sh

export const fetchCredential: TaskScript = async (ctx, host) => {
  if (host.takePrestartFailure()) {
    ctx.log("fetch-credential: injected failure");
    return 1;
  }
  const wrapToken = ctx.meta.credential_wrap_token;
  const vaultAddr = ctx.env.VAULT_ADDR;
  if (wrapToken === undefined) return unbound(ctx, "NOMAD_META_credential_wrap_token");
  if (vaultAddr === undefined) return unbound(ctx, "VAULT_ADDR");
  const url = `${vaultAddr}/v1/sys/wrapping/unwrap`;
  let response: Response;
  try {
    response = await fetch(url, { method: "POST", headers: { "X-Vault-Token": wrapToken }, signal: ctx.signal });
  } catch (err) {
    ctx.log(`curl: (7) Failed to connect to ${url}: ${(err as Error).message}`);
    return 7;
  }
  const body = await response.text().catch(() => "");
  if (response.status >= 400) {
    ctx.log(`curl: (22) The requested URL returned error: ${response.status}`);
    return 22;
  }
  const credential = parseJson(body);
  if (credential === undefined) {
    ctx.log("jq: error (at <stdin>:0): Cannot parse credential.json");
    return 2;
  }
  ctx.allocDir.credential = credential;
  const kind = dig(credential, "data", "data", "kind");
  if (kind === null || kind === false || kind === undefined) return 1;
  ctx.log(`credential for ${ctx.meta.runner_name ?? ""} unwrapped`);
  return 0;
};

function unbound(ctx: TaskContext, variable: string): number {
  ctx.log(`bash: ${variable}: unbound variable`);
  return 1;
}

function parseJson(text: string): JsonObject | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return isObject(value as Json) ? (value as JsonObject) : undefined;
  } catch {
    return undefined;
  }
}

function dig(value: Json | undefined, ...path: string[]): Json | undefined {
  let current = value;
  for (const key of path) current = isObject(current ?? null) ? (current as JsonObject)[key] : undefined;
  return current;
}

// ---------------------------------------------------------------------------------------------
// run-runner.sh

export const runRunner: TaskScript = async (ctx, host) => {
  const credential = dig(ctx.allocDir.credential, "data", "data");
  const start = runnerStartFrom(credential, ctx.meta);
  if (!start) {
    ctx.log("base64: invalid input");
    return 1;
  }
  // From here `.runner` exists in the alloc dir: the runner is configured.
  ctx.allocDir.runnerStart = start;
  const crash = host.takeMainCrash();
  const base = crash ? crashingSignal(ctx.signal, host.crashAfterMs) : ctx.signal;
  const runnerSignal = ctx.crash ? AbortSignal.any([base, ctx.crash]) : base;
  const exit = await host.actions.runRunner(start, runnerSignal).catch((err: unknown) => ({ ok: false, message: String(err) }));
  if ((crash || ctx.crash?.aborted) && !ctx.signal.aborted) {
    ctx.log("runner process crashed");
    return 1;
  }
  ctx.log(exit.message);
  return exit.ok ? 0 : 1;
};

/** A JIT config carries everything; a registration token goes through config.sh with the meta. */
function runnerStartFrom(credential: Json | undefined, meta: Record<string, string>): RunnerStart | undefined {
  const data = isObject(credential ?? null) ? (credential as JsonObject) : {};
  if (data.kind === "jit") {
    return typeof data.jitconfig === "string" && data.jitconfig !== "" ? { kind: "jit", jitconfig: data.jitconfig } : undefined;
  }
  return {
    kind: "token",
    // `jq -r` prints "null" for a missing key, and config.sh receives exactly that.
    registrationToken: typeof data.registration_token === "string" ? data.registration_token : "null",
    url: meta.runner_scope_url ?? "",
    name: meta.runner_name ?? "",
    labels: (meta.runner_labels ?? "").split(",").map((label) => label.trim()).filter((label) => label !== ""),
    ephemeral: true,
  };
}

/** The runner dies on its own shortly after it started (or earlier, if the client kills it). */
function crashingSignal(parent: AbortSignal, afterMs: number): AbortSignal {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error("runner crashed")), afterMs);
  parent.addEventListener(
    "abort",
    () => {
      clearTimeout(timer);
      controller.abort(parent.reason);
    },
    { once: true },
  );
  return controller.signal;
}

// ---------------------------------------------------------------------------------------------
// remove-runner.sh: never fails the allocation.

export const removeRunner: TaskScript = async (ctx, host) => {
  const { credential, runnerStart } = ctx.allocDir;
  if (credential && runnerStart) {
    const token = dig(credential, "data", "data", "remove_token");
    if (typeof token === "string" && token !== "") {
      try {
        const { removed } = await host.actions.removeRunner(runnerStart, token);
        ctx.log(removed ? "runner removed" : "runner not removed here; the dispatcher will");
      } catch (err) {
        ctx.log(`runner not removed here; the dispatcher will (${String(err)})`);
      }
    } else {
      ctx.log("runner not removed here; the dispatcher will");
    }
  }
  // rm -rf "$dir"
  delete ctx.allocDir.credential;
  delete ctx.allocDir.runnerStart;
  return 0;
};

// ---------------------------------------------------------------------------------------------
// Tasks that are not part of the runner flow

/** A sidecar lives until the client kills it. */
export const sidecar: TaskScript = (ctx) =>
  new Promise((resolve) => {
    if (ctx.signal.aborted) resolve(0);
    else ctx.signal.addEventListener("abort", () => resolve(0), { once: true });
  });

export const exitImmediately: TaskScript = () => Promise.resolve(0);

/** Which script a task plays, by its lifecycle position in the group. */
export function scriptFor(task: TwinTask): TaskScript {
  const lifecycle = task.Lifecycle;
  if (!lifecycle) return runRunner;
  if (lifecycle.Sidecar) return sidecar;
  if (lifecycle.Hook === "prestart") return fetchCredential;
  if (lifecycle.Hook === "poststop") return removeRunner;
  return exitImmediately;
}
