// The twin's HTTP front: a node:http server that also understands Vault's LIST method.
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import net from "node:net";
import { Duplex } from "node:stream";
import tls from "node:tls";
import type { JsonValue } from "./vault-util.js";

export interface IncomingHttpRequest {
  method: string;
  /** Path and query as received. */
  url: string;
  /** Lower-cased names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: string;
  remoteAddress: string;
  remotePort: number;
}

export interface HttpReply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export function jsonReply(status: number, body: JsonValue): HttpReply {
  // Vault's responses come from json.Encoder, which ends each document with a newline.
  return {
    status,
    headers: { "content-type": "application/json", "cache-control": "no-store" },
    body: `${JSON.stringify(body)}\n`,
  };
}

export function errorReply(status: number, errors: string[]): HttpReply {
  return jsonReply(status, { errors });
}

/**
 * Node's HTTP parser (llhttp) only accepts methods it knows and answers anything else with a
 * parse error, yet Vault clients (node-vault, the Go API, the CLI) send `LIST`. This rewrites
 * a `LIST` request line to `GET` plus a marker header before the parser sees it, and the
 * handler turns it back into LIST. It tracks message framing (Content-Length) so every request
 * on a keep-alive connection is seen; a chunked request body switches the connection to
 * pass-through, which no Vault client does for LIST.
 */
export const LIST_MARKER_HEADER = "x-vault-twin-original-method";

const HEAD_TERMINATOR = Buffer.from("\r\n\r\n");
const MAX_HEAD_BYTES = 64 * 1024;

export class ListMethodRewriter {
  private pendingHead = Buffer.alloc(0);
  private bodyBytesLeft = 0;
  private passThrough = false;

  transform(chunk: Buffer): Buffer {
    if (this.passThrough) return chunk;
    const out: Buffer[] = [];
    let rest = chunk;
    while (rest.length > 0 && !this.passThrough) {
      if (this.bodyBytesLeft > 0) {
        const take = Math.min(this.bodyBytesLeft, rest.length);
        out.push(rest.subarray(0, take));
        this.bodyBytesLeft -= take;
        rest = rest.subarray(take);
        continue;
      }
      const buffered = Buffer.concat([this.pendingHead, rest]);
      const end = buffered.indexOf(HEAD_TERMINATOR);
      if (end === -1) {
        this.pendingHead = buffered;
        if (buffered.length > MAX_HEAD_BYTES) this.stopRewriting(out);
        return Buffer.concat(out);
      }
      const head = buffered.subarray(0, end + HEAD_TERMINATOR.length);
      this.pendingHead = Buffer.alloc(0);
      rest = buffered.subarray(head.length);
      out.push(rewriteListRequestLine(head));
      this.readFraming(head.toString("latin1"));
    }
    if (this.passThrough) out.push(rest);
    return Buffer.concat(out);
  }

  private readFraming(head: string): void {
    if (/^transfer-encoding:.*chunked/im.test(head)) this.passThrough = true;
    const length = /^content-length:\s*(\d+)/im.exec(head)?.[1];
    this.bodyBytesLeft = length === undefined ? 0 : Number(length);
  }

  private stopRewriting(out: Buffer[]): void {
    out.push(this.pendingHead);
    this.pendingHead = Buffer.alloc(0);
    this.passThrough = true;
  }
}

function rewriteListRequestLine(head: Buffer): Buffer {
  const text = head.toString("latin1");
  const match = /^(\r\n)*LIST ([^\r\n]*)\r\n/.exec(text);
  if (match === null) return head;
  const rewritten = `GET ${match[2] ?? ""}\r\n${LIST_MARKER_HEADER}: LIST\r\n${text.slice(match[0].length)}`;
  return Buffer.from(rewritten, "latin1");
}

/** A socket seen through a ListMethodRewriter, for http.Server to parse. */
class ListAwareSocket extends Duplex {
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly remoteFamily: string | undefined;
  readonly localAddress: string | undefined;
  readonly localPort: number | undefined;
  private readonly rewriter = new ListMethodRewriter();

  constructor(private readonly socket: Socket) {
    super({ allowHalfOpen: true });
    this.remoteAddress = socket.remoteAddress;
    this.remotePort = socket.remotePort;
    this.remoteFamily = socket.remoteFamily;
    this.localAddress = socket.localAddress;
    this.localPort = socket.localPort;
    socket.on("data", (chunk: Buffer) => {
      const rewritten = this.rewriter.transform(chunk);
      if (rewritten.length > 0 && !this.push(rewritten)) socket.pause();
    });
    socket.on("end", () => this.push(null));
    // http.Server arms idle timeouts through setTimeout below and waits for this event.
    socket.on("timeout", () => this.emit("timeout"));
    socket.on("close", () => this.destroy());
    socket.on("error", (error) => this.destroy(error));
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.socket.write(chunk, encoding, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.socket.end(callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.socket.destroy();
    callback(error);
  }

  // http.Server manages its connections through these.
  setTimeout(ms: number, callback?: () => void): this {
    this.socket.setTimeout(ms, callback);
    return this;
  }

  setNoDelay(noDelay?: boolean): this {
    this.socket.setNoDelay(noDelay);
    return this;
  }

  setKeepAlive(enable?: boolean, initialDelay?: number): this {
    this.socket.setKeepAlive(enable, initialDelay);
    return this;
  }
}

export interface RunningHttpServer {
  url: string;
  close(): Promise<void>;
}

export type HttpHandler = (request: IncomingHttpRequest) => Promise<HttpReply>;

/**
 * The tcp listener's TLS settings (hashicorp/vault internalshared/listenerutil/listener.go,
 * TLSConfig): tls_cert_file and tls_key_file; tls_client_ca_file, the CAs client certificates are
 * checked against; tls_require_and_verify_client_cert, which makes one mandatory (otherwise Vault
 * only requests one, tls.RequestClientCert).
 */
export interface ListenerTls {
  certPem: string;
  keyPem: string;
  clientCaPem?: string;
  requireAndVerifyClientCert?: boolean;
}

export async function startHttpServer(handler: HttpHandler, listenerTls?: ListenerTls): Promise<RunningHttpServer> {
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    void readIncoming(req)
      .then(handler)
      .then(
        (reply) => res.writeHead(reply.status, reply.headers).end(reply.body),
        (error: unknown) => res.writeHead(500, { "content-type": "application/json" }).end(`${JSON.stringify({ errors: [String(error)] })}\n`),
      );
  });
  // Vault is a Go server: Go sets TCP_NODELAY on every connection. Without it the response,
  // written through the wrapper in two pieces, waits for the client's delayed ACK (~40 ms).
  const accept = (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    server.emit("connection", new ListAwareSocket(socket));
  };
  const front = listenerTls
    ? tls.createServer(
        {
          noDelay: true,
          cert: listenerTls.certPem,
          key: listenerTls.keyPem,
          ...(listenerTls.clientCaPem !== undefined && { ca: listenerTls.clientCaPem }),
          requestCert: true,
          rejectUnauthorized: listenerTls.requireAndVerifyClientCert === true,
        },
        accept,
      )
    : net.createServer({ noDelay: true }, accept);
  await new Promise<void>((resolve, reject) => {
    front.once("error", reject);
    front.listen(0, "127.0.0.1", resolve);
  });
  const { port } = front.address() as AddressInfo;
  return {
    url: `${listenerTls ? "https" : "http"}://127.0.0.1:${port}`,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => front.close(() => resolve()));
    },
  };
}

async function readIncoming(req: http.IncomingMessage): Promise<IncomingHttpRequest> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || name === LIST_MARKER_HEADER) continue;
    headers[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return {
    method: req.headers[LIST_MARKER_HEADER] === "LIST" ? "LIST" : (req.method ?? "GET"),
    url: req.url ?? "/",
    headers,
    body: Buffer.concat(chunks).toString("utf8"),
    remoteAddress: req.socket.remoteAddress ?? "",
    remotePort: req.socket.remotePort ?? 0,
  };
}
