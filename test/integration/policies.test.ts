import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { doctorChecks } from "../../src/doctor.js";
import { createDeps, type RunningService, startService } from "../../src/service.js";
import { grantRunnerIdentity } from "../harness/runner-identity.js";
import { captureLogger, eventually, serviceEnv, type WorldOptions } from "../harness/world.js";
import { GitHubTwin } from "../twins/github.js";
import { twinImage } from "../twins/images.js";
import { NomadTwin } from "../twins/nomad.js";
import { VaultTwin } from "../twins/vault.js";

const policy = (file: string) => readFileSync(new URL(`../../policies/${file}`, import.meta.url), "utf8");

let cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanup.reverse()) await fn();
  cleanup = [];
});

/**
 * The service with least-privilege tokens made from policies/: every call the code makes on the
 * dispatch path, the reconciler and doctor must be allowed. The exactness of the grants (nothing
 * broader) is asserted on the files themselves in test/unit/deploy-files.test.ts.
 */
describe("policies/ cover every call the service makes", () => {
  it("dispatch, cancellation, reconcile and doctor run with no permission denied, each Nomad token for its part", async () => {
    const github = await GitHubTwin.start();
    const vault = await VaultTwin.start();
    const nomad = await NomadTwin.start({ images: twinImage, acl: true, vault: { addr: vault.url } });
    cleanup.push(
      () => github.close(),
      () => vault.close(),
      () => nomad.close(),
    );
    github.addRepo("octo-org/app");

    await vault.writePolicy("nomad-gha-dispatcher", policy("vault-dispatcher.policy.hcl"));
    await grantRunnerIdentity(vault); // the runners' own Vault role and policy, from policies/ too
    const vaultToken = vault.createToken({ policies: ["nomad-gha-dispatcher"] });
    // As policies/README.md sets Nomad up: the runner namespace, a run-time token, a registration token.
    const namespace = await nomad.applyNamespace(policy("nomad-runner-namespace.hcl"));
    const nomadToken = nomad.createToken(policy("nomad-dispatcher.policy.hcl"), "nomad-gha-dispatcher");
    const registerToken = nomad.createToken(policy("nomad-runner-job-admin.policy.hcl"), "nomad-gha-dispatcher-register");

    const webhookSecret = randomBytes(20).toString("hex");
    const opts: WorldOptions = {
      env: {
        VAULT_TOKEN: vaultToken,
        NOMAD_TOKEN: nomadToken,
        NOMAD_REGISTER_TOKEN: registerToken,
        NOMAD_NAMESPACE: namespace,
        RECONCILE_INTERVAL: "1",
        RECONCILE_GRACE: "0",
      },
    };
    const config = loadConfig(serviceEnv({ github, vault, nomad }, webhookSecret, opts));
    const { log, logs } = captureLogger();
    const service: RunningService = await startService(config, log);
    cleanup.push(() => service.close());
    github.addWebhook({ url: `${service.url}/webhook`, secret: webhookSecret });

    const ran = await github.queueJob({ repo: "octo-org/app", labels: ["self-hosted", "nomad"] });
    await eventually(() => github.jobs().find((j) => j.id === ran.id)?.status === "completed", "job completed");
    // A job whose webhook was lost: only the reconciler can serve it.
    const lost = await github.queueJob({ repo: "octo-org/app", labels: ["self-hosted", "nomad"], deliver: false });
    await eventually(() => github.jobs().find((j) => j.id === lost.id)?.status === "completed", "lost job served by the reconciler");
    const cancelled = await github.queueJob({ repo: "octo-org/app", labels: ["self-hosted", "nomad"] });
    await github.cancelJob(cancelled.id);
    await eventually(() => nomad.runningRunnerJobs().length === 0, "cancelled job's runner stopped");
    await eventually(() => vault.kvKeys().length === 0, "secrets cleaned");

    const serviceCalls = [...nomad.requests];
    const results = await doctorChecks(config, createDeps(config, log));
    const failed = results.filter((r) => r.level === "fail" && r.name !== "GitHub credentials");
    expect(failed).toEqual([]);
    expect(results.filter((r) => r.level === "warn" && r.name.startsWith("Nomad"))).toEqual([]);

    // Which token made which call (the service's, before doctor): the registration token only read, parsed and registered the
    // runner job at start; everything after ran on the run-time token, in the runner namespace.
    const calls = (token: string) =>
      new Set(serviceCalls.filter((r) => r.headers["x-nomad-token"] === token).map((r) => `${r.method} ${decodeURIComponent(r.url.split("?")[0] ?? "")}`));
    expect([...calls(registerToken)].sort()).toEqual(["GET /v1/job/github-runner", "POST /v1/jobs", "POST /v1/jobs/parse"]);
    const runtime = [...calls(nomadToken)];
    expect(runtime).toEqual(expect.arrayContaining(["POST /v1/job/github-runner/dispatch", "GET /v1/jobs"]));
    expect(runtime.some((call) => call.startsWith("DELETE /v1/job/github-runner/dispatch-"))).toBe(true);
    expect(runtime.filter((call) => call === "POST /v1/jobs" || call === "POST /v1/jobs/parse")).toEqual([]);
    const elsewhere = serviceCalls.filter((r) => /[?&]namespace=/.test(r.url) && !r.url.includes(`namespace=${namespace}`));
    expect(elsewhere.map((r) => r.url)).toEqual([]);

    const denied = [...serviceCalls, ...vault.requests].filter((r) => r.status === 403);
    expect(denied.map((r) => `${r.method} ${r.url} -> ${r.response}`)).toEqual([]);
    // Doctor's probes of rules the token must not hold are the only refusals, and its placement
    // check's read of the runner class's node pool, which such a token may not make ("not checked").
    const probes = nomad.requests.slice(serviceCalls.length).filter((r) => r.status === 403);
    expect(probes.map((r) => r.url.split("?")[0]).sort()).toEqual([
      "/v1/agent/self",
      "/v1/node/pool/default",
      "/v1/nodes",
      "/v1/operator/scheduler/configuration",
    ]);
    expect(logs.join("\n")).not.toMatch(/permission denied/i);
  });
});
