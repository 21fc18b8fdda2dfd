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

const RUNNER_JOB = { namespace: "default", id: "github-runner" };
const store = (token = vault.rootToken) => new VaultStore({ addr: vault.url, token, kvMount: "secret", kvPrefix: "ngd", runnerJob: RUNNER_JOB });

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

  it("keeps each runner class's credentials under the class's own runner job, and lists them all", async () => {
    const classes = [
      { job: "runner-small", runnerPrefix: "ngd-small" },
      { job: "runner-large", runnerPrefix: "ngd-large" },
    ];
    const s = new VaultStore({ addr: vault.url, token: vault.rootToken, kvMount: "secret", kvPrefix: "ngd-classes", runnerJob: { ...RUNNER_JOB, classes } });
    expect(s.secretPath("ngd-large-5")).toBe("ngd-classes/runners/default/runner-large/ngd-large-5");
    await s.putRunnerSecret("ngd-small-4", { kind: "jit", jitconfig: "s" });
    await s.putRunnerSecret("ngd-large-5", { kind: "jit", jitconfig: "l" });
    const read = await fetch(`${vault.url}/v1/secret/data/ngd-classes/runners/default/runner-small/ngd-small-4`, {
      headers: { "x-vault-token": vault.rootToken },
    });
    expect(read.status).toBe(200);
    expect((await s.listRunnerSecrets()).sort()).toEqual(["ngd-large-5", "ngd-small-4"]);
  });

  it("commits a credential by check-and-set, claims the slot for a reissue, and reads whose credential it holds (never the credential)", async () => {
    const s = store();
    expect(await s.readRunnerSecret("r-cas")).toBeUndefined();
    await s.putRunnerSecret("r-cas", { kind: "jit", jitconfig: "first", runner_id: 11 }, { cas: 0 });
    expect(await s.readRunnerSecret("r-cas")).toEqual({ kind: "credential", version: 1, runnerId: 11 });
    // A late write of another attempt (it saw no secret) is refused, and says so by name.
    const late = await s.putRunnerSecret("r-cas", { kind: "jit", jitconfig: "late", runner_id: 10 }, { cas: 0 }).catch((e: unknown) => e);
    expect((late as Error).name).toBe("SecretConflictError");
    await s.claimRunnerSecret("r-cas", 1, { claimedAt: 1_700_000_000_000, claimant: "c-1" });
    expect(await s.readRunnerSecret("r-cas")).toEqual({ kind: "reissuing", version: 2, claimedAt: 1_700_000_000_000, claimant: "c-1" });
    expect((await s.claimRunnerSecret("r-cas", 1, { claimedAt: 1, claimant: "c-2" }).catch((e: unknown) => e)) as Error).toMatchObject({
      name: "SecretConflictError",
    });
    await s.putRunnerSecret("r-cas", { kind: "jit", jitconfig: "second", runner_id: 12 }, { cas: 2 });
    expect(await s.readRunnerSecret("r-cas")).toEqual({ kind: "credential", version: 3, runnerId: 12 });
    // Deleted with its metadata: the next credential is written at version 0 again.
    await s.deleteRunnerSecret("r-cas");
    expect(await s.readRunnerSecret("r-cas")).toBeUndefined();
    await s.putRunnerSecret("r-cas", { kind: "token", registration_token: "t" }, { cas: 0 });
    expect(await s.readRunnerSecret("r-cas")).toEqual({ kind: "credential", version: 1 });
    await s.deleteRunnerSecret("r-cas");
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
    const s = new VaultStore({ addr: "http://127.0.0.1:9", token: "t", kvMount: "secret", kvPrefix: "ngd", runnerJob: RUNNER_JOB, timeoutMs: 1_000 });
    const err = (await s.health().catch((e: unknown) => e)) as DependencyError;
    expect(err).toBeInstanceOf(DependencyError);
    expect(err.transient).toBe(true);
  });

  it("with a namespace (VAULT_NAMESPACE), keeps runner secrets there and asks the root namespace for audit devices and health", async () => {
    vault.createNamespace("ci");
    // A root-namespace token whose policy reaches into ci, the one setup that can list audit devices.
    await vault.writePolicy(
      "dispatcher-ci",
      'path "ci/secret/data/ngd/runners/*" { capabilities = ["create", "read", "update"] }\npath "ci/secret/metadata/ngd/runners/*" { capabilities = ["read", "delete", "list"] }\npath "sys/audit" { capabilities = ["read", "sudo"] }',
    );
    const s = new VaultStore({
      addr: vault.url,
      token: vault.createToken({ policies: ["dispatcher-ci"] }),
      namespace: "ci",
      kvMount: "secret",
      kvPrefix: "ngd",
      runnerJob: RUNNER_JOB,
    });
    const before = vault.requests.length;
    expect(await s.auditDevices()).toEqual(["file/"]);
    expect(await s.health()).toEqual({ initialized: true, sealed: false, standby: false });
    await s.putRunnerSecret("r-ns", { kind: "jit", jitconfig: "abc" });
    expect(vault.kvKeys("secret", "ci")).toEqual(["ngd/runners/default/github-runner/r-ns"]);
    expect(vault.kvKeys("secret")).not.toContain("ngd/runners/default/github-runner/r-ns");
    const wrap = await s.wrapRunnerSecret("r-ns", "5m");
    await s.deleteRunnerSecret("r-ns");
    const sent = vault.requests.slice(before).map((r) => `${r.url} ${r.headers["x-vault-namespace"] ?? "(root)"}`);
    expect(sent).toEqual([
      "/v1/sys/audit (root)",
      "/v1/sys/health (root)",
      "/v1/secret/data/ngd/runners/default/github-runner/r-ns ci",
      "/v1/secret/data/ngd/runners/default/github-runner/r-ns ci",
      "/v1/secret/metadata/ngd/runners/default/github-runner/r-ns ci",
    ]);
    // The wrapping token was made in ci: only a request in ci can unwrap it.
    const unwrap = (headers: Record<string, string>) =>
      fetch(`${vault.url}/v1/sys/wrapping/unwrap`, { method: "POST", headers: { "x-vault-token": wrap, ...headers } });
    expect((await unwrap({})).status).toBe(400);
    expect((await unwrap({ "x-vault-namespace": "ci" })).status).toBe(200);
  });
});
