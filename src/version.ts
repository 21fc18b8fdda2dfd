import { readFileSync } from "node:fs";

// The bundle has the version written in at build time (scripts/bundle.ts, `define`); run from
// src/ (tsx) or dist/ (tsc), package.json is one directory up.
declare const __NGD_VERSION__: string | undefined;

export function serviceVersion(): string {
  if (typeof __NGD_VERSION__ === "string") return __NGD_VERSION__;
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version?: unknown };
  return typeof pkg.version === "string" ? pkg.version : "unknown";
}
