// What a request that got no answer means for the operator, in one line: the root cause and the
// variable that fixes it. A TLS failure says which setting is missing, and is not worth a retry
// (start-up would otherwise wait a minute for a certificate to change); a refused connection says
// only that, never a policy or a token, which the request did not get far enough to test.

export interface TransportContext {
  system: "Nomad" | "Vault";
  /** NOMAD or VAULT: the variables' prefix. */
  prefix: string;
  addr: string;
  /** Whether a client certificate is configured (<prefix>_CLIENT_CERT). */
  clientCert: boolean;
}

export interface TransportFailure {
  /** The cause and, where one setting fixes it, that fix: one line. */
  message: string;
  /** That fix alone (doctor prints it under the failing line). */
  fix?: string;
  transient: boolean;
}

const UNTRUSTED = new Set([
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_UNTRUSTED",
  "CERT_SIGNATURE_FAILURE",
]);
const EXPIRED = new Set(["CERT_HAS_EXPIRED", "CERT_NOT_YET_VALID"]);
const CLIENT_CERT_REFUSED = new Set([
  "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED",
  "ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE",
  "ERR_SSL_TLSV1_ALERT_UNKNOWN_CA",
  "ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN",
]);

/** The code of `err` or of the first cause that has one. */
export function errorCode(err: unknown): string | undefined {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") return code;
  }
  return undefined;
}

export function describeTransportFailure(err: unknown, ctx: TransportContext): TransportFailure {
  const code = errorCode(err) ?? "";
  const raw = (err instanceof Error ? err.message : String(err)).replace(/\s+/g, " ").trim();
  const { system, prefix, addr } = ctx;
  const fixed = (cause: string, fix: string): TransportFailure => ({ message: `${cause}: ${fix}`, fix, transient: false });
  if (UNTRUSTED.has(code)) {
    return fixed(`${system}'s TLS certificate at ${addr} is not trusted (${code})`, `set ${prefix}_CACERT (or ${prefix}_CAPATH) to the CA that signed it`);
  }
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID") {
    const hint = system === "Nomad" ? " (Nomad's own certificates name server.<region>.nomad)" : "";
    return fixed(`${system}'s TLS certificate at ${addr} does not name that host`, `set ${prefix}_TLS_SERVER_NAME to a name it holds${hint}`);
  }
  if (EXPIRED.has(code)) return fixed(`${system}'s TLS certificate at ${addr} is not valid now (${code})`, "renew it");
  if (CLIENT_CERT_REFUSED.has(code)) {
    return ctx.clientCert
      ? fixed(`${system} at ${addr} refused our client certificate (${code})`, `${prefix}_CLIENT_CERT must be signed by a CA ${system} trusts`)
      : fixed(`${system} at ${addr} requires a client certificate (${code})`, `set ${prefix}_CLIENT_CERT and ${prefix}_CLIENT_KEY`);
  }
  if (code === "ERR_SSL_WRONG_VERSION_NUMBER" || code === "EPROTO") {
    return fixed(`${system} at ${addr} does not speak TLS there (${code})`, `use http:// in ${prefix}_ADDR, or the port ${system} serves HTTPS on`);
  }
  if (code === "ECONNREFUSED") {
    const fix = `is it running, and is ${prefix}_ADDR right?`;
    return { message: `${system} refused the connection at ${addr}: ${fix}`, fix, transient: true };
  }
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") {
    return { message: `${system}'s host in ${prefix}_ADDR=${addr} cannot be resolved (${code})`, fix: `check ${prefix}_ADDR and DNS`, transient: true };
  }
  // A TLS server that wants a client certificate sends its alert after the client's side of a
  // TLS 1.3 handshake is done; undici then reports only that the other side closed. A fresh
  // connection closed before a single byte came back, with no client certificate, is that.
  const bytesRead = (err as { socket?: { bytesRead?: unknown } }).socket?.bytesRead;
  if (addr.startsWith("https:") && !ctx.clientCert && code === "UND_ERR_SOCKET" && bytesRead === 0) {
    return fixed(
      `${system} at ${addr} closed the connection after the TLS handshake without answering (${raw}): it most likely requires a client certificate (Nomad's verify_https_client, Vault's tls_require_and_verify_client_cert)`,
      `set ${prefix}_CLIENT_CERT and ${prefix}_CLIENT_KEY`,
    );
  }
  return { message: `${system} at ${addr}: ${raw}`, transient: true };
}
