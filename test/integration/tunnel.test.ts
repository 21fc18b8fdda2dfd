import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { eventually, startWorld, type World } from "../harness/world.js";

const STANDIN = fileURLToPath(new URL("../fixtures/cloudflared-standin.mjs", import.meta.url));

let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

describe("service with a tunnel", () => {
  it("starts cloudflared, reports it in /readyz and prints the webhook settings for a quick tunnel", async () => {
    world = await startWorld({ env: { TUNNEL: "quick", CLOUDFLARED_BIN: STANDIN } });
    const w = world;
    await eventually(async () => (await fetch(`${w.service.url}/readyz`)).status === 200, "ready with tunnel connected");
    const report = (await (await fetch(`${w.service.url}/readyz`)).json()) as { checks: Record<string, { ok: boolean }> };
    expect(report.checks.tunnel?.ok).toBe(true);
    expect(w.logs.join("\n")).toMatch(/trycloudflare\.com\/webhook/);
    expect(w.logs.join("\n")).not.toContain(w.webhookSecret);
  });

  it("refuses to start when the cloudflared binary is missing, instead of hanging or downloading", async () => {
    await expect(startWorld({ env: { TUNNEL: "quick", CLOUDFLARED_BIN: "/nonexistent/cloudflared" } })).rejects.toThrow(/cloudflared/);
  });
});
