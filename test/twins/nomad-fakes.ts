// Test doubles for the Nomad twin's tests (nomad.test.ts, nomad-client.test.ts): a fake
// actions-runner image whose `run.sh` and `config.sh` are bash scripts talking with curl to a fake
// Actions service in the test, so that the real runner job's scripts run against them on the
// twin's client. Vault is not faked: those tests use the Vault twin (vault.ts).

import { randomUUID } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { chown, mkdir, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "vitest";
import { inlineFiles } from "../../src/nomad/runner-job.js";
import { VaultStore } from "../../src/vault/client.js";
import { grantRunnerIdentity } from "../harness/runner-identity.js";
import type { TwinImage } from "./contract.js";
import type { NomadTwin, TwinAllocation } from "./nomad.js";
import { VaultTwin } from "./vault.js";

export const IS_ROOT = process.getuid?.() === 0;
/** Tests that check owners and modes need the client to run as root, as a real Nomad client does. */
export const NOT_ROOT_REASON = "needs root: the twin's client only chowns, unshares and drops privileges as root";

export const RUNNER_JOB_FILE = fileURLToPath(new URL("../../jobs/github-runner.nomad.hcl", import.meta.url));
/** The job file as it is on disk (its scripts read with file(), which /v1/jobs/parse refuses). */
export const RUNNER_JOB_RAW = readFileSync(RUNNER_JOB_FILE, "utf8");
/** The job file as the dispatcher sends it: every file() call replaced by the file's text. */
export const RUNNER_JOB_HCL = await inlineFiles(RUNNER_JOB_RAW, RUNNER_JOB_FILE);
export const RUNNER_SCRIPTS = {
  configure: readFileSync(new URL("../../jobs/runner/configure-runner.sh", import.meta.url), "utf8"),
  run: readFileSync(new URL("../../jobs/runner/run-runner.sh", import.meta.url), "utf8"),
};

/** The image name the runner job uses by default (variable "image"). */
export const RUNNER_IMAGE = /variable "image"[^}]*default\s*=\s*"([^"]+)"/.exec(RUNNER_JOB_RAW)?.[1] ?? "";

/** The official image runs as `runner`, uid/gid 1001, from /home/runner. */
export const RUNNER_UID = 1001;

export function nobodyIds(): { uid: number; gid: number } {
  const line = readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .find((l) => l.startsWith("nobody:"));
  const [, , uid = "65534", gid = "65534"] = line?.split(":") ?? [];
  return { uid: Number(uid), gid: Number(gid) };
}

/** The umask of this process, which the twin's client writes files with (as Go's os.WriteFile does). */
export function processUmask(): number {
  const line = readFileSync("/proc/self/status", "utf8").match(/^Umask:\s*([0-7]+)/m);
  return line ? Number.parseInt(line[1]!, 8) : 0o022;
}

/** Every process's command line on this host, NULs as spaces (what `ps` would show). */
export function allCommandLines(): string[] {
  const lines: string[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      lines.push(readFileSync(`/proc/${entry}/cmdline`, "utf8").replace(/\0/g, " ").trim());
    } catch {
      // gone meanwhile
    }
  }
  return lines;
}

/** A process on this host as root sees it in /proc. */
export interface HostProcess {
  pid: number;
  /** The command line, NULs as spaces. */
  cmdline: string;
  /** `NAME=value` entries. */
  env: string[];
}

/**
 * The processes descended from `ancestor` (default: this one), whatever their PID namespace:
 * the tasks the twins of this test run, and not those of another test run on the same host.
 */
export function descendantProcesses(ancestor = process.pid): HostProcess[] {
  const parents = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so after the last ")".
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {
      // gone meanwhile
    }
  }
  const below = (pid: number): boolean => {
    for (let parent = parents.get(pid), hops = 0; parent !== undefined && parent > 0 && hops < 64; parent = parents.get(parent), hops++) {
      if (parent === ancestor) return true;
    }
    return false;
  };
  const found: HostProcess[] = [];
  for (const pid of parents.keys()) {
    if (!below(pid)) continue;
    try {
      found.push({
        pid,
        cmdline: readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ").trim(),
        env: readFileSync(`/proc/${pid}/environ`, "utf8")
          .split("\0")
          .filter((item) => item !== ""),
      });
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

// ---------------------------------------------------------------------------------------------
// Runner credentials

/** The three settings files a configured runner has (what a JIT config carries). */
export interface RunnerFiles {
  ".runner": string;
  ".credentials": string;
  ".credentials_rsaparams": string;
}

export function runnerFiles(name: string): RunnerFiles {
  const id = randomUUID();
  return {
    ".runner": JSON.stringify({
      agentId: 7,
      agentName: name,
      poolId: 1,
      serverUrl: "https://pipelines.actions.githubusercontent.com/x",
      workFolder: "_work",
      ephemeral: true,
    }),
    ".credentials": JSON.stringify({
      scheme: "OAuth",
      data: { clientId: `client-${id}`, authorizationUrl: "https://vstoken.actions.githubusercontent.com/x" },
    }),
    ".credentials_rsaparams": JSON.stringify({ d: `rsa-d-${id}`, modulus: `rsa-n-${id}` }),
  };
}

/** A JIT config as GitHub returns it: base64 JSON of file names to base64 contents. */
export function jitConfig(files: RunnerFiles | Record<string, string>): string {
  const encoded = Object.fromEntries(Object.entries(files).map(([name, text]) => [name, Buffer.from(text).toString("base64")]));
  return Buffer.from(JSON.stringify(encoded)).toString("base64");
}

// ---------------------------------------------------------------------------------------------
// The fake actions-runner image and the Actions service it talks to

/**
 * `run.sh` of the fake image: reports what the runner process sees (its environment, every command
 * line it can read, its files), then brings its `.runner` to the Actions service and waits for its
 * job to end; the answer is its exit code. Killed, it drops the connection, which the service sees.
 */
const RUN_SH = `#!/usr/bin/env bash
set -euo pipefail
q="alloc=\${NOMAD_ALLOC_ID}"
post() { curl -fsS -o /dev/null --data-binary @- "\${FAKE_ACTIONS_URL}/$1?$q"; }
env | post report/env
# A process may be gone by the time its cmdline is opened: 2> first, so that bash's own error goes too.
for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' 2>/dev/null <"$f" || true; echo; done | post report/cmdlines
{
  stat -c '%n %a %u:%g' "$NOMAD_ALLOC_DIR" "$NOMAD_TASK_DIR" "$NOMAD_SECRETS_DIR" .runner .credentials .credentials_rsaparams
  echo "alloc: $(ls -A "$NOMAD_ALLOC_DIR" | sort | tr '\\n' ' ')"
} | post report/files
# Every file the runner's user can read wherever a workflow step could look: the allocation and
# task directories (the prestart's logs included), /tmp and the runner's working directory.
find "$NOMAD_ALLOC_DIR" "$NOMAD_TASK_DIR" "$NOMAD_SECRETS_DIR" /tmp "$PWD" -type f -readable -size -1024k 2>/dev/null |
  while IFS= read -r f; do printf '== %s\n' "$f"; cat -- "$f" 2>/dev/null || true; echo; done | post report/readable
answer=$(curl -fsS --data-binary @.runner "\${FAKE_ACTIONS_URL}/run?$q")
echo "runner exits $answer"
exit "$answer"
`;

/**
 * `config.sh` of the fake image: records its arguments with the Actions service (through stdin,
 * as nothing of them should reach another command line), then writes the settings files the real
 * one writes once registered. The registration token itself goes into none of them.
 */
const CONFIG_SH = `#!/usr/bin/env bash
set -euo pipefail
printf '%s\\n' "$@" | curl -fsS --data-binary @- "\${FAKE_ACTIONS_URL}/config?alloc=\${NOMAD_ALLOC_ID}" >/dev/null
name="" url="" labels=""
while [ $# -gt 0 ]; do
  case "$1" in
    --name) name=$2; shift 2 ;;
    --url) url=$2; shift 2 ;;
    --labels) labels=$2; shift 2 ;;
    --token | --work) shift 2 ;;
    *) shift ;;
  esac
done
jq -cn --arg name "$name" --arg url "$url" --arg labels "$labels" '{agentName: $name, gitHubUrl: $url, labels: ($labels | split(",")), ephemeral: true}' >.runner
jq -cn --arg name "$name" '{scheme: "OAuth", data: {clientId: ("client-" + $name)}}' >.credentials
jq -cn --arg name "$name" '{d: ("rsa-" + $name)}' >.credentials_rsaparams
`;

export interface HeldRunner {
  allocId: string;
  /** The `.runner` file the runner brought. */
  runnerFile: string;
  /** Ends the runner's job: run.sh exits with this code. */
  finish(exitCode?: number): void;
  /** Resolves when the runner process dropped its connection before being answered (killed). */
  aborted: Promise<void>;
}

/** What run.sh reported of one allocation: env, command lines and files. */
export interface RunnerReport {
  env?: string;
  cmdlines?: string;
  files?: string;
  /** Every file the runner's user can read, each as "== path" and its content. */
  readable?: string;
}

/**
 * The Actions service as the fake runner image talks to it: `config.sh` registrations and
 * `run.sh` sessions. Runners finish at once (exit 0) unless `hold` is set, when the test ends
 * them with `finish` or Nomad kills them.
 */
export class FakeActions {
  hold = false;
  readonly configs: Array<{ allocId: string; args: string[] }> = [];
  readonly runs: HeldRunner[] = [];
  readonly reports = new Map<string, RunnerReport>();
  /** Other requests (probes of the tests' own jobs): path -> bodies. */
  readonly posts = new Map<string, string[]>();
  private readonly waiting: HeldRunner[] = [];
  private readonly waiters: Array<(runner: HeldRunner) => void> = [];
  private readonly server: Server;
  url = "";

  constructor(private readonly timeline: string[]) {
    this.server = createServer((req, res) => void this.handle(req, res));
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** The next runner that comes online (held or not). */
  nextRun(): Promise<HeldRunner> {
    const runner = this.waiting.shift();
    if (runner) return Promise.resolve(runner);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** The fake actions-runner image: the official image's user and workdir, fake run.sh/config.sh. */
  image(): TwinImage {
    return {
      uid: RUNNER_UID,
      gid: RUNNER_UID,
      workdir: "/home/runner",
      env: { HOME: "/home/runner", FAKE_ACTIONS_URL: this.url },
      cmd: ["./run.sh"],
      materialize: async (root) => {
        const workdir = join(root, "home", "runner");
        await mkdir(workdir, { recursive: true, mode: 0o755 });
        await writeFile(join(workdir, "run.sh"), RUN_SH, { mode: 0o755 });
        await writeFile(join(workdir, "config.sh"), CONFIG_SH, { mode: 0o755 });
        if (IS_ROOT) {
          for (const path of [workdir, join(workdir, "run.sh"), join(workdir, "config.sh")]) await chown(path, RUNNER_UID, RUNNER_UID);
        }
        return workdir;
      },
    };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://fake-actions");
    const allocId = url.searchParams.get("alloc") ?? "";
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    const path = url.pathname;
    if (path === "/config") {
      this.configs.push({ allocId, args: body.replace(/\n$/, "").split("\n") });
      this.timeline.push("config");
      res.end("ok");
    } else if (path.startsWith("/report/")) {
      const report = this.reports.get(allocId) ?? {};
      report[path.slice("/report/".length) as keyof RunnerReport] = body;
      this.reports.set(allocId, report);
      res.end("ok");
    } else if (path === "/run") {
      this.run(allocId, body, res);
    } else {
      this.posts.set(path, [...(this.posts.get(path) ?? []), body]);
      res.end("ok");
    }
  }

  private run(allocId: string, runnerFile: string, res: ServerResponse): void {
    this.timeline.push("run");
    let markAborted = () => {};
    const runner: HeldRunner = {
      allocId,
      runnerFile,
      finish: (exitCode = 0) => void res.end(String(exitCode)),
      aborted: new Promise<void>((resolve) => (markAborted = resolve)),
    };
    res.on("close", () => {
      if (res.writableEnded) return;
      this.timeline.push("aborted");
      markAborted();
    });
    this.runs.push(runner);
    if (!this.hold) runner.finish(0);
    const waiter = this.waiters.shift();
    if (waiter) waiter(runner);
    else this.waiting.push(runner);
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers

export interface ApiResponse {
  status: number;
  text: string;
  headers: Headers;
  json<T = Record<string, unknown>>(): T;
}

export async function api(twin: NomadTwin, method: string, path: string, body?: unknown, token?: string): Promise<ApiResponse> {
  const headers: Record<string, string> = token ? { "X-Nomad-Token": token } : {};
  const res = await fetch(twin.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, text, headers: res.headers, json: <T>() => JSON.parse(text) as T };
}

/** `/v1/jobs/parse` of some HCL, canonicalized unless told otherwise. */
export async function parseHcl(twin: NomadTwin, hcl: string, variables = "", canonicalize = true, token?: string): Promise<Record<string, unknown>> {
  const res = await api(twin, "POST", "/v1/jobs/parse", { JobHCL: hcl, Variables: variables, Canonicalize: canonicalize }, token);
  expect(res.status, res.text).toBe(200);
  return res.json();
}

export async function registerJob(twin: NomadTwin, job: Record<string, unknown>, token?: string): Promise<void> {
  const res = await api(twin, "POST", "/v1/jobs", { Job: job }, token);
  expect(res.status, res.text).toBe(200);
}

/** Parses and registers a job written in HCL. */
export async function runHcl(twin: NomadTwin, hcl: string): Promise<string> {
  const job = await parseHcl(twin, hcl);
  await registerJob(twin, job);
  return String(job.ID);
}

/** Follows a job's allocations with blocking queries until `done` holds. */
export async function waitForAllocations(twin: NomadTwin, jobId: string, done: (allocs: TwinAllocation[]) => boolean): Promise<TwinAllocation[]> {
  let index = 0;
  for (;;) {
    const res = await api(twin, "GET", `/v1/job/${encodeURIComponent(jobId)}/allocations?index=${index}&wait=5s`);
    const allocs = res.json<TwinAllocation[]>();
    if (done(allocs)) return allocs;
    index = Number(res.headers.get("x-nomad-index"));
  }
}

export function eventTypes(alloc: TwinAllocation, task: string): string[] {
  return alloc.TaskStates[task]?.Events.map((event) => event.Type) ?? [];
}

export function exitCodeOf(alloc: TwinAllocation, task: string): number | undefined {
  return alloc.TaskStates[task]?.Events.find((event) => event.Type === "Terminated")?.ExitCode;
}

/** Resolves when `check` holds, polling every 10 ms (for what has no blocking query: files, logs). */
export async function until<T>(check: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error("until: condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * The Vault twin set up as an operator does for runner jobs in the `default` namespace, and the
 * dispatcher's own store of their credentials (what it writes before it dispatches a runner).
 */
export async function startRunnerVault(): Promise<{ vault: VaultTwin; store: VaultStore }> {
  const vault = await VaultTwin.start({ audit: true });
  await grantRunnerIdentity(vault, { nomadNamespace: "default" });
  const store = new VaultStore({
    addr: vault.url,
    token: vault.rootToken,
    kvMount: "secret",
    kvPrefix: "nomad-gha-dispatcher",
    runnerJob: { namespace: "default", id: "github-runner" },
  });
  return { vault, store };
}

/** A group of a batch job: one docker task of the fake runner image, no restarts or reschedules. */
export function group(name: string, task: string, extra = ""): string {
  return `
  group "${name}" {
    restart {
      attempts = 0
      mode     = "fail"
    }
    reschedule {
      attempts  = 0
      unlimited = false
    }
    ${extra}
    task "t" {
      driver = "docker"
      ${task}
    }
  }`;
}

/** A task body running `script` with bash in the fake runner image; `config` adds to its config block. */
export function bashTask(script: string, extra = "", config = ""): string {
  return `
      config {
        image      = "${RUNNER_IMAGE}"
        entrypoint = ["/bin/bash", "-c"]
        args       = [${JSON.stringify(script)}]
        ${config}
      }
      ${extra}`;
}
