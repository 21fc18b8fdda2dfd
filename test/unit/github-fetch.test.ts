// The fetch Octokit is given (src/github/fetch.ts): what Octokit does with each kind of answer
// must be what it does over a real fetch.

import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { RequestError } from "@octokit/request-error";
import { Octokit } from "@octokit/rest";
import { Agent } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GITHUB_REQUEST_TIMEOUT_MS, githubAgent, octokitFetch } from "../../src/github/fetch.js";

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: string;
}

let server: Server;
let base: string;
const seen: Seen[] = [];
// One connection, reused by every request: each answer must leave it free for the next.
const agent = new Agent({ connections: 1 });

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
      const json = (status: number, value: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(status, { "content-type": "application/json; charset=utf-8", ...headers });
        res.end(JSON.stringify(value));
      };
      const path = (req.url ?? "").split("?")[0];
      if (path === "/repos/o/r/actions/runners") {
        if (req.headers["if-none-match"] === '"v1"') return void res.writeHead(304, { etag: '"v1"' }).end();
        return json(200, { total_count: 1, runners: [{ id: 7, name: "ngd-1" }] }, { etag: '"v1"' });
      }
      if (path === "/repos/o/r/actions/runners/7") return void res.writeHead(204).end();
      if (path === "/repos/o/old/actions/runners") return void res.writeHead(301, { location: `${base}/repos/o/r/actions/runners` }).end();
      if (path === "/repos/o/r/actions/runners/generate-jitconfig") return json(201, { runner: { id: 8 }, encoded_jit_config: "abc" });
      if (path === "/repos/o/r/actions/runners/registration-token") return json(422, { message: "Validation Failed" });
      if (path === "/zen") return void res.writeHead(200, { "content-type": "text/plain" }).end("Keep it logically awesome.");
      json(404, { message: "Not Found" });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await agent.close();
  await new Promise((resolve) => server.close(resolve));
});

const octokit = (baseUrl = base) =>
  new Octokit({
    baseUrl,
    auth: "ghp_test",
    log: { debug() {}, info() {}, warn() {}, error() {} },
    request: { fetch: octokitFetch(agent) as unknown as typeof fetch },
  });

describe("octokitFetch", () => {
  it("returns JSON data and headers, and a 304 as Octokit's Not modified error", async () => {
    const res = await octokit().rest.actions.listSelfHostedRunnersForRepo({ owner: "o", repo: "r" });
    expect(res.status).toBe(200);
    expect(res.data.runners[0]?.name).toBe("ngd-1");
    expect(res.headers.etag).toBe('"v1"');
    expect(seen.at(-1)?.headers.authorization).toBe("token ghp_test");

    const err = await octokit()
      .rest.actions.listSelfHostedRunnersForRepo({ owner: "o", repo: "r", headers: { "if-none-match": '"v1"' } })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RequestError);
    expect((err as RequestError).status).toBe(304);
  });

  it("sends JSON bodies and reads answers without a body", async () => {
    const created = await octokit().rest.actions.generateRunnerJitconfigForRepo({
      owner: "o",
      repo: "r",
      name: "ngd-2",
      runner_group_id: 1,
      labels: ["nomad"],
    });
    expect(created.status).toBe(201);
    expect(created.data.encoded_jit_config).toBe("abc");
    const post = seen.at(-1)!;
    expect(post.method).toBe("POST");
    expect(post.headers["content-type"]).toMatch(/^application\/json/);
    expect(JSON.parse(post.body)).toEqual({ name: "ngd-2", runner_group_id: 1, labels: ["nomad"] });

    const deleted = await octokit().rest.actions.deleteSelfHostedRunnerFromRepo({ owner: "o", repo: "r", runner_id: 7 });
    expect(deleted.status).toBe(204);
    // The same single connection serves the next request.
    expect((await octokit().rest.actions.listSelfHostedRunnersForRepo({ owner: "o", repo: "r" })).status).toBe(200);
  });

  it("follows redirects as fetch does (a renamed repository answers 301)", async () => {
    const res = await octokit().rest.actions.listSelfHostedRunnersForRepo({ owner: "o", repo: "old" });
    expect(res.status).toBe(200);
    expect(res.data.runners[0]?.id).toBe(7);
    expect(seen.at(-1)?.url).toBe("/repos/o/r/actions/runners");
  });

  it("turns error answers into Octokit's errors with GitHub's message", async () => {
    const err = await octokit()
      .rest.actions.createRegistrationTokenForRepo({ owner: "o", repo: "r" })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RequestError);
    expect((err as RequestError).status).toBe(422);
    expect((err as RequestError).message).toContain("Validation Failed");
  });

  it("passes text answers through as text", async () => {
    expect((await octokit().request("GET /zen")).data).toBe("Keep it logically awesome.");
  });

  it("gives up on a GitHub that never answers, as a 500 RequestError the client retries, instead of waiting 300 s", async () => {
    expect(GITHUB_REQUEST_TIMEOUT_MS).toBeLessThanOrEqual(30_000);
    const silent = createServer(() => {}); // takes the request, never answers
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const short = githubAgent(300);
    try {
      const client = new Octokit({
        baseUrl: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`,
        request: { fetch: octokitFetch(short) as unknown as typeof fetch },
      });
      const err = await client.request("GET /zen").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RequestError);
      expect((err as RequestError).status).toBe(500);
      expect((err as RequestError).message).toMatch(/timeout/i);
    } finally {
      await short.close();
      silent.closeAllConnections();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it("reports an unreachable server as a 500 RequestError, which the client retries", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const err = await octokit(`http://127.0.0.1:${port}`)
      .request("GET /zen")
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RequestError);
    expect((err as RequestError).status).toBe(500);
    expect((err as RequestError).message).toMatch(/ECONNREFUSED/);
  });
});
