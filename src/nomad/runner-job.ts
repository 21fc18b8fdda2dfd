import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { NomadClient } from "./client.js";
import type { NomadJob } from "./types.js";

/** Job meta key holding the hash of what we registered, to detect a changed job file. */
export const SPEC_HASH_META = "nomad_gha_dispatcher_spec";

export interface RunnerJobSource {
  jobId: string;
  file: string;
  varsFile?: string;
  /** VAULT_ADDR as the runner allocations reach it. */
  vaultAddr: string;
}

/**
 * HCL2 variable-file content for /v1/jobs/parse: the Vault address we know, plus the operator's
 * own variables file (which wins when it sets vault_addr itself).
 */
export function runnerJobVariables(vaultAddr: string, operatorVars: string): string {
  const ours = /^\s*vault_addr\s*=/m.test(operatorVars) ? "" : `vault_addr = ${JSON.stringify(vaultAddr)}\n`;
  return `${ours}${operatorVars}`;
}

export function specHash(jobId: string, hcl: string, variables: string): string {
  return createHash("sha256").update(`${jobId}\0${hcl}\0${variables}`).digest("hex").slice(0, 16);
}

/** Checks the parsed job is the parameterized runner job the dispatch path relies on. */
export function runnerJobProblems(job: NomadJob): string[] {
  const problems: string[] = [];
  const required = job.ParameterizedJob?.MetaRequired ?? [];
  if (!job.ParameterizedJob) problems.push("job is not parameterized");
  for (const key of ["runner_name", "credential_wrap_token", "github_job_id"]) {
    if (job.ParameterizedJob && !required.includes(key) && !(job.ParameterizedJob.MetaOptional ?? []).includes(key)) {
      problems.push(`parameterized block does not accept meta "${key}"`);
    }
  }
  const tasks = job.TaskGroups?.flatMap((g) => g.Tasks ?? []) ?? [];
  if (!tasks.some((t) => t.Lifecycle?.Hook === "prestart")) problems.push("no prestart task to fetch the credential");
  if (!tasks.some((t) => !t.Lifecycle)) problems.push("no main task to run the runner");
  return problems;
}

/**
 * Registers the runner job when it is missing or its source changed; an unchanged job is left
 * alone so that restarts and replicas do not churn job versions.
 */
export async function ensureRunnerJob(nomad: NomadClient, source: RunnerJobSource): Promise<"registered" | "unchanged"> {
  const hcl = await readFile(source.file, "utf8");
  const operatorVars = source.varsFile ? await readFile(source.varsFile, "utf8") : "";
  const variables = runnerJobVariables(source.vaultAddr, operatorVars);
  const hash = specHash(source.jobId, hcl, variables);

  const existing = await nomad.readJob(source.jobId);
  if (existing && !existing.Stop && existing.Meta?.[SPEC_HASH_META] === hash) return "unchanged";

  const job = await nomad.parseJob(hcl, variables);
  const problems = runnerJobProblems(job);
  if (problems.length > 0) throw new Error(`${source.file} is not a usable runner job: ${problems.join("; ")}`);
  job.ID = source.jobId;
  job.Name = source.jobId;
  job.Namespace = nomad.namespace;
  job.Meta = { ...(job.Meta ?? {}), [SPEC_HASH_META]: hash };
  await nomad.registerJob(job);
  return "registered";
}
