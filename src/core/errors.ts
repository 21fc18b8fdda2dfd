/**
 * An error from an external system, classified once where the response is read, so retry and
 * readiness logic never parse messages. `transient` means the same request may succeed later.
 */
export class DependencyError extends Error {
  constructor(
    readonly dependency: "github" | "vault" | "nomad",
    message: string,
    readonly status: number | undefined,
    readonly transient: boolean,
    /** Seconds the dependency asked us to wait (Retry-After), if it said. */
    readonly retryAfterSeconds?: number,
    /** The one setting that fixes it, when that is known (a TLS failure: which variable). */
    readonly fix?: string,
  ) {
    super(message);
    this.name = "DependencyError";
  }
}

export function isTransient(err: unknown): boolean {
  if (err instanceof DependencyError) return err.transient;
  return isNetworkError(err);
}

const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "UND_ERR_CLOSED",
]);

export function isNetworkError(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && NETWORK_CODES.has(code)) return true;
  }
  return false;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
