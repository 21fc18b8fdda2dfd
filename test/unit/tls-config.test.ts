import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseGoBool, tlsOptions } from "../../src/config/tls.js";
import { ConfigError, loadConfig } from "../../src/config.js";
import { describeTransportFailure } from "../../src/core/transport-failure.js";
import { privateCa } from "../harness/tls.js";

const minimal = { GITHUB_WEBHOOK_SECRET: "a-webhook-secret-of-20-chars", GITHUB_TOKEN: "ghp_x", VAULT_TOKEN: "hvs.x", ALLOWED_OWNERS: "acme" };
const ca = privateCa();
const other = privateCa("Other CA");
const client = ca.client("dispatcher");
afterAll(() => {
  ca.remove();
  other.remove();
});

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig({ ...minimal, ...env });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

const tls = (prefix: "NOMAD" | "VAULT", env: Record<string, string>) => {
  const found: string[] = [];
  return { options: tlsOptions(prefix, env, found), problems: found };
};

describe("TLS settings from the CLIs' variables", () => {
  it("reads SKIP_VERIFY as Go's strconv.ParseBool does, and refuses anything else", () => {
    for (const t of ["1", "t", "T", "TRUE", "true", "True"]) expect(parseGoBool(t)).toBe(true);
    for (const f of ["0", "f", "F", "FALSE", "false", "False"]) expect(parseGoBool(f)).toBe(false);
    for (const bad of ["yes", "on", "tRuE", " true", ""]) expect(parseGoBool(bad)).toBeUndefined();
    expect(tls("VAULT", { VAULT_SKIP_VERIFY: "true" }).options.rejectUnauthorized).toBe(false);
    expect(tls("NOMAD", { NOMAD_SKIP_VERIFY: "0" }).options.rejectUnauthorized).toBe(true);
    expect(tls("NOMAD", { NOMAD_SKIP_VERIFY: "yes" }).problems).toEqual([
      'NOMAD_SKIP_VERIFY must be true or false (as Go\'s ParseBool reads it: 1, t, true, 0, f, false), got "yes"',
    ]);
  });

  it("defaults to the system's CAs, verification on, no client certificate", () => {
    expect(tls("NOMAD", {})).toEqual({ options: { rejectUnauthorized: true }, problems: [] });
    const c = loadConfig(minimal);
    expect(c.nomad.tls).toEqual({ rejectUnauthorized: true });
    expect(c.vault.tls).toEqual({ rejectUnauthorized: true });
    expect(c.vault.runnerCaPem).toBeUndefined();
  });

  it("CACERT is a PEM file (a bundle keeps every certificate) and wins over CAPATH", () => {
    const bundle = join(ca.dir, "bundle.pem");
    writeFileSync(bundle, `${ca.certPem}\n${other.certPem}`);
    expect(tls("VAULT", { VAULT_CACERT: bundle, VAULT_CAPATH: "/nonexistent" })).toEqual({
      options: { rejectUnauthorized: true, ca: [ca.certPem.trim(), other.certPem.trim()] },
      problems: [],
    });
    expect(tls("VAULT", { VAULT_CACERT: join(ca.dir, "missing.pem") }).problems[0]).toMatch(/^VAULT_CACERT cannot be read: ENOENT/);
    expect(tls("VAULT", { VAULT_CACERT: client.key }).problems).toEqual([`VAULT_CACERT: ${client.key} holds no PEM certificate`]);
  });

  it("CAPATH is a directory walked recursively; every file in it must hold a certificate", () => {
    const dir = join(other.dir, "cas");
    mkdirSync(join(dir, "nested"), { recursive: true });
    writeFileSync(join(dir, "a.pem"), ca.certPem);
    writeFileSync(join(dir, "nested", "b.crt"), other.certPem);
    expect(tls("NOMAD", { NOMAD_CAPATH: dir }).options.ca).toEqual([ca.certPem.trim(), other.certPem.trim()]);
    writeFileSync(join(dir, "notes.txt"), "not a certificate");
    expect(tls("NOMAD", { NOMAD_CAPATH: dir }).problems).toEqual([
      `NOMAD_CAPATH: ${join(dir, "notes.txt")} holds no PEM certificate (every file of the directory must)`,
    ]);
    expect(tls("NOMAD", { NOMAD_CAPATH: join(dir, "missing") }).problems[0]).toMatch(/^NOMAD_CAPATH cannot be read: ENOENT/);
  });

  it("a client certificate needs its key, and the two must belong together", () => {
    const pair = tls("NOMAD", { NOMAD_CLIENT_CERT: client.cert, NOMAD_CLIENT_KEY: client.key });
    expect(pair.problems).toEqual([]);
    expect(pair.options).toMatchObject({ cert: client.certPem, key: client.keyPem });
    expect(tls("NOMAD", { NOMAD_CLIENT_CERT: client.cert }).problems).toEqual([
      "NOMAD_CLIENT_CERT and NOMAD_CLIENT_KEY must be set together (the client certificate and its private key)",
    ]);
    const mismatch = tls("VAULT", { VAULT_CLIENT_CERT: client.cert, VAULT_CLIENT_KEY: other.key }).problems;
    expect(mismatch).toHaveLength(1);
    expect(mismatch[0]).toMatch(/^VAULT_CLIENT_CERT and VAULT_CLIENT_KEY are not a certificate and its private key: /);
  });

  it("TLS_SERVER_NAME is the name checked against the certificate", () => {
    expect(tls("NOMAD", { NOMAD_TLS_SERVER_NAME: "server.global.nomad" }).options.servername).toBe("server.global.nomad");
  });

  it("the runners verify Vault with RUNNER_VAULT_CACERT, else with VAULT_CACERT when they use VAULT_ADDR", () => {
    expect(loadConfig({ ...minimal, VAULT_CACERT: ca.cert }).vault.runnerCaPem).toBe(`${ca.certPem.trim()}\n`);
    // Their own address may sit behind another CA: the image's CAs, unless told.
    expect(loadConfig({ ...minimal, VAULT_CACERT: ca.cert, RUNNER_VAULT_ADDR: "https://vault.service:8200" }).vault.runnerCaPem).toBeUndefined();
    expect(loadConfig({ ...minimal, RUNNER_VAULT_CACERT: other.cert }).vault.runnerCaPem).toBe(`${other.certPem.trim()}\n`);
    expect(problems({ RUNNER_VAULT_CACERT: client.key })).toEqual([`RUNNER_VAULT_CACERT: ${client.key} holds no PEM certificate`]);
  });

  it("loadConfig lists every TLS problem of both systems at once", () => {
    expect(problems({ NOMAD_SKIP_VERIFY: "nah", VAULT_CLIENT_KEY: client.key, NOMAD_CACERT: "/nonexistent/ca.pem" })).toEqual([
      'NOMAD_SKIP_VERIFY must be true or false (as Go\'s ParseBool reads it: 1, t, true, 0, f, false), got "nah"',
      "NOMAD_CACERT cannot be read: ENOENT: no such file or directory, open '/nonexistent/ca.pem'",
      "VAULT_CLIENT_CERT and VAULT_CLIENT_KEY must be set together (the client certificate and its private key)",
    ]);
  });
});

describe("start-up configuration errors", () => {
  it("an address without http:// or https:// is a config error, one line each", () => {
    expect(problems({ NOMAD_ADDR: "localhost:4646", VAULT_ADDR: "vault.example.com:8200", RUNNER_VAULT_ADDR: "ftp://vault" })).toEqual([
      "NOMAD_ADDR must be a URL starting with http:// or https://, like https://nomad.example.com:4646",
      "VAULT_ADDR must be a URL starting with http:// or https://, like https://vault.example.com:8200",
      "RUNNER_VAULT_ADDR must be a URL starting with http:// or https://, like https://vault.example.com:8200",
    ]);
  });

  it("a webhook secret under 20 characters refuses to start unless GITHUB_WEBHOOK_SECRET_ALLOW_SHORT=true", () => {
    const line =
      "GITHUB_WEBHOOK_SECRET: 1 secret(s) shorter than 20 characters can be guessed from one signed delivery; use `openssl rand -hex 32` (in GitHub and here), or set GITHUB_WEBHOOK_SECRET_ALLOW_SHORT=true to accept that";
    expect(problems({ GITHUB_WEBHOOK_SECRET: "nineteen-characters" })).toEqual([line]);
    expect(problems({ GITHUB_WEBHOOK_SECRET: "twenty--characters!!" })).toEqual([]);
    // Each secret of a rotation list counts.
    expect(problems({ GITHUB_WEBHOOK_SECRET: "twenty--characters!!,short" })).toEqual([line]);
    expect(problems({ GITHUB_WEBHOOK_SECRET: "short", GITHUB_WEBHOOK_SECRET_ALLOW_SHORT: "true" })).toEqual([]);
    expect(problems({ GITHUB_WEBHOOK_SECRET: "short", GITHUB_WEBHOOK_SECRET_ALLOW_SHORT: "maybe" })).toEqual([
      "GITHUB_WEBHOOK_SECRET_ALLOW_SHORT must be true or false",
    ]);
  });
});

describe("a request that got no answer, in one line", () => {
  const nomad = { system: "Nomad", prefix: "NOMAD", addr: "https://nomad:4646", clientCert: false } as const;
  const failure = (code: string, message = code, ctx: Parameters<typeof describeTransportFailure>[1] = nomad) =>
    describeTransportFailure(Object.assign(new Error(message), { code }), ctx);

  it("an untrusted chain names the CA variables and is not retried", () => {
    for (const code of ["SELF_SIGNED_CERT_IN_CHAIN", "DEPTH_ZERO_SELF_SIGNED_CERT", "UNABLE_TO_VERIFY_LEAF_SIGNATURE", "UNABLE_TO_GET_ISSUER_CERT_LOCALLY"]) {
      expect(failure(code)).toEqual({
        message: `Nomad's TLS certificate at https://nomad:4646 is not trusted (${code}): set NOMAD_CACERT (or NOMAD_CAPATH) to the CA that signed it`,
        fix: "set NOMAD_CACERT (or NOMAD_CAPATH) to the CA that signed it",
        transient: false,
      });
    }
  });

  it("a wrong name, an expired certificate, a refused or missing client certificate, plain HTTP", () => {
    expect(failure("ERR_TLS_CERT_ALTNAME_INVALID").message).toBe(
      "Nomad's TLS certificate at https://nomad:4646 does not name that host: set NOMAD_TLS_SERVER_NAME to a name it holds (Nomad's own certificates name server.<region>.nomad)",
    );
    expect(failure("CERT_HAS_EXPIRED")).toEqual({
      message: "Nomad's TLS certificate at https://nomad:4646 is not valid now (CERT_HAS_EXPIRED): renew it",
      fix: "renew it",
      transient: false,
    });
    expect(failure("ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED").message).toBe(
      "Nomad at https://nomad:4646 requires a client certificate (ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED): set NOMAD_CLIENT_CERT and NOMAD_CLIENT_KEY",
    );
    expect(failure("ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE", "", { ...nomad, clientCert: true }).message).toBe(
      "Nomad at https://nomad:4646 refused our client certificate (ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE): NOMAD_CLIENT_CERT must be signed by a CA Nomad trusts",
    );
    expect(failure("ERR_SSL_WRONG_VERSION_NUMBER").transient).toBe(false);
  });

  it("a refused connection says only that (never a policy), and may be retried", () => {
    const vault = { system: "Vault", prefix: "VAULT", addr: "http://127.0.0.1:8200", clientCert: false } as const;
    expect(failure("ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:8200", vault)).toEqual({
      message: "Vault refused the connection at http://127.0.0.1:8200: is it running, and is VAULT_ADDR right?",
      fix: "is it running, and is VAULT_ADDR right?",
      transient: true,
    });
    // Found on the error's cause too, as undici wraps them.
    const wrapped = new Error("fetch failed", { cause: Object.assign(new Error("x"), { code: "ECONNREFUSED" }) });
    expect(describeTransportFailure(wrapped, vault).message).toMatch(/^Vault refused the connection/);
  });

  it("a fresh TLS connection closed before any answer, without a client certificate, says the server most likely wants one", () => {
    const closed = (bytesRead: number, ctx: Parameters<typeof describeTransportFailure>[1] = nomad) =>
      describeTransportFailure(Object.assign(new Error("other side closed"), { code: "UND_ERR_SOCKET", socket: { bytesRead } }), ctx);
    expect(closed(0)).toEqual({
      message:
        "Nomad at https://nomad:4646 closed the connection after the TLS handshake without answering (other side closed): it most likely requires a client certificate (Nomad's verify_https_client, Vault's tls_require_and_verify_client_cert): set NOMAD_CLIENT_CERT and NOMAD_CLIENT_KEY",
      fix: "set NOMAD_CLIENT_CERT and NOMAD_CLIENT_KEY",
      transient: false,
    });
    // A connection that had answered before (keep-alive), one that has a certificate, or plain HTTP: a passing failure.
    expect(closed(512)).toEqual({ message: "Nomad at https://nomad:4646: other side closed", transient: true });
    expect(closed(0, { ...nomad, clientCert: true }).transient).toBe(true);
    expect(closed(0, { ...nomad, addr: "http://nomad:4646" }).transient).toBe(true);
  });
});
