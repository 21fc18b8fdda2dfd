import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

// The import rules ARCHITECTURE.md states, checked on the source.

const SRC = new URL("../../src/", import.meta.url).pathname;

/** Relative module specifiers each file of `folder` imports (or re-exports from). */
function importsOf(folder: string): Array<{ file: string; spec: string }> {
  const dir = join(SRC, folder);
  return readdirSync(dir)
    .filter((f) => f.endsWith(".ts"))
    .flatMap((f) => {
      const text = readFileSync(join(dir, f), "utf8");
      return [...text.matchAll(/^(?:import|export)[^;]*?from "([^"]+)"/gms)].map((m) => ({ file: `${folder}/${f}`, spec: m[1]! }));
    });
}

const WORKFLOWS = ["intake", "provisioning", "teardown", "reconciling"];
const ADAPTERS = ["github", "nomad", "vault", "tunnel"];

describe("layout", () => {
  it("core imports nothing but core (no I/O)", () => {
    const outside = importsOf("core").filter(({ spec }) => !spec.startsWith("./"));
    expect(outside).toEqual([]);
  });

  it("workflows and ports never import an adapter, the HTTP app or the composition root", () => {
    const forbidden = new RegExp(`^\\.\\./(${[...ADAPTERS, "http"].join("|")})/|^\\.\\./(deps|service|startup)\\.js$`);
    const found = [...WORKFLOWS, "ports"].flatMap(importsOf).filter(({ spec }) => forbidden.test(spec));
    expect(found).toEqual([]);
  });

  it("adapters never import a workflow or the ports", () => {
    const forbidden = new RegExp(`^\\.\\./(${[...WORKFLOWS, "ports"].join("|")})/`);
    const found = ADAPTERS.flatMap(importsOf).filter(({ spec }) => forbidden.test(spec));
    expect(found).toEqual([]);
  });

  it("teardown and provisioning do not depend on intake or reconciling", () => {
    const found = ["teardown", "provisioning"].flatMap(importsOf).filter(({ spec }) => /^\.\.\/(intake|reconciling)\//.test(spec));
    expect(found).toEqual([]);
  });
});
