import type { Config } from "../config.js";
import { tlsSummary } from "./tls.js";

/**
 * The effective configuration in one log line at start, for "what is it running with?": every
 * setting that changes behaviour, and no secret (no token, webhook secret, App key, tunnel token
 * or client key: for those only whether they are set).
 */
export function configSummary(config: Config): Record<string, unknown> {
  const { github, runner, nomad, vault, reconcile, limits, tunnel } = config;
  const limit = (n: number) => (Number.isFinite(n) ? n : "none");
  return {
    listen: `${config.host}:${config.port}`,
    metricsPort: config.metricsPort ?? "off",
    github: {
      apiUrl: github.apiUrl,
      auth: github.auth.kind === "app" ? `app ${github.auth.appId}` : "token",
      webhookSecrets: github.webhookSecrets.length,
      webhookUrl: github.webhookUrl ?? "unset",
      pointsPerMinute: github.budget.pointsPerMinute,
    },
    runner: {
      classes: runner.classes.map((c) => `${c.name} [${c.labels.join(",")}] -> ${c.job}`).join("; "),
      registration: runner.registration,
      scope: runner.scope,
      namePrefix: runner.namePrefix,
    },
    allowed: { owners: config.allowedOwners.length > 0 ? config.allowedOwners.join(",") : "any", repos: config.allowedRepos.join(",") || "any" },
    nomad: {
      addr: nomad.addr,
      namespace: nomad.namespace,
      region: nomad.region ?? "default",
      registerRunnerJob: nomad.registerRunnerJob,
      registerToken: nomad.registerToken !== undefined,
      tls: nomad.addr.startsWith("https:") ? tlsSummary(nomad.tls) : "off",
    },
    vault: {
      addr: vault.addr,
      namespace: vault.namespace ?? "root",
      kv: `${vault.kvMount}/${vault.kvPrefix}`,
      runnerAddr: vault.runnerAddr,
      runnerCa: vault.runnerCaPem !== undefined,
      credentialDelivery: vault.credentialDelivery,
      requireAudit: vault.requireAudit,
      tls: vault.addr.startsWith("https:") ? tlsSummary(vault.tls) : "off",
    },
    reconcile: { intervalSeconds: reconcile.intervalSeconds, retentionSeconds: reconcile.retentionSeconds },
    limits: { maxRunners: limit(limits.maxRunners), maxRunnersPerRepo: limit(limits.maxRunnersPerRepo) },
    tunnel: tunnel.mode,
    dispatcherId: config.dispatcherId,
  };
}
