import { describe, expect, it } from "vitest";
import { RunnerIndex } from "../../src/core/runner-index.js";

function clock() {
  let t = 0;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe("RunnerIndex", () => {
  it("knows nothing before a first listing completes", () => {
    const index = new RunnerIndex();
    expect(index.knownAbsent("nomad-gha-1")).toBe(false);
    const started = index.listingStarted();
    expect(index.knownAbsent("nomad-gha-1")).toBe(false);
    index.listingDone(started, []);
    expect(index.knownAbsent("nomad-gha-1")).toBe(true);
  });

  it("never calls a listed or dispatched runner absent", () => {
    const c = clock();
    const index = new RunnerIndex(c.now);
    index.listingDone(index.listingStarted(), ["nomad-gha-1"]);
    expect(index.knownAbsent("nomad-gha-1")).toBe(false);
    c.advance(5);
    index.dispatching("nomad-gha-2");
    expect(index.knownAbsent("nomad-gha-2")).toBe(false);
    expect(index.knownAbsent("nomad-gha-3")).toBe(true);
  });

  it("keeps a dispatch made while a listing ran, which the listing may have missed", () => {
    const c = clock();
    const index = new RunnerIndex(c.now);
    const started = index.listingStarted();
    c.advance(10);
    index.dispatching("nomad-gha-7");
    c.advance(10);
    index.listingDone(started, []);
    expect(index.knownAbsent("nomad-gha-7")).toBe(false);
  });

  it("forgets a dispatch once a later listing covers it (the job was purged)", () => {
    const c = clock();
    const index = new RunnerIndex(c.now);
    index.dispatching("nomad-gha-7");
    c.advance(10);
    index.listingDone(index.listingStarted(), []);
    expect(index.knownAbsent("nomad-gha-7")).toBe(true);
  });

  it("ignores a listing that started before the one already applied", () => {
    const c = clock();
    const index = new RunnerIndex(c.now);
    const older = index.listingStarted();
    c.advance(10);
    index.dispatching("nomad-gha-8");
    c.advance(10);
    const newer = index.listingStarted();
    c.advance(10);
    index.listingDone(newer, ["nomad-gha-8"]);
    // The older listing did not see the dispatch; applying it would call the runner absent.
    index.listingDone(older, []);
    expect(index.knownAbsent("nomad-gha-8")).toBe(false);
  });
});
