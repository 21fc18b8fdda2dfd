import http from "node:http";
import NodeVault from "node-vault";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { VaultTwin } from "./vault.js";
import { ListMethodRewriter } from "./vault-http.js";

type Json = Record<string, unknown>;

const RUNNER_POLICY = `
# What the dispatcher needs: runner credentials only.
path "secret/data/runners/*" {
  capabilities = ["create", "read", "update", "delete"]
}
path "secret/metadata/runners/*" {
  capabilities = ["list", "read", "delete"]
}
`;

let vault: VaultTwin;
let nowMs: number;

beforeEach(async () => {
  nowMs = Date.parse("2024-06-01T12:00:00Z");
  vault = await VaultTwin.start({ now: () => nowMs });
});

afterEach(async () => {
  await vault.close();
});

function client(token = vault.rootToken) {
  return NodeVault({ endpoint: vault.url, token });
}

interface RawResult {
  status: number;
  text: string;
  json: Json;
}

/** A request exactly as written, for what node-vault cannot express (or hides). */
async function raw(
  method: string,
  path: string,
  options: { token?: string | null; body?: unknown; headers?: Record<string, string> } = {},
): Promise<RawResult> {
  const headers: Record<string, string> = { ...options.headers };
  const token = options.token === undefined ? vault.rootToken : options.token;
  if (token !== null) headers["X-Vault-Token"] = token;
  const response = await fetch(`${vault.url}/v1/${path}`, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await response.text();
  return { status: response.status, text, json: text === "" ? {} : (JSON.parse(text) as Json) };
}

/** node-vault rejects non-2xx answers; this returns what came back instead. */
async function failure(promise: Promise<unknown>): Promise<{ statusCode: number; body: Json }> {
  const error = (await promise.then(
    () => expect.unreachable("expected the request to fail"),
    (rejected: unknown) => rejected,
  )) as { response?: { statusCode: number; body: Json } };
  if (error.response === undefined) throw error;
  return error.response;
}

async function tokenWithPolicy(name: string, hcl: string): Promise<string> {
  await vault.writePolicy(name, hcl);
  return vault.createToken({ policies: [name] });
}

function jwt(claims: Json): string {
  const part = (value: Json) => Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${part({ alg: "RS256", typ: "JWT" })}.${part(claims)}.c2lnbmF0dXJl`;
}

describe("HTTP surface", () => {
  it("answers a missing or unknown token with 403 permission denied", async () => {
    for (const token of [null, "hvs.not-a-token"]) {
      const result = await raw("GET", "secret/data/x", { token });
      expect(result.status).toBe(403);
      expect(result.json).toEqual({ errors: ["permission denied"] });
    }
  });

  it("accepts the token as a Bearer credential too", async () => {
    const result = await raw("GET", "auth/token/lookup-self", {
      token: null,
      headers: { Authorization: `Bearer ${vault.rootToken}` },
    });
    expect(result.status).toBe(200);
    expect((result.json["data"] as Json)["policies"]).toEqual(["root"]);
  });

  it("rejects methods Vault does not know with 405, bad JSON with 400, unmounted paths with 404", async () => {
    expect((await raw("OPTIONS", "secret/data/x")).status).toBe(405);
    const badJson = await fetch(`${vault.url}/v1/secret/data/x`, {
      method: "POST",
      headers: { "X-Vault-Token": vault.rootToken },
      body: "{not json",
    });
    expect(badJson.status).toBe(400);
    expect(await badJson.json()).toEqual({ errors: ["error parsing JSON"] });
    const unmounted = await raw("GET", "nowhere/x");
    expect(unmounted.status).toBe(404);
    expect(unmounted.json).toEqual({ errors: ['no handler for route "nowhere/x". route entry not found.'] });
  });

  it("records every exchange, LIST included, with the namespace header kept", async () => {
    vault.createNamespace("team-a");
    await client().write("secret/data/runners/a", { data: { k: "v" } });
    await client().list("secret/metadata/runners");
    await raw("GET", "secret/data/runners/a", { headers: { "X-Vault-Namespace": "team-a" } });
    const [write, list, read] = vault.requests;
    expect(write).toMatchObject({ method: "POST", url: "/v1/secret/data/runners/a", status: 200 });
    expect(JSON.parse(write?.body ?? "")).toEqual({ data: { k: "v" } });
    expect(write?.headers["x-vault-token"]).toBe(vault.rootToken);
    expect(list).toMatchObject({ method: "LIST", url: "/v1/secret/metadata/runners", status: 200 });
    expect(JSON.parse(list?.response ?? "").data).toEqual({ keys: ["a"] });
    expect(read?.headers["x-vault-namespace"]).toBe("team-a");
    expect(read?.status).toBe(404); // the secret was written in the root namespace
  });

  it("lets the fault plan answer first, or only delay", async () => {
    vault.faults.intercept = ({ path }) => (path.startsWith("/v1/secret/") ? { status: 500, body: '{"errors":["boom"]}' } : { delayMs: 1 });
    const failed = await failure(client().read("secret/data/x"));
    expect(failed).toEqual({ statusCode: 500, body: { errors: ["boom"] } });
    expect((await raw("GET", "auth/token/lookup-self")).status).toBe(200);
    expect(vault.requests.map((r) => r.status)).toEqual([500, 200]);
  });

  it("keeps LIST working on keep-alive connections, between requests with bodies", async () => {
    await client().write("secret/data/one", { data: { a: "1" } });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const send = (method: string, path: string, body?: string) =>
      new Promise<number>((resolve, reject) => {
        const request = http.request(`${vault.url}/v1/${path}`, { method, agent, headers: { "X-Vault-Token": vault.rootToken } }, (response) =>
          response.resume().on("end", () => resolve(response.statusCode ?? 0)),
        );
        request.on("error", reject);
        request.end(body);
      });
    try {
      expect(await send("LIST", "secret/metadata/")).toBe(200);
      expect(await send("POST", "secret/data/two", JSON.stringify({ data: { b: "LIST /v1/x HTTP/1.1" } }))).toBe(200);
      expect(await send("LIST", "secret/metadata")).toBe(200);
    } finally {
      agent.destroy();
    }
    expect(vault.requests.map((r) => r.method)).toEqual(["POST", "LIST", "POST", "LIST"]);
  });

  it("rewrites LIST request lines however the bytes are split, and nothing else", () => {
    const wire = "LIST /v1/a HTTP/1.1\r\nContent-Length: 4\r\n\r\nLISTPOST /v1/b HTTP/1.1\r\n\r\n";
    for (let cut = 1; cut < wire.length; cut++) {
      const rewriter = new ListMethodRewriter();
      const out = rewriter.transform(Buffer.from(wire.slice(0, cut))).toString() + rewriter.transform(Buffer.from(wire.slice(cut))).toString();
      expect(out).toBe("GET /v1/a HTTP/1.1\r\nx-vault-twin-original-method: LIST\r\nContent-Length: 4\r\n\r\nLISTPOST /v1/b HTTP/1.1\r\n\r\n");
    }
  });
});

describe("KV version 2", () => {
  it("writes versions and reads them back in Vault's envelope", async () => {
    const vaultClient = client();
    const first = await vaultClient.write("secret/data/runners/42", { data: { token: "jit-1" } });
    expect(first.data).toEqual({
      created_time: "2024-06-01T12:00:00Z",
      custom_metadata: null,
      deletion_time: "",
      destroyed: false,
      version: 1,
    });
    nowMs += 1500;
    await vaultClient.write("secret/data/runners/42", { data: { token: "jit-2" } });
    const latest = await vaultClient.read("secret/data/runners/42");
    expect(Object.keys(latest).sort()).toEqual(
      ["auth", "data", "lease_duration", "lease_id", "mount_type", "renewable", "request_id", "warnings", "wrap_info"].sort(),
    );
    expect(latest).toMatchObject({ lease_id: "", renewable: false, lease_duration: 0, wrap_info: null, auth: null, mount_type: "kv" });
    expect(latest.data).toEqual({
      data: { token: "jit-2" },
      metadata: { created_time: "2024-06-01T12:00:01.5Z", custom_metadata: null, deletion_time: "", destroyed: false, version: 2 },
    });
    const old = await vaultClient.read("secret/data/runners/42?version=1");
    expect(old.data.data).toEqual({ token: "jit-1" });
    expect(await failure(vaultClient.read("secret/data/runners/42?version=7"))).toEqual({ statusCode: 404, body: { errors: [] } });
  });

  it("enforces check-and-set", async () => {
    const vaultClient = client();
    await vaultClient.write("secret/data/c", { data: { a: "1" }, options: { cas: 0 } });
    const absentOnly = await failure(vaultClient.write("secret/data/c", { data: { a: "2" }, options: { cas: 0 } }));
    expect(absentOnly).toEqual({
      statusCode: 400,
      body: { errors: ["check-and-set parameter did not match the current version"] },
    });
    expect((await failure(vaultClient.write("secret/data/c", { data: {}, options: { cas: 5 } }))).statusCode).toBe(400);
    const second = await vaultClient.write("secret/data/c", { data: { a: "2" }, options: { cas: 1 } });
    expect(second.data.version).toBe(2);

    await vaultClient.write("secret/metadata/strict", { cas_required: true });
    const required = await failure(vaultClient.write("secret/data/strict", { data: { a: "1" } }));
    expect(required.body).toEqual({ errors: ["check-and-set parameter required for this call"] });
  });

  it("soft-deletes, undeletes and destroys versions; gone versions are 404s with the envelope", async () => {
    const vaultClient = client();
    await vaultClient.write("secret/data/d", { data: { a: "1" } });
    await vaultClient.delete("secret/data/d");
    const deleted = await failure(vaultClient.read("secret/data/d"));
    expect(deleted.statusCode).toBe(404);
    expect(deleted.body).toMatchObject({ request_id: expect.any(String), mount_type: "", data: { data: null } });
    expect((deleted.body["data"] as Json)["metadata"]).toMatchObject({ deletion_time: "2024-06-01T12:00:00Z", version: 1 });

    await vaultClient.write("secret/undelete/d", { versions: [1] });
    expect((await vaultClient.read("secret/data/d")).data.data).toEqual({ a: "1" });

    await vaultClient.write("secret/destroy/d", { versions: [1] });
    const destroyed = await failure(vaultClient.read("secret/data/d"));
    expect((destroyed.body["data"] as Json)["metadata"]).toMatchObject({ destroyed: true });
    expect((await failure(vaultClient.write("secret/destroy/d", {}))).body).toEqual({ errors: ["no version number provided"] });
    expect(vault.kvKeys()).toEqual(["d"]);
  });

  it("lists folders and keys, reads and deletes metadata", async () => {
    const vaultClient = client();
    await vaultClient.write("secret/data/runners/a", { data: { x: "1" } });
    await vaultClient.write("secret/data/runners/b", { data: { x: "1" } });
    await vaultClient.write("secret/data/runners/pool/c", { data: { x: "1" } });
    expect((await vaultClient.list("secret/metadata/runners")).data.keys).toEqual(["a", "b", "pool/"]);
    expect((await vaultClient.list("secret/metadata/")).data.keys).toEqual(["runners/"]);
    expect(await failure(vaultClient.list("secret/metadata/nothing"))).toEqual({ statusCode: 404, body: { errors: [] } });

    const metadata = await vaultClient.read("secret/metadata/runners/a");
    expect(metadata.data).toMatchObject({
      current_version: 1,
      oldest_version: 0,
      max_versions: 0,
      cas_required: false,
      delete_version_after: "0s",
      versions: { "1": { created_time: "2024-06-01T12:00:00Z", deletion_time: "", destroyed: false } },
    });

    expect(await vaultClient.delete("secret/metadata/runners/a")).toBe("");
    expect(vault.kvKeys()).toEqual(["runners/b", "runners/pool/c"]);
    expect(await failure(vaultClient.read("secret/data/runners/a"))).toEqual({ statusCode: 404, body: { errors: [] } });
  });

  it("expires versions after delete_version_after and keeps at most max_versions", async () => {
    const vaultClient = client();
    await vaultClient.write("secret/metadata/short", { delete_version_after: "30s", max_versions: 2 });
    const written = await vaultClient.write("secret/data/short", { data: { a: "1" } });
    expect(written.data.deletion_time).toBe("2024-06-01T12:00:30Z");
    expect((await vaultClient.read("secret/data/short")).data.data).toEqual({ a: "1" });
    nowMs += 31_000;
    expect((await failure(vaultClient.read("secret/data/short"))).statusCode).toBe(404);

    await vaultClient.write("secret/data/short", { data: { a: "2" } });
    await vaultClient.write("secret/data/short", { data: { a: "3" } });
    const metadata = await vaultClient.read("secret/metadata/short");
    expect(Object.keys(metadata.data.versions)).toEqual(["2", "3"]);
    expect(metadata.data.oldest_version).toBe(2);
    expect(metadata.data.delete_version_after).toBe("30s");
  });

  it("merges a PATCH into a new version", async () => {
    const vaultClient = client();
    await vaultClient.write("secret/data/p", { data: { keep: "1", drop: "2" } });
    const patched = await vaultClient.update("secret/data/p", { data: { drop: null, add: "3" } });
    expect(patched.data.version).toBe(2);
    expect((await vaultClient.read("secret/data/p")).data.data).toEqual({ keep: "1", add: "3" });
    const wrongType = await raw("PATCH", "secret/data/p", { body: { data: {} } });
    expect(wrongType.status).toBe(415);
  });

  it("answers KV v1-style paths with a 404 hint, and refuses writes ending in '/'", async () => {
    const v1 = await raw("GET", "secret/runners/42");
    expect(v1.status).toBe(404);
    expect(v1.json["data"]).toBeNull();
    expect(v1.json["warnings"]).toEqual([expect.stringContaining("Invalid path for a versioned K/V secrets engine")]);
    expect(v1.json["warnings"]).toEqual([expect.stringContaining("'vault kv get'")]);
    const slash = await raw("POST", "secret/data/runners/", { body: { data: {} } });
    expect(slash).toMatchObject({ status: 400, json: { errors: ["cannot write to a path ending in '/'"] } });
  });

  it("describes its mounts the way KV-aware clients look them up", async () => {
    const mounts = await raw("GET", "sys/mounts");
    expect(mounts.json["secret/"]).toMatchObject({ type: "kv", options: { version: "2" } });
    expect((mounts.json["data"] as Json)["secret/"]).toMatchObject({ type: "kv" });
    expect((await raw("GET", "sys/mounts/secret")).json["data"]).toMatchObject({ type: "kv", options: { version: "2" } });
  });

  it("serves further KV mounts", async () => {
    await vault.close();
    vault = await VaultTwin.start({ kvMounts: ["kv", "ci"] });
    await client().write("ci/data/x", { data: { a: "1" } });
    expect(vault.kvKeys("ci")).toEqual(["x"]);
    expect(vault.kvKeys("kv")).toEqual([]);
    expect((await raw("GET", "secret/data/x")).status).toBe(404);
  });
});

describe("response wrapping", () => {
  async function wrappedRead(path: string, ttl = "5m") {
    return client().read(path, { headers: { "X-Vault-Wrap-TTL": ttl } });
  }

  it("returns only wrap_info, and the original response exactly once on unwrap", async () => {
    await client().write("secret/data/runners/1", { data: { jit: "s3cret" } });
    const wrapped = await wrappedRead("secret/data/runners/1");
    expect(wrapped).toMatchObject({ request_id: "", data: null, auth: null });
    expect(wrapped.wrap_info).toEqual({
      token: expect.stringMatching(/^hvs\.\w{24}$/),
      accessor: expect.stringMatching(/^\w{24}$/),
      ttl: 300,
      creation_time: "2024-06-01T12:00:00Z",
      creation_path: "secret/data/runners/1",
    });
    expect(vault.requests.at(-1)?.response).not.toContain("s3cret");

    const token: string = wrapped.wrap_info.token;
    const unwrapped = await raw("POST", "sys/wrapping/unwrap", { token });
    expect(unwrapped.status).toBe(200);
    expect(unwrapped.json).toMatchObject({ request_id: expect.any(String), mount_type: "kv", wrap_info: null });
    expect((unwrapped.json["data"] as Json)["data"]).toEqual({ jit: "s3cret" });

    const again = await raw("POST", "sys/wrapping/unwrap", { token });
    expect(again).toMatchObject({ status: 400, json: { errors: ["wrapping token is not valid or does not exist"] } });
  });

  it("accepts seconds and Go durations, and refuses nonsense", async () => {
    await client().write("secret/data/t", { data: { a: "1" } });
    expect((await wrappedRead("secret/data/t", "300")).wrap_info.ttl).toBe(300);
    expect((await wrappedRead("secret/data/t", "30s")).wrap_info.ttl).toBe(30);
    expect((await wrappedRead("secret/data/t", "1h30m")).wrap_info.ttl).toBe(5400);
    expect((await failure(wrappedRead("secret/data/t", "soon"))).statusCode).toBe(400);
  });

  it("wraps any response, writes included", async () => {
    const written = await client().write("secret/data/w", { data: { a: "1" } }, { headers: { "X-Vault-Wrap-TTL": "60" } });
    expect(written.data).toBeNull();
    const unwrapped = await raw("POST", "sys/wrapping/unwrap", { token: written.wrap_info.token });
    expect((unwrapped.json["data"] as Json)["version"]).toBe(1);
  });

  it("unwraps for a third party holding the token in the body, and looks up without spending", async () => {
    await client().write("secret/data/runners/2", { data: { jit: "x" } });
    const { wrap_info: wrapInfo } = await wrappedRead("secret/data/runners/2");
    const lookup = await raw("POST", "sys/wrapping/lookup", { token: null, body: { token: wrapInfo.token } });
    expect(lookup.json["data"]).toEqual({
      creation_path: "secret/data/runners/2",
      creation_time: "2024-06-01T12:00:00Z",
      creation_ttl: 300,
    });
    const other = client(vault.createToken({ policies: [] }));
    const unwrapped = await other.unwrap({ token: wrapInfo.token });
    expect(unwrapped.data.data).toEqual({ jit: "x" });
    expect((await failure(other.unwrap({ token: wrapInfo.token }))).statusCode).toBe(400);
    const lookupAfter = await raw("POST", "sys/wrapping/lookup", { token: null, body: { token: wrapInfo.token } });
    expect(lookupAfter.status).toBe(400);
  });

  it("lets a wrapping token expire after its TTL, and do nothing but unwrap", async () => {
    await client().write("secret/data/e", { data: { a: "1" } });
    const { wrap_info: first } = await wrappedRead("secret/data/e", "30s");
    const { wrap_info: second } = await wrappedRead("secret/data/e", "5m");
    expect((await raw("GET", "secret/data/e", { token: second.token })).status).toBe(403);
    nowMs += 31_000;
    expect((await raw("POST", "sys/wrapping/unwrap", { token: first.token })).status).toBe(400);
    expect((await raw("POST", "sys/wrapping/unwrap", { token: second.token })).status).toBe(200);
  });

  it("names the wrapped token's accessor when the wrapped response carries a token", async () => {
    const wrapped = await raw("POST", "auth/token/create", { body: { policies: ["default"] }, headers: { "X-Vault-Wrap-TTL": "2m" } });
    const wrapInfo = wrapped.json["wrap_info"] as Json;
    expect(wrapInfo["wrapped_accessor"]).toEqual(expect.stringMatching(/^\w{24}$/));
    const unwrapped = await raw("POST", "sys/wrapping/unwrap", { token: wrapInfo["token"] as string });
    const auth = unwrapped.json["auth"] as Json;
    expect(auth["accessor"]).toBe(wrapInfo["wrapped_accessor"]);
    expect((await raw("GET", "auth/token/lookup-self", { token: auth["client_token"] as string })).status).toBe(200);
  });

  it("wraps posted data at sys/wrapping/wrap, which insists on a TTL", async () => {
    const wrapped = await raw("POST", "sys/wrapping/wrap", { body: { answer: "42" }, headers: { "X-Vault-Wrap-TTL": "1m" } });
    expect(wrapped.json["wrap_info"]).toMatchObject({ ttl: 60, creation_path: "sys/wrapping/wrap" });
    const token = (wrapped.json["wrap_info"] as Json)["token"] as string;
    expect((await raw("POST", "sys/wrapping/unwrap", { token })).json["data"]).toEqual({ answer: "42" });
    const unwrappedTtl = await raw("POST", "sys/wrapping/wrap", { body: { answer: "42" } });
    expect(unwrappedTtl.json).toEqual({ errors: ["endpoint requires response wrapping to be used"] });
  });
});

describe("ACL policies", () => {
  it("allows exactly what a policy grants", async () => {
    const runner = client(await tokenWithPolicy("runner", RUNNER_POLICY));
    await runner.write("secret/data/runners/7", { data: { jit: "a" } });
    await runner.write("secret/data/runners/7", { data: { jit: "b" } });
    expect((await runner.read("secret/data/runners/7")).data.data).toEqual({ jit: "b" });
    expect((await runner.list("secret/metadata/runners")).data.keys).toEqual(["7"]);
    await runner.delete("secret/metadata/runners/7");

    const denied = [
      () => runner.write("secret/data/other", { data: { a: "1" } }),
      () => runner.read("secret/data/other"),
      () => runner.list("secret/metadata"),
      () => runner.write("secret/destroy/runners/7", { versions: [1] }),
      () => runner.audits(),
    ];
    for (const attempt of denied) {
      expect(await failure(attempt())).toEqual({ statusCode: 403, body: { errors: ["1 error occurred:\n\t* permission denied\n\n"] } });
    }
  });

  it("tells create from update by whether the secret exists", async () => {
    const createOnly = client(await tokenWithPolicy("create-only", 'path "secret/data/*" { capabilities = ["create"] }'));
    const updateOnly = client(await tokenWithPolicy("update-only", 'path "secret/data/*" { capabilities = ["update"] }'));
    expect((await failure(updateOnly.write("secret/data/new", { data: { a: "1" } }))).statusCode).toBe(403);
    await createOnly.write("secret/data/new", { data: { a: "1" } });
    expect((await failure(createOnly.write("secret/data/new", { data: { a: "2" } }))).statusCode).toBe(403);
    await updateOnly.write("secret/data/new", { data: { a: "2" } });
  });

  it("ranks matches like Vault: exact, then later wildcard, + segments, and deny wins", async () => {
    const token = await tokenWithPolicy(
      "ranked",
      `
      path "secret/data/*" { capabilities = ["read"] }
      path "secret/data/team/+/config" { capabilities = ["read", "update", "create"] }
      path "secret/data/team/blue/*" { capabilities = ["deny"] }
      path "secret/data/exact" { capabilities = ["list"] }
      `,
    );
    await tokenWithPolicy("extra-deny", 'path "secret/data/locked" { capabilities = ["deny"] }');
    const both = vault.createToken({ policies: ["ranked", "extra-deny"] });
    const capabilities = await raw("POST", "sys/capabilities-self", {
      token: both,
      body: {
        paths: ["secret/data/anything", "secret/data/team/red/config", "secret/data/team/blue/config", "secret/data/exact", "secret/data/locked", "sys/audit"],
      },
    });
    expect(capabilities.json["data"]).toEqual({
      "secret/data/anything": ["read"],
      "secret/data/team/red/config": ["create", "read", "update"],
      "secret/data/team/blue/config": ["deny"],
      "secret/data/exact": ["list"],
      "secret/data/locked": ["deny"],
      "sys/audit": ["deny"],
    });
    const writer = client(token);
    await writer.write("secret/data/team/red/config", { data: { a: "1" } });
    expect((await failure(writer.write("secret/data/team/red/other", { data: {} }))).statusCode).toBe(403);
  });

  it("needs sudo as well as read for sys/audit", async () => {
    const readOnly = client(await tokenWithPolicy("audit-read", 'path "sys/audit" { capabilities = ["read"] }'));
    expect((await failure(readOnly.audits())).statusCode).toBe(403);
    const sudo = client(await tokenWithPolicy("audit-sudo", 'path "sys/audit" { capabilities = ["read", "sudo"] }'));
    expect(Object.keys(await sudo.audits())).toContain("file/");
  });

  it("gives every token the default policy: lookup-self and capabilities-self", async () => {
    const token = vault.createToken({ policies: ["runner"], ttlSeconds: 600 });
    const self = await client(token).tokenLookupSelf();
    expect(self.data).toMatchObject({
      id: token,
      policies: ["default", "runner"],
      ttl: 600,
      creation_ttl: 600,
      display_name: "token",
      type: "service",
      renewable: true,
      expire_time: "2024-06-01T12:10:00Z",
    });
    const capabilities = await raw("POST", "sys/capabilities-self", { token, body: { path: "sys/wrapping/unwrap" } });
    expect(capabilities.json).toMatchObject({
      capabilities: ["update"],
      "sys/wrapping/unwrap": ["update"],
      data: { capabilities: ["update"], "sys/wrapping/unwrap": ["update"] },
    });
    const root = await raw("POST", "sys/capabilities-self", { body: { paths: ["anything/at/all"] } });
    expect(root.json["capabilities"]).toEqual(["root"]);
  });

  it("revokes a limited-use token after its last use", async () => {
    const token = vault.createToken({ policies: [], numUses: 2 });
    expect((await raw("GET", "auth/token/lookup-self", { token })).json["data"]).toMatchObject({ num_uses: 1 });
    expect((await raw("GET", "auth/token/lookup-self", { token })).status).toBe(200);
    expect((await raw("GET", "auth/token/lookup-self", { token })).status).toBe(403);
  });

  it("expires tokens at their TTL", async () => {
    const token = vault.createToken({ policies: [], ttlSeconds: 60 });
    expect((await raw("GET", "auth/token/lookup-self", { token })).status).toBe(200);
    nowMs += 60_000;
    expect((await raw("GET", "auth/token/lookup-self", { token })).json).toEqual({ errors: ["permission denied"] });
  });

  it("parses policies with hcl2json, rejects bad ones, and serves sys/policies/acl", async () => {
    await expect(vault.writePolicy("broken", 'path "x" { capabilities = [ }')).rejects.toThrow(/failed to parse policy/);
    await expect(vault.writePolicy("typo", 'path "x" { capabilities = ["reed"] }')).rejects.toThrow(/invalid capability "reed"/);
    const put = await raw("PUT", "sys/policies/acl/from-http", { body: { policy: 'path "secret/data/h" { capabilities = ["read"] }' } });
    expect(put.status).toBe(204);
    expect((await raw("GET", "sys/policies/acl/from-http")).json["data"]).toEqual({
      name: "from-http",
      policy: 'path "secret/data/h" { capabilities = ["read"] }',
    });
    expect((await raw("LIST", "sys/policies/acl")).json["data"]).toEqual({ keys: ["default", "from-http", "root"] });
    const bad = await raw("PUT", "sys/policies/acl/bad", { body: { policy: "path {" } });
    expect(bad.status).toBe(400);
  });

  it("answers the KV preflight (sys/internal/ui/mounts) only for tokens with access under the mount", async () => {
    const runner = await tokenWithPolicy("runner", RUNNER_POLICY);
    const allowed = await raw("GET", "sys/internal/ui/mounts/secret/runners/1", { token: runner });
    expect(allowed.json["data"]).toMatchObject({ path: "secret/", type: "kv", options: { version: "2" } });
    const nobody = vault.createToken({ policies: [] });
    const denied = await raw("GET", "sys/internal/ui/mounts/secret/runners/1", { token: nobody });
    expect(denied.status).toBe(403);
  });
});

describe("audit devices", () => {
  it("lists devices like Vault, top level and under data", async () => {
    const audits = await client().audits();
    const device = { type: "file", description: "", options: { file_path: "/var/log/vault/audit.log" }, local: false, path: "file/" };
    expect(audits["file/"]).toEqual(device);
    expect(audits.data).toEqual({ "file/": device });
  });

  it("logs requests and responses with secrets HMAC'd and paths in the clear", async () => {
    const secret = "ghr_super-secret-jit-config";
    await client().write("secret/data/runners/9", { data: { jit: secret, attempt: 3 } });
    const wrapped = await client().read("secret/data/runners/9", { headers: { "X-Vault-Wrap-TTL": "5m" } });
    await raw("POST", "sys/wrapping/unwrap", { token: wrapped.wrap_info.token });

    const log = vault.auditLog();
    const text = JSON.stringify(log);
    expect(text).not.toContain(secret);
    expect(text).not.toContain(vault.rootToken);
    expect(text).not.toContain(wrapped.wrap_info.token);

    const [writeRequest, writeResponse] = log;
    expect(writeRequest).toMatchObject({
      type: "request",
      auth: { client_token: vault.auditHash(vault.rootToken), display_name: "root", policies: ["root"], token_type: "service" },
      request: {
        operation: "create",
        path: "secret/data/runners/9",
        mount_type: "kv",
        mount_point: "secret/",
        namespace: { id: "root" },
        remote_address: "127.0.0.1",
        client_token: vault.auditHash(vault.rootToken),
        data: { data: { jit: vault.auditHash(secret), attempt: vault.auditHash("3") } },
      },
    });
    expect(writeResponse).toMatchObject({
      type: "response",
      response: { data: { version: 1, destroyed: false, created_time: vault.auditHash("2024-06-01T12:00:00Z") } },
    });

    const wrappedResponse = log.find((entry) => entry.type === "response" && entry.response?.wrap_info !== undefined);
    expect(wrappedResponse?.request.wrap_ttl).toBe(300);
    expect(wrappedResponse?.response?.wrap_info).toMatchObject({
      token: vault.auditHash(wrapped.wrap_info.token),
      creation_path: "secret/data/runners/9",
      ttl: 300,
    });
    const unwraps = log.filter((entry) => entry.request.path === "sys/wrapping/unwrap");
    expect(unwraps.map((entry) => entry.type)).toEqual(["request", "response"]);
    expect(unwraps[1]?.response?.data).toMatchObject({ http_status_code: 200, http_raw_body: expect.stringMatching(/^hmac-sha256:[0-9a-f]{64}$/) });
  });

  it("logs failed requests too: bad tokens, ACL denials, invalid wrapping tokens, handler errors", async () => {
    const runner = await tokenWithPolicy("runner", RUNNER_POLICY);
    await raw("GET", "secret/data/x", { token: "hvs.bogus" });
    await raw("GET", "secret/data/x", { token: runner });
    await raw("POST", "sys/wrapping/unwrap", { token: "hvs.spent" });
    await raw("POST", "secret/data/runners/1", { token: runner, body: { nodata: true } });
    const failures = vault.auditLog().filter((entry) => entry.error !== undefined);
    expect(failures.map((entry) => [entry.type, entry.request.path, entry.error])).toEqual([
      ["request", "secret/data/x", "permission denied"],
      ["request", "secret/data/x", "1 error occurred:\n\t* permission denied\n\n"],
      ["request", "sys/wrapping/unwrap", "wrapping token is not valid or does not exist"],
      ["response", "secret/data/runners/1", "invalid request"],
    ]);
    expect(failures[0]?.auth).toEqual({ token_type: "default" });
    expect(failures[0]?.request.client_token).toBe(vault.auditHash("hvs.bogus"));
    expect(failures[1]?.auth).toMatchObject({ policies: ["default", "runner"], policy_results: { allowed: false } });
    expect(failures[3]?.response?.data).toEqual({ error: vault.auditHash("no data provided") });
  });

  it("enables and disables devices over HTTP, each with its own salt", async () => {
    await client().enableAudit({ name: "second", type: "file", options: { file_path: "/tmp/second.log" } });
    expect(Object.keys(await client().audits()).filter((key) => key.endsWith("/"))).toEqual(["file/", "second/"]);
    const hashed = await raw("POST", "sys/audit-hash/second", { body: { input: "x" } });
    expect(hashed.json["hash"]).toBe(vault.auditHash("x", "second/"));
    expect(vault.auditHash("x", "second/")).not.toBe(vault.auditHash("x"));
    expect(vault.auditLog("second").length).toBeGreaterThan(0);
    await client().disableAudit({ name: "second" });
    const entriesBefore = vault.auditLog("second").length;
    await raw("GET", "auth/token/lookup-self");
    expect(vault.auditLog("second")).toHaveLength(entriesBefore);
    expect((await raw("PUT", "sys/audit/file", { body: { type: "file", options: { file_path: "/x" } } })).json).toEqual({
      errors: ["path already in use"],
    });
  });

  it("writes nothing when started without a device", async () => {
    await vault.close();
    vault = await VaultTwin.start({ audit: false });
    await client().write("secret/data/x", { data: { a: "1" } });
    expect(vault.auditLog()).toEqual([]);
    expect((await client().audits()).data).toEqual({});
  });
});

describe("health and seal", () => {
  it("reports an active, unsealed node", async () => {
    const health = await fetch(`${vault.url}/v1/sys/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({
      initialized: true,
      sealed: false,
      standby: false,
      performance_standby: false,
      replication_performance_mode: "disabled",
      replication_dr_mode: "disabled",
      server_time_utc: Date.parse("2024-06-01T12:00:00Z") / 1000,
      version: "1.15.0",
      cluster_name: expect.stringMatching(/^vault-cluster-/),
      cluster_id: expect.any(String),
    });
  });

  it("answers 429 as a standby unless standbyok, and honours code overrides", async () => {
    vault.setStandby(true);
    expect((await fetch(`${vault.url}/v1/sys/health`)).status).toBe(429);
    expect((await fetch(`${vault.url}/v1/sys/health?standbyok=true`)).status).toBe(200);
    expect((await fetch(`${vault.url}/v1/sys/health?standbycode=200`)).status).toBe(200);
    const viaClient = await client().health();
    expect(viaClient).toMatchObject({ standby: true, sealed: false });
  });

  it("is 503 everywhere but health and seal-status while sealed, through node-vault too", async () => {
    vault.seal();
    const health = await fetch(`${vault.url}/v1/sys/health`);
    expect(health.status).toBe(503);
    expect(await health.json()).not.toHaveProperty("cluster_name");
    expect((await fetch(`${vault.url}/v1/sys/health?sealedcode=200&uninitcode=204`)).status).toBe(200);
    expect(await client().status()).toMatchObject({ sealed: true, type: "shamir" });
    const sealed = await failure(client().read("secret/data/x"));
    expect(sealed).toEqual({ statusCode: 503, body: { errors: ["Vault is sealed"] } });
    await expect(client().write("secret/data/x", { data: {} })).rejects.toThrow("Vault is sealed");
    vault.unseal();
    expect((await client().write("secret/data/x", { data: { a: "1" } })).data.version).toBe(1);
  });
});

describe("tokens and logins", () => {
  it("renews and revokes a token's own lease", async () => {
    const token = vault.createToken({ policies: [], ttlSeconds: 120 });
    nowMs += 100_000;
    const renewed = await raw("POST", "auth/token/renew-self", { token, body: { increment: "2m" } });
    expect(renewed.json["auth"]).toMatchObject({ client_token: token, lease_duration: 120, renewable: true });
    nowMs += 100_000;
    expect((await raw("GET", "auth/token/lookup-self", { token })).status).toBe(200);
    expect((await raw("POST", "auth/token/revoke-self", { token })).status).toBe(204);
    expect((await raw("GET", "auth/token/lookup-self", { token })).status).toBe(403);
  });

  it("creates child tokens within the parent's policies", async () => {
    await vault.writePolicy("token-maker", 'path "auth/token/create" { capabilities = ["update"] }');
    const created = await raw("POST", "auth/token/create", { body: { policies: ["token-maker"], ttl: "1h", display_name: "ci" } });
    const auth = created.json["auth"] as Json;
    expect(auth).toMatchObject({ policies: ["default", "token-maker"], lease_duration: 3600, token_type: "service" });
    const maker = auth["client_token"] as string;
    expect((await raw("GET", "auth/token/lookup-self", { token: maker })).json["data"]).toMatchObject({ display_name: "token-ci" });
    const child = await raw("POST", "auth/token/create", { token: maker, body: { policies: ["admin"] } });
    expect(child.json).toEqual({ errors: ["child policies must be subset of parent"] });
    const narrower = await raw("POST", "auth/token/create", { token: maker, body: { policies: ["token-maker"], ttl: 60 } });
    expect((narrower.json["auth"] as Json)["lease_duration"]).toBe(60);
    const noDefaultPolicy = await raw("POST", "auth/token/create", { body: { policies: [] }, token: vault.createToken({ policies: [] }) });
    expect(noDefaultPolicy.status).toBe(403);
  });

  it("logs Nomad workload identities in with a JWT whose claims match the role", async () => {
    await vault.writePolicy("runner", RUNNER_POLICY);
    vault.configureJwtRole("nomad-workloads", {
      policies: ["runner"],
      bound_claims: { nomad_job_id: ["github-runner"] },
      user_claim: "/nomad_job_id",
      user_claim_json_pointer: true,
      claim_mappings: { nomad_job_id: "nomad_job_id", nomad_task: "nomad_task" },
    });
    const claims = { nomad_job_id: "github-runner", nomad_task: "fetch-credential", exp: nowMs / 1000 + 600 };
    const login = await raw("POST", "auth/jwt-nomad/login", { token: null, body: { role: "nomad-workloads", jwt: jwt(claims) } });
    expect(login.status).toBe(200);
    const auth = login.json["auth"] as Json;
    expect(auth).toMatchObject({
      policies: ["default", "runner"],
      metadata: { role: "nomad-workloads", nomad_job_id: "github-runner", nomad_task: "fetch-credential" },
      renewable: true,
      orphan: true,
    });
    expect(login.json["mount_type"]).toBe("jwt");
    const workload = client(auth["client_token"] as string);
    await workload.write("secret/data/runners/1", { data: { a: "1" } });
    expect((await workload.tokenLookupSelf()).data.display_name).toBe("jwt-nomad-github-runner");

    const wrongJob = await raw("POST", "auth/jwt-nomad/login", {
      token: null,
      body: { role: "nomad-workloads", jwt: jwt({ ...claims, nomad_job_id: "other" }) },
    });
    expect(wrongJob.json).toEqual({
      errors: ['error validating claims: claim "nomad_job_id" does not match any associated bound claim values'],
    });
    const noRole = await raw("POST", "auth/jwt-nomad/login", { token: null, body: { role: "nope", jwt: jwt(claims) } });
    expect(noRole).toMatchObject({ status: 400, json: { errors: ['role "nope" could not be found'] } });
  });

  it("takes roles written over HTTP in Vault's role fields (periodic tokens, audiences)", async () => {
    vault.enableJwtAuth();
    const role = {
      role_type: "jwt",
      bound_audiences: ["vault.io"],
      bound_claims: { nomad_job_id: "nomad-gha-dispatcher" },
      user_claim: "/nomad_job_id",
      user_claim_json_pointer: true,
      token_policies: ["nomad-gha-dispatcher"],
      token_period: "30m",
    };
    expect((await raw("POST", "auth/jwt-nomad/role/dispatcher", { body: role })).status).toBe(204);
    const claims = { nomad_job_id: "nomad-gha-dispatcher", aud: "vault.io" };
    const login = await raw("POST", "auth/jwt-nomad/login", { token: null, body: { role: "dispatcher", jwt: jwt(claims) } });
    expect(login.json["auth"]).toMatchObject({ policies: ["default", "nomad-gha-dispatcher"], lease_duration: 1800 });
    const wrongAudience = await raw("POST", "auth/jwt-nomad/login", {
      token: null,
      body: { role: "dispatcher", jwt: jwt({ ...claims, aud: "elsewhere" }) },
    });
    expect(wrongAudience.status).toBe(400);
    const unauthenticatedRoleWrite = await raw("POST", "auth/jwt-nomad/role/evil", { token: null, body: role });
    expect(unauthenticatedRoleWrite.status).toBe(403);
  });
});
