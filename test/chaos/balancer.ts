// A loopback load balancer standing in for the Cloudflare tunnel in front of several dispatcher
// replicas. Each GitHub delivery goes to one replica it believes alive (round robin); a replica
// that does not answer (killed) fails that delivery with 502 and is taken out of rotation until a
// health check finds it again. GitHub does not retry a failed delivery, and neither does this.
//
// Faults, per delivery, decided by the caller's `fate` function:
// - drop: never reaches a replica; GitHub records a failed delivery (502);
// - duplicate: sent to two replicas (or the same one twice) at once, as a redelivery racing the
//   original would be;
// - delay: held before it is forwarded (GitHub waits for the answer);
// - reorder: acknowledged at once (200) and forwarded later in the background, so events of one
//   job can overtake each other; a forward that then fails is lost without GitHub knowing.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Agent, request } from "undici";

export type Fate = { kind: "forward" } | { kind: "drop" } | { kind: "duplicate" } | { kind: "delay"; ms: number } | { kind: "reorder"; ms: number };

export interface DeliveryRecord {
  guid: string;
  action: string | undefined;
  jobId: number | undefined;
  fate: Fate["kind"];
  /** Replica names the delivery was handed to, with what each answered (0 = no answer). */
  attempts: Array<{ backend: string; status: number }>;
  /** What GitHub got back. */
  status: number;
  at: number;
}

export interface Backend {
  name: string;
  url: string;
}

const HEALTH_INTERVAL_MS = 250;
const FORWARD_TIMEOUT_MS = 9_000;

export class LoadBalancer {
  readonly deliveries: DeliveryRecord[] = [];
  private readonly backends = new Map<string, { url: string; up: boolean }>();
  private readonly agent = new Agent({ keepAliveTimeout: 2_000, connections: 64 });
  private readonly background = new Set<Promise<unknown>>();
  private next = 0;
  private timer: NodeJS.Timeout | undefined;
  private server: Server | undefined;
  url = "";

  constructor(private readonly fate: (delivery: { action: string | undefined; jobId: number | undefined }) => Fate) {}

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res).catch(() => res.destroy()));
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    this.timer = setInterval(() => void this.healthCheck(), HEALTH_INTERVAL_MS);
  }

  /** A replica (re)connects: it takes deliveries once a health check sees it. */
  setBackend(backend: Backend): void {
    this.backends.set(backend.name, { url: backend.url, up: false });
    void this.healthCheck();
  }

  upBackends(): string[] {
    return [...this.backends].filter(([, b]) => b.up).map(([name]) => name);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
    if (this.server) {
      this.server.closeAllConnections();
      await new Promise<void>((resolve) => this.server!.close(() => resolve()));
    }
    await this.agent.close();
  }

  /** Resolves once every reordered delivery has been forwarded. */
  async settled(): Promise<void> {
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
  }

  private async healthCheck(): Promise<void> {
    await Promise.all(
      [...this.backends.values()].map(async (backend) => {
        try {
          const res = await request(`${backend.url}/healthz`, { dispatcher: this.agent, headersTimeout: 1_000, bodyTimeout: 1_000 });
          await res.body.text();
          backend.up = res.statusCode === 200;
        } catch {
          backend.up = false;
        }
      }),
    );
  }

  private pick(): [string, { url: string; up: boolean }] | undefined {
    const up = [...this.backends].filter(([, b]) => b.up);
    if (up.length === 0) return undefined;
    return up[this.next++ % up.length];
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value === undefined || ["host", "connection", "content-length", "keep-alive", "transfer-encoding"].includes(name)) continue;
      headers[name] = Array.isArray(value) ? value.join(", ") : value;
    }
    const { action, jobId } = peek(body);
    const fate = this.fate({ action, jobId });
    const record: DeliveryRecord = { guid: headers["x-github-delivery"] ?? "", action, jobId, fate: fate.kind, attempts: [], status: 0, at: Date.now() };
    this.deliveries.push(record);
    const reply = (status: number, text: string) => {
      record.status = status;
      res.writeHead(status, { "content-type": "application/json" });
      res.end(text);
    };

    switch (fate.kind) {
      case "drop":
        return reply(502, JSON.stringify({ error: "dropped by chaos balancer" }));
      case "reorder": {
        reply(200, JSON.stringify({ outcome: "accepted by chaos balancer" }));
        const later = sleep(fate.ms).then(() => this.forward(req.url ?? "/", headers, body, record));
        this.background.add(later);
        void later.finally(() => this.background.delete(later));
        return;
      }
      case "delay":
        await sleep(fate.ms);
        break;
      case "duplicate": {
        const [first, second] = await Promise.all([this.forward(req.url ?? "/", headers, body, record), this.forward(req.url ?? "/", headers, body, record)]);
        const answer = first.status >= 200 && first.status < 300 ? first : second;
        return reply(answer.status, answer.text);
      }
      case "forward":
        break;
    }
    const answer = await this.forward(req.url ?? "/", headers, body, record);
    reply(answer.status, answer.text);
  }

  private async forward(path: string, headers: Record<string, string>, body: Buffer, record: DeliveryRecord): Promise<{ status: number; text: string }> {
    const picked = this.pick();
    if (!picked) {
      record.attempts.push({ backend: "none", status: 0 });
      return { status: 502, text: JSON.stringify({ error: "no replica connected" }) };
    }
    const [name, backend] = picked;
    try {
      const res = await request(`${backend.url}${path}`, {
        method: "POST",
        headers,
        body,
        dispatcher: this.agent,
        headersTimeout: FORWARD_TIMEOUT_MS,
        bodyTimeout: FORWARD_TIMEOUT_MS,
      });
      const text = await res.body.text();
      record.attempts.push({ backend: name, status: res.statusCode });
      return { status: res.statusCode, text };
    } catch (err) {
      // The replica is gone (killed mid-request or before): out of rotation until healthy again.
      backend.up = false;
      record.attempts.push({ backend: name, status: 0 });
      return { status: 502, text: JSON.stringify({ error: `replica ${name} unreachable: ${(err as Error).message}` }) };
    }
  }
}

function peek(body: Buffer): { action: string | undefined; jobId: number | undefined } {
  try {
    const payload = JSON.parse(body.toString("utf8")) as { action?: string; workflow_job?: { id?: number } };
    return { action: payload.action, jobId: payload.workflow_job?.id };
  } catch {
    return { action: undefined, jobId: undefined };
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
