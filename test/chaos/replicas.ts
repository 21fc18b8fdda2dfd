// Dispatcher replicas as separate OS processes (`node --import tsx src/cli.ts serve`), each on a
// port picked here (PORT=0 would not tell us which), logging JSON lines to a file per
// incarnation so the logs can be searched afterwards.

import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";

export interface ReplicaOptions {
  name: string;
  /** Environment on top of PATH/HOME; PORT is filled in per start. */
  env: Record<string, string>;
  logDir: string;
  cwd: string;
}

interface Incarnation {
  process: ChildProcess;
  port: number;
  logFile: string;
  exited: Promise<number | null>;
}

export class Replica {
  readonly logFiles: string[] = [];
  private current: Incarnation | undefined;
  private starts = 0;

  constructor(private readonly opts: ReplicaOptions) {}

  get name(): string {
    return this.opts.name;
  }

  get url(): string {
    if (!this.current) throw new Error(`replica ${this.name} is not running`);
    return `http://127.0.0.1:${this.current.port}`;
  }

  get pid(): number | undefined {
    return this.current?.process.pid;
  }

  /** Starts a new incarnation and resolves once it answers /healthz. */
  async start(timeoutMs = 30_000): Promise<void> {
    if (this.current) throw new Error(`replica ${this.name} is already running`);
    const port = await freePort();
    const logFile = join(this.opts.logDir, `${this.name}.${++this.starts}.log`);
    const fd = openSync(logFile, "a");
    const child = spawn(process.execPath, ["--import", "tsx", "src/cli.ts", "serve"], {
      cwd: this.opts.cwd,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", NODE_ENV: "production", ...this.opts.env, PORT: String(port) },
      stdio: ["ignore", fd, fd],
    });
    closeSync(fd);
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    this.logFiles.push(logFile);
    this.current = { process: child, port, logFile, exited };
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const early = await Promise.race([exited.then((code) => ({ code })), sleep(100).then(() => undefined)]);
      if (early) {
        this.current = undefined;
        throw new Error(`replica ${this.name} exited with ${early.code} during startup:\n${tail(logFile)}`);
      }
      try {
        const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(1_000) });
        if (res.ok) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        await this.kill();
        throw new Error(`replica ${this.name} did not become healthy in ${timeoutMs} ms:\n${tail(logFile)}`);
      }
    }
  }

  /** SIGKILL: no shutdown, nothing drained, in-flight requests die with it. */
  async kill(): Promise<void> {
    const current = this.current;
    if (!current) return;
    this.current = undefined;
    current.process.kill("SIGKILL");
    await current.exited;
  }

  /** SIGTERM and wait for the graceful shutdown (SIGKILL after `timeoutMs`). */
  async stop(timeoutMs = 15_000): Promise<void> {
    const current = this.current;
    if (!current) return;
    this.current = undefined;
    current.process.kill("SIGTERM");
    const timer = setTimeout(() => current.process.kill("SIGKILL"), timeoutMs);
    await current.exited;
    clearTimeout(timer);
  }

  /** Every log line of every incarnation, as written. */
  logText(): string {
    return this.logFiles.map((file) => readFileSync(file, "utf8")).join("\n");
  }
}

/** A port nobody listens on right now (the replica binds it a moment later). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function tail(file: string): string {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-20).join("\n");
  } catch {
    return "(no log)";
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
