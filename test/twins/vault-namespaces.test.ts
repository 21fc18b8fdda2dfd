// Vault Enterprise namespaces in the Vault twin: what X-Vault-Namespace (or a namespace prefix
// on the path) scopes, as hashicorp/vault website/content/docs/enterprise/namespaces/index.mdx
// describes it. Without the header, everything stays in the root namespace (vault.test.ts).
import NodeVault from "node-vault";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { VaultStore } from "../../src/vault/client.js";
import { VaultTwin } from "./vault.js";

type Json = Record<string, unknown>;

let vault: VaultTwin;

beforeEach(async () => {
  vault = await VaultTwin.start();
});

afterEach(async () => {
  await vault.close();
});

async function raw(
  method: string,
  path: string,
  options: { token?: string | null; body?: unknown; namespace?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; json: Json }> {
  const headers: Record<string, string> = { ...options.headers };
  const token = options.token === undefined ? vault.rootToken : options.token;
  if (token !== null) headers["X-Vault-Token"] = token;
  if (options.namespace !== undefined) headers["X-Vault-Namespace"] = options.namespace;
  const response = await fetch(`${vault.url}/v1/${path}`, { method, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body) });
  const text = await response.text();
  return { status: response.status, json: text === "" ? {} : (JSON.parse(text) as Json) };
}

const secretOf = (result: { json: Json }) => ((result.json["data"] as Json | undefined)?.["data"] as Json | undefined) ?? null;

describe("namespaces: where a request goes", () => {
  it("keeps a namespace's secrets in that namespace, reached by header or by path prefix alike", async () => {
    vault.createNamespace("ns1");
    expect((await raw("POST", "secret/data/app", { namespace: "ns1", body: { data: { in: "ns1" } } })).status).toBe(200);
    expect(await raw("GET", "secret/data/app")).toMatchObject({ status: 404 }); // not in the root namespace
    expect(secretOf(await raw("GET", "ns1/secret/data/app"))).toEqual({ in: "ns1" });
    expect(secretOf(await raw("GET", "secret/data/app", { namespace: "ns1/" }))).toEqual({ in: "ns1" });
    expect(secretOf(await raw("GET", "secret/data/app", { namespace: "/ns1" }))).toEqual({ in: "ns1" });
    expect(vault.kvKeys("secret", "ns1")).toEqual(["app"]);
    expect(vault.kvKeys("secret")).toEqual([]);
  });

  it("puts header and path together for nested namespaces", async () => {
    vault.createNamespace("ns1");
    vault.createNamespace("ns1/ns2");
    await raw("POST", "secret/data/foo", { namespace: "ns1/ns2", body: { data: { deep: "yes" } } });
    // The three equivalent requests of the namespaces page.
    for (const [path, namespace] of [
      ["ns1/ns2/secret/data/foo", undefined],
      ["secret/data/foo", "ns1/ns2/"],
      ["ns2/secret/data/foo", "ns1/"],
    ] as const) {
      expect(secretOf(await raw("GET", path, { namespace })), `${namespace ?? "(no header)"} + ${path}`).toEqual({ deep: "yes" });
    }
    // A prefix that names no namespace is just a path: here no mount serves it.
    expect((await raw("GET", "nope/secret/data/foo", { namespace: "ns1" })).json).toEqual({
      errors: ['no handler for route "nope/secret/data/foo". route entry not found.'],
    });
  });

  it("refuses a header naming a namespace that does not exist", async () => {
    expect(await raw("GET", "secret/data/app", { namespace: "missing" })).toEqual({ status: 403, json: { errors: ["permission denied"] } });
  });

  it("serves root-only system paths only in the root namespace", async () => {
    vault.createNamespace("ns1");
    expect((await raw("GET", "sys/audit")).status).toBe(200);
    const inNamespace = await raw("GET", "sys/audit", { namespace: "ns1" });
    expect(inNamespace.status).toBe(404);
    expect(String((inNamespace.json["errors"] as string[])[0])).toContain("unsupported path");
  });

  it("lists a namespace's own mounts", async () => {
    vault.createNamespace("ns1", { kvMounts: ["kv"] });
    const mounts = await raw("GET", "sys/mounts", { namespace: "ns1" });
    expect(Object.keys(mounts.json["data"] as Json).sort()).toEqual(["kv/", "sys/"]);
  });
});

describe("namespaces: tokens", () => {
  const RUNNER_POLICY = 'path "secret/data/runners/*" { capabilities = ["create", "read", "update", "delete"] }';

  it("works in its own namespace and below it, never in the root namespace or a sibling", async () => {
    const ns1 = vault.createNamespace("ns1");
    vault.createNamespace("ns1/child");
    vault.createNamespace("ns2");
    await vault.writePolicy("runner", RUNNER_POLICY, "ns1");
    const token = vault.createToken({ policies: ["runner"], namespace: "ns1" });
    expect(token).toMatch(new RegExp(`^hvs\\.[A-Za-z0-9]+\\.${ns1.id}$`)); // Vault appends the namespace ID

    expect((await raw("POST", "secret/data/runners/a", { token, namespace: "ns1", body: { data: { k: "v" } } })).status).toBe(200);
    for (const namespace of [undefined, "ns2"]) {
      expect(await raw("GET", "secret/data/runners/a", { token, namespace }), namespace ?? "root").toEqual({
        status: 403,
        json: { errors: ["permission denied"] },
      });
    }
    // Below ns1 its policies still apply, to the path as seen from ns1.
    expect((await raw("GET", "secret/data/runners/a", { token, namespace: "ns1/child" })).status).toBe(403);
    expect((await raw("GET", "auth/token/lookup-self", { token, namespace: "ns1" })).status).toBe(200);
  });

  it("takes policies from the token's own namespace, over paths seen from there", async () => {
    vault.createNamespace("ns1");
    await vault.writePolicy("runner", RUNNER_POLICY); // in the root namespace: grants root's secret/
    const rootScoped = vault.createToken({ policies: ["runner"] });
    await raw("POST", "secret/data/runners/a", { namespace: "ns1", body: { data: { k: "v" } } });
    expect((await raw("GET", "secret/data/runners/a", { token: rootScoped, namespace: "ns1" })).status).toBe(403);
    await vault.writePolicy("ns1-runner", 'path "ns1/secret/data/runners/*" { capabilities = ["read"] }');
    const reachesDown = vault.createToken({ policies: ["ns1-runner"] });
    expect(secretOf(await raw("GET", "secret/data/runners/a", { token: reachesDown, namespace: "ns1" }))).toEqual({ k: "v" });
    // The root namespace's default policy grants sys/capabilities-self there, not in ns1.
    const fromRoot = await raw("POST", "sys/capabilities-self", { token: reachesDown, body: { paths: ["ns1/secret/data/runners/a"] } });
    expect((fromRoot.json["data"] as Json)["ns1/secret/data/runners/a"]).toEqual(["read"]);
    expect((await raw("POST", "sys/capabilities-self", { token: reachesDown, namespace: "ns1", body: { paths: ["x"] } })).status).toBe(403);
    // A policy of the same name in ns1 is another policy, seen by ns1's tokens in ns1.
    await vault.writePolicy("runner", 'path "secret/data/runners/*" { capabilities = ["list"] }', "ns1");
    const ns1Token = vault.createToken({ policies: ["runner"], namespace: "ns1" });
    const inNs1 = await raw("POST", "sys/capabilities-self", { token: ns1Token, namespace: "ns1", body: { paths: ["secret/data/runners/a"] } });
    expect((inNs1.json["data"] as Json)["secret/data/runners/a"]).toEqual(["list"]);
  });

  it("issues tokens created or logged in within a namespace in that namespace", async () => {
    vault.createNamespace("ns1");
    const created = await raw("POST", "auth/token/create", { namespace: "ns1", body: { policies: ["default"] } });
    const child = (created.json["auth"] as Json)["client_token"] as string;
    expect((await raw("GET", "auth/token/lookup-self", { token: child, namespace: "ns1" })).status).toBe(200);
    expect((await raw("GET", "auth/token/lookup-self", { token: child })).status).toBe(403);

    vault.configureJwtRole("workload", { policies: ["default"], bound_audiences: ["vault.io"] }, "jwt-nomad", "ns1");
    const part = (value: Json) => Buffer.from(JSON.stringify(value)).toString("base64url");
    const jwt = `${part({ alg: "RS256" })}.${part({ sub: "github-runner", aud: "vault.io" })}.c2ln`;
    // The root namespace has no such login path: the request is one without a token.
    expect((await raw("POST", "auth/jwt-nomad/login", { token: null, body: { role: "workload", jwt } })).status).toBe(403);
    const login = await raw("POST", "auth/jwt-nomad/login", { token: null, namespace: "ns1", body: { role: "workload", jwt } });
    const loggedIn = (login.json["auth"] as Json)["client_token"] as string;
    expect((await raw("GET", "auth/token/lookup-self", { token: loggedIn, namespace: "ns1" })).status).toBe(200);
    expect((await raw("GET", "auth/token/lookup-self", { token: loggedIn })).status).toBe(403);
  });
});

describe("namespaces: response wrapping", () => {
  it("unwraps a wrapping token only in the namespace that made it, and only once", async () => {
    vault.createNamespace("ns1");
    vault.createNamespace("ns2");
    await raw("POST", "secret/data/runners/r1", { namespace: "ns1", body: { data: { jitconfig: "abc" } } });
    const wrapped = await raw("GET", "secret/data/runners/r1", { namespace: "ns1", headers: { "X-Vault-Wrap-TTL": "5m" } });
    const wrapToken = (wrapped.json["wrap_info"] as Json)["token"] as string;

    const invalid = { status: 400, json: { errors: ["wrapping token is not valid or does not exist"] } };
    expect(await raw("POST", "sys/wrapping/unwrap", { token: wrapToken })).toEqual(invalid);
    expect(await raw("POST", "sys/wrapping/unwrap", { token: wrapToken, namespace: "ns2" })).toEqual(invalid);
    // Not even a root token sees it from the root namespace.
    expect(await raw("POST", "sys/wrapping/unwrap", { body: { token: wrapToken } })).toEqual(invalid);
    const unwrapped = await raw("POST", "sys/wrapping/unwrap", { token: wrapToken, namespace: "ns1" });
    expect(unwrapped.status).toBe(200);
    expect(secretOf(unwrapped)).toEqual({ jitconfig: "abc" });
    expect(await raw("POST", "sys/wrapping/unwrap", { token: wrapToken, namespace: "ns1" })).toEqual(invalid);
  });

  it("serves the dispatcher's own client (VAULT_NAMESPACE) in its namespace, with the header on every call", async () => {
    vault.createNamespace("team");
    const store = new VaultStore({
      addr: vault.url,
      token: vault.rootToken,
      namespace: "team",
      kvMount: "secret",
      kvPrefix: "ngd",
      runnerJob: { namespace: "default", id: "github-runner" },
    });
    await store.putRunnerSecret("r1", { kind: "jit", jitconfig: "abc" });
    expect(vault.kvKeys("secret", "team")).toEqual(["ngd/runners/default/github-runner/r1"]);
    const wrapToken = await store.wrapRunnerSecret("r1", "5m");
    expect((await raw("POST", "sys/wrapping/unwrap", { token: wrapToken })).status).toBe(400);
    expect((await raw("POST", "sys/wrapping/unwrap", { token: wrapToken, namespace: "team" })).status).toBe(200);
    await store.deleteRunnerSecret("r1");
    expect(vault.kvKeys("secret", "team")).toEqual([]);
    expect(vault.requests.every((r) => r.url.startsWith("/v1/sys/wrapping/") || r.headers["x-vault-namespace"] === "team")).toBe(true);
  });
});

describe("namespaces: sys/namespaces and audit", () => {
  it("creates, lists, reads and deletes namespaces relative to the caller's namespace", async () => {
    const created = await raw("POST", "sys/namespaces/team", { body: { custom_metadata: { owner: "ci" } } });
    expect(created.status).toBe(200);
    expect(created.json["data"]).toMatchObject({ path: "team/", custom_metadata: { owner: "ci" } });
    expect((await raw("POST", "sys/namespaces/child", { namespace: "team" })).json["data"]).toMatchObject({ path: "team/child/" });
    const listed = await raw("LIST", "sys/namespaces");
    expect((listed.json["data"] as Json)["keys"]).toEqual(["team/"]);
    expect((await raw("GET", "sys/namespaces/team/child")).json["data"]).toMatchObject({ path: "team/child/" });
    expect((await raw("POST", "sys/namespaces/sys")).status).toBe(400); // a reserved name
    // Vault mounts nothing in a namespace made over the API.
    expect((await raw("GET", "secret/data/x", { namespace: "team" })).status).toBe(404);

    expect((await raw("DELETE", "sys/namespaces/team")).status).toBe(400); // it has a child
    const token = (await raw("POST", "auth/token/create", { namespace: "team/child", body: {} })).json["auth"] as Json;
    expect((await raw("DELETE", "sys/namespaces/child", { namespace: "team" })).status).toBe(204);
    expect((await raw("DELETE", "sys/namespaces/team")).status).toBe(204);
    expect((await raw("GET", "sys/namespaces/team")).status).toBe(404);
    // Its tokens went with it.
    vault.createNamespace("team");
    vault.createNamespace("team/child");
    expect((await raw("GET", "auth/token/lookup-self", { token: token["client_token"] as string, namespace: "team/child" })).status).toBe(403);
  });

  it("audits a namespaced request with its namespace and its path within it", async () => {
    const ns1 = vault.createNamespace("ns1");
    await raw("POST", "secret/data/app", { namespace: "ns1", body: { data: { k: "v" } } });
    await raw("GET", "secret/data/app");
    const requests = vault.auditLog().filter((e) => e.type === "request");
    expect(requests.map((e) => [e.request.namespace, e.request.path])).toEqual([
      [{ id: ns1.id, path: "ns1/" }, "secret/data/app"],
      [{ id: "root" }, "secret/data/app"],
    ]);
  });

  it("node-vault, an independent client, reaches a namespace through its request options", async () => {
    vault.createNamespace("ns1");
    const client = NodeVault({ endpoint: vault.url, token: vault.rootToken, namespace: "ns1" });
    await client.write("secret/data/k", { data: { a: "1" } });
    expect(vault.kvKeys("secret", "ns1")).toEqual(["k"]);
  });
});
