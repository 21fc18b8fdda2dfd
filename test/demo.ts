// `npm run demo`: the real service, end to end, against the embedded twins of GitHub, Vault and
// Nomad. Queues one job that asks for a Nomad runner and prints the flow as it happens.
import { eventually, startWorld } from "./harness/world.js";

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
  return leaked.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
