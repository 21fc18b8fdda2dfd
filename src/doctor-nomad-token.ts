import type { Config } from "./config.js";
import { errorMessage } from "./core/errors.js";
import type { CheckResult } from "./doctor.js";
import type { NomadClient } from "./nomad/client.js";
import { RUNTIME_TOKEN_REGISTERS } from "./startup.js";

// How far the Nomad tokens reach, with read-only probes: one line per root cause, so a
// management token or disabled ACLs is said once instead of as every rule it implies.

const POLICY_FIX = "use a client token made from policies/nomad-dispatcher.policy.hcl (policies/README.md)";

/**
 * Rules the dispatcher never needs, each with a read the rule allows: Node.List (node:read),
 * the agent's /v1/agent/self (agent:read), Operator.SchedulerGetConfiguration (operator:read),
 * as hashicorp/nomad nomad/node_endpoint.go, command/agent/agent_endpoint.go and
 * nomad/operator_endpoint.go check them. A 200 means the token holds the rule.
 */
const UNNEEDED_RULES: Array<[rule: string, path: string]> = [
  ["node:read", "/v1/nodes"],
  ["agent:read", "/v1/agent/self"],
  ["operator:read", "/v1/operator/scheduler/configuration"],
];

type TokenKind = "acls-disabled" | "management" | "client";

interface TokenSelf {
  AccessorID: string;
  Type: string;
  Name: string;
  Policies: string[] | null;
}

/** `GET /v1/acl/token/self`: Nomad >= 1.5 answers structs.ACLsDisabledToken while ACLs are off, older ones 400. */
async function tokenKind(nomad: NomadClient): Promise<{ kind: TokenKind; token?: TokenSelf }> {
  try {
    const token = await nomad.tokenSelf();
    if (token.AccessorID === "acls-disabled") return { kind: "acls-disabled" };
    return { kind: token.Type === "management" ? "management" : "client", token };
  } catch (err) {
    if (/ACL support disabled/i.test(errorMessage(err))) return { kind: "acls-disabled" };
    throw err;
  }
}

export async function checkNomadTokens(config: Config, nomad: NomadClient, registrar: NomadClient): Promise<CheckResult[]> {
  const { kind, token } = await tokenKind(nomad);
  if (kind === "acls-disabled") {
    return [
      {
        name: "Nomad token",
        level: "warn",
        detail: `ACLs are disabled on this cluster: anyone who reaches ${config.nomad.addr} can read, dispatch and submit jobs`,
        fix: `enable ACLs (acl { enabled = true }, \`nomad acl bootstrap\`), then ${POLICY_FIX}`,
      },
    ];
  }
  if (kind === "management" || !token) {
    return [
      {
        name: "Nomad token",
        level: "fail",
        detail: `NOMAD_TOKEN is a management token${token ? ` ("${token.Name}")` : ""}: it can do anything on the cluster, replace the dispatcher's own job included`,
        fix: POLICY_FIX,
      },
    ];
  }
  const results: CheckResult[] = [
    { name: "Nomad token", level: "ok", detail: `client token "${token.Name}" with policies ${(token.Policies ?? []).join(", ") || "(none)"}` },
  ];
  const ns = config.nomad.namespace;
  const beyond = (await nomad.listNamespaces()).map((n) => n.Name).filter((name) => name !== ns);
  if (beyond.length > 0) {
    results.push({
      name: "Nomad token scope",
      level: "warn",
      detail: `the token reaches namespace(s) ${beyond.join(", ")} besides ${ns}; it needs ${ns} only`,
      fix: `drop the rules for ${beyond.join(", ")} from its policies (policies/nomad-dispatcher.policy.hcl has only ${ns})`,
    });
  }
  for (const [rule, path] of UNNEEDED_RULES) {
    if (await nomad.mayRead(path)) {
      results.push({
        name: "Nomad token scope",
        level: "warn",
        detail: `the token holds ${rule} (GET ${path} answered), which the dispatcher does not need`,
        fix: `drop the ${rule.split(":")[0]} rule from its policies`,
      });
    }
  }
  results.push(await checkRegistration(config, registrar));
  return results;
}

/** Who registers the runner job: the operator, a separate token, or (warned) the run-time token. */
async function checkRegistration(config: Config, registrar: NomadClient): Promise<CheckResult> {
  const name = "Nomad runner job registration";
  if (!config.nomad.registerRunnerJob) return { name, level: "ok", detail: "an operator step (NOMAD_REGISTER_RUNNER_JOB=false)" };
  if (!config.nomad.registerToken) {
    return { name, level: "warn", detail: RUNTIME_TOKEN_REGISTERS, fix: 'see policies/README.md, "Registering the runner job"' };
  }
  const { kind, token } = await tokenKind(registrar);
  if (kind === "management") {
    return { name, level: "warn", detail: "NOMAD_REGISTER_TOKEN is a management token", fix: "make it from policies/nomad-runner-job-admin.policy.hcl" };
  }
  return { name, level: "ok", detail: `NOMAD_REGISTER_TOKEN "${token?.Name ?? ""}" registers it; NOMAD_TOKEN only runs it` };
}

/** Runner jobs in "default" share it with whatever else runs there, and submit-job reaches all of it. */
export function checkRunnerNamespace(config: Config): CheckResult {
  const ns = config.nomad.namespace;
  if (ns !== "default") return { name: "Nomad runner namespace", level: "ok", detail: `${ns}, of the runner jobs alone` };
  return {
    name: "Nomad runner namespace",
    level: "warn",
    detail: "runner jobs run in default, shared with other jobs: the submit-job the token needs there reaches them too",
    fix: "`nomad namespace apply policies/nomad-runner-namespace.hcl`, then NOMAD_NAMESPACE=github-runners with the shipped policies",
  };
}
