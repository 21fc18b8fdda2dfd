import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../harness/cli.js";
import { closeTwins, eventually, serviceEnv, startTwins } from "../harness/world.js";

// What an operator sees at start: the version, one summary line, each failure once, readiness
// that tells rejected GitHub credentials, and a tunnel that cannot start said once.

type Twins = Awaited<ReturnType<typeof startTwins>>;
let twins: Twins;
const secret = randomBytes(20).toString("hex");
const port = () => String(20000 + Math.floor(Math.random() * 20000));
beforeAll(async () => {
  twins = await startTwins();
});
afterAll(() => closeTwins(twins));

describe("start-up, as an operator sees it", () => {
  it("--version prints the package's version", async () => {
    const run = runCli({}, ["--version"]);
    expect(await run.exit()).toBe(0);
    expect(run.out().trim()).toMatch(/^\d+\.\d+\.\d+$/);
    expect(run.out().trim()).toBe((await import("../../package.json", { with: { type: "json" } })).default.version);
  });

  it("logs one info line summarising the effective configuration, with no secret in it", async () => {
    const env: Record<string, string> = {
      ...serviceEnv(twins, secret, {}),
      PORT: port(),
      METRICS_PORT: "off",
      LOG_LEVEL: "info",
      NOMAD_TOKEN: "nomad-secret-id",
    };
    const run = runCli(env);
    try {
      await eventually(() => run.out().includes("listening for GitHub webhooks"), "service listening", 20_000);
      const lines = run
        .out()
        .split("\n")
        .filter((l) => l.includes('"msg":"starting nomad-gha-dispatcher"'));
      expect(lines).toHaveLength(1);
      const summary = JSON.parse(lines[0] ?? "{}") as { level: string; version: string; config: Record<string, Record<string, unknown>> };
      expect(summary.level).toBe("info");
      expect(summary.config.nomad).toMatchObject({ addr: twins.nomad.url, namespace: "default", tls: "off" });
      expect(summary.config.runner).toMatchObject({ classes: "default [nomad,self-hosted] -> github-runner" });
      expect(summary.config.vault).toMatchObject({ addr: twins.vault.url, kv: "secret/nomad-gha-dispatcher", requireAudit: true });
      expect(summary.config.github).toMatchObject({ auth: "token", webhookSecrets: 1 });
      for (const value of [secret, env.GITHUB_TOKEN ?? "unset", env.VAULT_TOKEN ?? "unset", "nomad-secret-id"]) expect(lines[0]).not.toContain(value);
    } finally {
      run.child.kill("SIGTERM");
      await run.exit();
    }
  });

  it("rejected GitHub credentials make /readyz fail with GitHub's reason", async () => {
    const metricsPort = port();
    const env = { ...serviceEnv(twins, secret, {}), PORT: port(), METRICS_PORT: metricsPort, LOG_LEVEL: "info", GITHUB_TOKEN: "ghp_revoked_or_mistyped" };
    const run = runCli(env);
    try {
      await eventually(() => run.out().includes("serving Prometheus metrics"), "metrics listening", 20_000);
      const res = await fetch(`http://127.0.0.1:${metricsPort}/readyz`);
      expect(res.status).toBe(503);
      const report = (await res.json()) as { checks: Record<string, { ok: boolean; detail?: string }> };
      expect(report.checks.github).toEqual({ ok: false, detail: expect.stringMatching(/^GitHub rejected the credentials: .*401/) });
      expect(report.checks.vault?.ok).toBe(true);
    } finally {
      run.child.kill("SIGTERM");
      await run.exit();
    }
  });

  it("TUNNEL=quick with the npm wrapper's binary missing: one clear error and exit 1, not a restart loop", async () => {
    // `npm start` puts node_modules/.bin on PATH; npm ci without install scripts leaves the wrapper without its binary.
    const dir = mkdtempSync(join(tmpdir(), "npm-start-"));
    try {
      const pkg = join(dir, "node_modules", "cloudflared");
      mkdirSync(join(pkg, "lib"), { recursive: true });
      writeFileSync(join(pkg, "lib", "cloudflared.js"), "#!/usr/bin/env node\nprocess.exit(1);\n", { mode: 0o755 });
      mkdirSync(join(dir, "node_modules", ".bin"));
      symlinkSync("../cloudflared/lib/cloudflared.js", join(dir, "node_modules", ".bin", "cloudflared"));
      const env = { ...serviceEnv(twins, secret, {}), PORT: port(), METRICS_PORT: "off", LOG_LEVEL: "info", TUNNEL: "quick" };
      const run = runCli({ ...env, PATH: `${join(dir, "node_modules", ".bin")}:${process.env.PATH ?? ""}` });
      expect(await run.exit()).toBe(1);
      const lines = run.err().trim().split("\n");
      expect(lines).toEqual([
        expect.stringMatching(/^startup error: cloudflared on PATH \(.*\) is the npm package's wrapper, and its binary .* is not installed/),
      ]);
      expect(run.out()).not.toContain("starting cloudflared");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
