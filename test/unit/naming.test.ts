import { describe, expect, it } from "vitest";
import { dispatchedJobPrefix, idempotencyTokenFor, jobIdOfRunner, runnerNameFor, runnerOfDispatchedJob } from "../../src/core/naming.js";

describe("naming", () => {
  it("round-trips runner names and job ids", () => {
    expect(runnerNameFor("nomad-gha", 123)).toBe("nomad-gha-123");
    expect(jobIdOfRunner("nomad-gha", "nomad-gha-123")).toBe(123);
  });

  it("does not claim runners that are not ours", () => {
    for (const name of [
      null,
      undefined,
      "",
      "nomad-gha",
      "nomad-gha-",
      "nomad-gha-abc",
      "nomad-gha-01",
      "other-123",
      "nomad-gha-12-3",
      "nomad-gha-99999999999999999999",
    ]) {
      expect(jobIdOfRunner("nomad-gha", name)).toBeUndefined();
    }
    expect(jobIdOfRunner("nomad", "nomad-gha-123")).toBeUndefined();
  });

  it("derives one idempotency token per job and deployment", () => {
    expect(idempotencyTokenFor("d1", 5)).toBe(idempotencyTokenFor("d1", 5));
    expect(idempotencyTokenFor("d1", 5)).not.toBe(idempotencyTokenFor("d1", 6));
    expect(idempotencyTokenFor("d1", 5)).not.toBe(idempotencyTokenFor("d2", 5));
  });

  it("finds a runner's dispatched children by prefix without matching longer job ids", () => {
    const prefix = dispatchedJobPrefix("github-runner", "nomad-gha-12");
    expect("github-runner/dispatch-nomad-gha-12-1763884800-0a1b2c3d".startsWith(prefix)).toBe(true);
    expect("github-runner/dispatch-nomad-gha-123-1763884800-0a1b2c3d".startsWith(prefix)).toBe(false);
  });

  it("reads the runner back out of a child job id", () => {
    expect(runnerOfDispatchedJob("github-runner", "nomad-gha", "github-runner/dispatch-nomad-gha-12-1763884800-0a1b2c3d")).toBe("nomad-gha-12");
    expect(runnerOfDispatchedJob("github-runner", "nomad-gha", "github-runner/dispatch-1763884800-0a1b2c3d")).toBeUndefined();
    expect(runnerOfDispatchedJob("github-runner", "nomad-gha", "other/dispatch-nomad-gha-12-1763884800-0a1b2c3d")).toBeUndefined();
  });
});
