import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

// A private CA made at test time with the machine's openssl, as an operator would make one
// (`openssl req -x509`, then leaf certificates signed by it), so nothing secret is committed.

export interface CertificateFiles {
  cert: string;
  key: string;
  certPem: string;
  keyPem: string;
}

export interface PrivateCa extends CertificateFiles {
  dir: string;
  /** A server certificate for these DNS names and IPs (SAN), signed by this CA. */
  server(name: string, sans: { dns?: string[]; ip?: string[] }): CertificateFiles;
  /** A client certificate (extendedKeyUsage clientAuth), signed by this CA. */
  client(name: string): CertificateFiles;
  remove(): void;
}

export function privateCa(commonName = "Test Private CA"): PrivateCa {
  const dir = mkdtempSync(join(tmpdir(), "ngd-ca-"));
  const openssl = (args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  const files = (name: string): CertificateFiles => {
    const cert = join(dir, `${name}.pem`);
    const key = join(dir, `${name}-key.pem`);
    return { cert, key, certPem: readFileSync(cert, "utf8"), keyPem: readFileSync(key, "utf8") };
  };
  openssl(
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", `/CN=${commonName}`].concat([
      "-keyout",
      "ca-key.pem",
      "-out",
      "ca.pem",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ]),
  );
  const leaf = (name: string, extensions: string) => {
    writeFileSync(join(dir, `${name}.ext`), extensions);
    openssl([
      "req",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-subj",
      `/CN=${name}`,
      "-keyout",
      `${name}-key.pem`,
      "-out",
      `${name}.csr`,
    ]);
    openssl([
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca-key.pem",
      "-CAcreateserial",
      "-days",
      "2",
      "-out",
      `${name}.pem`,
      "-extfile",
      `${name}.ext`,
    ]);
    return files(name);
  };
  return {
    ...files("ca"),
    dir,
    server(name, sans) {
      const alt = [...(sans.dns ?? []).map((d) => `DNS:${d}`), ...(sans.ip ?? []).map((i) => `IP:${i}`)].join(",");
      return leaf(name, `subjectAltName=${alt}\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature\n`);
    },
    client(name) {
      return leaf(name, "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n");
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
