// The service with VAULT_NAMESPACE against a Vault twin that scopes requests to namespaces as
// Vault Enterprise does: the dispatcher's side of the credential flow happens in the namespace.
// (The runner allocation unwrapping in the namespace is the runner job's part: the Nomad twin's
// runner sends X-Vault-Namespace once jobs/github-runner.nomad.hcl passes it on.)
import { describe, expect, it } from "vitest";
import { startTestWorld } from "../harness/test-world.js";
import { eventually } from "../harness/world.js";

describe("VAULT_NAMESPACE", () => {
  it("stores the runner credential in the namespace and dispatches a wrapping token only that namespace unwraps", async () => {
    const w = await startTestWorld({ vaultNamespace: "ci", nomadSlots: 0 });
    const job = await w.github.queueJob({ repo: "octo-org/app", labels: ["self-hosted", "nomad"] });
    await eventually(() => w.nomad.jobs().some((j) => j.Dispatched), "runner dispatched");
    const runner = `nomad-gha-${job.id}`;
    expect(w.vault.kvKeys("secret", "ci")).toEqual([`nomad-gha-dispatcher/runners/${runner}`]);
    expect(w.vault.kvKeys("secret")).toEqual([]);
    // Every call the service made carried the namespace, but those Vault serves in the root namespace only.
    const rootOnly = new Set(["/v1/sys/audit", "/v1/sys/health"]);
    for (const r of w.vault.requests) expect(r.headers["x-vault-namespace"], r.url).toBe(rootOnly.has(r.url.split("?")[0] ?? "") ? undefined : "ci");

    const wrapToken = w.nomad.jobs().find((j) => j.Dispatched)?.Meta?.["credential_wrap_token"] ?? "";
    const unwrap = (headers: Record<string, string>) =>
      fetch(`${w.vault.url}/v1/sys/wrapping/unwrap`, { method: "POST", headers: { "X-Vault-Token": wrapToken, ...headers } });
    expect((await unwrap({})).status).toBe(400); // from the root namespace it does not exist
    expect((await unwrap({ "X-Vault-Namespace": "ci" })).status).toBe(200);
  });
});
