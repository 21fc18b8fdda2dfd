// The twin's docker driver: runs a task's command for real, as the image's user, with the task's
// directories where a container sees them, so that the scripts of a job meet the same files,
// owners and modes as on a real Nomad client.
//
// What a container sees, after hashicorp/nomad drivers/docker/driver.go (createContainerConfig:
// the alloc dir at /alloc, the task's local dir at /local, its secrets dir at /secrets; `user`
// overrides the image's USER; `entrypoint`/`args` override ENTRYPOINT/CMD) and
// drivers/docker/handle.go (Kill: the kill signal to the container's main process, SIGKILL once
// the kill timeout has passed). As root, each task gets private mount and PID namespaces
// (unshare), as a container has: those directories and its own copy of the image's WORKDIR are
// bind-mounted where the container would have them, its /proc shows its own processes only, the
// command runs under setpriv as the image's uid/gid and is PID 1, and when PID 1 dies the kernel
// kills everything else in the container (whatever process groups job control made). Without
// root, the command runs as the current user with the host paths in NOMAD_*_DIR (ownership is
// then not what a client gives, and tests that depend on it skip).

import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { createInterface } from "node:readline";
import type { TwinImage } from "./contract.js";
import { IS_ROOT, type TaskDir } from "./nomad-alloc-dir.js";

/** Where the docker driver mounts the task's directories (drivers/docker/driver.go). */
export const CONTAINER_PATHS = { alloc: "/alloc", local: "/local", secrets: "/secrets" } as const;

/** Docker's default PATH for an image that sets none. */
const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export interface ContainerSpec {
  image: TwinImage;
  /** Task config `entrypoint` / `args` / `command`, already interpolated. */
  entrypoint?: string[];
  args?: string[];
  /** Task `user`: overrides the image's USER. */
  user?: string;
  env: Record<string, string>;
  taskDir: TaskDir;
  allocDir: string;
  /** A fresh host directory for this container's copy of the image. */
  containerRoot: string;
  onLine(line: string, stream: "stdout" | "stderr"): void;
}

export interface ContainerExit {
  exitCode: number;
  signal: number;
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGUSR1: 10, SIGUSR2: 12, SIGTERM: 15 };

/**
 * What util-linux unshare (2.38, Debian 12) prints, exiting 1, when the child it forked died of a
 * signal it cannot re-raise on itself: it resets that signal to SIG_DFL first, which SIGKILL
 * refuses (util-linux/util-linux sys-utils/unshare.c, the WIFSIGNALED branch). Docker would report exit 137.
 */
const UNSHARE_SIGKILL = /^unshare: sigprocmask unblock failed/;

let mountPointsReady = false;

/** In a mount namespace a bind mount needs its mount point; these are created once on the host. */
function ensureMountPoints(workdir: string): void {
  if (!mountPointsReady) {
    for (const path of Object.values(CONTAINER_PATHS)) mkdirSync(path, { recursive: true });
    mountPointsReady = true;
  }
  mkdirSync(workdir, { recursive: true });
}

/** Host path or container path of the task's directories, as the task's environment names them. */
export function taskPaths(taskDir: TaskDir, allocDir: string): { alloc: string; local: string; secrets: string } {
  return IS_ROOT ? { ...CONTAINER_PATHS } : { alloc: allocDir, local: taskDir.local, secrets: taskDir.secrets };
}

export class Container {
  readonly exited: Promise<ContainerExit>;
  private killed = false;
  /** unshare saw the container's PID 1 die of SIGKILL (see UNSHARE_SIGKILL). */
  private diedOfSigkill = false;

  private constructor(private readonly child: ChildProcess) {
    // Its output is all read once stdout and stderr are closed, which can come after the exit.
    const outputRead = new Promise<void>((resolve) => child.once("close", () => resolve()));
    this.exited = new Promise((resolve) => {
      child.once("error", () => resolve({ exitCode: 127, signal: 0 }));
      child.once("exit", (code, signal) => {
        // The container ends with its main process: whatever it left running dies with it.
        this.kill();
        // A process that left the container's process group could hold the pipes open: wait a little only.
        const grace = new Promise<void>((done) => setTimeout(done, 1000).unref());
        void Promise.race([outputRead, grace]).then(() => {
          // unshare's own last words are on stderr, read only now.
          const number = signal ? (SIGNALS[signal] ?? 0) : this.diedOfSigkill ? SIGNALS.SIGKILL! : 0;
          resolve({ exitCode: this.diedOfSigkill || code === null ? 128 + number : code, signal: number });
        });
      });
    });
  }

  static async start(spec: ContainerSpec): Promise<Container> {
    const { image } = spec;
    await mkdir(spec.containerRoot, { recursive: true });
    const workdirHost = await image.materialize(spec.containerRoot);
    const command = [...(spec.entrypoint ?? image.entrypoint ?? []), ...(spec.args ?? (spec.entrypoint ? [] : (image.cmd ?? [])))];
    if (command.length === 0) throw new Error("no command specified");
    const { uid, gid } = userOf(spec.user, image);
    const env: Record<string, string> = { PATH: DEFAULT_PATH, HOSTNAME: "nomad-twin", ...image.env, ...spec.env };
    if (!IS_ROOT) env.HOME = workdirHost;
    let child: ChildProcess;
    if (IS_ROOT) {
      ensureMountPoints(image.workdir);
      const mounts = [
        [spec.allocDir, CONTAINER_PATHS.alloc],
        [spec.taskDir.local, CONTAINER_PATHS.local],
        [spec.taskDir.secrets, CONTAINER_PATHS.secrets],
        [workdirHost, image.workdir],
      ];
      // A private /tmp too, once the binds (whose sources may live in the host's /tmp) are made:
      // a container's /tmp is its own, gone with it.
      const script =
        'set -e; while [ "$1" != "--" ]; do mount --bind "$1" "$2"; shift 2; done; shift; mount -t tmpfs -o mode=1777 tmpfs /tmp; cd "$1"; uid=$2; gid=$3; shift 3; exec setpriv --reuid="$uid" --regid="$gid" --clear-groups -- "$@"';
      const namespaces = ["--mount", "--pid", "--fork", "--kill-child=SIGKILL", "--mount-proc", "--propagation", "private"];
      const argv = [...namespaces, "--", "/bin/sh", "-c", script, "sh", ...mounts.flat(), "--", image.workdir, String(uid), String(gid), ...command];
      child = spawn("unshare", argv, { env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    } else {
      child = spawn(command[0]!, command.slice(1), { env, cwd: workdirHost, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    }
    const container = new Container(child);
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream }).on("line", (line) => {
        if (IS_ROOT && stream === child.stderr && UNSHARE_SIGKILL.test(line)) container.diedOfSigkill = true;
        else spec.onLine(line, stream === child.stderr ? "stderr" : "stdout");
      });
    }
    return container;
  }

  /**
   * `docker stop`: the kill signal to the main process, SIGKILL to everything in the container
   * once `timeoutMs` has passed. Resolves when the container is gone.
   */
  async stop(signal: string, timeoutMs: number): Promise<ContainerExit> {
    if (!this.killed) {
      this.killed = true;
      this.signalMain(signal);
      const timer = setTimeout(() => this.kill(), timeoutMs);
      void this.exited.then(() => clearTimeout(timer));
    }
    return this.exited;
  }

  /** `docker kill`: every process of the container dies now. */
  kill(): void {
    const pid = this.child.pid;
    if (!pid) return;
    // The container's PID 1 takes the rest of its PID namespace with it; without one, the group.
    for (const target of IS_ROOT ? [containerInit(pid), pid] : [-pid]) {
      try {
        if (target !== undefined) process.kill(target, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }

  /** The container's main process, as docker stop signals it (PID 1 inside the container). */
  private signalMain(signal: string): void {
    const pid = this.child.pid;
    const main = pid && IS_ROOT ? containerInit(pid) : pid;
    try {
      if (main) process.kill(main, signal as NodeJS.Signals);
    } catch {
      // already gone
    }
  }
}

/** The process `unshare --fork` started: PID 1 of the container's PID namespace. */
function containerInit(unsharePid: number): number | undefined {
  try {
    const children = readFileSync(`/proc/${unsharePid}/task/${unsharePid}/children`, "utf8").trim().split(/\s+/).filter(Boolean);
    return children.length > 0 ? Number(children[0]) : undefined;
  } catch {
    return undefined;
  }
}

function userOf(user: string | undefined, image: TwinImage): { uid: number; gid: number } {
  if (!user) return { uid: image.uid, gid: image.gid };
  if (user === "root") return { uid: 0, gid: 0 };
  const [u = "", g] = user.split(":");
  if (!/^\d+$/.test(u)) throw new Error(`unable to find user ${user}: the twin's images know numeric users and root only`);
  return { uid: Number(u), gid: g !== undefined && /^\d+$/.test(g) ? Number(g) : Number(u) };
}
