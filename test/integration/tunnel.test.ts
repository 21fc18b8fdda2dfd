import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { startTestWorld } from "../harness/test-world.js";
import { eventually } from "../harness/world.js";

const STANDIN = fileURLToPath(new URL("../fixtures/cloudflared-standin.mjs", import.meta.url));

describe("service with a tunnel", () => {
  it("starts cloudflared, reports it in /readyz and prints the webhook settings for a quick tunnel", async () => {
    const w = await startTestWorld({ env: { TUNNEL: "quick", CLOUDFLARED_BIN: STANDIN } });
    await eventually(async () => (await fetch(`${w.service.url}/readyz`)).status === 200, "ready with tunnel connected");
    const report = (await (await fetch(`${w.service.url}/readyz`)).json()) as { checks: Record<string, { ok: boolean }> };
    expect(report.checks.tunnel?.ok).toBe(true);
    expect(w.logs.join("\n")).toMatch(/trycloudflare\.com\/webhook/);
    expect(w.logs.join("\n")).not.toContain(w.webhookSecret);
  });

  it("refuses to start when the cloudflared binary is missing, instead of hanging or downloading", async () => {
    await expect(startTestWorld({ env: { TUNNEL: "quick", CLOUDFLARED_BIN: "/nonexistent/cloudflared" } })).rejects.toThrow(/cloudflared/);
  });
});
