// Issue 13 (1): nothing readable from Nomad can be exchanged for a credential. Everything the
// Nomad side holds for a dispatched runner (the parent and child jobs with their meta, versions,
// evaluations and allocations as any reader of the namespace gets them from the API, and every
// file of the allocation directories: rendered scripts, logs, the tasks' own secrets
// directories) is cut into strings, and each string is tried against Vault as a token
// (auth/token/lookup-self) and as a wrapping token (sys/wrapping/lookup, which does not spend it).
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { startTestWorld } from "../harness/test-world.js";
import { eventually, type World } from "../harness/world.js";

const labels = ["self-hosted", "nomad"];

describe("nothing the Nomad side holds opens Vault", () => {
  it("workload identity: no string of the runner's jobs, allocations, files or logs is a Vault token or a wrapping token", async () => {
    const w = await startTestWorld({ github: { jobDurationMs: 3_000 } });
    const job = await w.github.queueJob({ repo: "octo-org/app", labels });
    await eventually(() => w.github.runners().some((r) => r.busy), "runner busy with its job");
    const whileRunning = await nomadSideStrings(w);
    await eventually(() => w.github.jobs().find((j) => j.id === job.id)?.status === "completed", "job completed");
    const afterwards = await nomadSideStrings(w);
    const candidates = [...new Set([...whileRunning, ...afterwards])];

    // The collection reached what matters: the prestart's own Vault token file (revoked by now),
    // the runner's name and the dispatch meta.
    const prestartToken = readFileSync(join(w.nomad.allocDirPath(w.nomad.allocations()[0]!.ID), "configure-runner", "secrets", "vault_token"), "utf8");
    expect(candidates).toContain(prestartToken);
    expect(candidates).toContain(`nomad-gha-${job.id}`);
    expect(await vaultAccepts(w, candidates)).toEqual([]);
  }, 180_000); // thousands of candidates, two Vault calls each

  it("the check can fail: with the wrapping-token fallback, it finds the unspent token in the dispatch meta", async () => {
    const w = await startTestWorld({ nomadSlots: 0, env: { RUNNER_CREDENTIAL_DELIVERY: "wrap" } });
    await w.github.queueJob({ repo: "octo-org/app", labels });
    await eventually(() => w.nomad.jobs().some((j) => j.Dispatched), "runner job dispatched");
    const wrapToken = w.nomad.jobs().find((j) => j.Dispatched)?.Meta?.credential_wrap_token ?? "";
    expect(wrapToken).not.toBe("");
    expect(await vaultAccepts(w, await nomadSideStrings(w))).toEqual([`wrapping token ${wrapToken}`]);
  });
});

describe("a wrapping token stolen from the dispatch meta (fallback mode)", () => {
  it("is refused to the runner, which the dispatcher then removes, raising an alarm, and the job gets a fresh runner", async () => {
    const w = await startTestWorld({
      nomadStartDelayMs: 1_500,
      env: { RUNNER_CREDENTIAL_DELIVERY: "wrap", RECONCILE_INTERVAL: "1", RECONCILE_GRACE: "0" },
    });
    const job = await w.github.queueJob({ repo: "octo-org/app", labels });
    await eventually(() => w.nomad.jobs().some((j) => j.Dispatched), "runner job dispatched");
    const first = w.nomad.jobs().find((j) => j.Dispatched)!;
    // A reader of the job unwraps the token before the allocation starts.
    const theft = await fetch(`${w.vault.url}/v1/sys/wrapping/unwrap`, {
      method: "POST",
      headers: { "X-Vault-Token": first.Meta?.credential_wrap_token ?? "" },
    });
    expect(theft.status).toBe(200);

    await eventually(() => w.github.jobs().find((j) => j.id === job.id)?.status === "completed", "job served by a fresh runner", 30_000);
    const [stolenAlloc] = w.nomad.allocations().filter((a) => a.JobID === first.ID);
    const prestartExit = stolenAlloc?.TaskStates["configure-runner"]?.Events.find((e) => e.Type === "Terminated");
    expect(prestartExit?.Details?.exit_code).toBe("97");
    expect(stolenAlloc?.TaskStates.runner?.Events.map((e) => e.Type)).not.toContain("Started");
    expect(w.logs.filter((line) => line.includes("possible theft"))).toHaveLength(1);
    const metrics = await (await fetch(w.service.metricsUrl!)).text();
    expect(metrics).toMatch(/^ngd_runner_credentials_refused_total 1$/m);
    // Two credentials: the stolen one and the fresh one; the stolen runner's registration is gone.
    expect(w.github.requests.filter((r) => r.method === "POST" && r.url.includes("generate-jitconfig"))).toHaveLength(2);
    await eventually(() => w.github.runners().length === 0 && w.vault.kvKeys().length === 0, "nothing left");
  });
});

/** What a reader of the runner namespace, or of the client's disk, can see of runner jobs. */
async function nomadSideStrings(w: World): Promise<string[]> {
  const out = new Set<string>();
  const read = async (path: string) => {
    const res = await fetch(`${w.nomad.url}${path}`);
    const text = await res.text();
    for (const word of wordsOf(text)) out.add(word);
    for (const leaf of stringLeaves(res.ok ? (JSON.parse(text) as unknown) : text)) out.add(leaf);
    return res.ok ? (JSON.parse(text) as unknown) : undefined;
  };
  const jobs = ((await read("/v1/jobs?prefix=github-runner&meta=true")) ?? []) as Array<{ ID: string }>;
  for (const job of jobs) {
    const id = encodeURIComponent(job.ID);
    await read(`/v1/job/${id}`);
    await read(`/v1/job/${id}/versions`);
    await read(`/v1/job/${id}/evaluations`);
    const allocs = ((await read(`/v1/job/${id}/allocations`)) ?? []) as Array<{ ID: string }>;
    for (const alloc of allocs) await read(`/v1/allocation/${alloc.ID}`);
  }
  for (const alloc of w.nomad.allocations()) {
    for (const file of filesUnder(w.nomad.allocDirPath(alloc.ID))) for (const word of wordsOf(readIfStillThere(file))) out.add(word);
  }
  return [...out];
}

/** Running tasks remove files (the runner's settings, once read) while this walks. */
function readIfStillThere(file: string): string {
  try {
    return readFileSync(file, "latin1");
  } catch {
    return "";
  }
}

function filesUnder(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  return entries.flatMap((name) => {
    const path = join(dir, name);
    const stat = statSync(path, { throwIfNoEntry: false });
    if (!stat) return [];
    if (stat.isDirectory()) return filesUnder(path);
    return stat.isFile() && stat.size < 1_000_000 ? [path] : [];
  });
}

function stringLeaves(value: unknown): string[] {
  if (typeof value === "string") return [value];
  if (Array.isArray(value)) return value.flatMap(stringLeaves);
  if (value && typeof value === "object") return Object.entries(value).flatMap(([key, item]) => [key, ...stringLeaves(item)]);
  return [];
}

/** Every run of token-ish characters, whole lines too, of plausible token length. */
function wordsOf(text: string): string[] {
  const pieces = [...text.split(/[^A-Za-z0-9._~+/=-]+/), ...text.split(/\r?\n/)];
  return pieces.map((p) => p.trim()).filter((p) => p.length >= 8 && p.length <= 512);
}

/** The candidates Vault accepts, as "token <x>" or "wrapping token <x>". */
async function vaultAccepts(w: World, candidates: string[]): Promise<string[]> {
  const accepted: string[] = [];
  for (let i = 0; i < candidates.length; i += 200) {
    await Promise.all(
      candidates.slice(i, i + 200).map(async (candidate) => {
        // A header cannot carry control characters, so neither can a token Vault would accept.
        if (/^[\x21-\x7e]+$/.test(candidate)) {
          const asToken = await fetch(`${w.vault.url}/v1/auth/token/lookup-self`, { headers: { "X-Vault-Token": candidate } });
          if (asToken.ok) accepted.push(`token ${candidate}`);
        }
        const asWrap = await fetch(`${w.vault.url}/v1/sys/wrapping/lookup`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ token: candidate }),
        });
        if (asWrap.ok) accepted.push(`wrapping token ${candidate}`);
      }),
    );
  }
  return accepted;
}
