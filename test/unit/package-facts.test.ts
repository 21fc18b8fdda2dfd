import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { describe, expect, it } from "vitest";
import { bundleOptions } from "../../scripts/bundle.js";

// What README and package.json promise, held to what the dependencies and the build say.

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, "utf8")) as { engines: { node: string }; scripts: Record<string, string> };
const readme = readFileSync(`${ROOT}README.md`, "utf8");

type Version = [number, number, number];
const parse = (v: string): Version => {
  const [a = 0, b = 0, c = 0] = v
    .replace(/^[^\d]*/, "")
    .split(".")
    .map(Number);
  return [a, b, c];
};
const cmp = (x: Version, y: Version) => x[0] - y[0] || x[1] - y[1] || x[2] - y[2];

/** Whether `version` satisfies an engines range of the forms npm packages use (>=, ^, x, ||). */
function satisfies(version: string, range: string): boolean {
  const v = parse(version);
  return range.split("||").some((part) =>
    part
      .trim()
      .replace(/(>=|<=|>|<|\^|~)\s+/g, "$1")
      .split(/\s+/)
      .filter(Boolean)
      .every((comparator) => {
        const op = /^(>=|<=|>|<|\^|~)?/.exec(comparator)?.[1] ?? "";
        const w = parse(comparator.slice(op.length));
        if (op === ">=") return cmp(v, w) >= 0;
        if (op === ">") return cmp(v, w) > 0;
        if (op === "<") return cmp(v, w) < 0;
        if (op === "<=") return cmp(v, w) <= 0;
        if (op === "^") return v[0] === w[0] && cmp(v, w) >= 0;
        return v[0] === w[0] && (comparator.split(".").length < 2 || v[1] === w[1]);
      }),
  );
}

/** engines.node of every package the service needs at run time (dependencies, all the way down). */
function runtimeEngines(): Array<{ name: string; range: string }> {
  const dirs = execFileSync("npm", ["ls", "--omit=dev", "--all", "--parseable"], { cwd: ROOT, encoding: "utf8" }).trim().split("\n").slice(1);
  return dirs.flatMap((dir) => {
    const p = JSON.parse(readFileSync(`${dir}/package.json`, "utf8")) as { name: string; engines?: { node?: string } };
    return p.engines?.node ? [{ name: p.name, range: p.engines.node }] : [];
  });
}

describe("promises the README and package.json make", () => {
  it("the engines range check reads npm's forms", () => {
    expect(satisfies("22.0.0", ">=22")).toBe(true);
    expect(satisfies("20.18.0", ">=20.18.1")).toBe(false);
    expect(satisfies("22.0.0", "^16 || ^18 || >=20")).toBe(true);
    expect(satisfies("20.18.1", "^20.19.0 || >=22.12.0")).toBe(false);
    expect(satisfies("22.12.0", "^20.19.0 || >=22.12.0")).toBe(true);
    expect(satisfies("22.0.0", ">= 20")).toBe(true);
  });

  it("the lowest Node the package promises satisfies every run-time dependency's engines, and the README promises the same", () => {
    const lowest = /^>=\s*(\d+(?:\.\d+){0,2})$/.exec(pkg.engines.node)?.[1];
    expect(lowest, `engines.node ${pkg.engines.node} is a plain >= range`).toBeDefined();
    const unmet = runtimeEngines().filter(({ range }) => !satisfies(lowest ?? "0", range));
    expect(unmet).toEqual([]);
    expect(readme).toContain(`Node.js ${lowest}+ runs it`);
  });

  it("npm start works right after npm ci: prestart bundles what start runs", () => {
    expect(pkg.scripts.prestart).toBe("tsx scripts/bundle.ts");
    expect(pkg.scripts.start).toBe("node dist/nomad-gha-dispatcher.mjs serve");
  });

  it("the bundle size the README states is what the build produces (within 0.1 MB)", async () => {
    const stated = /bundle, `dist\/nomad-gha-dispatcher\.mjs`, is (\d+\.\d) MB/.exec(readme)?.[1];
    expect(stated, "README states the bundle's size").toBeDefined();
    const result = await build({ ...bundleOptions(`${ROOT}src/cli.ts`, `${ROOT}dist/size-probe.mjs`), write: false });
    const bytes = result.outputFiles.find((f) => f.path.endsWith(".mjs"))?.contents.length ?? 0;
    expect(Math.abs(bytes / 1e6 - Number(stated))).toBeLessThan(0.1);
  }, 60_000);
});
