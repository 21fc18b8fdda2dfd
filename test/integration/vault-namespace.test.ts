// The service with VAULT_NAMESPACE against a Vault twin that scopes requests to namespaces as
// Vault Enterprise does: the dispatcher's side of the credential flow happens in the namespace,
// and so does the runner's (jobs/github-runner.nomad.hcl passes it to the prestart's vault block,
// so Nomad logs it in there, and to its script, which sends X-Vault-Namespace).
import { describe, expect, it } from "vitest";
import { startTestWorld } from "../harness/test-world.js";
import { eventually } from "../harness/world.js";

describe("VAULT_NAMESPACE", () => {
  it("stores the runner credential in the namespace, where only the runner's own identity reads it", async () => {
    const w = await startTestWorld({ vaultNamespace: "ci" });
    const job = await w.github.queueJob({ repo: "octo-org/app", labels: ["self-hosted", "nomad"] });
    const runner = `nomad-gha-${job.id}`;
    const secretPath = `nomad-gha-dispatcher/runners/default/github-runner/${runner}`;
    await eventually(() => w.vault.kvKeys("secret", "ci").includes(secretPath), "credential stored in the namespace");
    expect(w.vault.kvKeys("secret")).toEqual([]);
    await eventually(() => w.github.jobs().find((j) => j.id === job.id)?.status === "completed", "job served");

    // Every call the service made carried the namespace, but those Vault serves in the root namespace only.
    const rootOnly = new Set(["/v1/sys/audit", "/v1/sys/health"]);
    const dispatcherCalls = w.vault.requests.filter((r) => !r.url.startsWith("/v1/auth/jwt-nomad/") && r.headers["x-vault-token"] === w.vault.rootToken);
    expect(dispatcherCalls.length).toBeGreaterThan(0);
    for (const r of dispatcherCalls) expect(r.headers["x-vault-namespace"], r.url).toBe(rootOnly.has(r.url.split("?")[0] ?? "") ? undefined : "ci");
    // The runner logged in to the namespace's jwt-nomad mount and read its secret there.
    const runnerCalls = w.vault.auditLog().filter((e) => e.type === "request" && e.auth.metadata?.role === "nomad-gha-runner");
    expect(runnerCalls.map((e) => [e.request.namespace.path, e.request.path])).toEqual([
      ["ci/", `secret/data/${secretPath}`],
      ["ci/", "auth/token/revoke-self"],
    ]);
  });
});
