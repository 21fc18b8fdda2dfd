// Parent side of server-process.ts: spawns the server under test in its own Node process,
// bundled into one file with the options `npm run build` ships the service with (see
// scripts/bundle.ts): what runs here is what runs in production, module for module.
import { type ChildProcess, fork } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { bundleOptions } from "../../scripts/bundle.js";
import type { ChildStats, FromChild, PathTimes, ToChild } from "./server-process.js";

export interface ServerChild {
  url: string;
  pid: number;
  stats(): Promise<ChildStats>;
  /** With BENCH_DEP_TIMING=1 in its env: the dispatch path as the service timed it (see server-process.ts). */
  pathTimes(): Promise<PathTimes>;
  close(): Promise<void>;
}

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const ENTRY = `${ROOT}.tmp/bench/server-process.mjs`;
/** The bundled runner job, which the bundle would otherwise look for next to .tmp/. */
export const RUNNER_JOB_FILE = `${ROOT}jobs/github-runner.nomad.hcl`;

let built: Promise<string> | undefined;

/** Bundles the child entry (and src/ with it) once per bench run into .tmp/bench (gitignored). */
export function buildChild(): Promise<string> {
  built ??= build(bundleOptions(`${ROOT}test/bench/server-process.ts`, ENTRY)).then(() => ENTRY);
  return built;
}

/** The glibc malloc settings the image sets (Dockerfile `ENV MALLOC_*`): the bench runs with them too. */
export function shippedMallocEnv(): Record<string, string> {
  const dockerfile = readFileSync(`${ROOT}Dockerfile`, "utf8").replace(/\\\n/g, " ");
  const settings = [...dockerfile.matchAll(/^ENV .*$/gm)].flatMap((line) => [...line[0].matchAll(/\b(MALLOC_[A-Z_]+)=(\S+)/g)]);
  return Object.fromEntries(settings.map((m) => [m[1]!, m[2]!]));
}

/** Starts `kind` with exactly `env` (plus PATH/HOME), resolving once it listens. */
export async function startServerChild(kind: "service" | "floor", env: Record<string, string>): Promise<ServerChild> {
  const entry = await buildChild();
  // BENCH_CPU_PROF=<dir>: a V8 CPU profile of each server process, written when it exits.
  const profile = process.env.BENCH_CPU_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  const child: ChildProcess = fork(entry, [kind], {
    execArgv: [...profile, ...(process.env.BENCH_NODE_FLAGS ?? "").split(" ").filter(Boolean)],
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      NODE_ENV: "production",
      // The classes file names each class's job file itself.
      ...(env.RUNNER_CLASSES_FILE === undefined && { NOMAD_RUNNER_JOB_FILE: RUNNER_JOB_FILE }),
      ...shippedMallocEnv(),
      ...env,
      // BENCH_CHILD_ENV="MALLOC_ARENA_MAX=2 ...": extra environment of the server processes.
      ...Object.fromEntries(
        (process.env.BENCH_CHILD_ENV ?? "")
          .split(" ")
          .filter((kv) => kv.includes("="))
          .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
      ),
    },
    // The service logs JSON lines to stdout as in production; the bench does not read them.
    stdio: ["ignore", process.env.BENCH_CHILD_STDOUT ? "inherit" : "ignore", "inherit", "ipc"],
  });
  const waiters: Array<(m: FromChild) => boolean> = [];
  child.on("message", (m: FromChild) => {
    const i = waiters.findIndex((w) => w(m));
    if (i >= 0) waiters.splice(i, 1);
  });
  const next = <T extends FromChild["type"]>(type: T, timeoutMs = 60_000): Promise<Extract<FromChild, { type: T }>> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${kind} child: no ${type} within ${timeoutMs} ms`)), timeoutMs);
      const onExit = (code: number | null) => reject(new Error(`${kind} child exited (${code}) while waiting for ${type}`));
      child.once("exit", onExit);
      waiters.push((m) => {
        if (m.type === "failed") {
          clearTimeout(timer);
          child.off("exit", onExit);
          reject(new Error(`${kind} child failed: ${m.error}`));
          return true;
        }
        if (m.type !== type) return false;
        clearTimeout(timer);
        child.off("exit", onExit);
        resolve(m as Extract<FromChild, { type: T }>);
        return true;
      });
    });
  const send = (m: ToChild) => child.send(m);
  return next("ready").then(({ url }) => ({
    url,
    pid: child.pid ?? 0,
    async stats() {
      const reply = next("stats", 10_000);
      send({ type: "stats" });
      return (await reply).stats;
    },
    async pathTimes() {
      const reply = next("pathTimes", 10_000);
      send({ type: "pathTimes" });
      return (await reply).times;
    },
    async close() {
      if (child.exitCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      send({ type: "close" });
      const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
      await exited;
      clearTimeout(timer);
    },
  }));
}
