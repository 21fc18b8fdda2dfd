// Runs the runner image stand-in the way a container would: a private copy of /home/runner, the
// image's environment, as the image's user (uid/gid 1001 through setpriv), in its own process
// group so a test can signal it like a stopped container and kill whatever is left at the end.

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { onTestFinished } from "vitest";
import type { TwinImage } from "./contract.js";
import { GitHubTwin, type GitHubTwinOptions } from "./github.js";
import { actionsRunnerImage } from "./runner-image.js";

/** Dropping to uid 1001 needs root; without it the process tests are skipped. */
export const CAN_DROP_TO_RUNNER = process.getuid?.() === 0;
export const NEEDS_ROOT = "skipped: running the stand-in as uid 1001 (setpriv) needs root";

export interface RunningProcess {
  child: ChildProcess;
  /** stdout and stderr as they came, interleaved. */
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves once the output contains `text`. */
  printed(text: string, timeoutMs?: number): Promise<void>;
}

export interface Container {
  image: TwinImage;
  /** Host path standing for /home/runner. */
  workdir: string;
  /** Runs `bash -c script` in the workdir; `asUser: false` keeps root. */
  run(script: string, opts?: { env?: Record<string, string>; asUser?: boolean }): RunningProcess;
}

const processes: ChildProcess[] = [];

/** A fresh container of the image; removed (and its processes killed) when the test ends. */
export async function container(version: string): Promise<Container> {
  const image = actionsRunnerImage(version);
  const root = await mkdtemp(join(tmpdir(), "runner-image-"));
  const workdir = await image.materialize(root);
  onTestFinished(async () => {
    for (const child of processes.splice(0)) {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch {
          // Already gone.
        }
      }
    }
    await rm(root, { recursive: true, force: true });
  });
  return {
    image,
    workdir,
    run(script, opts = {}) {
      const env = { PATH: process.env["PATH"] ?? "/usr/bin:/bin", ...image.env, ...opts.env };
      const command =
        opts.asUser === false ? ["bash", "-c", script] : ["setpriv", `--reuid=${image.uid}`, `--regid=${image.gid}`, "--clear-groups", "bash", "-c", script];
      const child = spawn(command[0]!, command.slice(1), { cwd: workdir, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
      processes.push(child);
      let text = "";
      const waiters: Array<() => void> = [];
      const collect = (chunk: Buffer) => {
        text += chunk.toString();
        for (const waiter of [...waiters]) waiter();
      };
      child.stdout?.on("data", collect);
      child.stderr?.on("data", collect);
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        child.on("close", (code, signal) => resolve({ code, signal })),
      );
      return {
        child,
        output: () => text,
        exited,
        printed: (wanted, timeoutMs = 15_000) =>
          new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`timed out waiting for "${wanted}" in:\n${text}`)), timeoutMs);
            const check = () => {
              if (!text.includes(wanted)) return;
              clearTimeout(timer);
              waiters.splice(waiters.indexOf(check), 1);
              resolve();
            };
            waiters.push(check);
            check();
          }),
      };
    },
  };
}

export interface Webhooks {
  url: string;
  /** `action` of every workflow_job delivery received, with its job id. */
  received: Array<{ action: string; jobId: number }>;
}

/** A GitHub twin with octo-org/app and a webhook receiver; closed when the test ends. */
export async function gitHub(opts: GitHubTwinOptions = {}): Promise<{ twin: GitHubTwin; pat: string; hooks: Webhooks }> {
  const twin = await GitHubTwin.start({ jobDurationMs: 100, ...opts });
  const hooks: Webhooks = { url: "", received: [] };
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      const payload = JSON.parse(body) as { action: string; workflow_job: { id: number } };
      hooks.received.push({ action: payload.action, jobId: payload.workflow_job.id });
      res.end("ok");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  hooks.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  twin.addRepo("octo-org/app");
  twin.addWebhook({ url: hooks.url, secret: "s3cret" });
  onTestFinished(async () => {
    await twin.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { twin, pat: twin.createPat(), hooks };
}

/** POSTs to the twin's REST API with a PAT; returns the JSON body. */
export async function rest(twin: GitHubTwin, pat: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${twin.url}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${pat}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as Record<string, unknown>;
}

/** What the runner job's run-runner.sh does with a JIT config: its files into the workdir, then run.sh. */
export const RUN_JIT_FILES = `set -euo pipefail
echo "$JITCONFIG" | base64 -d | jq -r 'to_entries[] | "\\(.key) \\(.value)"' |
  while read -r file content; do echo "$content" | base64 -d > "$file"; done
exec ./run.sh`;
