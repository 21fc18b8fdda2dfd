// The runner job's `docker` variable rendered by the Nomad twin's parser, as the dispatcher has
// Nomad parse it at start (POST /v1/jobs/parse with the class's job_vars, then canonicalized and
// validated as a registration is): "none" is the job without Docker, exactly; "dind" adds a
// privileged docker:dind sidecar the runner reaches over TLS; "host-socket" gives the runner the
// client's socket; anything else is refused by the variable's validation block.

import { spawn, spawnSync } from "node:child_process";
import { chownSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:https";
import { createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runnerJobProblems } from "../../src/nomad/runner-job.js";
import type { NomadJob } from "../../src/nomad/types.js";
import { canonicalizeJob, validateJob } from "../twins/nomad-canonical.js";
import { IS_ROOT, RUNNER_JOB_HCL, RUNNER_UID } from "../twins/nomad-fakes.js";
import { parseJobspec } from "../twins/nomad-jobspec.js";
import type { TwinNomadJob, TwinTask } from "../twins/nomad-types.js";

const RUN_RUNNER = fileURLToPath(new URL("../../jobs/runner/run-runner.sh", import.meta.url));

async function render(vars = ""): Promise<TwinNomadJob> {
  const job = canonicalizeJob(await parseJobspec({ hcl: RUNNER_JOB_HCL, variables: `vault_addr = "https://vault:8200"\n${vars}` }));
  expect(validateJob(job)).toBeUndefined();
  // The dispatcher's own check of a runner job, as start-up runs it before registering.
  expect(runnerJobProblems(job as unknown as NomadJob, "workload-identity")).toEqual([]);
  return job;
}

const tasksOf = (job: TwinNomadJob): Record<string, TwinTask> => Object.fromEntries(job.TaskGroups[0]!.Tasks.map((t) => [t.Name, t]));

/**
 * hashicorp/nomad drivers/docker/driver.go (containerBinds): with the client's docker volumes
 * disabled (its default), a `volumes` entry must resolve inside the allocation directory; a
 * relative source is relative to the task's directory (<alloc dir>/<task>).
 */
function insideAllocDir(task: string, bind: string): boolean {
  const source = bind.split(":")[0]!;
  if (source.startsWith("/")) return false;
  const resolved = posix.normalize(posix.join("/allocs/a1", task, source));
  return resolved === "/allocs/a1" || resolved.startsWith("/allocs/a1/");
}

describe('docker = "none" (the default)', () => {
  it("renders the job without Docker: three tasks, no network block, its own disk size, no Docker settings", async () => {
    const job = await render();
    expect(await render('docker = "none"\n')).toEqual(job);
    const group = job.TaskGroups[0]!;
    expect(group.Tasks.map((t) => t.Name)).toEqual(["configure-runner", "runner", "scrub"]);
    expect(group.Networks ?? null).toBeNull();
    expect(group.EphemeralDisk.SizeMB).toBe(300);
    const { runner } = tasksOf(job);
    expect(runner!.Config).toEqual({
      image: expect.stringMatching(/^ghcr\.io\/actions\/actions-runner:/) as string,
      entrypoint: ["/bin/bash"],
      args: ["${NOMAD_TASK_DIR}/run-runner.sh"],
    });
    expect(runner!.Env).toBeNull();
    const settings = group.Tasks.map((t) => JSON.stringify([t.Config, t.Env]));
    for (const text of settings) expect(text).not.toMatch(/privileged|docker\.sock|DOCKER_/);
  });
});

describe('docker = "dind"', () => {
  it("adds a privileged docker:dind prestart sidecar in a bridge network shared with the runner; the other tasks are unchanged", async () => {
    const none = tasksOf(await render());
    const job = await render('docker = "dind"\n');
    const group = job.TaskGroups[0]!;
    const tasks = tasksOf(job);
    expect(Object.keys(tasks).sort()).toEqual(["configure-runner", "docker", "runner", "scrub"]);
    expect(group.Networks).toEqual([expect.objectContaining({ Mode: "bridge" })]);
    const docker = tasks.docker!;
    expect(docker.Driver).toBe("docker");
    expect(docker.Lifecycle).toEqual({ Hook: "prestart", Sidecar: true });
    expect(docker.Config).toMatchObject({ image: expect.stringMatching(/^docker:\d+\.\d+\.\d+-dind$/) as string, privileged: true });
    expect(docker.Resources).toMatchObject({ CPU: 2000, MemoryMB: 4096 });
    expect(group.EphemeralDisk.SizeMB).toBe(20480);
    expect(tasks["configure-runner"]).toEqual(none["configure-runner"]);
    expect(tasks.scrub).toEqual(none.scrub);
    expect({ ...tasks.runner, Env: null }).toEqual(none.runner);
  });

  it("shares the daemon's TLS client certificate with the runner through the allocation directory, and points the runner at the daemon", async () => {
    const { docker, runner } = tasksOf(await render('docker = "dind"\n'));
    const certDir = docker!.Env?.DOCKER_TLS_CERTDIR;
    expect(certDir).toBe("${NOMAD_ALLOC_DIR}/docker-certs");
    // docker-library/docker dind/dockerd-entrypoint.sh writes the client's ca.pem, cert.pem and key.pem to <certdir>/client.
    expect(runner!.Env).toEqual({
      RUNNER_DOCKER: "dind",
      DOCKER_HOST: "tcp://127.0.0.1:2376",
      DOCKER_TLS_VERIFY: "1",
      DOCKER_CERT_PATH: `${certDir}/client`,
      RUNNER_DOCKER_SHARED_AT: "/home/runner",
    });
    // run-runner.sh runs the runner from there, so its _work and externals are where the daemon sees them.
    expect(docker!.Config?.volumes).toContain(`../alloc:${runner!.Env?.RUNNER_DOCKER_SHARED_AT}`);
  });

  it("keeps the daemon's storage in its own task directory and mounts nothing from outside the allocation (no volumes.enabled needed)", async () => {
    const { docker } = tasksOf(await render('docker = "dind"\n'));
    const volumes = docker!.Config?.volumes as string[];
    expect(volumes).toContain("local/docker:/var/lib/docker");
    // The runner's working directory, where run-runner.sh puts _work and externals: the same paths for runner and daemon.
    expect(volumes).toContain("../alloc:/home/runner");
    for (const bind of volumes) expect(insideAllocDir("docker", bind), bind).toBe(true);
    expect(posix.normalize(posix.join("/allocs/a1/docker", "local/docker"))).toBe("/allocs/a1/docker/local/docker");
  });

  it("takes the sidecar's image, resources and disk from the class's job_vars", async () => {
    const job = await render('docker = "dind"\ndind_image = "registry.example/docker:29.4.3-dind"\ndind_cpu = 4000\ndind_memory = 8192\ndind_disk = 40000\n');
    const { docker } = tasksOf(job);
    expect(docker!.Config).toMatchObject({ image: "registry.example/docker:29.4.3-dind" });
    expect(docker!.Resources).toMatchObject({ CPU: 4000, MemoryMB: 8192 });
    expect(job.TaskGroups[0]!.EphemeralDisk.SizeMB).toBe(40000);
  });
});

describe('docker = "host-socket"', () => {
  it("mounts the client's socket into the runner and nothing else: no sidecar, nothing privileged", async () => {
    const none = tasksOf(await render());
    const job = await render('docker = "host-socket"\ndocker_socket_gid = "998"\n');
    const tasks = tasksOf(job);
    expect(Object.keys(tasks)).toEqual(["configure-runner", "runner", "scrub"]);
    expect(job.TaskGroups[0]!.Networks ?? null).toBeNull();
    expect(tasks.runner!.Config).toEqual({ ...none.runner!.Config, volumes: ["/var/run/docker.sock:/var/run/docker.sock"], group_add: ["998"] });
    expect(tasks.runner!.Env).toEqual({ RUNNER_DOCKER: "host-socket", DOCKER_HOST: "unix:///var/run/docker.sock" });
    for (const task of Object.values(tasks)) expect(task.Config?.privileged).toBeUndefined();
    expect(tasksOf(await render('docker = "host-socket"\n')).runner!.Config).toMatchObject({ group_add: [] });
  });
});

describe("any other docker value", () => {
  it("is refused by the variable's validation, as Nomad's parse refuses it (jobspec2/types.variables.go validateValue)", async () => {
    await expect(render('docker = "true"\n')).rejects.toThrow(
      /Invalid value for varfile variable; The docker variable must be "none", "dind" or "host-socket"/,
    );
  });
});

// run-runner.sh with Docker, run under bash as the image's user (uid 1001, when the test runs as
// root, as the twin client's tests do): the settings files taken as without Docker, then
// (dind) _work and a copy of externals in the shared directory, and the runner started only once
// the daemon answers /_ping over TLS with the client certificate the docker task generated.
describe("run-runner.sh with a Docker daemon", () => {
  const openssl = (dir: string, ...args: string[]) => {
    const run = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
    if (run.status !== 0) throw new Error(run.stderr);
  };

  /** What the docker task leaves in DOCKER_TLS_CERTDIR: ca/, server/ and client/ (ca.pem, cert.pem, key.pem). */
  function certificates(dir: string): void {
    for (const sub of ["ca", "server", "client"]) mkdirSync(join(dir, sub));
    openssl(dir, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca/key.pem", "-out", "ca/cert.pem", "-days", "1", "-subj", "/CN=test CA");
    for (const [sub, ext] of [
      ["server", "subjectAltName=IP:127.0.0.1"],
      ["client", "extendedKeyUsage=clientAuth"],
    ] as const) {
      openssl(dir, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", `${sub}/key.pem`, "-out", `${sub}/csr.pem`, "-subj", `/CN=${sub}`);
      writeFileSync(join(dir, sub, "ext.cnf"), `${ext}\n`);
      openssl(
        dir,
        "x509",
        "-req",
        "-in",
        `${sub}/csr.pem`,
        "-CA",
        "ca/cert.pem",
        "-CAkey",
        "ca/key.pem",
        "-CAcreateserial",
        "-out",
        `${sub}/cert.pem`,
        "-days",
        "1",
        "-extfile",
        `${sub}/ext.cnf`,
      );
      writeFileSync(join(dir, sub, "ca.pem"), readFileSync(join(dir, "ca/cert.pem")));
    }
  }

  /** A runner's working directory and allocation, as the prestart leaves them. */
  function layout(withCertificates = false): { home: string; alloc: string; certs: string } {
    const root = mkdtempSync(join(tmpdir(), "run-runner-"));
    const [home, alloc, certs] = ["home", "alloc", "alloc/docker-certs"].map((d) => join(root, d)) as [string, string, string];
    mkdirSync(join(alloc, "runner"), { recursive: true });
    for (const name of [".runner", ".credentials", ".credentials_rsaparams"]) writeFileSync(join(alloc, "runner", name), name);
    mkdirSync(join(home, "externals", "node20", "bin"), { recursive: true });
    writeFileSync(join(home, "externals", "node20", "bin", "node"), "node");
    writeFileSync(join(home, "run.sh"), '#!/usr/bin/env bash\necho "run.sh in $PWD, _work -> $(readlink _work)"\n', { mode: 0o755 });
    mkdirSync(certs);
    if (withCertificates) certificates(certs);
    return { home, alloc, certs };
  }

  function chownTree(path: string, id: number): void {
    chownSync(path, id, id);
    if (!lstatSync(path).isDirectory()) return;
    for (const name of readdirSync(path)) chownTree(join(path, name), id);
  }

  function runScript(home: string, env: Record<string, string>): Promise<{ code: number | null; out: string; err: string }> {
    return new Promise((resolve) => {
      // As Nomad runs it: the rendered template (0644) with bash, as the image's user when the test can switch users.
      const script = join(home, "..", "run-runner.sh");
      copyFileSync(RUN_RUNNER, script);
      if (IS_ROOT) chownTree(join(home, ".."), RUNNER_UID);
      const user = IS_ROOT ? { uid: RUNNER_UID, gid: RUNNER_UID } : {};
      const child = spawn("bash", [script], { cwd: home, env: { PATH: process.env.PATH ?? "", ...env }, ...user });
      let out = "";
      let err = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      child.stderr.on("data", (d: Buffer) => (err += d.toString()));
      child.on("close", (code) => resolve({ code, out, err }));
    });
  }

  /** The daemon's TLS endpoint: only a client certificate of its CA gets an answer. */
  async function daemon(certs: string, port: number): Promise<{ pings: number; close: () => void }> {
    const state = { pings: 0 };
    const server = createServer(
      {
        key: readFileSync(join(certs, "server/key.pem")),
        cert: readFileSync(join(certs, "server/cert.pem")),
        ca: readFileSync(join(certs, "server/ca.pem")),
        requestCert: true,
        rejectUnauthorized: true,
      },
      (req, res) => {
        if (req.url === "/_ping") state.pings += 1;
        res.end(req.url === "/_ping" ? "OK" : "");
      },
    );
    await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
    return {
      get pings() {
        return state.pings;
      },
      close: () => server.close(),
    };
  }

  const freePort = () =>
    new Promise<number>((resolve) => {
      const probe = createNetServer().listen(0, "127.0.0.1", () => {
        const { port } = probe.address() as { port: number };
        probe.close(() => resolve(port));
      });
    });

  const dindEnv = (l: { home: string; alloc: string; certs: string }, port: number) => ({
    NOMAD_ALLOC_DIR: l.alloc,
    RUNNER_DOCKER: "dind",
    DOCKER_HOST: `tcp://127.0.0.1:${port}`,
    DOCKER_TLS_VERIFY: "1",
    DOCKER_CERT_PATH: join(l.certs, "client"),
    RUNNER_DOCKER_SHARED_AT: l.home,
  });

  it("dind: puts _work and externals in the shared directory and starts the runner once the daemon answers over TLS", async () => {
    const l = layout(true);
    // The daemon comes up a moment after the runner task starts (it generates its certificates first).
    const port = await freePort();
    const result = runScript(l.home, dindEnv(l, port));
    const server = await new Promise<Awaited<ReturnType<typeof daemon>>>((resolve) => setTimeout(() => resolve(daemon(l.certs, port)), 1500));
    const { code, out, err } = await result;
    server.close();
    expect(err).toBe("");
    expect(code).toBe(0);
    expect(out).toBe(`run.sh in ${l.home}, _work -> ${l.alloc}/_work\n`);
    expect(server.pings).toBeGreaterThan(0);
    expect(readFileSync(join(l.alloc, "externals", "node20", "bin", "node"), "utf8")).toBe("node");
    expect(readFileSync(join(l.home, ".credentials"), "utf8")).toBe(".credentials");
    expect(existsSync(join(l.alloc, "runner"))).toBe(false);
  });

  it("dind: gives up with one line when no daemon answers, and never starts the runner", async () => {
    const l = layout();
    const { code, out, err } = await runScript(l.home, { ...dindEnv(l, 9), RUNNER_DOCKER_WAIT_SECONDS: "1" });
    expect(code).toBe(1);
    expect(out).toBe("");
    expect(err).toBe("runner: no Docker daemon answers at tcp://127.0.0.1:9 after 1 s (see the docker task's log)\n");
  });

  it("dind: refuses a runner image whose working directory is not where the docker task sees the shared directory", async () => {
    const l = layout();
    const { code, err } = await runScript(l.home, { ...dindEnv(l, 9), RUNNER_DOCKER_SHARED_AT: "/home/runner" });
    expect(code).toBe(1);
    expect(err).toBe(`runner: docker = "dind" needs the runner in /home/runner (the docker task sees the shared directory there), not ${l.home}\n`);
  });

  it("host-socket: names the fix when the runner's user may not use the socket", async () => {
    const l = layout();
    const { code, err } = await runScript(l.home, {
      NOMAD_ALLOC_DIR: l.alloc,
      RUNNER_DOCKER: "host-socket",
      DOCKER_HOST: `unix://${join(l.home, "no-such.sock")}`,
      RUNNER_DOCKER_WAIT_SECONDS: "1",
    });
    expect(code).toBe(1);
    expect(err).toMatch(
      /^runner: no Docker daemon answers at unix:\/\/.*no-such\.sock after 1 s \(uid \d+ must be able to use the socket: set the job variable docker_socket_gid to its group id\)\n$/,
    );
  });
});
