import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BUNDLED_RUNNER_JOB_FILE } from "../../src/config.js";
import { scratchDir } from "../harness/fixtures.js";
import { startTestWorld } from "../harness/test-world.js";
import { eventually, type World } from "../harness/world.js";

// Issue 14 (1) on the twins: two runner classes, each dispatching its own parameterized job
// registered from the bundled job file with its own variables; a job gets a runner of the class
// of exactly its labels, registered with exactly that class's labels; a job of no class is not
// ours; a class's max_runners holds while the other class is served.

const SMALL = ["self-hosted", "nomad"];
const LARGE = ["self-hosted", "nomad", "large"];

function classesFile(): string {
  const file = join(scratchDir("ngd-classes-"), "classes.yaml");
  writeFileSync(
    file,
    `classes:
  - name: small
    labels: [${SMALL.join(", ")}]
    job: runner-small
    job_file: ${BUNDLED_RUNNER_JOB_FILE}
    job_vars: { cpu: 500, memory: 512 }
  - name: large
    labels: [${LARGE.join(", ")}]
    job: runner-large
    job_file: ${BUNDLED_RUNNER_JOB_FILE}
    job_vars: { cpu: 2000, memory: 4096 }
    max_runners: 1
`,
  );
  return file;
}

async function metric(w: World, line: string): Promise<number> {
  const text = await (await fetch(w.service.metricsUrl!)).text();
  const found = text.split("\n").find((l) => l.startsWith(`${line} `));
  return Number(found?.split(" ")[1] ?? 0);
}

describe("runner classes (twins)", () => {
  it("serves each job from the class of exactly its labels, ignores a job of no class, and holds a class at its max_runners", async () => {
    const w = await startTestWorld({
      env: { RUNNER_CLASSES_FILE: classesFile(), RECONCILE_INTERVAL: "1", RECONCILE_GRACE: "1", RUNNER_RETENTION: "0" },
      runnerJobs: ["runner-small", "runner-large"],
      github: { jobDurationMs: 2_000 },
    });
    // Each class's job is registered with its own variables.
    const parents = w.nomad.jobs().filter((j) => j.ParameterizedJob);
    const resources = (id: string) => parents.find((j) => j.ID === id)?.TaskGroups[0]?.Tasks.find((t) => !t.Lifecycle)?.Resources;
    expect(resources("runner-small")).toMatchObject({ CPU: 500, MemoryMB: 512 });
    expect(resources("runner-large")).toMatchObject({ CPU: 2000, MemoryMB: 4096 });

    // The runners' labels, as GitHub had them while they ran (ephemeral runners go afterwards).
    const labelsOf = new Map<string, string[]>();
    const watch = setInterval(() => {
      for (const r of w.github.runners()) labelsOf.set(r.name, [...r.labels].sort());
    }, 20);
    // Each runner's parent job, and the most large runner jobs alive at once (dead ones are purged).
    const parentOf = new Map<string, string>();
    let largeAlive = 0;
    const watchCap = setInterval(() => {
      const running = w.nomad.runningRunnerJobs();
      for (const j of running) parentOf.set(j.Meta?.runner_name ?? "", j.ParentID);
      largeAlive = Math.max(largeAlive, running.filter((j) => j.ParentID === "runner-large").length);
    }, 20);
    try {
      const small = await w.github.queueJob({ repo: "octo-org/app", labels: ["Nomad", "self-hosted"] });
      const large1 = await w.github.queueJob({ repo: "octo-org/app", labels: LARGE });
      const large2 = await w.github.queueJob({ repo: "octo-org/app", labels: LARGE });
      const gpu = await w.github.queueJob({ repo: "octo-org/app", labels: ["self-hosted", "nomad", "gpu"] });
      const done = (id: number) => w.github.jobs().find((j) => j.id === id)?.status === "completed";
      await eventually(() => [small, large1, large2].every((j) => done(j.id)), "small and both large jobs completed", 60_000);

      const jobs = w.github.jobs();
      const ranOn = (id: number) => jobs.find((j) => j.id === id)?.runner_name ?? "";
      // GitHub gives a job to any idle runner that has all its labels, so a large runner may take
      // the small job (README, Runner classes); a small runner never takes a large one.
      expect(ranOn(small.id)).toMatch(/^nomad-gha-(small|large)-\d+$/);
      expect(ranOn(large1.id)).toMatch(/^nomad-gha-large-\d+$/);
      expect(ranOn(large2.id)).toMatch(/^nomad-gha-large-\d+$/);
      // Each job's own runner: exactly its class's labels, never the job's spelling or more.
      expect(labelsOf.get(`nomad-gha-small-${small.id}`)).toEqual(["nomad", "self-hosted"]);
      expect(labelsOf.get(`nomad-gha-large-${large1.id}`)).toEqual(["large", "nomad", "self-hosted"]);
      expect(labelsOf.get(`nomad-gha-large-${large2.id}`)).toEqual(["large", "nomad", "self-hosted"]);
      // Each runner is a child of its own class's parameterized job.
      expect(parentOf.get(`nomad-gha-small-${small.id}`)).toBe("runner-small");
      expect(parentOf.get(`nomad-gha-large-${large1.id}`)).toBe("runner-large");
      expect(parentOf.get(ranOn(small.id))).toBe(ranOn(small.id).startsWith("nomad-gha-small-") ? "runner-small" : "runner-large");
      // max_runners: 1 for large: never two large runner jobs at once, and both large jobs served.
      expect(largeAlive).toBe(1);

      // The job of no class stays queued, not ours; counted by reason, never by its labels.
      expect(w.github.jobs().find((j) => j.id === gpu.id)?.status).toBe("queued");
      expect(w.nomad.jobs().some((c) => c.Meta?.github_job_id === String(gpu.id))).toBe(false);
      expect(await metric(w, 'ngd_jobs_not_served_total{reason="no-class"}')).toBeGreaterThanOrEqual(1);
      // Counted under each job's own class, whichever runner took it.
      expect(await metric(w, 'ngd_job_startup_seconds_count{class="large"}')).toBe(2);
      expect(await metric(w, 'ngd_job_startup_seconds_count{class="small"}')).toBe(1);
      expect(await metric(w, 'ngd_dispatch_latency_seconds_count{class="small"}')).toBe(1);
      // The service's own share beside it: from hearing of the job to the dispatch, never more than GitHub's whole figure.
      expect(await metric(w, 'ngd_dispatch_own_seconds_count{class="small"}')).toBe(1);
      expect(await metric(w, 'ngd_dispatch_own_seconds_sum{class="small"}')).toBeLessThanOrEqual(
        (await metric(w, 'ngd_dispatch_latency_seconds_sum{class="small"}')) + 0.001,
      );
    } finally {
      clearInterval(watch);
      clearInterval(watchCap);
    }
  });

  it("refuses to start when classes' runner jobs are missing or unusable, one line per class", async () => {
    const dir = scratchDir("ngd-classes-");
    const file = join(dir, "classes.yaml");
    const notParameterized = join(dir, "plain.nomad.hcl");
    writeFileSync(
      notParameterized,
      'job "plain" {\n  group "g" {\n    task "t" {\n      driver = "docker"\n      config {\n        image = "busybox"\n      }\n    }\n  }\n}\n',
    );
    writeFileSync(
      file,
      `classes:\n  - { name: small, labels: [self-hosted, nomad], job: runner-small }\n  - { name: large, labels: [self-hosted, nomad, large], job: runner-large, job_file: ${notParameterized} }\n`,
    );
    const refused = await startTestWorld({ env: { RUNNER_CLASSES_FILE: file } }).catch((err: unknown) => err);
    expect((refused as Error).message.split("\n")).toEqual([
      "Nomad job runner-small (class small) does not exist and the class has no job_file",
      expect.stringMatching(
        /^cannot register Nomad job runner-large \(class large\): .*plain\.nomad\.hcl is not a usable runner job: job is not parameterized/,
      ),
    ]);
  });

  // Issue 14 (2): a class with docker = "dind" runs a privileged sidecar, which a client whose
  // docker plugin does not allow privileged containers (Nomad's default) would fail at the first
  // job; start-up reads that from the pool's nodes (driver.docker.privileged.enabled) and refuses.
  describe('a class with docker = "dind"', () => {
    function dindClasses(): string {
      const file = join(scratchDir("ngd-classes-"), "classes.yaml");
      writeFileSync(
        file,
        `classes:
  - { name: small, labels: [${SMALL.join(", ")}], job: runner-small, job_file: ${BUNDLED_RUNNER_JOB_FILE} }
  - { name: docker, labels: [self-hosted, nomad, docker], job: runner-docker, job_file: ${BUNDLED_RUNNER_JOB_FILE}, job_vars: { docker: dind } }
`,
      );
      return file;
    }

    it("refuses to start, in one line naming the class, the pool and the fix, when no node of its pool allows privileged containers", async () => {
      const refused = await startTestWorld({ env: { RUNNER_CLASSES_FILE: dindClasses() }, runnerJobs: ["runner-small", "runner-docker"] }).catch(
        (err: unknown) => err,
      );
      expect((refused as Error).message.split("\n")).toEqual([
        'class docker: its runner job\'s task "docker" needs privileged containers, but no ready node of pool "default" allows them ' +
          "(none of the 1 ready node(s) it fits has driver.docker.privileged.enabled): " +
          "set plugin \"docker\" { config { allow_privileged = true } } on the pool's clients and restart them, or change the class's docker job_var",
      ]);
    });

    it("starts when a node of its pool allows them, with the sidecar in the class's job and none in the other's", async () => {
      const w = await startTestWorld({
        env: { RUNNER_CLASSES_FILE: dindClasses() },
        runnerJobs: ["runner-small", "runner-docker"],
        nomadNode: { docker: { allowPrivileged: true } },
      });
      try {
        const tasks = (id: string) => w.nomad.jobs().find((j) => j.ID === id)?.TaskGroups[0]?.Tasks ?? [];
        expect(tasks("runner-docker").find((t) => t.Name === "docker")).toMatchObject({
          Lifecycle: { Hook: "prestart", Sidecar: true },
          Config: { privileged: true },
        });
        expect(tasks("runner-small").map((t) => t.Name)).toEqual(["configure-runner", "runner", "scrub"]);
      } finally {
        await w.close();
      }
    });
  });

  it("refuses to start on a bad classes file, one line per problem", async () => {
    const file = join(scratchDir("ngd-classes-"), "classes.yaml");
    writeFileSync(file, `classes:\n  - { name: a, labels: [x], job: j, bogus: 1 }\n  - { name: a, labels: [X] }\n`);
    await expect(startTestWorld({ env: { RUNNER_CLASSES_FILE: file } })).rejects.toThrow(
      [
        "invalid configuration:",
        `  - RUNNER_CLASSES_FILE ${file} classes[0] (a): unknown key "bogus" (known: name, labels, job, job_file, job_vars, max_runners, max_runners_per_repo, min_idle, idle_ttl)`,
        `  - RUNNER_CLASSES_FILE ${file} classes[1] (a): duplicate name "a"`,
        `  - RUNNER_CLASSES_FILE ${file} classes[1] (a): duplicate label set [x] (also class a): a job could not tell which class serves it`,
        `  - RUNNER_CLASSES_FILE ${file} classes[1] (a): missing job (the parameterized Nomad job this class dispatches)`,
      ].join("\n"),
    );
  });
});
