// VaultStore over plain HTTP (undici) against the Vault twin: the calls the dispatcher makes and
// how their failures are classified.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DependencyError } from "../../src/core/errors.js";
import { VaultStore } from "../../src/vault/client.js";
import { VaultTwin } from "../twins/vault.js";

let vault: VaultTwin;
beforeAll(async () => {
  vault = await VaultTwin.start({ audit: true });
});
afterAll(async () => vault.close());

const store = (token = vault.rootToken) => new VaultStore({ addr: vault.url, token, kvMount: "secret", kvPrefix: "ngd" });

describe("VaultStore", () => {
  it("writes, wraps, lists and deletes a runner secret", async () => {
    const s = store();
    expect(await s.hasRunnerSecret("r-1")).toBe(false);
    await s.putRunnerSecret("r-1", { kind: "jit", jitconfig: "abc" });
    expect(await s.hasRunnerSecret("r-1")).toBe(true);
    expect(await s.listRunnerSecrets()).toEqual(["r-1"]);
    const wrap = await s.wrapRunnerSecret("r-1", "5m");
    const unwrapped = await fetch(`${vault.url}/v1/sys/wrapping/unwrap`, { method: "POST", headers: { "x-vault-token": wrap } });
    expect(((await unwrapped.json()) as { data: { data: unknown } }).data.data).toEqual({ kind: "jit", jitconfig: "abc" });
    await s.deleteRunnerSecret("r-1");
    await s.deleteRunnerSecret("r-1");
    expect(await s.listRunnerSecrets()).toEqual([]);
  });

  it("reads health in every state and the audit devices", async () => {
    const s = store();
    expect(await s.health()).toEqual({ initialized: true, sealed: false, standby: false });
    expect(await s.auditDevices()).toEqual(["file/"]);
    vault.seal();
    try {
      expect((await s.health()).sealed).toBe(true);
      // Sealed is transient: the write may succeed later.
      const err = await s.putRunnerSecret("r-2", { kind: "token", registration_token: "t" }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DependencyError);
      expect((err as DependencyError).status).toBe(503);
      expect((err as DependencyError).transient).toBe(true);
    } finally {
      vault.unseal();
    }
  });

  it("reports a denied request as permanent, with Vault's reason", async () => {
    const s = store(vault.createToken({ policies: [] }));
    const err = (await s.putRunnerSecret("r-3", { kind: "jit", jitconfig: "x" }).catch((e: unknown) => e)) as DependencyError;
    expect(err.status).toBe(403);
    expect(err.transient).toBe(false);
    expect(err.message).toMatch(/^Vault write runner secret: 403 .*permission denied/);
    expect(await s.capabilities(["secret/data/ngd/runners/x"])).toEqual({ "secret/data/ngd/runners/x": ["deny"] });
  });

  it("reports an unreachable Vault as transient", async () => {
    const s = new VaultStore({ addr: "http://127.0.0.1:9", token: "t", kvMount: "secret", kvPrefix: "ngd", timeoutMs: 1_000 });
    const err = (await s.health().catch((e: unknown) => e)) as DependencyError;
    expect(err).toBeInstanceOf(DependencyError);
    expect(err.transient).toBe(true);
  });
});
