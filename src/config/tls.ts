import { X509Certificate } from "node:crypto";
import { lstatSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createSecureContext } from "node:tls";
import type { Env } from "./env-schema.js";

// TLS towards Nomad and Vault, from the variables their own CLIs read, with their meanings:
// hashicorp/nomad api/api.go (DefaultConfig, ConfigureTLS) and hashicorp/vault api/client.go
// (ReadEnvironment, ConfigureTLS), both through hashicorp/go-rootcerts (LoadCACerts):
// - <P>_CACERT: a PEM file (a bundle may hold several certificates); it wins over <P>_CAPATH.
// - <P>_CAPATH: a directory walked recursively; every file in it must hold PEM certificates.
// - Either one replaces the system's roots: only those CAs are trusted.
// - <P>_CLIENT_CERT and <P>_CLIENT_KEY: both or neither ("Both client cert and client key must be provided").
// - <P>_TLS_SERVER_NAME: the name sent as SNI and checked against the server's certificate.
// - <P>_SKIP_VERIFY: Go's strconv.ParseBool. Vault refuses a value it cannot parse; Nomad ignores
//   it silently, which would hide a typo, so here both refuse it.

/** Options for undici's `connect` (node:tls): what both adapters hand their Agent. */
export interface TlsOptions {
  /** PEM certificates trusted instead of the system's roots; undefined = the system's. */
  ca?: string[];
  cert?: string;
  key?: string;
  servername?: string;
  rejectUnauthorized: boolean;
}

export type TlsPrefix = "NOMAD" | "VAULT";

const GO_TRUE = new Set(["1", "t", "T", "TRUE", "true", "True"]);
const GO_FALSE = new Set(["0", "f", "F", "FALSE", "false", "False"]);

/** strconv.ParseBool: undefined for anything it would refuse. */
export function parseGoBool(value: string): boolean | undefined {
  if (GO_TRUE.has(value)) return true;
  if (GO_FALSE.has(value)) return false;
  return undefined;
}

/** The TLS settings for one system; every problem goes to `problems`, one line each. */
export function tlsOptions(prefix: TlsPrefix, env: Env, problems: string[]): TlsOptions {
  const v = (name: string) => env[`${prefix}_${name}`];
  const out: TlsOptions = { rejectUnauthorized: true };
  const skip = v("SKIP_VERIFY");
  if (skip !== undefined) {
    const parsed = parseGoBool(skip);
    if (parsed === undefined) problems.push(`${prefix}_SKIP_VERIFY must be true or false (as Go's ParseBool reads it: 1, t, true, 0, f, false), got "${skip}"`);
    else out.rejectUnauthorized = !parsed;
  }
  const caCert = v("CACERT");
  const caPath = v("CAPATH");
  const ca =
    caCert !== undefined ? caFile(`${prefix}_CACERT`, caCert, problems) : caPath !== undefined ? caDirectory(`${prefix}_CAPATH`, caPath, problems) : undefined;
  if (ca) out.ca = ca;
  const certFile = v("CLIENT_CERT");
  const keyFile = v("CLIENT_KEY");
  if ((certFile === undefined) !== (keyFile === undefined)) {
    problems.push(`${prefix}_CLIENT_CERT and ${prefix}_CLIENT_KEY must be set together (the client certificate and its private key)`);
  } else if (certFile !== undefined && keyFile !== undefined) {
    const cert = readText(`${prefix}_CLIENT_CERT`, certFile, problems);
    const key = readText(`${prefix}_CLIENT_KEY`, keyFile, problems);
    if (cert !== undefined && key !== undefined) {
      try {
        // Fails as Go's tls.LoadX509KeyPair does: not PEM, or a key that is not the certificate's.
        createSecureContext({ cert, key });
        out.cert = cert;
        out.key = key;
      } catch (err) {
        problems.push(`${prefix}_CLIENT_CERT and ${prefix}_CLIENT_KEY are not a certificate and its private key: ${oneLine(err)}`);
      }
    }
  }
  const serverName = v("TLS_SERVER_NAME");
  if (serverName !== undefined) out.servername = serverName;
  return out;
}

/** Whether any TLS variable changed the defaults (for the start-up summary). */
export function tlsSummary(tls: TlsOptions): string {
  const parts = [
    tls.ca ? `${tls.ca.length} CA certificate(s)` : "system CAs",
    ...(tls.cert ? ["client certificate"] : []),
    ...(tls.servername ? [`server name ${tls.servername}`] : []),
    ...(tls.rejectUnauthorized ? [] : ["verification OFF"]),
  ];
  return parts.join(", ");
}

function caFile(name: string, file: string, problems: string[]): string[] | undefined {
  const text = readText(name, file, problems);
  if (text === undefined) return undefined;
  const certs = pemCertificates(text);
  if (certs.length === 0) problems.push(`${name}: ${file} holds no PEM certificate`);
  return certs.length > 0 ? certs : undefined;
}

function caDirectory(name: string, dir: string, problems: string[]): string[] | undefined {
  const certs: string[] = [];
  const walk = (path: string): boolean => {
    let entries: string[];
    try {
      if (!lstatSync(path).isDirectory()) {
        const found = pemCertificates(readFileSync(path, "utf8"));
        if (found.length === 0) {
          problems.push(`${name}: ${path} holds no PEM certificate (every file of the directory must)`);
          return false;
        }
        certs.push(...found);
        return true;
      }
      entries = readdirSync(path).sort();
    } catch (err) {
      problems.push(`${name} cannot be read: ${oneLine(err)}`);
      return false;
    }
    return entries.every((entry) => walk(join(path, entry)));
  };
  if (!walk(dir)) return undefined;
  if (certs.length === 0) {
    problems.push(`${name}: ${dir} holds no certificate file`);
    return undefined;
  }
  return certs;
}

/** Every parseable certificate of a PEM text (what x509.CertPool.AppendCertsFromPEM takes). */
export function pemCertificates(text: string): string[] {
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  return blocks.filter((pem) => {
    try {
      new X509Certificate(pem);
      return true;
    } catch {
      return false;
    }
  });
}

function readText(name: string, file: string, problems: string[]): string | undefined {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    problems.push(`${name} cannot be read: ${oneLine(err)}`);
    return undefined;
  }
}

function oneLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(/\s+/g, " ").trim();
}
