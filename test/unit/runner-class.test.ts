import { describe, expect, it } from "vitest";
import { classForLabels, classOfRunner, labelSet, runnerForJob } from "../../src/core/runner-class.js";
import { runnerClass } from "../fakes/deps.js";

const small = runnerClass({ name: "small", labels: labelSet(["self-hosted", "nomad"]), runnerPrefix: "ngd-small", job: "runner-small" });
const large = runnerClass({ name: "large", labels: labelSet(["self-hosted", "nomad", "large"]), runnerPrefix: "ngd-large", job: "runner-large" });
const arm = runnerClass({
  name: "large-arm64",
  labels: labelSet(["self-hosted", "nomad", "large", "arm64"]),
  runnerPrefix: "ngd-large-arm64",
  job: "runner-arm",
});
const classes = [small, large, arm];

describe("classForLabels (exact label set)", () => {
  const cases: Array<[string[], string | undefined]> = [
    [["self-hosted", "nomad"], "small"],
    [["NOMAD", "Self-Hosted"], "small"],
    [[" nomad ", "self-hosted", "nomad"], "small"],
    [["self-hosted", "nomad", "large"], "large"],
    [["large", "arm64", "nomad", "self-hosted"], "large-arm64"],
    [["self-hosted"], undefined],
    [["self-hosted", "nomad", "gpu"], undefined],
    [["self-hosted", "nomad", "large", "arm64", "gpu"], undefined],
    [["ubuntu-latest"], undefined],
  ];
  it.each(cases)("%j -> %s", (labels, expected) => {
    const match = classForLabels(classes, labels);
    expect(match.ok ? match.cls.name : undefined).toBe(expected);
    if (!match.ok) expect(match.reason).toBe("no-class");
  });

  it("says no-labels for a job that requests none", () => {
    expect(classForLabels(classes, [])).toEqual({ ok: false, reason: "no-labels" });
    expect(classForLabels(classes, [" "])).toEqual({ ok: false, reason: "no-labels" });
  });
});

describe("runner names carry the class", () => {
  it("names a job's runner after its class, and finds the class back from the name alone", () => {
    expect(runnerForJob(classes, { id: 42, labels: ["self-hosted", "nomad", "large"] })).toEqual({ cls: large, runnerName: "ngd-large-42" });
    expect(runnerForJob(classes, { id: 42, labels: ["gpu"] })).toBeUndefined();
    expect(classOfRunner(classes, "ngd-large-42")).toEqual({ cls: large, jobId: 42 });
    // A class whose name extends another's is still told apart by the job id's digits.
    expect(classOfRunner(classes, "ngd-large-arm64-42")).toEqual({ cls: arm, jobId: 42 });
    expect(classOfRunner(classes, "ngd-small-42")?.cls).toBe(small);
    expect(classOfRunner(classes, "ngd-42")).toBeUndefined();
    expect(classOfRunner(classes, "ngd-medium-42")).toBeUndefined();
    expect(classOfRunner(classes, null)).toBeUndefined();
  });
});
