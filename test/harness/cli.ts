import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";

const CLI = fileURLToPath(new URL("../../src/cli.ts", import.meta.url));

export interface CliRun {
  child: ChildProcess;
  out(): string;
  err(): string;
  /** The exit code, or null when it had to be killed after `timeoutMs`. */
  exit(timeoutMs?: number): Promise<number | null>;
}

/** `nomad-gha-dispatcher <args>` from src/ (through tsx), with only PATH and `env` in its environment. */
export function runCli(env: Record<string, string>, args: string[] = ["serve"]): CliRun {
  const child = spawn(process.execPath, ["--import", "tsx", CLI, ...args], {
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = once(child, "exit").then(([code]) => code as number | null);
  return {
    child,
    out: () => stdout,
    err: () => stderr,
    async exit(timeoutMs = 20_000) {
      const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
