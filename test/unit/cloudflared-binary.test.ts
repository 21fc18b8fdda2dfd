import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { resolveCloudflaredBinary } from "../../src/tunnel/binary.js";

// `npm start` puts node_modules/.bin first on PATH, where the cloudflared npm package links its
// wrapper script; laid out here as npm lays it out.
const root = mkdtempSync(join(tmpdir(), "cloudflared-wrapper-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function npmLayout(name: string, withBinary: boolean): { bin: string; binary: string } {
  const pkg = join(root, name, "node_modules", "cloudflared");
  mkdirSync(join(pkg, "lib"), { recursive: true });
  copyFileSync(new URL("../../node_modules/cloudflared/lib/cloudflared.js", import.meta.url), join(pkg, "lib", "cloudflared.js"));
  chmodSync(join(pkg, "lib", "cloudflared.js"), 0o755);
  const bin = join(root, name, "node_modules", ".bin");
  mkdirSync(bin, { recursive: true });
  symlinkSync("../cloudflared/lib/cloudflared.js", join(bin, "cloudflared"));
  const binary = join(pkg, "bin", "cloudflared");
  if (withBinary) {
    mkdirSync(join(pkg, "bin"));
    writeFileSync(binary, "#!/bin/sh\n", { mode: 0o755 });
  }
  return { bin, binary };
}

describe("finding cloudflared as serve and doctor do", () => {
  it("runs the npm wrapper's binary itself rather than the wrapper, which would download one", async () => {
    const { bin, binary } = npmLayout("installed", true);
    expect(await resolveCloudflaredBinary("cloudflared", `${bin}:/usr/bin`)).toBe(binary);
  });

  it("a wrapper without its binary is one clear error, not a process that exits and is restarted", async () => {
    const { bin, binary } = npmLayout("bare", false);
    await expect(resolveCloudflaredBinary("cloudflared", bin)).rejects.toThrow(
      `cloudflared on PATH (${join(bin, "cloudflared")}) is the npm package's wrapper, and its binary ${binary} is not installed (its install script did not run; the service never downloads at run time): run \`npx cloudflared bin install\` once, or install cloudflared and set CLOUDFLARED_BIN to its full path`,
    );
  });

  it("a real cloudflared earlier on PATH wins, as a shell would pick it", async () => {
    const { bin } = npmLayout("later", false);
    const dir = join(root, "usr-local-bin");
    mkdirSync(dir);
    writeFileSync(join(dir, "cloudflared"), "#!/bin/sh\n", { mode: 0o755 });
    expect(await resolveCloudflaredBinary("cloudflared", `${dir}:${bin}`)).toBe(join(dir, "cloudflared"));
  });
});
