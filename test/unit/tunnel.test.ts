import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import cloudflaredWrapper from "cloudflared";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/log.js";
import { SHUTDOWN_BUDGET_MS } from "../../src/shutdown.js";
import {
  CloudflaredSupervisor,
  type CloudflaredSupervisorOptions,
  cloudflaredArgs,
  cloudflaredEnvironment,
  DEFAULT_STOP_TIMEOUT_MS,
  formatWebhookSettings,
  KILL_WAIT_MS,
  parseCloudflaredLine,
  TUNNEL_GRACE_PERIOD_MS,
  TunnelStartError,
  type TunnelTarget,
} from "../../src/tunnel/cloudflared.js";
import { originUrlFor, tunnelTargetFor } from "../../src/tunnel/settings.js";

const STANDIN = fileURLToPath(new URL("../fixtures/cloudflared-standin.mjs", import.meta.url));
const work = mkdtempSync(join(tmpdir(), "tunnel-test-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A token shaped like a real one (base64 JSON), so the stand-in accepts it. */
const TOKEN = Buffer.from(
  JSON.stringify({ a: "0123456789abcdef0123456789abcdef", t: "6ff42ae2-765d-4adf-8112-31c55c1551ef", s: "c3VwZXItc2VjcmV0LXR1bm5lbC1zZWNyZXQ=" }),
).toString("base64");

/** What the dispatcher's own environment looks like: full of credentials cloudflared must not see. */
const PARENT_ENV = {
  PATH: process.env.PATH,
  HOME: process.env.HOME,
  GITHUB_TOKEN: "ghp_thisMustNotReachCloudflared",
  GITHUB_WEBHOOK_SECRET: "whsec-this-must-never-be-logged",
  VAULT_TOKEN: "hvs.not-for-cloudflared",
  NOMAD_TOKEN: "nomad-not-for-cloudflared",
  TUNNEL_TOKEN: "parent-token-ignored-unless-named",
  TUNNEL_LOGLEVEL: "info",
};

let counter = 0;
const live: CloudflaredSupervisor[] = [];
afterEach(async () => {
  await Promise.all(live.splice(0).map((s) => s.stop()));
});

function setup(tunnel: TunnelTarget, overrides: Partial<CloudflaredSupervisorOptions> = {}) {
  const record = join(work, `record-${++counter}.jsonl`);
  const logs: Array<Record<string, unknown>> = [];
  const raw: string[] = [];
  const logger = createLogger({
    level: "trace",
    destination: {
      write(chunk: string) {
        raw.push(chunk);
        logs.push(JSON.parse(chunk) as Record<string, unknown>);
      },
    },
  });
  const supervisor = new CloudflaredSupervisor({
    tunnel,
    binPath: STANDIN,
    logger,
    parentEnv: PARENT_ENV,
    backoff: { initialMs: 10, maxMs: 40, stableAfterMs: 60_000 },
    stopTimeoutMs: 5_000,
    ...overrides,
    env: { STANDIN_RECORD: record, ...overrides.env },
  });
  live.push(supervisor);
  const starts = () =>
    existsSync(record)
      ? readFileSync(record, "utf8")
          .trim()
          .split("\n")
          .map((l) => JSON.parse(l) as { pid: number; argv: string[]; tokenInEnv: boolean; envKeys: string[] })
      : [];
  return { supervisor, logs, rawLog: () => raw.join(""), starts };
}

// A wait, not a speed check: each restart starts a node process, slow on a loaded machine.
async function eventually<T>(probe: () => T | undefined | false, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("parseCloudflaredLine", () => {
  it("reads a registered connection with its details", () => {
    const line = parseCloudflaredLine(
      "2026-08-14T11:22:33Z INF Registered tunnel connection connIndex=2 connection=3c4a1d2e-5b6f-4a7b-8c9d-0e1f2a3b4c5d event=0 ip=198.41.200.13 location=ams01 protocol=quic",
    );
    expect(line.level).toBe("info");
    expect(line.message).toBe("Registered tunnel connection");
    expect(line.event).toEqual({
      kind: "connected",
      connIndex: 2,
      connectionId: "3c4a1d2e-5b6f-4a7b-8c9d-0e1f2a3b4c5d",
      location: "ams01",
      ip: "198.41.200.13",
      protocol: "quic",
    });
    expect(line.error).toBeUndefined();
  });

  it("does not mistake the attempt to register for a registration", () => {
    const line = parseCloudflaredLine("2026-08-14T11:22:33Z DBG Registering tunnel connection connIndex=0 event=0 ip=198.41.200.13 protocol=quic");
    expect(line.event).toBeUndefined();
    expect(line.level).toBe("debug");
  });

  it.each([
    ['2026-08-14T11:22:40Z ERR Connection terminated error="timeout: no recent network activity" connIndex=1', 1],
    ['2026-08-14T11:22:40Z ERR Serve tunnel error error="failed to dial to edge with quic" connIndex=3 event=0 ip=198.41.192.7', 3],
    ["2026-08-14T11:22:41Z INF Retrying connection in up to 2s connIndex=0 event=0 ip=198.41.192.7", 0],
    ["2026-08-14T11:22:42Z INF Unregistered tunnel connection connIndex=2 event=0 ip=198.41.192.7", 2],
    ["2026-08-14T11:22:42Z INF Lost connection with the edge connIndex=1", 1],
  ])("reads a lost connection: %s", (text, connIndex) => {
    const line = parseCloudflaredLine(text);
    expect(line.event).toMatchObject({ kind: "disconnected", connIndex });
  });

  it("treats graceful shutdown as losing every connection", () => {
    const line = parseCloudflaredLine("2026-08-14T11:30:00Z INF Initiating graceful shutdown due to signal terminated ...");
    expect(line.event).toEqual({ kind: "disconnected", reason: "Initiating graceful shutdown due to signal terminated ..." });
  });

  it("describes errors with cloudflared's error field, unquoted", () => {
    const line = parseCloudflaredLine('2026-08-14T11:22:40Z ERR Couldn\'t start tunnel error="Unauthorized: \\"bad\\" secret" connIndex=0');
    expect(line.level).toBe("error");
    expect(line.fields).toEqual({ error: 'Unauthorized: "bad" secret', connIndex: "0" });
    expect(line.error).toBe('Couldn\'t start tunnel: Unauthorized: "bad" secret');
  });

  it("finds the quick tunnel URL in the box, and only there", () => {
    expect(
      parseCloudflaredLine("2026-08-14T11:22:33Z INF |  https://seasonal-deck-organisms-sf.trycloudflare.com                                     |\r").event,
    ).toEqual({
      kind: "quick-url",
      url: "https://seasonal-deck-organisms-sf.trycloudflare.com",
    });
    expect(parseCloudflaredLine("2026-08-14T11:22:33Z INF Requesting new quick Tunnel on trycloudflare.com...").event).toBeUndefined();
    expect(
      parseCloudflaredLine("2026-08-14T11:22:33Z INF Thank you for trying Cloudflare Tunnel. ... Terms of Use (https://www.cloudflare.com/website-terms/), ...")
        .event,
    ).toBeUndefined();
  });

  it("keeps unformatted output (usage errors) as a message without level", () => {
    const line = parseCloudflaredLine("Provided Tunnel token is not valid.");
    expect(line).toEqual({ message: "Provided Tunnel token is not valid.", fields: {} });
  });
});

describe("webhook settings", () => {
  it("names the payload URL, content type, event and where the secret comes from, never a secret", () => {
    const text = formatWebhookSettings("https://a-b-c-d.trycloudflare.com/");
    expect(text).toContain("Payload URL:    https://a-b-c-d.trycloudflare.com/webhook");
    expect(text).toContain("application/json");
    expect(text).toContain("GITHUB_WEBHOOK_SECRET");
    expect(text).toContain('"Workflow jobs"');
  });
});

describe("cloudflared command line and environment", () => {
  it("never puts the token on the command line", () => {
    const grace = ["--grace-period", "10s"];
    expect(cloudflaredArgs({ mode: "named", token: TOKEN })).toEqual(["tunnel", "--no-autoupdate", ...grace, "run"]);
    expect(cloudflaredArgs({ mode: "named", configFile: "/etc/t.yml" })).toEqual(["tunnel", "--no-autoupdate", ...grace, "--config", "/etc/t.yml", "run"]);
    expect(cloudflaredArgs({ mode: "quick", originUrl: "http://127.0.0.1:8080" })).toEqual([
      "tunnel",
      "--no-autoupdate",
      ...grace,
      "--url",
      "http://127.0.0.1:8080",
    ]);
  });

  it("gives cloudflared a grace period that, with the wait for it to exit, fits the shutdown budget", () => {
    expect(TUNNEL_GRACE_PERIOD_MS).toBe(10_000);
    expect(DEFAULT_STOP_TIMEOUT_MS).toBeGreaterThan(TUNNEL_GRACE_PERIOD_MS);
    expect(DEFAULT_STOP_TIMEOUT_MS + KILL_WAIT_MS).toBeLessThanOrEqual(SHUTDOWN_BUDGET_MS.tunnel);
  });

  it("passes only what cloudflared needs, and the token only to a token tunnel", () => {
    const named = cloudflaredEnvironment({ mode: "named", token: TOKEN }, PARENT_ENV, { EXTRA: "1" });
    expect(named).toEqual({ PATH: PARENT_ENV.PATH, HOME: PARENT_ENV.HOME, TUNNEL_LOGLEVEL: "info", EXTRA: "1", TUNNEL_TOKEN: TOKEN });
    const quick = cloudflaredEnvironment({ mode: "quick", originUrl: "http://127.0.0.1:8080" }, PARENT_ENV);
    expect(quick).not.toHaveProperty("TUNNEL_TOKEN");
    expect(quick).not.toHaveProperty("GITHUB_TOKEN");
  });
});

describe("tunnelTargetFor", () => {
  const listen = { host: "0.0.0.0", port: 8080 };
  const tunnel = (env: Record<string, string>) =>
    loadConfig({ GITHUB_WEBHOOK_SECRET: "a-webhook-secret-of-20-chars", GITHUB_TOKEN: "t", ALLOWED_OWNERS: "acme", VAULT_TOKEN: "v", ...env }).tunnel;

  it("is off unless asked for, and a token without a named tunnel is a config error", () => {
    expect(tunnelTargetFor(tunnel({}), listen)).toBeUndefined();
    expect(() => tunnel({ TUNNEL: "quick", TUNNEL_TOKEN: "x" })).toThrow(/TUNNEL_TOKEN is set but TUNNEL=quick/);
    expect(() => tunnel({ TUNNEL: "yes" })).toThrow(/off, quick or named/);
  });

  it("picks token, then config file, for named tunnels", () => {
    expect(tunnelTargetFor(tunnel({ TUNNEL_TOKEN: "t" }), listen)).toEqual({ mode: "named", token: "t" });
    expect(tunnelTargetFor(tunnel({ TUNNEL: "named" }), listen)).toEqual({ mode: "named", configFile: "wrangler-free-tunnel.yml" });
  });

  it("points a quick tunnel at the listener, via loopback for wildcard addresses", () => {
    expect(tunnelTargetFor(tunnel({ TUNNEL: "quick" }), listen)).toEqual({ mode: "quick", originUrl: "http://127.0.0.1:8080" });
    expect(originUrlFor("::", 9000)).toBe("http://127.0.0.1:9000");
    expect(originUrlFor("::1", 9000)).toBe("http://[::1]:9000");
    expect(originUrlFor("localhost", 9000)).toBe("http://localhost:9000");
  });
});

describe("CloudflaredSupervisor with the stand-in binary", () => {
  it("quick tunnel: finds the URL, logs the webhook settings and reports connected", async () => {
    const { supervisor, logs, rawLog, starts } = setup({ mode: "quick", originUrl: "http://127.0.0.1:8080" });
    await supervisor.start();
    const status = await eventually(() => {
      const s = supervisor.status();
      return s.connected && s.url ? s : undefined;
    }, "quick tunnel URL and connection");

    expect(status).toMatchObject({ mode: "quick", connected: true, connections: 1, restarts: 0 });
    expect(status.url).toMatch(/^https:\/\/[a-z]+(-[a-z]+){3}\.trycloudflare\.com$/);
    const settings = logs.find((l) => typeof l.msg === "string" && l.msg.includes("Payload URL"));
    expect(settings?.msg).toContain(`${status.url}/webhook`);
    expect(settings?.webhook).toMatchObject({ payloadUrl: `${status.url}/webhook`, contentType: "application/json", events: ["Workflow jobs"] });
    expect(rawLog()).not.toContain(PARENT_ENV.GITHUB_WEBHOOK_SECRET);
    expect(starts()[0]?.argv).toEqual(["tunnel", "--no-autoupdate", "--grace-period", "10s", "--url", "http://127.0.0.1:8080"]);
    expect(starts()[0]?.tokenInEnv).toBe(false);
  });

  it("named tunnel with a token: 4 connections, token only in the child's environment, never logged", async () => {
    const { supervisor, rawLog, starts } = setup({ mode: "named", token: TOKEN });
    await supervisor.start();
    await eventually(() => supervisor.status().connections === 4, "4 registered connections");

    const [start] = starts();
    expect(start?.argv).toEqual(["tunnel", "--no-autoupdate", "--grace-period", "10s", "run"]);
    expect(start?.argv.join(" ")).not.toContain(TOKEN);
    expect(start?.tokenInEnv).toBe(true);
    expect(start?.envKeys).not.toContain("GITHUB_TOKEN");
    expect(start?.envKeys).not.toContain("VAULT_TOKEN");
    expect(start?.envKeys).not.toContain("NOMAD_TOKEN");
    expect(start?.envKeys).toContain("TUNNEL_LOGLEVEL");
    expect(supervisor.status()).toEqual({ mode: "named", connected: true, connections: 4, restarts: 0 });
    expect(rawLog()).not.toContain(TOKEN);
  });

  it("named tunnel with a config file runs `tunnel --config <file> run`", async () => {
    const config = join(work, "tunnel.yml");
    writeFileSync(config, "tunnel: 6ff42ae2-765d-4adf-8112-31c55c1551ef\ncredentials-file: /dev/null\n");
    const { supervisor, starts } = setup({ mode: "named", configFile: config });
    await supervisor.start();
    await eventually(() => supervisor.status().connected, "connection");
    expect(starts()[0]?.argv).toEqual(["tunnel", "--no-autoupdate", "--grace-period", "10s", "--config", config, "run"]);
    expect(starts()[0]?.tokenInEnv).toBe(false);
  });

  it("a missing config file is a clear start error", async () => {
    const { supervisor, starts } = setup({ mode: "named", configFile: join(work, "absent.yml") });
    await expect(supervisor.start()).rejects.toThrow(/tunnel config not found or unreadable at .*absent\.yml/);
    expect(starts()).toEqual([]);
  });

  it("tracks connections going away and coming back from cloudflared's own lines", async () => {
    const { supervisor } = setup({ mode: "quick", originUrl: "http://127.0.0.1:8080" });
    const seen: string[] = [];
    supervisor.on("connected", (i) => seen.push(`up ${i}`));
    supervisor.on("disconnected", (i) => seen.push(`down ${i ?? "all"}`));
    await supervisor.start();
    await eventually(() => supervisor.status().connected, "connection");
    await supervisor.stop();
    expect(supervisor.status().connected).toBe(false);
    // The stand-in unregisters its connection and announces the shutdown, as cloudflared does.
    expect(seen).toEqual(["up 0", "down all"]);
  });

  it("restarts cloudflared after a crash, with doubling backoff capped at maxMs", async () => {
    const { supervisor, logs, starts } = setup({ mode: "named", token: TOKEN }, { env: { STANDIN_CRASH_AFTER_MS: "60" } });
    await supervisor.start();
    await eventually(() => supervisor.status().restarts >= 4, "4 restarts");

    const status = supervisor.status();
    expect(status.lastError).toMatch(/^cloudflared exited with code 1: Serve tunnel error: stand-in crash/);
    const delays = logs.filter((l) => typeof l.restartInMs === "number").map((l) => l.restartInMs);
    expect(delays.slice(0, 4)).toEqual([10, 20, 40, 40]);
    await eventually(() => starts().length >= 5, "5 starts of cloudflared");
  });

  it("a run that lasted stableAfterMs resets the backoff", async () => {
    const { supervisor, logs } = setup(
      { mode: "quick", originUrl: "http://127.0.0.1:8080" },
      { env: { STANDIN_CRASH_AFTER_MS: "60" }, backoff: { initialMs: 10, maxMs: 1_000, stableAfterMs: 1 } },
    );
    await supervisor.start();
    await eventually(() => supervisor.status().restarts >= 3, "3 restarts");
    const delays = logs.filter((l) => typeof l.restartInMs === "number").map((l) => l.restartInMs);
    expect(delays.slice(0, 3)).toEqual([10, 10, 10]);
  });

  it("a cloudflared that fails at start is retried and its error reported", async () => {
    const { supervisor } = setup({ mode: "named", token: TOKEN }, { env: { STANDIN_FAIL_START: "1" } });
    await supervisor.start();
    const status = await eventually(() => {
      const s = supervisor.status();
      return s.restarts >= 1 && s.lastError?.startsWith("cloudflared exited") ? s : undefined;
    }, "a restart after the failed start");
    expect(status.connected).toBe(false);
    expect(status.lastError).toBe("cloudflared exited with code 1: Couldn't start tunnel: Unauthorized: Invalid tunnel secret");
  });

  it("reports cloudflared's unformatted usage errors, e.g. a malformed token", async () => {
    const { supervisor } = setup({ mode: "named", token: "not-a-tunnel-token" });
    await supervisor.start();
    const status = await eventually(() => {
      const s = supervisor.status();
      return s.lastError?.startsWith("cloudflared exited") ? s : undefined;
    }, "the exit of cloudflared");
    expect(status.lastError).toBe("cloudflared exited with code 1: Provided Tunnel token is not valid.");
  });

  it("a missing binary is a clear error at start, nothing is spawned or downloaded", async () => {
    const { supervisor, starts } = setup({ mode: "quick", originUrl: "http://127.0.0.1:8080" }, { binPath: "/nonexistent/cloudflared" });
    const error = await supervisor.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TunnelStartError);
    expect((error as TunnelStartError).problem).toBe("binary-not-found");
    expect((error as Error).message).toBe("cloudflared binary not found at /nonexistent/cloudflared: install cloudflared and set CLOUDFLARED_BIN");
    expect(supervisor.status().lastError).toBe((error as Error).message);
    expect(supervisor.pid).toBeUndefined();
    expect(starts()).toEqual([]);
  });

  it("a binary that is not executable, or not on PATH, is a clear error too", async () => {
    const notExecutable = join(work, "cloudflared-not-executable");
    writeFileSync(notExecutable, "#!/bin/sh\n");
    chmodSync(notExecutable, 0o644);
    const a = setup({ mode: "quick", originUrl: "http://127.0.0.1:8080" }, { binPath: notExecutable });
    await expect(a.supervisor.start()).rejects.toThrow(`cloudflared binary at ${notExecutable} is not executable`);

    const b = setup({ mode: "quick", originUrl: "http://127.0.0.1:8080" }, { binPath: "cloudflared-nowhere", parentEnv: { PATH: work } });
    await expect(b.supervisor.start()).rejects.toThrow('no executable "cloudflared-nowhere" on PATH');
  });

  it("keeps retrying when the binary disappears after start", async () => {
    const copy = join(work, "cloudflared-vanishing");
    copyFileSync(STANDIN, copy);
    chmodSync(copy, 0o755);
    const { supervisor } = setup({ mode: "quick", originUrl: "http://127.0.0.1:8080" }, { binPath: copy, env: { STANDIN_CRASH_AFTER_MS: "30" } });
    await supervisor.start();
    await eventually(() => supervisor.status().restarts >= 1, "a first restart");
    rmSync(copy);
    const status = await eventually(() => {
      const s = supervisor.status();
      return s.lastError?.startsWith("cloudflared did not start") ? s : undefined;
    }, "a failed spawn");
    expect(status.lastError).toBe(`cloudflared did not start: spawn ${copy} ENOENT`);
    await eventually(() => supervisor.status().restarts > status.restarts, "another attempt after the failed spawn");
  });

  it("stop() terminates cloudflared with SIGTERM and does not restart it", async () => {
    const { supervisor, starts } = setup({ mode: "named", token: TOKEN });
    const exits: Array<{ expected: boolean; signal: string | null; code: number | null }> = [];
    supervisor.on("exit", (e) => exits.push(e));
    await supervisor.start();
    await eventually(() => supervisor.status().connected, "connection");
    const pid = supervisor.pid;
    expect(pid).toBeDefined();

    await supervisor.stop();
    expect(isAlive(pid!)).toBe(false);
    expect(exits).toEqual([{ expected: true, code: 0, signal: null }]); // graceful: it handled SIGTERM
    expect(supervisor.pid).toBeUndefined();
    expect(supervisor.status()).toMatchObject({ connected: false, restarts: 0 });
    expect(starts()).toHaveLength(1);
    await supervisor.stop(); // idempotent
    await expect(supervisor.start()).rejects.toThrow(/was stopped/);
  });

  it("stop() falls back to SIGKILL when cloudflared ignores SIGTERM", async () => {
    const { supervisor } = setup({ mode: "quick", originUrl: "http://127.0.0.1:8080" }, { env: { STANDIN_IGNORE_SIGTERM: "1" }, stopTimeoutMs: 200 });
    const exits: Array<{ signal: string | null }> = [];
    supervisor.on("exit", (e) => exits.push(e));
    await supervisor.start();
    await eventually(() => supervisor.status().connected, "connection");
    const pid = supervisor.pid!;
    await supervisor.stop();
    expect(isAlive(pid)).toBe(false);
    expect(exits[0]?.signal).toBe("SIGKILL");
  });

  it("stop() during a restart backoff cancels the restart", async () => {
    const { supervisor, starts } = setup({ mode: "named", token: TOKEN }, { env: { STANDIN_FAIL_START: "1" }, backoff: { initialMs: 60_000 } });
    await supervisor.start();
    await eventually(() => supervisor.status().lastError?.startsWith("cloudflared exited"), "the failed start");
    await supervisor.stop();
    expect(supervisor.status().restarts).toBe(0);
    expect(starts()).toHaveLength(1);
  });
});

describe("stand-in fidelity", () => {
  it("the cloudflared npm wrapper's own parser recognises the stand-in's output", async () => {
    cloudflaredWrapper.use(STANDIN);
    const tunnel = cloudflaredWrapper.Tunnel.quick("http://127.0.0.1:8080");
    try {
      const url = new Promise<string>((resolve) => tunnel.once("url", resolve));
      const connection = new Promise<{ id: string; location: string }>((resolve) => tunnel.once("connected", resolve));
      expect(await url).toMatch(/\.trycloudflare\.com$/);
      expect(await connection).toMatchObject({ location: "ams01" });
    } finally {
      const exited = new Promise((resolve) => tunnel.once("exit", resolve));
      tunnel.stop();
      await exited;
    }
  });
});
