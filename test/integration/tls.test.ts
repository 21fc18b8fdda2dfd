import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tlsOptions } from "../../src/config/tls.js";
import { loadConfig } from "../../src/config.js";
import { DependencyError } from "../../src/core/errors.js";
import { runDoctor } from "../../src/doctor.js";
import { VaultStore } from "../../src/vault/client.js";
import { runCli } from "../harness/cli.js";
import { startTestWorld } from "../harness/test-world.js";
import { privateCa } from "../harness/tls.js";
import { closeTwins, eventually, serviceEnv, startTwins } from "../harness/world.js";
import { VaultTwin } from "../twins/vault.js";

// Production-like TLS: Vault behind a private CA, Nomad with verify_https_client. The CA and
// every certificate are made at test time (test/harness/tls.ts).

type Twins = Awaited<ReturnType<typeof startTwins>>;
let twins: Twins;
const secret = randomBytes(20).toString("hex");
beforeAll(async () => {
  twins = await startTwins({ tls: true });
});
afterAll(() => closeTwins(twins));

/** The service's environment for the TLS twins, changed by `env` (a variable set to "" is unset). */
const envWith = (env: Record<string, string>) =>
  Object.fromEntries(Object.entries({ ...serviceEnv(twins, secret, {}), ...env }).filter(([, v]) => v !== "")) as Record<string, string>;

async function serve(env: Record<string, string>): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const run = runCli(envWith({ METRICS_PORT: "off", LOG_LEVEL: "info", ...env }));
  const code = await run.exit();
  return { code, stderr: run.err(), stdout: run.out() };
}

async function doctor(env: Record<string, string>): Promise<{ code: number; text: string }> {
  let text = "";
  const code = await runDoctor(loadConfig(envWith(env)), (t) => (text += t));
  return { code, text };
}

describe("TLS to Nomad and Vault", () => {
  it("with the CA and Nomad's client certificate, a job gets its runner: the allocation verifies Vault with the CA the job carries", async () => {
    const w = await startTestWorld({ tls: true });
    expect(w.vault.url).toMatch(/^https:/);
    expect(w.nomad.url).toMatch(/^https:/);
    const job = await w.github.queueJob({ repo: "octo-org/app", labels: ["self-hosted", "nomad"] });
    await eventually(() => w.github.jobs().find((j) => j.id === job.id)?.status === "completed", "job completed over TLS");
    const done = w.github.jobs().find((j) => j.id === job.id);
    expect(done?.conclusion).toBe("success");
    // The prestart read its credential over HTTPS with curl --cacert <the job's vault_ca_pem>.
    const registered = w.nomad.jobs().find((j) => j.ID === "github-runner");
    const prestart = registered?.TaskGroups?.[0]?.Tasks?.find((t) => t.Name === "configure-runner");
    const caTemplate = prestart?.Templates?.find((t) => t.DestPath === "local/vault-ca.pem");
    expect(caTemplate?.EmbeddedTmpl?.trim()).toBe(w.tls?.ca.certPem.trim());
    const reads = w.vault.auditLog().filter((e) => e.type === "request" && e.auth.metadata?.role === "nomad-gha-runner");
    expect(reads.map((e) => e.request.operation)).toContain("read");
  });

  it("without VAULT_CACERT, serve stops with one line that names the untrusted chain and the fix", async () => {
    const { code, stderr, stdout } = await serve({ VAULT_CACERT: "" });
    expect(code).toBe(1);
    // Once: not again as a log line on stdout.
    expect(stdout).not.toContain("not trusted");
    const lines = stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^startup error: .*Vault's TLS certificate at https:\/\/127\.0\.0\.1:\d+ is not trusted \((SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)\): set VAULT_CACERT \(or VAULT_CAPATH\) to the CA that signed it$/,
    );
    expect(lines[0]).not.toMatch(/sudo|policy/);
  });

  it("without a client certificate for Nomad (verify_https_client), serve stops with one line that says so", async () => {
    const { code, stderr } = await serve({ NOMAD_CLIENT_CERT: "", NOMAD_CLIENT_KEY: "", VAULT_REQUIRE_AUDIT: "false" });
    expect(code).toBe(1);
    const lines = stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^startup error: cannot register Nomad job github-runner: .*set NOMAD_CLIENT_CERT and NOMAD_CLIENT_KEY/);
  }, 90_000);

  it("a missing CA file is a config error naming the variable, before anything is contacted", async () => {
    const { code, stderr } = await serve({ NOMAD_CACERT: "/nonexistent/nomad-ca.pem" });
    expect(code).toBe(2);
    expect(stderr.trim()).toBe("config error: NOMAD_CACERT cannot be read: ENOENT: no such file or directory, open '/nonexistent/nomad-ca.pem'");
  });

  it("doctor checks the chain: an untrusted one is one failing line with the fix, and the Vault checks behind it are not run", async () => {
    const { code, text } = await doctor({ VAULT_CACERT: "" });
    expect(code).toBe(1);
    const vaultLines = text.split("\n").filter((l) => /Vault/.test(l) && /^\[/.test(l));
    expect(vaultLines).toHaveLength(1);
    expect(vaultLines[0]).toMatch(/^\[FAIL\] Vault reachable and unsealed: .*is not trusted \((SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)\)/);
    expect(text).toContain("fix: set VAULT_CACERT (or VAULT_CAPATH)");
    expect(text).toMatch(/\[ok\] {3}Nomad reachable: leader .* at https:\/\/127\.0\.0\.1:\d+ \(TLS: 1 CA certificate\(s\), client certificate\)/);
  });

  it("Vault with tls_require_and_verify_client_cert: VAULT_CLIENT_CERT and VAULT_CLIENT_KEY get through, no certificate says which to set", async () => {
    const ca = privateCa();
    const server = ca.server("vault", { ip: ["127.0.0.1"] });
    const client = ca.client("dispatcher");
    const vault = await VaultTwin.start({
      tls: { certPem: server.certPem, keyPem: server.keyPem, clientCaPem: ca.certPem, requireAndVerifyClientCert: true },
    });
    try {
      const store = (env: Record<string, string>) => {
        const problems: string[] = [];
        const tls = tlsOptions("VAULT", { VAULT_CACERT: ca.cert, ...env }, problems);
        expect(problems).toEqual([]);
        return new VaultStore({
          addr: vault.url,
          token: vault.rootToken,
          kvMount: "secret",
          kvPrefix: "p",
          runnerJob: { namespace: "default", id: "github-runner" },
          tls,
        });
      };
      expect(await store({ VAULT_CLIENT_CERT: client.cert, VAULT_CLIENT_KEY: client.key }).auditDevices()).toEqual(["file/"]);
      const refused = await store({})
        .auditDevices()
        .then(
          () => undefined,
          (err: unknown) => err,
        );
      expect(refused).toBeInstanceOf(DependencyError);
      expect(refused).toMatchObject({ transient: false, fix: "set VAULT_CLIENT_CERT and VAULT_CLIENT_KEY" });
    } finally {
      await vault.close();
      ca.remove();
    }
  });

  it("doctor with VAULT_SKIP_VERIFY=true reaches Vault, and warns that nothing is verified", async () => {
    const { text } = await doctor({ VAULT_CACERT: "", VAULT_SKIP_VERIFY: "true" });
    expect(text).toMatch(/\[ok\] {3}Vault reachable and unsealed: active and unsealed/);
    expect(text).toMatch(/\[warn\] Vault TLS: VAULT_SKIP_VERIFY is set: Vault's certificate is not checked/);
  });
});
