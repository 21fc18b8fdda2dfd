import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import { type Config, loadConfig } from "../../src/config.js";
import { createLogger, type Logger } from "../../src/log.js";
import { type RunningService, startService } from "../../src/service.js";
import { GitHubTwin, type GitHubTwinOptions } from "../twins/github.js";
import { twinImage } from "../twins/images.js";
import { NomadTwin } from "../twins/nomad.js";
import type { TwinNodeOptions } from "../twins/nomad-nodes.js";
import { VaultTwin } from "../twins/vault.js";
import { grantRunnerIdentity } from "./runner-identity.js";
import { type CertificateFiles, type PrivateCa, privateCa } from "./tls.js";

export interface WorldOptions {
  /** Extra service environment (overrides the defaults below). */
  env?: Record<string, string>;
  github?: GitHubTwinOptions;
  vaultAudit?: boolean;
  nomadSlots?: number;
  /** How long the Nomad twin's client waits before it starts an allocation's tasks (per job ID, when a function). */
  nomadStartDelayMs?: number | ((jobId: string) => number);
  /** Authenticate as a GitHub App instead of a PAT. */
  app?: boolean;
  /** The service's webhook is an organization (`org`) or repository (`repo`) hook rather than a catch-all one. */
  hook?: { org?: string; repo?: string };
  /** Repositories to create (and, with `app`, install the App on). */
  repos?: string[];
  /**
   * A Vault Enterprise namespace (created in the Vault twin, with its `secret/` KV mount) the
   * service works in: VAULT_NAMESPACE.
   */
  vaultNamespace?: string;
  /**
   * Vault and Nomad serve HTTPS with certificates of a private CA made for the run, Nomad with
   * verify_https_client (a client certificate or no connection), and the service gets
   * VAULT_CACERT, NOMAD_CACERT, NOMAD_CLIENT_CERT and NOMAD_CLIENT_KEY.
   */
  tls?: boolean;
  /** The Nomad twin's client node: its pool, attributes, docker plugin options (default: Nomad's). */
  nomadNode?: TwinNodeOptions;
  /** The runner jobs the runners' Vault role accepts (one per runner class); default: the shipped role's. */
  runnerJobs?: string[];
  /** Log lines also go to this function (the demo prints them). */
  onLog?: (line: Record<string, unknown>) => void;
}

/** The service wired to the three twins, as `npm run demo` and the integration tests run it. */
export interface World {
  github: GitHubTwin;
  vault: VaultTwin;
  nomad: NomadTwin;
  /** With `tls`: the private CA and the dispatcher's client certificate. */
  tls?: { ca: PrivateCa; client: CertificateFiles };
  service: RunningService;
  config: Config;
  webhookSecret: string;
  /** Every log line the service wrote, raw JSON text. */
  logs: string[];
  log: Logger;
  close(): Promise<void>;
}

export async function startTwins(opts: WorldOptions = {}) {
  const ca = opts.tls ? privateCa() : undefined;
  const server = ca?.server("server.global.nomad", { dns: ["server.global.nomad", "localhost"], ip: ["127.0.0.1"] });
  const listener = ca && server && { certPem: server.certPem, keyPem: server.keyPem };
  const github = await GitHubTwin.start(opts.github);
  const vault = await VaultTwin.start({ audit: opts.vaultAudit ?? true, ...(listener && { tls: listener }) });
  const nomad = await NomadTwin.start({
    images: twinImage,
    vault: { addr: vault.url, ...(ca && { caPem: ca.certPem }) },
    slots: opts.nomadSlots,
    startDelayMs: opts.nomadStartDelayMs,
    ...(opts.nomadNode && { node: opts.nomadNode }),
    ...(ca && listener && { tls: { ...listener, caPem: ca.certPem, verifyHttpsClient: true } }),
  });
  if (opts.vaultNamespace !== undefined) vault.createNamespace(opts.vaultNamespace);
  await grantRunnerIdentity(vault, { vaultNamespace: opts.vaultNamespace, nomadNamespace: "default", runnerJob: opts.runnerJobs });
  const installationId = 4242;
  for (const repo of opts.repos ?? ["octo-org/app"]) github.addRepo(repo, opts.app ? { installationId } : undefined);
  return { github, vault, nomad, ...(ca && { tls: { ca, client: ca.client("nomad-gha-dispatcher") } }) };
}

/** What an operator sets for the TLS twins: the private CA for both, a client certificate for Nomad. */
function tlsEnv(twins: Awaited<ReturnType<typeof startTwins>>): Record<string, string> {
  if (!twins.tls) return {};
  const { ca, client } = twins.tls;
  return { VAULT_CACERT: ca.cert, NOMAD_CACERT: ca.cert, NOMAD_CLIENT_CERT: client.cert, NOMAD_CLIENT_KEY: client.key };
}

/** Closes the twins (and removes the private CA's files). */
export async function closeTwins(twins: Awaited<ReturnType<typeof startTwins>>): Promise<void> {
  await Promise.all([twins.nomad.close(), twins.github.close(), twins.vault.close()]);
  twins.tls?.ca.remove();
}

export function serviceEnv(twins: Awaited<ReturnType<typeof startTwins>>, webhookSecret: string, opts: WorldOptions): Record<string, string> {
  const auth: Record<string, string> = opts.app
    ? (() => {
        const app = twins.github.createApp();
        return { GITHUB_APP_ID: String(app.appId), GITHUB_APP_PRIVATE_KEY: app.privateKeyPem };
      })()
    : // A PAT needs an allow-list (the service refuses to start without one); tests narrow it in opts.env.
      { GITHUB_TOKEN: twins.github.createPat(), ALLOWED_OWNERS: "*" };
  return {
    GITHUB_WEBHOOK_SECRET: webhookSecret,
    ...auth,
    GITHUB_API_URL: twins.github.url,
    GITHUB_URL: twins.github.webUrl,
    NOMAD_ADDR: twins.nomad.url,
    VAULT_ADDR: twins.vault.url,
    VAULT_TOKEN: twins.vault.rootToken,
    ...(opts.vaultNamespace !== undefined && { VAULT_NAMESPACE: opts.vaultNamespace }),
    ...tlsEnv(twins),
    HOST: "127.0.0.1",
    PORT: "0",
    METRICS_PORT: "0",
    LOG_LEVEL: "debug",
    RECONCILE_INTERVAL: "3600",
    ...opts.env,
  };
}

export function captureLogger(onLog?: (line: Record<string, unknown>) => void): { log: Logger; logs: string[] } {
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      const text = chunk.toString();
      for (const line of text.split("\n").filter(Boolean)) {
        logs.push(line);
        if (onLog) onLog(JSON.parse(line) as Record<string, unknown>);
      }
      done();
    },
  });
  return { log: createLogger({ level: "debug", destination }), logs };
}

export async function startWorld(opts: WorldOptions = {}): Promise<World> {
  const twins = await startTwins(opts);
  const webhookSecret = randomBytes(20).toString("hex");
  const config = loadConfig(serviceEnv(twins, webhookSecret, opts));
  const { log, logs } = captureLogger(opts.onLog);
  let service: RunningService;
  try {
    service = await startService(config, log);
  } catch (err) {
    await closeTwins(twins);
    throw err;
  }
  // An App's webhook is the App's own (its deliveries are listed under /app/hook/deliveries).
  const appId = config.github.auth.kind === "app" ? config.github.auth.appId : undefined;
  twins.github.addWebhook({ url: `${service.url}/webhook`, secret: webhookSecret, appId, ...opts.hook });
  const world: World = {
    ...twins,
    service,
    config,
    webhookSecret,
    logs,
    log,
    close() {
      // A test may have replaced the service (restart); close whichever runs now. Once.
      closing ??= (async () => {
        await world.service.close();
        await closeTwins(twins);
      })();
      return closing;
    },
  };
  let closing: Promise<void> | undefined;
  return world;
}

/** Polls `check` until it returns true (tests wait on outcomes, never on fixed sleeps). */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 40_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for: ${what}`);
}
