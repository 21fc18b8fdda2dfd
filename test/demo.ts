// `npm run demo`: the real service, end to end, against the embedded twins of GitHub, Vault and
// Nomad. Queues one job that asks for a Nomad runner and prints the flow as it happens; then runs
// two runner classes, one with a warm pool, and prints per class what they did.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUNDLED_RUNNER_JOB_FILE } from "../src/config.js";
import { eventually, startWorld, type World } from "./harness/world.js";

const color = process.stdout.isTTY ? (code: number, s: string) => `\u001b[${code}m${s}\u001b[0m` : (_: number, s: string) => s;
const started = Date.now();
const stamp = () => color(90, `+${String(Date.now() - started).padStart(5)}ms`);
const say = (who: string, what: string) => console.log(`${stamp()} ${who.padEnd(9)} ${what}`);

const SERVICE_STEPS: Record<string, (l: Record<string, unknown>) => string> = {
  "listening for GitHub webhooks": (l) => `listening on ${l.url}`,
  "runner job checked": (l) => `Nomad job ${l.job}: ${l.result}`,
  "credential obtained: JIT runner config": (l) => `webhook accepted -> credential obtained (JIT config for ${l.runner})`,
  "credential obtained: registration token": (l) => `webhook accepted -> credential obtained (registration token for ${l.runner})`,
  "credential stored in Vault": (l) => `stored in Vault at ${l.path}`,
  "single-use wrapping token issued": (l) => `single-use wrapping token issued (ttl ${l.ttl}); the credential itself never leaves Vault`,
  "runner dispatched": (l) => `Nomad job dispatched: ${l.nomadJob}`,
  "warm pool runner dispatched": (l) => `warm pool runner dispatched for ${l.pool}: ${l.runner}`,
  "runner picked up job": (l) => `runner ${l.runner} is running job ${l.job}`,
  "runner done; secret deleted": (l) => `job done -> secret of ${l.runner} deleted`,
  "job finished; runners released": (l) => `job ${l.job} finished (${l.conclusion})`,
};

async function main(): Promise<number> {
  const service = color(36, "service");
  const world = await startWorld({
    repos: ["octo-org/hello-world"],
    github: { jobDurationMs: 1500 },
    env: { LOG_LEVEL: "debug" },
    onLog: (line) => {
      const step = SERVICE_STEPS[String(line.msg)];
      if (step) say(service, step(line));
      else if (line.level === "warn" || line.level === "error") say(service, color(33, `${line.level}: ${String(line.msg)}`));
    },
  });
  const { github, vault, nomad } = world;
  say(color(35, "twins"), `GitHub ${github.url} | Vault ${vault.url} | Nomad ${nomad.url}`);

  const gh = color(32, "github");
  say(gh, "a workflow job in octo-org/hello-world asks for [self-hosted, nomad]: sending the signed workflow_job webhook");
  const job = await github.queueJob({ repo: "octo-org/hello-world", labels: ["self-hosted", "nomad"] });
  say(gh, `webhook for job ${job.id} answered ${github.deliveries().at(-1)?.status_code ?? "?"}`);

  const runnerName = `nomad-gha-${job.id}`;
  await eventually(() => github.runners().some((r) => r.name === runnerName && r.status === "online"), "runner online", 20_000);
  say(gh, `runner ${runnerName} online (its prestart task read its credential from Vault with its workload identity)`);
  await eventually(() => github.jobs().find((j) => j.id === job.id)?.status === "completed", "job completed", 20_000);
  say(gh, `job ${job.id} completed: ${github.jobs().find((j) => j.id === job.id)?.conclusion}`);
  await eventually(() => !github.runners().some((r) => r.name === runnerName), "runner removed", 20_000);
  say(gh, `runner ${runnerName} removed`);
  await eventually(() => vault.kvKeys().length === 0, "secret deleted", 20_000);
  await eventually(() => nomad.runningRunnerJobs().length === 0, "allocation finished", 20_000);
  say(color(35, "nomad"), "runner allocation finished: prestart -> runner -> poststop");

  const reads = vault.auditLog().filter((e) => e.type === "response" && e.auth.metadata?.role === "nomad-gha-runner" && e.request.operation === "read").length;
  const leaked = github.issuedSecrets.filter(
    (s) => world.logs.some((l) => l.includes(s)) || nomad.requests.some((r) => r.body.includes(s) || r.url.includes(s)),
  );
  console.log();
  console.log(
    color(1, "result:") +
      ` 1 job, 1 runner, ${github.runners().length} runners left, ${vault.kvKeys().length} secrets left, ` +
      `${nomad.runningRunnerJobs().length} runner jobs running, ${reads} audited credential read by the runner's own identity, ${leaked.length} credentials in Nomad or logs`,
  );
  await world.close();
  if (leaked.length > 0) return 1;
  console.log();
  return (await classes()) ? 0 : 1;
}

/** Placement and image pull of a fresh allocation, modelled in the Nomad twin (a warm runner skips it). */
const PLACEMENT_MS = 2_000;
const SMALL = ["self-hosted", "nomad"];
const LARGE = ["self-hosted", "nomad", "large"];

/** Two classes, `small` with a warm pool of 2, `large` without: 6 small and 2 large jobs. */
async function classes(): Promise<boolean> {
  const file = join(mkdtempSync(join(tmpdir(), "ngd-demo-")), "classes.yaml");
  writeFileSync(
    file,
    `classes:
  - { name: small, labels: [${SMALL.join(", ")}], job: runner-small, job_file: ${BUNDLED_RUNNER_JOB_FILE}, job_vars: { cpu: 500, memory: 512 }, min_idle: 2 }
  - { name: large, labels: [${LARGE.join(", ")}], job: runner-large, job_file: ${BUNDLED_RUNNER_JOB_FILE}, job_vars: { cpu: 4000, memory: 8192 }, max_runners: 2 }
`,
  );
  const service = color(36, "service");
  const dispatched: string[] = [];
  const world = await startWorld({
    repos: ["octo-org/hello-world"],
    github: { jobDurationMs: 1500 },
    nomadStartDelayMs: PLACEMENT_MS,
    runnerJobs: ["runner-small", "runner-large"],
    env: { RUNNER_CLASSES_FILE: file, ALLOWED_OWNERS: "", ALLOWED_REPOS: "octo-org/hello-world", RECONCILE_INTERVAL: "1", RECONCILE_GRACE: "2" },
    onLog: (line) => {
      if (line.msg === "warm pool runner dispatched") say(service, `warm pool runner dispatched: ${String(line.runner)}`);
      if (line.msg === "runner dispatched" || line.msg === "warm pool runner dispatched") dispatched.push(String(line.runner));
    },
  });
  const { github } = world;
  say(
    color(35, "classes"),
    `small [${SMALL.join(", ")}] with min_idle 2; large [${LARGE.join(", ")}] without a pool; ${PLACEMENT_MS} ms to place a fresh allocation`,
  );
  await eventually(() => idle(world, "small") === 2, "the warm pool filled", 30_000);
  say(color(32, "github"), "2 small runners registered and idle: the warm pool");

  // A job every 2.5 s: the runner dispatched for each job a pool runner took is the pool's replacement.
  const queued: Array<{ cls: string; job: { id: number } }> = [];
  for (const labels of [SMALL, LARGE, SMALL, SMALL, LARGE, SMALL]) {
    const cls = labels === SMALL ? "small" : "large";
    const job = await github.queueJob({ repo: "octo-org/hello-world", labels });
    say(color(32, "github"), `job ${job.id} queued for [${labels.join(", ")}]: class ${cls}`);
    queued.push({ cls, job });
    await new Promise((r) => setTimeout(r, 2_500));
  }
  const ids = new Set(queued.map((q) => q.job.id));
  await eventually(() => github.jobs().filter((j) => ids.has(j.id) && j.status === "completed").length === ids.size, "every job completed", 90_000);
  await eventually(() => idle(world, "small") === 2 && world.nomad.runningRunnerJobs().length === 2, "the pool whole again", 60_000);

  console.log();
  console.log(color(1, "class   jobs  runners  pool (idle/min)  startup p50  startup max"));
  for (const cls of ["small", "large"]) {
    const jobs = github.jobs().filter((j) => queued.some((q) => q.cls === cls && q.job.id === j.id));
    const startups = jobs.map((j) => (Date.parse(j.started_at ?? "") - Date.parse(j.created_at)) / 1000).sort((a, b) => a - b);
    const runners = new Set(dispatched.filter((name) => name.startsWith(`nomad-gha-${cls}-`))).size;
    const pool = cls === "small" ? `${idle(world, cls)}/2` : "none";
    const p50 = startups[Math.floor((startups.length - 1) / 2)] ?? Number.NaN;
    console.log(
      `${cls.padEnd(7)} ${String(jobs.length).padStart(4)}  ${String(runners).padStart(7)}  ${pool.padStart(15)}  ${`${p50.toFixed(0)} s`.padStart(11)}  ${`${(startups.at(-1) ?? Number.NaN).toFixed(0)} s`.padStart(11)}`,
    );
  }
  console.log(color(90, `(runners: runner jobs dispatched for the class, the pool's included; startup: GitHub's started_at - created_at, whole seconds)`));
  const left = github.runners().filter((r) => !r.name.startsWith("nomad-gha-small-pool-") && !(r.status === "online" && !r.busy));
  await world.close();
  return left.length === 0;
}

const idle = (world: World, cls: string) =>
  world.github.runners().filter((r) => r.name.startsWith(`nomad-gha-${cls}-`) && r.status === "online" && !r.busy).length;

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
