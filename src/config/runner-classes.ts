import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parse } from "yaml";
import { labelKey, labelSet, type RunnerClass } from "../core/runner-class.js";

// RUNNER_CLASSES_FILE: the runner classes, each a label set, the parameterized Nomad job it
// dispatches and its caps. Without the file, one class comes from the variables used before
// classes existed, with the runner names, Nomad job and Vault paths they always had.

export type JobVarValue = string | number | boolean;

export interface RunnerClassConfig extends RunnerClass {
  /** Registered (or updated) under `job` at start from this file; undefined: the operator registers it. */
  jobFile?: string;
  /** HCL2 variables for `jobFile` (job_vars). */
  jobVars: Record<string, JobVarValue>;
  /** An HCL2 variables file for `jobFile` (NOMAD_RUNNER_JOB_VARS_FILE, the environment's class only). */
  varsFile?: string;
}

/** What the environment says about classes. */
export interface ClassEnv {
  /** RUNNER_CLASSES_FILE */
  file?: string;
  /** RUNNER_NAME_PREFIX */
  namePrefix: string;
  /** Set explicitly (not defaulted): these belong in the classes file when there is one. */
  explicit: { RUNNER_LABELS?: string; NOMAD_RUNNER_JOB?: string; NOMAD_RUNNER_JOB_FILE?: string; NOMAD_RUNNER_JOB_VARS_FILE?: string };
  /** The environment's one class, when there is no file. */
  labels: string[];
  job: string;
  jobFile: string;
  varsFile?: string;
  registerRunnerJob: boolean;
}

const KEYS = ["name", "labels", "job", "job_file", "job_vars", "max_runners", "max_runners_per_repo", "min_idle", "idle_ttl"];

/** A pool runner idle this long is replaced by a fresh one (current image, fresh registration). */
const DEFAULT_IDLE_TTL_S = 3600;
const NAME = /^[a-z0-9][a-z0-9-]*$/;
const JOB_ID = /^[a-zA-Z0-9_-]+$/;
/** GitHub allows runner names of 64 characters; a job id has at most 18 digits. */
const RUNNER_NAME_MAX = 64;
const JOB_ID_DIGITS = 18;
const UNLIMITED = Number.POSITIVE_INFINITY;

/** The runner classes; every problem found is appended to `problems`, one line each. */
export function runnerClasses(env: ClassEnv, problems: string[], read: (path: string) => string = (p) => readFileSync(p, "utf8")): RunnerClassConfig[] {
  if (env.file === undefined) {
    if (env.labels.length === 0) problems.push("RUNNER_LABELS must name at least one label");
    const jobFile = env.registerRunnerJob ? env.jobFile : undefined;
    const limits = { maxRunners: UNLIMITED, maxRunnersPerRepo: UNLIMITED };
    return [
      { name: "default", labels: labelSet(env.labels), job: env.job, runnerPrefix: env.namePrefix, limits, jobFile, jobVars: {}, varsFile: env.varsFile },
    ];
  }
  for (const [name, value] of Object.entries(env.explicit)) {
    if (value !== undefined) problems.push(`${name} is set, but RUNNER_CLASSES_FILE defines the runner classes: move it into the file (or unset it)`);
  }
  let text: string;
  try {
    text = read(env.file);
  } catch (err) {
    problems.push(`RUNNER_CLASSES_FILE ${env.file} cannot be read: ${(err as Error).message}`);
    return [];
  }
  return parseRunnerClasses(text, env, problems, read);
}

/** Parses and checks the classes file's text (YAML; JSON is YAML too). */
export function parseRunnerClasses(
  text: string,
  env: Pick<ClassEnv, "file" | "namePrefix" | "registerRunnerJob">,
  problems: string[],
  read: (path: string) => string,
): RunnerClassConfig[] {
  const where = `RUNNER_CLASSES_FILE ${env.file ?? ""}`.trim();
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    problems.push(`${where} is not valid YAML: ${(err as Error).message.split("\n")[0]}`);
    return [];
  }
  if (!isRecord(doc) || !Array.isArray(doc.classes) || doc.classes.length === 0) {
    problems.push(`${where} must have a non-empty list "classes"`);
    return [];
  }
  for (const key of Object.keys(doc)) if (key !== "classes") problems.push(`${where}: unknown key "${key}" (only "classes")`);

  const classes: RunnerClassConfig[] = [];
  const names = new Set<string>();
  const labelSets = new Map<string, string>();
  const jobs = new Map<string, string>();
  doc.classes.forEach((raw: unknown, i: number) => {
    const at = `${where} classes[${i}]${isRecord(raw) && typeof raw.name === "string" ? ` (${raw.name})` : ""}`;
    const problem = (what: string) => problems.push(`${at}: ${what}`);
    if (!isRecord(raw)) return problem("must be a mapping with name, labels and job");
    for (const key of Object.keys(raw)) if (!KEYS.includes(key)) problem(`unknown key "${key}" (known: ${KEYS.join(", ")})`);

    const name = typeof raw.name === "string" ? raw.name : "";
    const runnerPrefix = `${env.namePrefix}-${name}`;
    if (!NAME.test(name)) problem("name must be lower-case letters, digits and dashes ([a-z0-9-]), starting with a letter or digit");
    else if (runnerPrefix.length + 1 + JOB_ID_DIGITS > RUNNER_NAME_MAX)
      problem(`name is too long: runner names "${runnerPrefix}-<job id>" must fit GitHub's ${RUNNER_NAME_MAX} characters`);
    else if (names.has(name)) problem(`duplicate name "${name}"`);
    names.add(name);

    const labels =
      Array.isArray(raw.labels) && raw.labels.every((l) => typeof l === "string" && l.trim() !== "") ? labelSet(raw.labels as string[]) : undefined;
    if (!labels || labels.length === 0) problem("labels must be a non-empty list of labels");
    else {
      const other = labelSets.get(labelKey(labels));
      if (other !== undefined) problem(`duplicate label set [${labels.join(", ")}] (also class ${other}): a job could not tell which class serves it`);
      labelSets.set(labelKey(labels), name);
    }

    const job = typeof raw.job === "string" ? raw.job : "";
    if (raw.job === undefined) problem("missing job (the parameterized Nomad job this class dispatches)");
    else if (!JOB_ID.test(job)) problem("job must be a plain Nomad job ID (letters, digits, - and _)");
    else if (jobs.has(job)) problem(`job ${job} is also class ${jobs.get(job)}'s: each class dispatches its own parameterized job`);
    jobs.set(job, name);

    const limit = (key: string) => {
      const v = raw[key];
      if (v === undefined) return 0;
      if (typeof v !== "number" || !Number.isInteger(v) || v < 0) problem(`${key} must be a whole number, 0 or more`);
      return typeof v === "number" ? v : 0;
    };
    const maxRunners = limit("max_runners");
    const maxRunnersPerRepo = limit("max_runners_per_repo");
    const minIdle = limit("min_idle");
    const idleTtl = raw.idle_ttl === undefined ? DEFAULT_IDLE_TTL_S : limit("idle_ttl");
    if (raw.idle_ttl !== undefined && minIdle === 0) problem("idle_ttl is set without min_idle: it applies to a warm pool's idle runners");
    if (minIdle > 0 && idleTtl < 60) problem("idle_ttl must be at least 60 (seconds): a pool would replace its runners before they start");
    if (minIdle > 0 && maxRunners > 0 && minIdle > maxRunners) problem(`min_idle ${minIdle} is above max_runners ${maxRunners}: the pool could never be full`);

    const jobVars = checkVars(raw.job_vars, problem);
    let jobFile: string | undefined;
    if (raw.job_file !== undefined) {
      if (typeof raw.job_file !== "string" || raw.job_file === "") problem("job_file must be a path");
      else {
        // Relative to the classes file, as HCL's file() is relative to its job file.
        jobFile = resolve(dirname(env.file ?? "."), raw.job_file);
        if (!env.registerRunnerJob) problem("job_file is set, but NOMAD_REGISTER_RUNNER_JOB=false: the service registers no job");
        checkJobFile(jobFile, jobVars, read, problem);
      }
    } else if (Object.keys(jobVars).length > 0) problem("job_vars needs job_file: they are variables of the job file the service registers");

    classes.push({
      name,
      labels: labels ?? [],
      job,
      runnerPrefix,
      limits: { maxRunners: maxRunners || UNLIMITED, maxRunnersPerRepo: maxRunnersPerRepo || UNLIMITED },
      ...(minIdle > 0 ? { pool: { minIdle, idleTtlMs: idleTtl * 1000 } } : {}),
      jobFile,
      jobVars,
    });
  });
  return classes;
}

function checkVars(raw: unknown, problem: (what: string) => void): Record<string, JobVarValue> {
  if (raw === undefined) return {};
  if (!isRecord(raw)) {
    problem("job_vars must be a mapping of variable names to values");
    return {};
  }
  const vars: Record<string, JobVarValue> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") vars[k] = v;
    else problem(`job_vars.${k} must be a string, number or boolean`);
  }
  return vars;
}

/** The job file must be readable and declare every variable job_vars sets (Nomad parses it at start). */
function checkJobFile(path: string, vars: Record<string, JobVarValue>, read: (path: string) => string, problem: (what: string) => void): void {
  let hcl: string;
  try {
    hcl = read(path);
  } catch (err) {
    return problem(`job_file ${path} cannot be read: ${(err as Error).message}`);
  }
  const declared = declaredVariables(hcl);
  if (!/\bjob\s+"[^"]*"\s*\{/.test(hcl)) problem(`job_file ${path} has no job block`);
  for (const k of Object.keys(vars)) if (!declared.has(k)) problem(`job_vars.${k}: job_file ${path} declares no variable "${k}"`);
}

/** The names of the HCL2 `variable "<name>"` blocks of a job file. */
export function declaredVariables(hcl: string): Set<string> {
  return new Set([...hcl.matchAll(/^\s*variable\s+"([^"]+)"\s*\{/gm)].map((m) => m[1]!));
}

/** job_vars as an HCL2 variables file's text, for Nomad's /v1/jobs/parse. */
export function jobVarsText(vars: Record<string, JobVarValue>): string {
  return Object.entries(vars)
    .map(([k, v]) => `${k} = ${JSON.stringify(v)}\n`)
    .join("");
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
