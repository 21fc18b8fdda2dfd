// Parent side of server-process.ts: spawns the server under test in its own Node process, as
// plain JavaScript compiled by tsc (like `npm run build`): under tsx the loader's own thread would
// add some 35 MB to the RSS being measured.
import { execFile, fork, type ChildProcess } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
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
const BUILD_DIR = `${ROOT}.tmp/bench`;
/** The bundled runner job, which the compiled config would otherwise look for next to the build. */
export const RUNNER_JOB_FILE = `${ROOT}jobs/github-runner.nomad.hcl`;

let built: Promise<string> | undefined;

/** Compiles src/ and the child entry once per bench run into .tmp/bench (gitignored). */
export function buildChild(): Promise<string> {
  built ??= (async () => {
    await mkdir(BUILD_DIR, { recursive: true });
    await writeFile(
      `${BUILD_DIR}/tsconfig.json`,
      JSON.stringify({
        extends: "../../tsconfig.json",
        compilerOptions: { rootDir: "../..", outDir: "build", noEmit: false, sourceMap: false },
        include: ["../../src", "../../test/bench/server-process.ts"],
      }),
    );
    await promisify(execFile)(process.execPath, [`${ROOT}node_modules/typescript/bin/tsc`, "-p", `${BUILD_DIR}/tsconfig.json`], { cwd: ROOT });
    return `${BUILD_DIR}/build/test/bench/server-process.js`;
  })();
  return built;
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
      NOMAD_RUNNER_JOB_FILE: RUNNER_JOB_FILE,
      ...env,
      // BENCH_CHILD_ENV="MALLOC_ARENA_MAX=2 ...": extra environment of the server processes.
      ...Object.fromEntries((process.env.BENCH_CHILD_ENV ?? "").split(" ").filter((kv) => kv.includes("=")).map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)])),
    },
    // The service logs JSON lines to stdout as in production; the bench does not read them.
    stdio: ["ignore", "ignore", "inherit", "ipc"],
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
