import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { jobVarsText, parseRunnerClasses } from "../../src/config/runner-classes.js";
import { ConfigError, loadConfig } from "../../src/config.js";

const JOB = `variable "cpu" {\n  type = number\n}\nvariable "memory" {\n  type = number\n}\njob "github-runner" {\n}\n`;
const files: Record<string, string> = { "/etc/ngd/jobs/runner.hcl": JOB, "/etc/ngd/jobs/broken.hcl": "not a job" };
const read = (path: string) => {
  const text = files[path];
  if (text === undefined) throw new Error(`ENOENT: no such file, open '${path}'`);
  return text;
};
const env = { file: "/etc/ngd/classes.yaml", namePrefix: "ngd", registerRunnerJob: true };

function parse(text: string) {
  const problems: string[] = [];
  const classes = parseRunnerClasses(text, env, problems, read);
  return { classes, problems };
}

const GOOD = `
classes:
  - name: small
    labels: [self-hosted, nomad]
    job: runner-small
    job_file: jobs/runner.hcl
    job_vars: { cpu: 1000, memory: 2048 }
    max_runners: 10
  - name: large
    labels: [Self-Hosted, nomad, LARGE]
    job: runner-large
    max_runners_per_repo: 2
    min_idle: 0
`;

describe("RUNNER_CLASSES_FILE", () => {
  it("parses classes: labels as a set, the job file relative to the classes file, 0 or no cap meaning none", () => {
    const { classes, problems } = parse(GOOD);
    expect(problems).toEqual([]);
    expect(classes).toEqual([
      {
        name: "small",
        labels: ["nomad", "self-hosted"],
        job: "runner-small",
        runnerPrefix: "ngd-small",
        limits: { maxRunners: 10, maxRunnersPerRepo: Number.POSITIVE_INFINITY },
        jobFile: "/etc/ngd/jobs/runner.hcl",
        jobVars: { cpu: 1000, memory: 2048 },
      },
      {
        name: "large",
        labels: ["large", "nomad", "self-hosted"],
        job: "runner-large",
        runnerPrefix: "ngd-large",
        limits: { maxRunners: Number.POSITIVE_INFINITY, maxRunnersPerRepo: 2 },
        jobFile: undefined,
        jobVars: {},
      },
    ]);
    expect(jobVarsText(classes[0]!.jobVars)).toBe("cpu = 1000\nmemory = 2048\n");
  });

  it("reads JSON too (JSON is YAML)", () => {
    expect(parse(JSON.stringify({ classes: [{ name: "a", labels: ["x"], job: "j" }] })).classes.map((c) => c.name)).toEqual(["a"]);
  });

  const one = (yaml: string) => parse(`classes:\n${yaml}`).problems;
  const W = "RUNNER_CLASSES_FILE /etc/ngd/classes.yaml";
  const bad: Array<[string, string, string[]]> = [
    [
      "unknown key",
      "  - { name: a, labels: [x], job: j, max_runner: 3 }",
      [`${W} classes[0] (a): unknown key "max_runner" (known: name, labels, job, job_file, job_vars, max_runners, max_runners_per_repo, min_idle, idle_ttl)`],
    ],
    ["duplicate name", "  - { name: a, labels: [x], job: j }\n  - { name: a, labels: [y], job: k }", [`${W} classes[1] (a): duplicate name "a"`]],
    [
      "duplicate label set",
      "  - { name: a, labels: [x, Y], job: j }\n  - { name: b, labels: [y, x], job: k }",
      [`${W} classes[1] (b): duplicate label set [x, y] (also class a): a job could not tell which class serves it`],
    ],
    [
      "bad name",
      "  - { name: Big_One, labels: [x], job: j }",
      [`${W} classes[0] (Big_One): name must be lower-case letters, digits and dashes ([a-z0-9-]), starting with a letter or digit`],
    ],
    [
      "missing name",
      "  - { labels: [x], job: j }",
      [`${W} classes[0]: name must be lower-case letters, digits and dashes ([a-z0-9-]), starting with a letter or digit`],
    ],
    ["missing job", "  - { name: a, labels: [x] }", [`${W} classes[0] (a): missing job (the parameterized Nomad job this class dispatches)`]],
    [
      "shared job",
      "  - { name: a, labels: [x], job: j }\n  - { name: b, labels: [y], job: j }",
      [`${W} classes[1] (b): job j is also class a's: each class dispatches its own parameterized job`],
    ],
    ["no labels", "  - { name: a, labels: [], job: j }", [`${W} classes[0] (a): labels must be a non-empty list of labels`]],
    [
      "unreadable job file",
      "  - { name: a, labels: [x], job: j, job_file: jobs/missing.hcl }",
      [`${W} classes[0] (a): job_file /etc/ngd/jobs/missing.hcl cannot be read: ENOENT: no such file, open '/etc/ngd/jobs/missing.hcl'`],
    ],
    [
      "unparsable job file",
      "  - { name: a, labels: [x], job: j, job_file: jobs/broken.hcl }",
      [`${W} classes[0] (a): job_file /etc/ngd/jobs/broken.hcl has no job block`],
    ],
    [
      "undeclared job var",
      "  - { name: a, labels: [x], job: j, job_file: jobs/runner.hcl, job_vars: { cpu: 1, gpus: 2 } }",
      [`${W} classes[0] (a): job_vars.gpus: job_file /etc/ngd/jobs/runner.hcl declares no variable "gpus"`],
    ],
    [
      "job vars without a file",
      "  - { name: a, labels: [x], job: j, job_vars: { cpu: 1 } }",
      [`${W} classes[0] (a): job_vars needs job_file: they are variables of the job file the service registers`],
    ],
    ["negative cap", "  - { name: a, labels: [x], job: j, max_runners: -1 }", [`${W} classes[0] (a): max_runners must be a whole number, 0 or more`]],
    ["fractional pool", "  - { name: a, labels: [x], job: j, min_idle: 1.5 }", [`${W} classes[0] (a): min_idle must be a whole number, 0 or more`]],
    [
      "TTL without a pool",
      "  - { name: a, labels: [x], job: j, idle_ttl: 600 }",
      [`${W} classes[0] (a): idle_ttl is set without min_idle: it applies to a warm pool's idle runners`],
    ],
    [
      "TTL too short",
      "  - { name: a, labels: [x], job: j, min_idle: 1, idle_ttl: 30 }",
      [`${W} classes[0] (a): idle_ttl must be at least 60 (seconds): a pool would replace its runners before they start`],
    ],
    [
      "pool above its cap",
      "  - { name: a, labels: [x], job: j, min_idle: 3, max_runners: 2 }",
      [`${W} classes[0] (a): min_idle 3 is above max_runners 2: the pool could never be full`],
    ],
    [
      "name too long for GitHub",
      `  - { name: ${"a".repeat(44)}, labels: [x], job: j }`,
      [`${W} classes[0] (${"a".repeat(44)}): name is too long: runner names "ngd-${"a".repeat(44)}-<job id>" must fit GitHub's 64 characters`],
    ],
  ];
  it.each(bad)("refuses a file with a %s, in one line", (_what, yaml, expected) => {
    expect(one(yaml)).toEqual(expected);
  });

  it("keeps a warm pool's size and idle TTL (seconds; an hour by default), and no pool at min_idle 0", () => {
    const { classes, problems } = parse(
      "classes:\n  - { name: a, labels: [x], job: j, min_idle: 2 }\n  - { name: b, labels: [y], job: k, min_idle: 1, idle_ttl: 900 }\n  - { name: c, labels: [z], job: l, min_idle: 0 }",
    );
    expect(problems).toEqual([]);
    expect(classes.map((c) => c.pool)).toEqual([{ minIdle: 2, idleTtlMs: 3_600_000 }, { minIdle: 1, idleTtlMs: 900_000 }, undefined]);
  });

  it("refuses what is not YAML, or has no classes, in one line each", () => {
    expect(parse("classes: [").problems).toEqual([expect.stringMatching(/^RUNNER_CLASSES_FILE \/etc\/ngd\/classes\.yaml is not valid YAML: /)]);
    expect(parse("classes: []").problems).toEqual([`${W} must have a non-empty list "classes"`]);
    expect(parse("classes: [{ name: a, labels: [x], job: j }]\nextra: 1").problems).toEqual([`${W}: unknown key "extra" (only "classes")`]);
  });

  it("lists every problem of every class at once", () => {
    expect(one("  - { name: a, labels: [x] }\n  - { name: a, labels: [x], job: j, bogus: 1 }")).toHaveLength(4);
  });
});

describe("loadConfig with RUNNER_CLASSES_FILE", () => {
  const minimal = { GITHUB_WEBHOOK_SECRET: "s3cret-of-twenty-chars", GITHUB_TOKEN: "ghp_x", VAULT_TOKEN: "hvs.x", ALLOWED_OWNERS: "acme" };
  const dir = mkdtempSync(join(tmpdir(), "ngd-classes-"));
  const file = join(dir, "classes.yaml");
  writeFileSync(file, "classes:\n  - { name: small, labels: [self-hosted, nomad], job: runner-small }\n");

  it("builds the classes from the file", () => {
    expect(loadConfig({ ...minimal, RUNNER_CLASSES_FILE: file }).runner.classes.map((c) => [c.name, c.job, c.runnerPrefix])).toEqual([
      ["small", "runner-small", "nomad-gha-small"],
    ]);
  });

  it("refuses the single-class variables beside it, one line each", () => {
    let problems: string[] = [];
    try {
      loadConfig({ ...minimal, RUNNER_CLASSES_FILE: file, RUNNER_LABELS: "x", NOMAD_RUNNER_JOB: "y" });
    } catch (err) {
      if (err instanceof ConfigError) problems = err.problems;
    }
    expect(problems).toEqual([
      "RUNNER_LABELS is set, but RUNNER_CLASSES_FILE defines the runner classes: move it into the file (or unset it)",
      "NOMAD_RUNNER_JOB is set, but RUNNER_CLASSES_FILE defines the runner classes: move it into the file (or unset it)",
    ]);
  });

  it("refuses a file that cannot be read", () => {
    expect(() => loadConfig({ ...minimal, RUNNER_CLASSES_FILE: join(dir, "nope.yaml") })).toThrow(/RUNNER_CLASSES_FILE .*nope\.yaml cannot be read/);
  });
});
