// `npm run build` step two: the service as one ESM file, dist/nomad-gha-dispatcher.mjs, which is
// all the container image ships (no node_modules). One file instead of some 400 modules starts
// faster and keeps about 20 MB less resident: module records and their sources are most of an
// idle Node service's memory. Names are kept and a source map is written next to it, so stack
// traces stay readable (node --enable-source-maps maps them back to src/).

import { readFileSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { type BuildOptions, build, type Plugin } from "esbuild";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** Shared with the benchmark, which measures the service bundled as it ships. */
export function bundleOptions(entry: string, outfile: string): BuildOptions {
  return {
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node22",
    // Whitespace and syntax only: identifiers stay, for logs, stack traces and heap snapshots.
    minifyWhitespace: true,
    minifySyntax: true,
    keepNames: true,
    sourcemap: "linked",
    legalComments: "linked",
    logLevel: "warning",
    plugins: [shippedUndici],
    // `--version` of the bundle, which ships without package.json (src/version.ts).
    define: { __NGD_VERSION__: JSON.stringify(packageVersion()) },
    // CommonJS dependencies (pino, the cloudflared wrapper, undici) expect these in scope.
    banner: {
      js: [
        'import { createRequire as __ngdCreateRequire } from "node:module";',
        'import { fileURLToPath as __ngdFileURLToPath } from "node:url";',
        'import { dirname as __ngdDirname } from "node:path";',
        "const require = __ngdCreateRequire(import.meta.url);",
        "const __filename = __ngdFileURLToPath(import.meta.url);",
        "const __dirname = __ngdDirname(__filename);",
      ].join(" "),
    },
  };
}

function packageVersion(): string {
  return (JSON.parse(readFileSync(`${ROOT}package.json`, "utf8")) as { version: string }).version;
}

/** `undici` resolves to the parts of it the service uses (scripts/undici-shipped.mjs). */
const shippedUndici: Plugin = {
  name: "shipped-undici",
  setup(b) {
    b.onResolve({ filter: /^undici$/ }, () => ({ path: `${ROOT}scripts/undici-shipped.mjs` }));
  },
};

export const SERVICE_BUNDLE = `${ROOT}dist/nomad-gha-dispatcher.mjs`;

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await build(bundleOptions(`${ROOT}src/cli.ts`, SERVICE_BUNDLE));
  // The figure the README states (test/unit/package-facts.test.ts holds it to this).
  console.log(`bundled ${SERVICE_BUNDLE.slice(ROOT.length)} (${(statSync(SERVICE_BUNDLE).size / 1e6).toFixed(2)} MB)`);
}
