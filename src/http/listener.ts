import type { Server, ServerOptions } from "node:http";

/**
 * How long a client may take, on a listener that strangers reach through the tunnel. Node's
 * defaults let a request trickle in for 300 s and leave a connection that never sends a byte
 * open forever; these bound both, so slow or idle connections cannot pile up.
 */
export interface ListenerLimits {
  /** The request line and headers must be in within this. */
  headersMs: number;
  /** The whole request, body included. */
  requestMs: number;
  /** A connection with no bytes either way for this long is closed (before, between or during requests). */
  idleMs: number;
  /** Bigger headers get 431 (GitHub's are a few hundred bytes). */
  maxHeaderBytes: number;
}

export const LISTENER_LIMITS: ListenerLimits = { headersMs: 10_000, requestMs: 30_000, idleMs: 30_000, maxHeaderBytes: 16 * 1024 };

export function listenerOptions(limits: ListenerLimits = LISTENER_LIMITS): ServerOptions {
  return {
    headersTimeout: limits.headersMs,
    requestTimeout: limits.requestMs,
    // Node checks the two timeouts above on this interval (30 s by default).
    connectionsCheckingInterval: Math.min(1_000, limits.headersMs),
    keepAliveTimeout: Math.min(5_000, limits.idleMs),
    maxHeaderSize: limits.maxHeaderBytes,
  };
}

/** headersTimeout only starts with the first byte: a connection that sends nothing needs this. */
export function guardIdleConnections(server: Server, limits: ListenerLimits = LISTENER_LIMITS): void {
  server.setTimeout(limits.idleMs, (socket) => socket.destroy());
}
