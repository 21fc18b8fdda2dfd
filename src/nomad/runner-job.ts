import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import type { CredentialDelivery } from "../config.js";
import { declaredVariables, undeclaredVariables } from "../core/hcl-variables.js";
import type { NomadClient } from "./client.js";
import type { NomadJob } from "./types.js";

/** Job meta key holding the hash of what we registered, to detect a changed job file. */
export const SPEC_HASH_META = "nomad_gha_dispatcher_spec";

export interface RunnerJobSource {
  jobId: string;
  file: string;
  varsFile?: string;
  /** More HCL2 variables (a class's job_vars), after the file's. */
  vars?: string;
  /** What the runner allocations need to reach Vault. */
  vault: RunnerVault;
}

export interface RunnerVault {
  /** VAULT_ADDR as the runner allocations reach it. */
  addr: string;
  /** Vault Enterprise namespace of the runner secrets, if any. */
  namespace?: string;
  kvMount: string;
  kvPrefix: string;
  credentialDelivery: CredentialDelivery;
  /** PEM the runners verify Vault's certificate with (job variable vault_ca_pem). */
  caPem?: string;
}

/**
 * HCL2 variable-file content for /v1/jobs/parse: what we know of Vault, plus the operator's own
 * variables file (which wins for any variable it sets itself). The wrapping-token fallback turns
 * the prestart's vault block off (`vault_role = ""`); workload identity keeps the job's role.
 */
export function runnerJobVariables(vault: RunnerVault, operatorVars: string): string {
  const ours: Record<string, string | undefined> = {
    vault_addr: vault.addr,
    vault_namespace: vault.namespace,
    vault_kv_mount: vault.kvMount,
    vault_kv_prefix: vault.kvPrefix,
    vault_role: vault.credentialDelivery === "wrap" ? "" : undefined,
    vault_ca_pem: vault.caPem,
  };
  const lines = Object.entries(ours)
    .filter(([name, value]) => value !== undefined && !new RegExp(`^\\s*${name}\\s*=`, "m").test(operatorVars))
    .map(([name, value]) => `${name} = ${JSON.stringify(value)}\n`);
  return `${lines.join("")}${operatorVars}`;
}

/**
 * The job file with every `file("<path>")` replaced by the file's text, read as the CLI reads it
 * (relative to the job file's directory). `nomad job run` evaluates file() itself, but Nomad's
 * `/v1/jobs/parse` parses with filesystem functions disabled (hashicorp/nomad
 * command/agent/job_endpoint.go, AllowFS: false), so the dispatcher sends the text instead.
 */
export async function inlineFiles(hcl: string, jobFile: string): Promise<string> {
  const calls = [...hcl.matchAll(/\bfile\(\s*"([^"\\]+)"\s*\)/g)];
  let out = hcl;
  for (const [call, path = ""] of calls) {
    const text = await readFile(resolve(dirname(jobFile), path), "utf8");
    // A function, not a string: `$` sequences in a replacement string would be interpreted.
    out = out.replace(call, () => hclString(text));
  }
  // Any other file() call (a computed path) is left for Nomad, which refuses it by name.
  return out;
}

/** A quoted HCL string whose value is exactly `text`: no interpolation, no directives. */
export function hclString(text: string): string {
  let out = '"';
  for (const ch of text) {
    if (ch === '"' || ch === "\\") out += `\\${ch}`;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (ch < " ") out += `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`;
    else out += ch;
  }
  // `$${` and `%%{` are HCL's escapes for a literal `${` and `%{`. Replacement functions, not
  // strings: in a replacement string `$$` stands for one `$`, which would undo the escape.
  return `${out.replace(/\$\{/g, () => "$${").replace(/%\{/g, () => "%%{")}"`;
}

/**
 * Variables the operator's file sets that the job does not declare: Nomad's HTTP parse ignores
 * them without a word, so a misspelt `imgae = ...` would register the default image.
 */
export function varsFileProblem(jobHcl: string, varsHcl: string, varsFile: string): string | undefined {
  const unknown = undeclaredVariables(jobHcl, varsHcl);
  if (unknown.length === 0) return undefined;
  return `${varsFile} sets ${unknown.map((n) => `"${n}"`).join(", ")}, which the runner job does not declare (Nomad would ignore it); it declares ${declaredVariables(jobHcl).join(", ")}`;
}

export function specHash(jobId: string, hcl: string, variables: string): string {
  return createHash("sha256").update(`${jobId}\0${hcl}\0${variables}`).digest("hex").slice(0, 16);
}

/**
 * Checks the job is the parameterized runner job the dispatch path relies on, delivering
 * credentials the way the dispatcher is configured to: a dispatch without a wrapping token would
 * leave a prestart without a vault block nothing to read the credential with, and a wrapping
 * token handed to a job that logs in by itself would sit in the meta for nothing.
 */
export function runnerJobProblems(job: NomadJob, delivery: CredentialDelivery): string[] {
  const problems: string[] = [];
  const required = job.ParameterizedJob?.MetaRequired ?? [];
  const accepted = [...required, ...(job.ParameterizedJob?.MetaOptional ?? [])];
  if (!job.ParameterizedJob) problems.push("job is not parameterized");
  const keys = ["runner_name", "github_job_id", ...(delivery === "wrap" ? ["credential_wrap_token"] : [])];
  for (const key of keys) {
    if (job.ParameterizedJob && !accepted.includes(key)) problems.push(`parameterized block does not accept meta "${key}"`);
  }
  if (delivery === "workload-identity" && required.includes("credential_wrap_token")) {
    problems.push('meta "credential_wrap_token" is required, but RUNNER_CREDENTIAL_DELIVERY=workload-identity never sends one');
  }
  const tasks = job.TaskGroups?.flatMap((g) => g.Tasks ?? []) ?? [];
  const prestart = tasks.filter((t) => t.Lifecycle?.Hook === "prestart");
  if (prestart.length === 0) problems.push("no prestart task to fetch the credential");
  if (!tasks.some((t) => !t.Lifecycle)) problems.push("no main task to run the runner");
  const withVault = prestart.some((t) => t.Vault);
  if (prestart.length > 0 && delivery === "workload-identity" && !withVault) {
    problems.push(
      "its prestart task has no vault block, which RUNNER_CREDENTIAL_DELIVERY=workload-identity needs (set the job variable vault_role, or use RUNNER_CREDENTIAL_DELIVERY=wrap)",
    );
  }
  if (delivery === "wrap" && withVault) {
    problems.push(
      'its prestart task has a vault block, but RUNNER_CREDENTIAL_DELIVERY=wrap sends a wrapping token instead (set the job variable vault_role = "")',
    );
  }
  // Workflow code runs in the main task: a Vault token there would outlive and outreach its runner.
  for (const task of tasks.filter((t) => !t.Lifecycle && t.Vault))
    problems.push(`main task "${task.Name}" has a vault block: workflow code could use its Vault token`);
  return problems;
}

/** The job file as Nomad's parser gets it (files inlined) and its variables. */
async function runnerJobText(source: RunnerJobSource): Promise<{ hcl: string; variables: string }> {
  const hcl = await inlineFiles(await readFile(source.file, "utf8"), source.file);
  const fileVars = source.varsFile ? await readFile(source.varsFile, "utf8") : "";
  // Nomad's parse ignores a variable the job does not declare: a misspelt one would silently not apply.
  const misspelt = source.varsFile ? varsFileProblem(hcl, fileVars, source.varsFile) : undefined;
  if (misspelt) throw new Error(misspelt);
  return { hcl, variables: runnerJobVariables(source.vault, fileVars + (source.vars ?? "")) };
}

/** The job Nomad parses from the source, without registering it (doctor). */
export async function parsedRunnerJob(nomad: Pick<NomadClient, "parseJob">, source: RunnerJobSource): Promise<NomadJob> {
  const { hcl, variables } = await runnerJobText(source);
  return nomad.parseJob(hcl, variables);
}

/**
 * Registers the runner job when it is missing or its source changed; an unchanged job is left
 * alone so that restarts and replicas do not churn job versions.
 */
export async function ensureRunnerJob(nomad: NomadClient, source: RunnerJobSource): Promise<"registered" | "unchanged"> {
  const { hcl, variables } = await runnerJobText(source);
  const hash = specHash(source.jobId, hcl, variables);

  const existing = await nomad.readJob(source.jobId);
  if (existing && !existing.Stop && existing.Meta?.[SPEC_HASH_META] === hash) return "unchanged";

  const job = await nomad.parseJob(hcl, variables);
  const problems = runnerJobProblems(job, source.vault.credentialDelivery);
  if (problems.length > 0) throw new Error(`${source.file} is not a usable runner job: ${problems.join("; ")}`);
  job.ID = source.jobId;
  job.Name = source.jobId;
  job.Namespace = nomad.namespace;
  job.Meta = { ...(job.Meta ?? {}), [SPEC_HASH_META]: hash };
  await nomad.registerJob(job);
  return "registered";
}
