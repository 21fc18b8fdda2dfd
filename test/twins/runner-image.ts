// A stand-in for the official actions runner image (ghcr.io/actions/actions-runner, built from
// actions/runner images/Dockerfile), for twins that run containers as host processes (the Nomad
// twin). It supplies what a docker task would get from the image: the user (runner, uid 1001), the
// working directory (/home/runner), the image's ENV lines, and a private copy of /home/runner
// per container with the runner's scripts: config.sh, run.sh, run-helper.sh.template, env.sh,
// safe_sleep.sh and bin/Runner.Listener (+ bin/Runner.Worker). Those are bash stand-ins
// (test/twins/runner-image/) that behave like the real ones and talk to the GitHub twin over HTTP;
// they need only bash, curl, jq, base64 and coreutils, which the real image has too.
//
// How a task runs it: cwd = the path materialize() returned (standing for /home/runner), the
// image env plus the task's own, as uid/gid 1001 (never root: config.sh and run-helper.sh refuse
// it unless RUNNER_ALLOW_RUNASROOT is set). Stop it with SIGTERM or SIGINT to run.sh (or to its
// process group): run.sh passes it on to the listener, which deletes its session and exits.

import { chmod, chown, cp, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { TwinImage } from "./contract.js";

/** The runner image's user and groups (images/Dockerfile: adduser --uid 1001 runner; groupadd docker --gid 123). */
const RUNNER_UID = 1001;
const RUNNER_GID = 1001;
const DOCKER_GID = 123;
const WORKDIR = "/home/runner";
const FILES = fileURLToPath(new URL("./runner-image/", import.meta.url));

export function actionsRunnerImage(version: string): TwinImage {
  if (!/^\d+\.\d+\.\d+$/.test(version)) throw new Error(`runner version must look like 2.336.0, got "${version}"`);
  return {
    uid: RUNNER_UID,
    gid: RUNNER_GID,
    workdir: WORKDIR,
    // images/Dockerfile: ENV DEBIAN_FRONTEND=noninteractive, RUNNER_MANUALLY_TRAP_SIG=1,
    // ACTIONS_RUNNER_PRINT_LOG_TO_STDOUT=1, ImageOS=ubuntu24; HOME is the runner user's.
    env: {
      DEBIAN_FRONTEND: "noninteractive",
      RUNNER_MANUALLY_TRAP_SIG: "1",
      ACTIONS_RUNNER_PRINT_LOG_TO_STDOUT: "1",
      ImageOS: "ubuntu24",
      HOME: WORKDIR,
    },
    materialize: (root) => materialize(root, version),
  };
}

/**
 * `<root>/home/runner` as the image has it: the directory owned by runner and chmod 777
 * (`chmod 777 /home/runner`), its content owned runner:docker (`COPY --chown=runner:docker`).
 * Ownership is applied only when running as root (a non-root caller gets its own files).
 */
async function materialize(root: string, version: string): Promise<string> {
  const home = join(root, "home");
  const workdir = join(home, "runner");
  await mkdir(workdir, { recursive: true });
  await cp(FILES, workdir, { recursive: true });
  const listener = join(workdir, "bin", "Runner.Listener");
  const script = await readFile(listener, "utf8");
  await writeFile(listener, script.replace(/^RUNNER_VERSION=.*$/m, `RUNNER_VERSION="${version}"`));
  const asRoot = process.getuid?.() === 0;
  // The container's / and /home are root's and open to everyone to walk through.
  await chmod(root, 0o755);
  await chmod(home, 0o755);
  await chmod(workdir, 0o777);
  if (asRoot) await chown(workdir, RUNNER_UID, RUNNER_GID);
  await fixModes(workdir, asRoot);
  return workdir;
}

/** What the runner package ships executable (run.sh copies the template to run-helper.sh and runs it). */
const EXECUTABLES = new Set(["config.sh", "run.sh", "run-helper.sh.template", "env.sh", "safe_sleep.sh", "bin/Runner.Listener", "bin/Runner.Worker"]);

/** Executables 755, other files 644, directories 755; owned runner:docker when we may chown. */
async function fixModes(workdir: string, asRoot: boolean, sub = ""): Promise<void> {
  for (const entry of await readdir(join(workdir, sub), { withFileTypes: true })) {
    const relative = sub === "" ? entry.name : `${sub}/${entry.name}`;
    const path = join(workdir, relative);
    if (entry.isDirectory()) {
      await chmod(path, 0o755);
      await fixModes(workdir, asRoot, relative);
    } else {
      await chmod(path, EXECUTABLES.has(relative) ? 0o755 : 0o644);
    }
    if (asRoot) await chown(path, RUNNER_UID, DOCKER_GID);
  }
}
