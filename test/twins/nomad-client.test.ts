// What the Nomad twin's client must guarantee now that it runs tasks for real, each as a real
// Nomad client does it: template owners and modes against the image's user, the allocation
// directory's owners and modes, what of the runner's credential reaches which process, kill
// timeouts capped by max_kill_timeout, lost allocations and `disconnect.replace`, and Vault tokens
// through workload identity.
//
// The runner's credential comes from the Vault twin, set up as policies/README.md has an operator
// do it (test/harness/runner-identity.ts) and written by the dispatcher's own adapter (VaultStore):
// the real job and its real scripts log in, read, look up, unwrap and revoke against a real
// Vault API, whose audit log says what happened.

import { randomUUID } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CREDENTIAL_REFUSED_EXIT_CODE } from "../../src/core/credential-refused.js";
import type { RunnerSecret, VaultStore } from "../../src/vault/client.js";
import { NomadTwin, type NomadTwinOptions, type TwinAllocation } from "./nomad.js";
import {
  allCommandLines,
  api,
  bashTask,
  descendantProcesses,
  eventTypes,
  exitCodeOf,
  FakeActions,
  group,
  IS_ROOT,
  jitConfig,
  nobodyIds,
  parseHcl,
  processUmask,
  RUNNER_IMAGE,
  RUNNER_JOB_HCL,
  RUNNER_UID,
  registerJob,
  runHcl,
  runnerFiles,
  startRunnerVault,
  until,
  waitForAllocations,
} from "./nomad-fakes.js";
import { formatGoDuration } from "./nomad-hcl.js";
import { type AuditEntry, VaultTwin } from "./vault.js";

const ROOT_ONLY = "[needs root: the twin's client chowns, bind-mounts and drops to the image's user only as root, as a real client]";

const META = {
  github_repo: "octo/repo",
  github_job_id: "101",
  github_run_id: "202",
  runner_name: "gha-101",
  runner_labels: "self-hosted,linux",
  runner_scope_url: "https://github.com/octo/repo",
};

/**
 * Where the dispatcher stores a runner's credential and the prestart reads it, written out here
 * rather than asked of the adapter or the script: both must agree with it.
 */
const secretPathOf = (name: string) => `secret/data/nomad-gha-dispatcher/runners/default/github-runner/${name}`;

/** Anything that looks like a Vault service or wrapping token. */
const VAULT_TOKEN_PATTERN = /\bhvs\.[A-Za-z0-9_.-]{20,}/;

let timeline: string[];
let vault: VaultTwin;
let store: VaultStore;
let actions: FakeActions;
let twin: NomadTwin;
/** Tokens this test knows of (the root token, wrapping tokens it had made). */
let knownTokens: Set<string>;
/** What the host showed while Vault served a request: command lines and task environments with a token. */
let leaks: string[];
/** Requests Vault served while a process of a prestart task ran (proof the watch covered them). */
let watchedPrestartRequests: string[];

function startTwin(opts: Partial<NomadTwinOptions> = {}): Promise<NomadTwin> {
  const image = actions.image();
  return NomadTwin.start({ images: (name) => (name === RUNNER_IMAGE ? image : undefined), startDelayMs: 1, vault: { addr: vault.url }, ...opts });
}

/** The Vault token the twin's client wrote for an allocation's prestart task, as the host has it. */
function prestartTokenPath(allocId: string): string {
  return join(twin.allocDirPath(allocId), "configure-runner", "secrets", "vault_token");
}

function prestartTokens(): string[] {
  return (twin?.allocations() ?? []).flatMap((alloc) => {
    try {
      return [readFileSync(prestartTokenPath(alloc.ID), "utf8")].filter((token) => token !== "");
    } catch {
      return [];
    }
  });
}

/**
 * While Vault serves a request (the prestart's curl waiting for its answer), no process may have
 * a Vault token on its command line, nor a task process a Vault token in its environment: /proc
 * shows both to others. A token of this test is looked for on every host process; anything that
 * looks like a token only on this test's own processes, as other test runs may share the host.
 * (A wrapping token is job meta, so every task has it in its environment as NOMAD_META_*, by
 * design: that is why the fallback checks it before use.)
 */
function watchHost(method: string, path: string): void {
  const identityTokens = [vault.rootToken, ...prestartTokens()];
  const tokens = [...knownTokens, ...identityTokens];
  for (const line of allCommandLines()) {
    if (tokens.some((token) => line.includes(token))) leaks.push(`${method} ${path}: command line ${line}`);
  }
  const ours = descendantProcesses();
  for (const { cmdline, env } of ours) {
    if (VAULT_TOKEN_PATTERN.test(cmdline) && !tokens.some((token) => cmdline.includes(token))) leaks.push(`${method} ${path}: command line ${cmdline}`);
    for (const item of env) {
      if (item.startsWith("VAULT_TOKEN=") || identityTokens.some((token) => item.includes(token))) leaks.push(`${method} ${path}: environment ${item}`);
    }
  }
  if (ours.some(({ env }) => env.includes("NOMAD_TASK_NAME=configure-runner"))) watchedPrestartRequests.push(`${method} ${path}`);
}

beforeEach(async () => {
  timeline = [];
  knownTokens = new Set();
  leaks = [];
  watchedPrestartRequests = [];
  ({ vault, store } = await startRunnerVault());
  knownTokens.add(vault.rootToken);
  vault.faults.intercept = ({ method, path }) => {
    watchHost(method, path);
    return undefined;
  };
  actions = new FakeActions(timeline);
  await actions.start();
  twin = await startTwin();
});

afterEach(async () => {
  await twin.close();
  await actions.close();
  await vault.close();
  // Whatever the test: no Vault token showed on the host while Vault answered.
  expect(leaks).toEqual([]);
});

/**
 * The real runner job as the dispatcher registers it, optionally changed before registration.
 * `variables` adds to vault_addr (`vault_role = ""` for the wrapping-token fallback).
 */
async function registerRunnerJob(
  change?: (tasks: Record<string, Record<string, unknown>>, group: Record<string, unknown>) => void,
  variables = "",
): Promise<void> {
  const job = await parseHcl(twin, RUNNER_JOB_HCL, `vault_addr = "${vault.url}"\n${variables}`);
  const [group] = job.TaskGroups as Array<Record<string, unknown>>;
  const tasks = Object.fromEntries((group!.Tasks as Array<Record<string, unknown>>).map((task) => [String(task.Name), task]));
  change?.(tasks, group!);
  group!.Tasks = Object.values(tasks);
  await registerJob(twin, job);
}

const WRAP_FALLBACK = 'vault_role = ""';

/**
 * The wrapping-token fallback: the job registered with `vault_role = ""`, whose prestart then has
 * no workload identity and no vault block (both are `dynamic` over compact([var.vault_role])).
 */
async function registerWrapFallbackJob(): Promise<void> {
  await registerRunnerJob((tasks) => {
    const prestart = tasks["configure-runner"]!;
    expect([prestart.Identities ?? [], prestart.Vault ?? null]).toEqual([[], null]);
  }, WRAP_FALLBACK);
}

/** The dispatcher's wrapped read of a runner's secret (the fallback's credential_wrap_token). */
async function wrapSecret(name: string): Promise<string> {
  const token = await store.wrapRunnerSecret(name, "5m");
  knownTokens.add(token);
  return token;
}

/** Dispatches a runner of the registered job; its meta carries `wrapToken` if given. */
async function dispatch(name: string, wrapToken?: string): Promise<string> {
  const meta = { ...META, runner_name: name, ...(wrapToken === undefined ? {} : { credential_wrap_token: wrapToken }) };
  const res = await api(twin, "POST", "/v1/job/github-runner/dispatch", { Meta: meta });
  expect(res.status, res.text).toBe(200);
  return res.json<{ DispatchedJobID: string }>().DispatchedJobID;
}

/**
 * Stores a fresh JIT config for a runner, as the dispatcher does, and dispatches it: with workload
 * identity by default, with a wrapping token in its meta when `wrap` is set.
 */
async function dispatchJitRunner(
  name = "gha-101",
  opts: { wrap?: boolean } = {},
): Promise<{ child: string; wrapToken?: string; files: ReturnType<typeof runnerFiles>; jit: string }> {
  const files = runnerFiles(name);
  const jit = jitConfig(files);
  await store.putRunnerSecret(name, { kind: "jit", jitconfig: jit });
  const wrapToken = opts.wrap ? await wrapSecret(name) : undefined;
  return { child: await dispatch(name, wrapToken), wrapToken, files, jit };
}

/** Audit log requests as "operation path". */
function auditedRequests(filter: (entry: AuditEntry) => boolean): string[] {
  return vault
    .auditLog()
    .filter((entry) => entry.type === "request" && filter(entry))
    .map((entry) => `${entry.request.operation} ${entry.request.path}`);
}

async function lookupSelf(token: string): Promise<number> {
  const res = await fetch(`${vault.url}/v1/auth/token/lookup-self`, { headers: { "X-Vault-Token": token } });
  await res.text();
  return res.status;
}

/**
 * What Vault saw of a runner configured through workload identity: the prestart's token (read
 * from its secrets directory on the host) read that runner's secret once, as the runner role, and
 * revoked itself; nobody else read it, nothing was wrapped or unwrapped, and the token is dead.
 */
async function expectIdentityRead(allocId: string, name: string): Promise<string> {
  const token = readFileSync(prestartTokenPath(allocId), "utf8");
  expect(token).toMatch(VAULT_TOKEN_PATTERN);
  const byPrestart = vault.auditLog().filter((entry) => entry.type === "request" && entry.request.client_token === vault.auditHash(token));
  expect(byPrestart.map((entry) => `${entry.request.operation} ${entry.request.path}`)).toEqual([
    `read ${secretPathOf(name)}`,
    "update auth/token/revoke-self",
  ]);
  for (const entry of byPrestart) {
    expect(entry.auth.metadata).toMatchObject({
      role: "nomad-gha-runner",
      nomad_namespace: "default",
      nomad_job_id: "github-runner",
      nomad_task: "configure-runner",
    });
    expect(entry.auth.policies).toEqual(["default", "nomad-gha-runner"]);
  }
  expect(auditedRequests((entry) => entry.request.path === secretPathOf(name) && entry.request.operation === "read")).toEqual([`read ${secretPathOf(name)}`]);
  expect(auditedRequests((entry) => entry.request.path.startsWith("sys/wrapping/"))).toEqual([]);
  // The read answered, the revocation too.
  const answered = vault.auditLog().filter((entry) => entry.type === "response" && entry.request.client_token === vault.auditHash(token));
  expect(answered.map((entry) => [entry.request.path, entry.error])).toEqual([
    [secretPathOf(name), undefined],
    ["auth/token/revoke-self", undefined],
  ]);
  expect(await lookupSelf(token)).toBe(403);
  return token;
}

/** `stat -c '%n %a %u:%g'` lines as name -> "mode uid:gid". */
function statLines(text: string): Record<string, string> {
  return Object.fromEntries(
    text
      .split("\n")
      .map((line) => /^(\S+) ([0-7]+ \d+:\d+)$/.exec(line))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1]!, m[2]!]),
  );
}

function hostStat(path: string): string {
  const st = statSync(path);
  return `${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
}

function oneAlloc(allocs: TwinAllocation[], group: string): TwinAllocation {
  const alloc = allocs.find((a) => a.TaskGroup === group);
  if (!alloc) throw new Error(`no allocation of group ${group}`);
  return alloc;
}

// ---------------------------------------------------------------------------------------------

describe.skipIf(!IS_ROOT)(`templates against the image's user ${ROOT_ONLY}`, () => {
  // hashicorp/nomad client/allocrunner/taskrunner/template/template.go (parseTemplateConfigs): the
  // rendered file gets `perms`, and an owner only when uid/gid are set; otherwise it belongs to
  // the client, root. The old runner job rendered its scripts 0700 without uid/gid and ran them
  // with `bash <file>` as the image's user (uid 1001): that cannot work on a real client.
  it("a 0700 template without uid/gid is root's: bash <file> as uid 1001 gets Permission denied (126); with uid/gid or 0644 it runs", async () => {
    const script = 'echo "hello from $(id -u)"';
    const template = (attrs: string) => `
      template {
        destination = "local/script.sh"
        data        = ${JSON.stringify(script)}
        ${attrs}
      }`;
    const run = bashTask("bash ${NOMAD_TASK_DIR}/script.sh");
    const jobId = await runHcl(
      twin,
      `job "perms" {
  type = "batch"
  ${group("old", run + template('perms = "0700"'))}
  ${group("owned", run + template('perms = "0700"\n        uid = 1001\n        gid = 1001'))}
  ${group("readable", run + template('perms = "0644"'))}
}`,
    );
    await twin.waitIdle();
    const allocs = twin.allocations().filter((a) => a.JobID === jobId);
    const scriptOf = (a: TwinAllocation) => join(twin.allocDirPath(a.ID), "t", "local", "script.sh");

    const old = oneAlloc(allocs, "old");
    expect(hostStat(scriptOf(old))).toBe("700 0:0");
    expect(old.TaskStates.t).toMatchObject({ State: "dead", Failed: true });
    expect(exitCodeOf(old, "t")).toBe(126);
    expect(twin.allocationLogs(old.ID)?.t).toEqual(["bash: /local/script.sh: Permission denied"]);

    const owned = oneAlloc(allocs, "owned");
    expect(hostStat(scriptOf(owned))).toBe(`700 ${RUNNER_UID}:${RUNNER_UID}`);
    expect([exitCodeOf(owned, "t"), twin.allocationLogs(owned.ID)?.t]).toEqual([0, [`hello from ${RUNNER_UID}`]]);

    const readable = oneAlloc(allocs, "readable");
    expect(hostStat(scriptOf(readable))).toBe("644 0:0");
    expect([exitCodeOf(readable, "t"), twin.allocationLogs(readable.ID)?.t]).toEqual([0, [`hello from ${RUNNER_UID}`]]);
  });
});

describe.skipIf(!IS_ROOT)(`the allocation's directories and the runner's files ${ROOT_ONLY}`, () => {
  const nobody = nobodyIds();

  // client/allocdir/fs_unix.go dropDirPermissions: the alloc, local and secrets directories are
  // chmod'ed `desired|0777` and chowned to nobody. Anything there is the business of whoever
  // wrote it: the runner's files must protect themselves.
  it("gives the runner world-writable shared dirs owned by nobody, its files as 0600 of uid 1001, and none left in the shared dir", async () => {
    await registerRunnerJob();
    actions.hold = true;
    const { child } = await dispatchJitRunner();
    const runner = await actions.nextRun();
    const report = await until(() => actions.reports.get(runner.allocId)?.files);
    const seen = statLines(report);
    const nobodyOwned = `777 ${nobody.uid}:${nobody.gid}`;
    expect(seen).toEqual({
      "/alloc": nobodyOwned,
      "/local": nobodyOwned,
      "/secrets": nobodyOwned,
      ".runner": `600 ${RUNNER_UID}:${RUNNER_UID}`,
      ".credentials": `600 ${RUNNER_UID}:${RUNNER_UID}`,
      ".credentials_rsaparams": `600 ${RUNNER_UID}:${RUNNER_UID}`,
    });
    // run-runner.sh removed them from the shared directory before exec'ing the runner.
    expect(report).toContain("alloc: data logs tmp \n");
    const shared = join(twin.allocDirPath(runner.allocId), "alloc");
    expect(readdirSync(shared).sort()).toEqual(["data", "logs", "tmp"]);
    runner.finish(0);
    await twin.waitIdle();
    expect(twin.jobs().find((job) => job.ID === child)?.Status).toBe("dead");
    // Through its workload identity: one read of its secret, then the token revoked.
    await expectIdentityRead(runner.allocId, "gha-101");
  });

  it("has the prestart write them as the image's user with umask 077, and the poststop scrub them", async () => {
    // The main task replaced by a probe that reports what the prestart left in the shared dir.
    await registerRunnerJob((tasks) => {
      tasks.runner!.Config = {
        image: RUNNER_IMAGE,
        entrypoint: ["/bin/bash", "-c"],
        args: [
          'cd "$NOMAD_ALLOC_DIR/runner" && stat -c "%n %a %u:%g" . .runner .credentials .credentials_rsaparams | curl -fsS -o /dev/null --data-binary @- "$FAKE_ACTIONS_URL/probe" && curl -fsS -o /dev/null --data-binary @.credentials "$FAKE_ACTIONS_URL/probe-credentials"',
        ],
      };
    });
    const { files } = await dispatchJitRunner();
    await twin.waitIdle();
    const [alloc] = twin.allocations();
    expect(alloc?.ClientStatus).toBe("complete");
    const owned = (mode: string) => `${mode} ${RUNNER_UID}:${RUNNER_UID}`;
    expect(statLines(actions.posts.get("/probe")?.[0] ?? "")).toEqual({
      ".": owned("700"),
      ".runner": owned("600"),
      ".credentials": owned("600"),
      ".credentials_rsaparams": owned("600"),
    });
    expect(actions.posts.get("/probe-credentials")).toEqual([files[".credentials"]]);
    await expectIdentityRead(alloc!.ID, "gha-101");
    // The probe left them; the scrub task removed them.
    expect(eventTypes(alloc!, "scrub")).toEqual(["Received", "Task Setup", "Started", "Terminated"]);
    expect(existsSync(join(twin.allocDirPath(alloc!.ID), "alloc", "runner"))).toBe(false);
  });

  it("scrubs the files of a runner whose main task never ran; without the scrub task they would stay", async () => {
    const unpullable = (tasks: Record<string, Record<string, unknown>>) => {
      tasks.runner!.Config = { ...(tasks.runner!.Config as object), image: "registry.invalid/nope:1" };
    };
    await registerRunnerJob(unpullable);
    await dispatchJitRunner();
    await twin.waitIdle();
    const [scrubbed] = twin.allocations();
    expect(scrubbed?.TaskStates.runner).toMatchObject({ State: "dead", Failed: true });
    expect(eventTypes(scrubbed!, "runner")).toContain("Driver Failure");
    expect(actions.runs).toEqual([]);
    expect(eventTypes(scrubbed!, "scrub")).toEqual(["Received", "Task Setup", "Started", "Terminated"]);
    expect(existsSync(join(twin.allocDirPath(scrubbed!.ID), "alloc", "runner"))).toBe(false);

    // The control: the same job without its poststop task leaves the credential behind.
    await registerRunnerJob((tasks) => {
      unpullable(tasks);
      delete tasks.scrub;
    });
    await dispatchJitRunner();
    await twin.waitIdle();
    const unscrubbed = twin.allocations().find((a) => a.ID !== scrubbed!.ID);
    expect(readdirSync(join(twin.allocDirPath(unscrubbed!.ID), "alloc", "runner")).sort()).toEqual([".credentials", ".credentials_rsaparams", ".runner"]);
  });
});

/** The names of the secrets that `text` holds. */
/** What the main task of an allocation reported: its environment, the command lines it saw, the files it could read. */
function mainTaskView(allocId: string): { env: string; cmdlines: string; readable: string } {
  const report = actions.reports.get(allocId);
  const view = { env: report?.env ?? "", cmdlines: report?.cmdlines ?? "", readable: report?.readable ?? "" };
  expect(view.env).toContain("NOMAD_TASK_NAME=runner");
  expect(view.cmdlines).toContain("run.sh");
  return view;
}

function secretsIn(text: string, secrets: Record<string, string>): string[] {
  return Object.entries(secrets)
    .filter(([, value]) => text.includes(value))
    .map(([name]) => name);
}

/** The settings files, as text and base64, and the JIT config they came from (raw and decoded). */
function jitSecrets(files: ReturnType<typeof runnerFiles>, jit: string): Record<string, string> {
  return {
    jit,
    "jit (decoded)": Buffer.from(jit, "base64").toString(),
    ...Object.fromEntries(
      Object.entries(files).flatMap(([name, text]) => [
        [name, text],
        [`${name} (base64)`, Buffer.from(text).toString("base64")],
      ]),
    ),
  };
}

describe("the runner's credential", () => {
  // What the main task may see: its own settings files, as files. Not the credential it was made
  // from, not the registration token, not the Vault token the prestart read it with, and no
  // command line anywhere carries a Vault token.
  it("JIT: the main task's environment, command lines and readable files hold no JIT config, settings file content nor Vault token", async () => {
    await registerRunnerJob();
    const { files, jit } = await dispatchJitRunner();
    await twin.waitIdle();
    const [alloc] = twin.allocations();
    expect(alloc?.ClientStatus, JSON.stringify(twin.allocationLogs(alloc!.ID))).toBe("complete");
    const vaultToken = await expectIdentityRead(alloc!.ID, "gha-101");
    const { env, cmdlines, readable } = mainTaskView(alloc!.ID);

    const credential = jitSecrets(files, jit);
    const secrets = { vaultToken, ...credential };
    expect(secretsIn(cmdlines, secrets)).toEqual([]);
    expect(secretsIn(env, secrets)).toEqual([]);
    expect(env).not.toMatch(/^VAULT_/m);
    expect(env).not.toMatch(VAULT_TOKEN_PATTERN);
    expect(env).not.toContain("credential_wrap_token");
    // Every file it can read: its own settings files, as the runner needs them, and nothing from
    // which a credential could be had again (the JIT config, the Vault token).
    expect(readable).toMatch(/^== \S*\/alloc\/logs\/configure-runner\.std(out|err)\.0$/m); // the prestart's output too
    expect(secretsIn(readable, { vaultToken, jit, "jit (decoded)": credential["jit (decoded)"]! })).toEqual([]);
    expect(readable).not.toMatch(VAULT_TOKEN_PATTERN);
    // While the prestart's curl read and revoked, no process on the host had a Vault token on its
    // command line or VAULT_TOKEN in its environment (configure-runner.sh hands it to curl as a
    // header file).
    expect(watchedPrestartRequests).toEqual(expect.arrayContaining([`GET /v1/${secretPathOf("gha-101")}`, "POST /v1/auth/token/revoke-self"]));
    expect(leaks).toEqual([]);
    expect(allCommandLines().filter((line) => line.includes(vaultToken))).toEqual([]);
  });

  it("token: config.sh gets the registration token in the prestart; the main task never sees it nor the Vault token", async () => {
    await registerRunnerJob();
    const registrationToken = `AREG${randomUUID().replace(/-/g, "").toUpperCase()}`;
    await store.putRunnerSecret("gha-101", { kind: "token", registration_token: registrationToken });
    await dispatch("gha-101");
    await twin.waitIdle();
    const [alloc] = twin.allocations();
    expect(alloc?.ClientStatus, JSON.stringify(twin.allocationLogs(alloc!.ID))).toBe("complete");
    expect(actions.configs.map((c) => c.args[c.args.indexOf("--token") + 1])).toEqual([registrationToken]);
    const vaultToken = await expectIdentityRead(alloc!.ID, "gha-101");
    const report = actions.reports.get(alloc!.ID);
    expect(report?.env).not.toContain(registrationToken);
    expect(report?.env).not.toContain(vaultToken);
    expect(report?.env).not.toMatch(/^VAULT_/m);
    expect(report?.cmdlines).not.toContain(registrationToken);
    expect(report?.cmdlines).not.toContain(vaultToken);
    expect(report?.cmdlines).not.toMatch(VAULT_TOKEN_PATTERN);
    expect(report?.readable).toMatch(/^== \S*\/alloc\/logs\/configure-runner\.std(out|err)\.0$/m);
    expect(report?.readable).not.toContain(registrationToken);
    expect(report?.readable).not.toContain(vaultToken);
    expect(watchedPrestartRequests).toContain(`GET /v1/${secretPathOf("gha-101")}`);
    expect(leaks).toEqual([]);
  });
});

describe('the runner\'s credential through the wrapping-token fallback (vault_role = "")', () => {
  function stderrOf(alloc: TwinAllocation, task: string): string {
    return readFileSync(join(twin.allocDirPath(alloc.ID), "alloc", "logs", `${task}.stderr.0`), "utf8");
  }

  it("configures the runner from a wrapping token it looked up before unwrapping; the main task sees the token only spent, as job meta", async () => {
    await registerWrapFallbackJob();
    const { files, jit, wrapToken } = await dispatchJitRunner("gha-101", { wrap: true });
    await twin.waitIdle();
    const [alloc] = twin.allocations();
    expect(alloc?.ClientStatus, JSON.stringify(twin.allocationLogs(alloc!.ID))).toBe("complete");
    expect(actions.runs.map((run) => JSON.parse(run.runnerFile) as unknown)).toEqual([JSON.parse(files[".runner"])]);
    // No vault block: no workload identity login, no Vault token in the prestart's secrets.
    expect(existsSync(prestartTokenPath(alloc!.ID))).toBe(false);
    expect(vault.requests.filter((req) => req.url.startsWith("/v1/auth/jwt-nomad/"))).toEqual([]);

    // sys/wrapping/lookup first (the token in the body), then the unwrap with it.
    expect(auditedRequests((entry) => entry.request.path.startsWith("sys/wrapping/"))).toEqual(["update sys/wrapping/lookup", "update sys/wrapping/unwrap"]);
    const unwraps = vault.auditLog().filter((entry) => entry.type === "response" && entry.request.path === "sys/wrapping/unwrap");
    expect(unwraps.map((entry) => [entry.request.client_token, entry.error])).toEqual([[vault.auditHash(wrapToken!), undefined]]);
    expect(auditedRequests((entry) => entry.auth.metadata?.role === "nomad-gha-runner")).toEqual([]);

    const { env, cmdlines, readable } = mainTaskView(alloc!.ID);
    const credential = jitSecrets(files, jit);
    expect(secretsIn(cmdlines, { wrapToken: wrapToken!, ...credential })).toEqual([]);
    expect(secretsIn(env, credential)).toEqual([]);
    expect(env).not.toMatch(/^VAULT_/m);
    expect(readable).toMatch(/^== \S*\/alloc\/logs\/configure-runner\.std(out|err)\.0$/m);
    expect(secretsIn(readable, { wrapToken: wrapToken!, jit, "jit (decoded)": credential["jit (decoded)"]! })).toEqual([]);
    // The wrapping token is job meta, and Nomad gives every task the job's meta as NOMAD_META_*
    // (hashicorp/nomad client/taskenv/env.go), so the main task sees it there, spent: Vault took
    // it once, in the prestart, and refuses it now.
    expect(
      env
        .split("\n")
        .filter((line) => line.includes(wrapToken!))
        .sort(),
    ).toEqual([`NOMAD_META_CREDENTIAL_WRAP_TOKEN=${wrapToken}`, `NOMAD_META_credential_wrap_token=${wrapToken}`]);
    const again = await fetch(`${vault.url}/v1/sys/wrapping/unwrap`, { method: "POST", headers: { "X-Vault-Token": wrapToken! } });
    expect(again.status).toBe(400);
    // While the prestart's curl looked up and unwrapped, no process on the host had the token on
    // its command line (configure-runner.sh hands it to curl as a header file and on stdin).
    expect(watchedPrestartRequests).toEqual(["POST /v1/sys/wrapping/lookup", "POST /v1/sys/wrapping/unwrap"]);
    expect(leaks).toEqual([]);
    expect(allCommandLines().filter((line) => line.includes(wrapToken!))).toEqual([]);
  });

  it("stops with the credential-refused exit code (97) on a wrapping token someone unwrapped first (anyone who reads the job sees it); the runner never runs", async () => {
    await registerWrapFallbackJob();
    await store.putRunnerSecret("gha-101", { kind: "jit", jitconfig: jitConfig(runnerFiles("gha-101")) });
    const wrapToken = await wrapSecret("gha-101");
    // A thief who read the dispatch meta, before the allocation starts.
    const stolen = await fetch(`${vault.url}/v1/sys/wrapping/unwrap`, { method: "POST", headers: { "X-Vault-Token": wrapToken } });
    expect(stolen.status).toBe(200);
    await dispatch("gha-101", wrapToken);
    await twin.waitIdle();
    const [alloc] = twin.allocations();
    expect(alloc?.ClientStatus).toBe("failed");
    expect(exitCodeOf(alloc!, "configure-runner"), JSON.stringify(twin.allocationLogs(alloc!.ID))).toBe(CREDENTIAL_REFUSED_EXIT_CODE);
    expect(stderrOf(alloc!, "configure-runner")).toMatch(
      /^runner gha-101: the wrapping token was already used or has expired .*the credential may have been stolen/m,
    );
    expect(twin.allocationLogs(alloc!.ID)?.["configure-runner"]?.join("\n")).toContain("may have been stolen");
    expect(eventTypes(alloc!, "runner")).not.toContain("Started");
    expect(actions.runs).toEqual([]);
    expect(actions.reports.size).toBe(0);
    // It looked the token up, and did not try to unwrap it: only the thief did.
    expect(auditedRequests((entry) => entry.request.path.startsWith("sys/wrapping/"))).toEqual(["update sys/wrapping/unwrap", "update sys/wrapping/lookup"]);
    expect(eventTypes(alloc!, "scrub")).toEqual(["Received", "Task Setup", "Started", "Terminated"]);
    expect(existsSync(join(twin.allocDirPath(alloc!.ID), "alloc", "runner"))).toBe(false);
    expect(leaks).toEqual([]);
  });

  it("stops with the credential-refused exit code (97) on a wrapping token made for another runner's secret, and leaves that token unspent", async () => {
    await registerWrapFallbackJob();
    await store.putRunnerSecret("gha-101", { kind: "jit", jitconfig: jitConfig(runnerFiles("gha-101")) });
    const other: RunnerSecret = { kind: "jit", jitconfig: jitConfig(runnerFiles("gha-999")) };
    await store.putRunnerSecret("gha-999", other);
    const othersToken = await wrapSecret("gha-999");
    await dispatch("gha-101", othersToken);
    await twin.waitIdle();
    const [alloc] = twin.allocations();
    expect(alloc?.ClientStatus).toBe("failed");
    expect(exitCodeOf(alloc!, "configure-runner"), JSON.stringify(twin.allocationLogs(alloc!.ID))).toBe(CREDENTIAL_REFUSED_EXIT_CODE);
    expect(stderrOf(alloc!, "configure-runner")).toContain(
      `runner gha-101: the wrapping token was made for ${secretPathOf("gha-999")}, not for this runner's secret; the credential may have been stolen`,
    );
    expect(eventTypes(alloc!, "runner")).not.toContain("Started");
    expect(actions.runs).toEqual([]);
    // Looked up, not unwrapped: the runner it was made for can still have its credential.
    expect(auditedRequests((entry) => entry.request.path.startsWith("sys/wrapping/"))).toEqual(["update sys/wrapping/lookup"]);
    const unwrapped = await fetch(`${vault.url}/v1/sys/wrapping/unwrap`, { method: "POST", headers: { "X-Vault-Token": othersToken } });
    expect(unwrapped.status).toBe(200);
    expect(((await unwrapped.json()) as { data: { data: unknown } }).data.data).toEqual(other);
    expect(leaks).toEqual([]);
  });
});

describe("kill timeout", () => {
  // hashicorp/nomad client/allocrunner/taskrunner/driver_handle.go NewDriverHandle: the driver is
  // stopped with min(kill_timeout, max_kill_timeout); the client's max_kill_timeout defaults to
  // 30s (command/agent/config.go). The Killing event reports the capped value
  // (nomad/structs/structs.go TaskEvent.SetKillTimeout, alloc_runner.go killTasks).
  it("SIGKILLs a task that ignores its kill signal after max_kill_timeout, not its own 45s kill_timeout", async () => {
    const capped = await startTwin({ maxKillTimeoutMs: 300 });
    try {
      // The task runs in its own PID namespace, so its pid inside is not the host's: it is found
      // on the host by a marker in its command line.
      const marker = `stubborn-${Date.now()}`;
      const script = `trap 'echo got TERM' TERM; echo started; while :; do sleep 0.05; done # ${marker}`;
      const job = await parseHcl(capped, `job "stubborn" {\n  type = "batch"\n  ${group("g", `kill_timeout = "45s"\n${bashTask(script)}`)}\n}`);
      expect((job.TaskGroups as Array<{ Tasks: Array<{ KillTimeout: number }> }>)[0]?.Tasks[0]?.KillTimeout).toBe(45e9);
      await registerJob(capped, job);
      const [running] = await waitForAllocations(capped, "stubborn", (allocs) => allocs[0]?.TaskStates.t?.State === "running");
      await until(() => capped.allocationLogs(running!.ID)?.t?.includes("started"));
      expect(hostProcessesWith(marker)).not.toEqual([]);

      const stoppedAt = Date.now();
      await api(capped, "DELETE", "/v1/job/stubborn");
      const [dead] = await waitForAllocations(capped, "stubborn", (allocs) => allocs[0]?.TaskStates.t?.State === "dead");
      const elapsed = Date.now() - stoppedAt;
      expect(elapsed).toBeGreaterThanOrEqual(280);
      expect(elapsed).toBeLessThan(4000); // neither 45 s nor the 5 s default
      expect(hostProcessesWith(marker)).toEqual([]);
      expect(capped.allocationLogs(dead!.ID)?.t).toContain("got TERM");
      expect(capped.allocationLogs(dead!.ID)?.t).not.toContain("unshare"); // the twin's own machinery stays out of the task's log

      const killing = dead!.TaskStates.t?.Events.find((event) => event.Type === "Killing");
      expect(killing).toMatchObject({
        KillTimeout: 300e6,
        DisplayMessage: "Sent interrupt. Waiting 300ms before force killing",
        Details: { kill_timeout: "300ms" },
      });
      expect(eventTypes(dead!, "t").slice(-2)).toEqual(["Killing", "Killed"]);
      expect(dead!.TaskStates.t?.Failed).toBe(false);
    } finally {
      await capped.close();
    }
  });
});

/** Host pids whose command line contains `marker`. */
function hostProcessesWith(marker: string): number[] {
  return readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry) && Number(entry) !== process.pid)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(marker);
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe("Go durations in task events", () => {
  // Go's time.Duration.String, as in the cases of its own tests (src/time/time_test.go durationTests).
  it("formats like time.Duration.String", () => {
    const cases: Array<[number, string]> = [
      [0, "0s"],
      [1, "1ns"],
      [1100, "1.1µs"],
      [2.2e6, "2.2ms"],
      [300e6, "300ms"],
      [3.3e9, "3.3s"],
      [245e9, "4m5s"],
      [245.001e9, "4m5.001s"],
      [18427.001e9, "5h7m7.001s"],
      [480e9 + 1, "8m0.000000001s"],
      [3600e9, "1h0m0s"],
    ];
    expect(cases.map(([ns]) => formatGoDuration(ns))).toEqual(cases.map(([, text]) => text));
  });
});

describe("lost allocations", () => {
  const sleeper = bashTask("sleep 30");

  // scheduler/reconciler/reconcile_cluster.go computePlacements: lost allocations are replaced up
  // to the group's count, reschedule policy or not; TaskGroup.Replace() (nomad/structs/structs.go)
  // is true unless `disconnect { replace = false }`.
  it("replaces a lost allocation by default, even with no reschedule attempts", async () => {
    await runHcl(twin, `job "plain" {\n  type = "batch"\n  ${group("g", sleeper)}\n}`);
    const [original] = await waitForAllocations(twin, "plain", (allocs) => allocs[0]?.ClientStatus === "running");
    twin.faults.loseAllocation(original!.ID);
    const allocs = await waitForAllocations(twin, "plain", (list) => list.length === 2 && list.some((a) => a.ClientStatus === "running"));
    const lost = allocs.find((a) => a.ID === original!.ID);
    const replacement = allocs.find((a) => a.ID !== original!.ID);
    expect(lost).toMatchObject({
      ClientStatus: "lost",
      DesiredStatus: "stop",
      ClientDescription: "alloc is lost since its node is down",
      NextAllocation: replacement?.ID,
    });
    expect(twin.allocations().find((a) => a.ID === replacement?.ID)?.PreviousAllocation).toBe(original!.ID);
    await api(twin, "DELETE", "/v1/job/plain");
    await twin.waitIdle();
  });

  // scheduler/reconciler/filters.go: on a down node, a running allocation of a group that may not
  // be replaced is "disconnecting"; reconcile_cluster.go appendUnknownDisconnectingUpdates marks it
  // "unknown" and updateByReschedulable never replaces it. Not terminal, it keeps its job running.
  it("does not replace a running allocation with disconnect { replace = false }: it is unknown, its job still running", async () => {
    await runHcl(twin, `job "kept" {\n  type = "batch"\n  ${group("g", sleeper, "disconnect {\n      replace = false\n    }")}\n}`);
    const [original] = await waitForAllocations(twin, "kept", (allocs) => allocs[0]?.ClientStatus === "running");
    twin.faults.loseAllocation(original!.ID);
    await twin.waitIdle();
    const allocs = (await api(twin, "GET", "/v1/job/kept/allocations")).json<TwinAllocation[]>();
    expect(allocs).toHaveLength(1);
    expect(allocs[0]).toMatchObject({
      ClientStatus: "unknown",
      DesiredStatus: "run",
      ClientDescription: "alloc is unknown since its node is disconnected",
      NextAllocation: "",
    });
    expect((await api(twin, "GET", "/v1/job/kept")).json()).toMatchObject({ Status: "running" });
    const summary = (await api(twin, "GET", "/v1/job/kept/summary")).json<{ Summary: { g: Record<string, number> } }>();
    expect(summary.Summary.g).toMatchObject({ Unknown: 1, Lost: 0, Running: 0 });
    await api(twin, "DELETE", "/v1/job/kept");
    await twin.waitIdle();
    expect((await api(twin, "GET", "/v1/job/kept")).json()).toMatchObject({ Status: "dead" });
  });

  // filters.go "Remaining terminal node allocs are lost": replace = false keeps only running ones.
  it("still replaces a pending allocation lost with replace = false", async () => {
    const slow = await startTwin({ startDelayMs: 60_000 });
    try {
      const job = await parseHcl(slow, `job "kept" {\n  type = "batch"\n  ${group("g", sleeper, "disconnect {\n      replace = false\n    }")}\n}`);
      await registerJob(slow, job);
      const [pending] = await waitForAllocations(slow, "kept", (allocs) => allocs[0]?.ClientStatus === "pending");
      slow.faults.loseAllocation(pending!.ID);
      // Lost and replaced in one plan (nomad/plan_apply.go): not lost before the scheduler's turn,
      // so no read sees the job with a lost allocation and nothing placed (it would look stranded).
      expect(slow.allocations().find((a) => a.ID === pending!.ID)?.ClientStatus).toBe("pending");
      const allocs = await waitForAllocations(slow, "kept", (list) => list.length === 2);
      expect(allocs.find((a) => a.ID === pending!.ID)).toMatchObject({ ClientStatus: "lost", DesiredStatus: "stop" });
      const summary = (await api(slow, "GET", "/v1/job/kept/summary")).json<{ Summary: { g: Record<string, number> } }>();
      expect(summary.Summary.g).toMatchObject({ Lost: 1 });
      expect(summary.Summary.g.Starting! + summary.Summary.g.Queued! + summary.Summary.g.Running!).toBe(1);
    } finally {
      await slow.close();
    }
  });
});

describe("Vault secrets through workload identity", () => {
  let vaultTwin: VaultTwin;
  let withVault: NomadTwin;

  beforeEach(async () => {
    vaultTwin = await VaultTwin.start({ audit: false });
    await vaultTwin.writePolicy("read-x", 'path "secret/data/x" {\n  capabilities = ["read"]\n}');
    const admin = { "X-Vault-Token": vaultTwin.rootToken, "content-type": "application/json" };
    // As an operator configures it: the role binds the JWT's audience and job, and maps claims.
    vaultTwin.enableJwtAuth("jwt-nomad");
    const role = await fetch(`${vaultTwin.url}/v1/auth/jwt-nomad/role/r`, {
      method: "POST",
      headers: admin,
      body: JSON.stringify({
        role_type: "jwt",
        bound_audiences: ["vault.io"],
        bound_claims: { nomad_namespace: "default", nomad_job_id: "vaulted" },
        user_claim: "/nomad_job_id",
        user_claim_json_pointer: true,
        claim_mappings: { nomad_job_id: "nomad_job_id", nomad_task: "nomad_task" },
        token_policies: ["read-x"],
        token_type: "service",
      }),
    });
    expect(role.status).toBe(204);
    const secret = await fetch(`${vaultTwin.url}/v1/secret/data/x`, { method: "POST", headers: admin, body: JSON.stringify({ data: { k: "v-1" } }) });
    expect(secret.status).toBe(200);
    const image = actions.image();
    withVault = await NomadTwin.start({ images: (name) => (name === RUNNER_IMAGE ? image : undefined), vault: { addr: vaultTwin.url }, startDelayMs: 1 });
  });

  afterEach(async () => {
    await withVault.close();
    await vaultTwin.close();
  });

  const vaultedTask = (env: boolean) =>
    bashTask(
      'echo "value=$(cat "$NOMAD_SECRETS_DIR/value")"; echo "env_token=$VAULT_TOKEN"',
      `identity {
        name = "vault_default"
        aud  = ["vault.io"]
      }
      vault {
        role = "r"
        env  = ${env}
      }
      template {
        destination = "secrets/value"
        data        = "{{ with secret \\"secret/data/x\\" }}{{ .Data.data.k }}{{ end }}"
      }`,
    );

  it("renders the secret with the task's token; env = true puts it in VAULT_TOKEN; the JWT names the parent job", async () => {
    const job = await parseHcl(
      withVault,
      `job "vaulted" {
  type = "batch"
  parameterized {
    payload = "forbidden"
  }
  ${group("env", vaultedTask(true))}
  ${group("noenv", vaultedTask(false))}
}`,
    );
    await registerJob(withVault, job);
    const dispatched = await api(withVault, "POST", "/v1/job/vaulted/dispatch", {});
    expect(dispatched.status, dispatched.text).toBe(200);
    const child = dispatched.json<{ DispatchedJobID: string }>().DispatchedJobID;
    await withVault.waitIdle();
    const allocs = withVault.allocations().filter((a) => a.JobID === child);
    const umask = processUmask();

    const tokens: string[] = [];
    for (const [groupName, inEnv] of [
      ["env", true],
      ["noenv", false],
    ] as const) {
      const alloc = oneAlloc(allocs, groupName);
      expect(alloc.ClientStatus, JSON.stringify(withVault.allocationLogs(alloc.ID))).toBe("complete");
      const taskDir = join(withVault.allocDirPath(alloc.ID), "t");
      // client/allocrunner/taskrunner/vault_hook.go writeToken: private/vault_token 0600 and
      // secrets/vault_token 0666 (os.WriteFile, so less the client's umask).
      const token = readFileSync(join(taskDir, "secrets", "vault_token"), "utf8");
      expect(statSync(join(taskDir, "secrets", "vault_token")).mode & 0o777).toBe(0o666 & ~umask);
      expect(readFileSync(join(taskDir, "private", "vault_token"), "utf8")).toBe(token);
      expect(statSync(join(taskDir, "private", "vault_token")).mode & 0o777).toBe(0o600);
      expect(withVault.allocationLogs(alloc.ID)?.t).toEqual(["value=v-1", `env_token=${inEnv ? token : ""}`]);
      tokens.push(token);
    }

    // The token is the JWT login's, with the role's policy and the claims it maps.
    const self = await fetch(`${vaultTwin.url}/v1/auth/token/lookup-self`, { headers: { "X-Vault-Token": tokens[0]! } });
    expect((await self.json()) as unknown).toMatchObject({
      data: { policies: ["default", "read-x"], meta: { nomad_job_id: "vaulted", nomad_task: "t", role: "r" } },
    });

    // nomad/structs/structs.go Job.GetIDforWorkloadIdentity: a dispatched child signs as its parent.
    const logins = vaultTwin.requests.filter((req) => req.url === "/v1/auth/jwt-nomad/login");
    expect(logins).toHaveLength(2);
    const claims = logins.map((req) => {
      const { jwt, role } = JSON.parse(req.body) as { jwt: string; role: string };
      expect(role).toBe("r");
      return JSON.parse(Buffer.from(jwt.split(".")[1]!, "base64url").toString("utf8")) as Record<string, unknown>;
    });
    for (const claim of claims) {
      expect(claim).toMatchObject({ nomad_namespace: "default", nomad_job_id: "vaulted", nomad_task: "t", aud: ["vault.io"] });
      expect(claim.nomad_job_id).not.toBe(child);
    }
    expect(claims.map((claim) => claim.sub).sort()).toEqual(["global:default:vaulted:env:t:vault_default", "global:default:vaulted:noenv:t:vault_default"]);
  });
});
