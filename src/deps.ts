import type { Config } from "./config.js";
import type { ServePolicy } from "./core/event-decision.js";
import { RunnerIndex } from "./core/runner-index.js";
import { GitHubClient } from "./github/client.js";
import type { Logger } from "./log.js";
import type { Metrics } from "./metrics.js";
import { NomadClient, type NomadClientOptions } from "./nomad/client.js";
import { NomadVariables } from "./nomad/variables.js";
import type { RunnerDeps } from "./ports/index.js";
import { VaultStore } from "./vault/client.js";

/**
 * The adapters wired to the workflows' ports: the workflows see them as RunnerDeps (narrow ports),
 * start-up checks, readiness and doctor use the rest of each client.
 */
export interface ServiceDeps extends RunnerDeps {
  github: GitHubClient;
  vault: VaultStore;
  nomad: NomadClient;
  /**
   * Registers the runner job at start: a client with NOMAD_REGISTER_TOKEN when set, so the
   * run-time token needs no registration rights; otherwise `nomad` itself.
   */
  nomadRegistrar: NomadClient;
  /** Nomad Variables with the run-time token: the replicas' shared capacity ledger. */
  variables: NomadVariables;
}

export function servePolicy(config: Config): ServePolicy {
  return {
    classes: config.runner.classes,
    allowedOwners: config.allowedOwners,
    allowedRepos: config.allowedRepos,
  };
}

export function createDeps(config: Config, log: Logger, metrics?: Metrics): ServiceDeps {
  const nomad = new NomadClient(nomadOptions(config));
  const { registerToken } = config.nomad;
  return {
    log,
    runnerIndex: new RunnerIndex(),
    github: new GitHubClient({
      onResponse: (headers) => {
        const remaining = Number(headers["x-ratelimit-remaining"]);
        if (metrics && Number.isFinite(remaining)) metrics.rateLimitRemaining.set(remaining);
      },
      auth: config.github.auth,
      budget: config.github.budget,
      apiUrl: config.github.apiUrl,
      webUrl: config.github.webUrl,
      scope: config.runner.scope,
      runnerGroupId: config.runner.groupId,
      webhooks:
        config.github.webhookUrl === undefined
          ? undefined
          : { url: config.github.webhookUrl, scopes: { orgs: config.allowedOwners, repos: config.allowedRepos } },
    }),
    vault: new VaultStore({
      addr: config.vault.addr,
      token: config.vault.token,
      namespace: config.vault.namespace,
      kvMount: config.vault.kvMount,
      kvPrefix: config.vault.kvPrefix,
      runnerJob: { namespace: config.nomad.namespace, id: config.runner.classes[0]!.job, classes: config.runner.classes },
      tls: config.vault.tls,
    }),
    nomad,
    variables: new NomadVariables(nomadOptions(config)),
    nomadRegistrar: registerToken ? new NomadClient({ ...nomadOptions(config), token: registerToken }) : nomad,
    settings: {
      classes: config.runner.classes,
      registration: config.runner.registration,
      dispatcherId: config.dispatcherId,
      runnerNamePrefix: config.runner.namePrefix,
      credentialDelivery: config.vault.credentialDelivery,
      wrapTtl: config.vault.wrapTtl,
      retentionMs: config.reconcile.retentionSeconds * 1000,
      retry: { retries: 4, minTimeoutMs: 200, maxTimeoutMs: 2_000 },
    },
  };
}

/** The run-time token's client options; the registrar differs only in its token. */
function nomadOptions(config: Config): NomadClientOptions {
  const { addr, token, namespace, region, tls } = config.nomad;
  return { addr, token, namespace, region, tls };
}
