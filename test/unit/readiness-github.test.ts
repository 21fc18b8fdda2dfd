import { describe, expect, it } from "vitest";
import { DependencyError } from "../../src/core/errors.js";
import { CREDENTIALS_GOOD_FOR_MS, CREDENTIALS_RECHECK_MS, credentialsReadiness, gitHubCredentialsCheck } from "../../src/readiness-github.js";

const rejected = new DependencyError("github", "GitHub read authenticated user: 401 Bad credentials", 401, false);

describe("GitHub credentials in /readyz", () => {
  it("rejected credentials fail readiness with GitHub's reason; an outage or a rate limit does not", () => {
    expect(credentialsReadiness(undefined)).toEqual({ ok: true, detail: "credentials accepted" });
    expect(credentialsReadiness(rejected)).toEqual({
      ok: false,
      detail: "GitHub rejected the credentials: GitHub read authenticated user: 401 Bad credentials",
    });
    expect(credentialsReadiness(new DependencyError("github", "GitHub read GitHub App: 403 Resource not accessible", 403, false)).ok).toBe(false);
    expect(credentialsReadiness(new DependencyError("github", "x: 403 API rate limit exceeded", 403, true)).ok).toBe(true);
    expect(credentialsReadiness(new DependencyError("github", "x: 502 Bad Gateway", 502, true))).toEqual({
      ok: true,
      detail: "credentials not checked now: x: 502 Bad Gateway",
    });
    expect(credentialsReadiness(new DependencyError("github", "x: connect ECONNREFUSED", undefined, true)).ok).toBe(true);
  });

  it("asks GitHub once per window: accepted answers are kept longer than rejected ones, and probes in flight share one question", async () => {
    let clock = 0;
    let asked = 0;
    let answer: unknown;
    const check = gitHubCredentialsCheck(
      async () => {
        asked += 1;
        if (answer) throw answer;
      },
      () => clock,
    );
    await Promise.all([check(), check(), check()]);
    expect(asked).toBe(1);
    clock += CREDENTIALS_GOOD_FOR_MS - 1;
    answer = rejected;
    expect((await check()).ok).toBe(true);
    expect(asked).toBe(1);
    clock += 1;
    expect((await check()).ok).toBe(false);
    expect(asked).toBe(2);
    clock += CREDENTIALS_RECHECK_MS - 1;
    await check();
    expect(asked).toBe(2);
    clock += 1;
    answer = undefined;
    expect(await check()).toEqual({ ok: true, detail: "credentials accepted" });
    expect(asked).toBe(3);
  });
});
