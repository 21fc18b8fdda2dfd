import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { IS_ROOT } from "../twins/nomad-alloc-dir.js";
import { parseJobspec } from "../twins/nomad-jobspec.js";
import { parseEnvFile } from "../twins/nomad-runner.js";
import { renderTemplateFile } from "../twins/nomad-template.js";
import type { JsonObject, TwinTask, TwinTemplate } from "../twins/nomad-types.js";

// The install as a Nomad client would carry it out, without a cluster: jobs/dispatcher.nomad.hcl
// parsed with a variables file (the twin's jobspec2), its templates rendered into a task
// directory (the twin's consul-template, Vault reads answered from `secrets`), and the task's
// environment built as the client builds it. What the service then reads is that environment.

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const readRepoFile = (path: string) => readFileSync(join(ROOT, path), "utf8");

/** What `${attr.unique.network.ip-address}` is on the node the allocation lands on. */
export const NODE_IP = "10.0.0.7";
/** The token the vault block exports as VAULT_TOKEN. */
export const TASK_VAULT_TOKEN = "hvs.task-token-from-workload-identity";

export interface DispatcherSpec {
  job: JsonObject;
  task: TwinTask;
}

/** `nomad job run -var-file=<variables> jobs/dispatcher.nomad.hcl`, up to the parsed job. */
export async function parseDispatcherJob(variables: string): Promise<DispatcherSpec> {
  const job = await parseJobspec({
    hcl: readRepoFile("jobs/dispatcher.nomad.hcl"),
    variables,
    cli: { baseDir: join(ROOT, "jobs"), readFile: (path) => readFileSync(path, "utf8") },
  });
  const groups = job.TaskGroups as Array<{ Tasks: TwinTask[] }>;
  const task = groups[0]?.Tasks[0];
  if (groups.length !== 1 || groups[0]?.Tasks.length !== 1 || !task) throw new Error("expected one group with one task");
  return { job, task };
}

export interface Installed {
  /** The task's environment, container paths mapped to the task directory on this host. */
  env: Record<string, string>;
  /** Rendered files by destination (local/..., secrets/...). */
  files: Record<string, string>;
  /** The Vault paths the templates read. */
  secretPaths: string[];
}

/**
 * Renders every template into `taskDir` and builds the environment: the job's env with the
 * client's interpolation, then the env templates, then VAULT_TOKEN from the vault block.
 * `secrets` is the KV v2 config secret's data.
 */
export async function install(task: TwinTask, secrets: Record<string, string>, taskDir: string): Promise<Installed> {
  const secretPaths: string[] = [];
  const fns = {
    env: () => "",
    secret: async (path: string) => {
      secretPaths.push(path);
      return { Data: { data: secrets, metadata: { version: 1 } } };
    },
  };
  const files: Record<string, string> = {};
  const fromTemplates: Record<string, string> = {};
  for (const template of task.Templates ?? []) {
    // Only root may give a file to another user; elsewhere the owner stays the test's.
    const owned: TwinTemplate = IS_ROOT ? template : { ...template, Uid: undefined, Gid: undefined };
    const text = await renderTemplateFile(owned, taskDir, fns);
    files[template.DestPath] = await readFile(join(taskDir, template.DestPath), "utf8");
    if (template.Envvars === true) Object.assign(fromTemplates, parseEnvFile(text));
  }
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(task.Env ?? {})) env[key] = value.replaceAll("${attr.unique.network.ip-address}", NODE_IP);
  Object.assign(env, fromTemplates, { VAULT_TOKEN: TASK_VAULT_TOKEN });
  // The docker driver mounts the task's local/ and secrets/ at /local and /secrets.
  for (const [key, value] of Object.entries(env)) env[key] = value.replace(/^\/(local|secrets)\//, `${taskDir}/$1/`);
  return { env, files, secretPaths: [...new Set(secretPaths)] };
}
