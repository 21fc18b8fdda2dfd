import { constants } from "node:fs";
import { access, realpath, stat } from "node:fs/promises";
import { delimiter, dirname, isAbsolute, join, resolve, sep } from "node:path";

export type TunnelStartProblem = "binary-not-found" | "binary-not-executable" | "config-not-found" | "invalid-options" | "stopped";

/** Why the tunnel cannot start at all; restarting would not help, so it is thrown, not retried. */
export class TunnelStartError extends Error {
  constructor(
    readonly problem: TunnelStartProblem,
    message: string,
  ) {
    super(message);
    this.name = "TunnelStartError";
  }
}

const INSTALL_HINT = "install cloudflared and set CLOUDFLARED_BIN";

/**
 * Finds the cloudflared executable: a path is checked as given, a bare name is looked up on
 * PATH. Never downloads anything: the npm wrapper's own installer fetches from GitHub at run
 * time, which a production image must not depend on (and cannot, without internet).
 */
export async function resolveCloudflaredBinary(binPath: string, pathEnv: string | undefined = process.env.PATH): Promise<string> {
  if (binPath.trim() === "") {
    throw new TunnelStartError("binary-not-found", `cloudflared binary not found: CLOUDFLARED_BIN is empty: ${INSTALL_HINT}`);
  }
  if (isAbsolute(binPath) || binPath.includes("/") || binPath.includes("\\")) {
    const full = resolve(binPath);
    await checkExecutable(full);
    return full;
  }
  const dirs = (pathEnv ?? "").split(delimiter).filter(Boolean);
  for (const dir of dirs) {
    const candidate = join(dir, binPath);
    try {
      await checkExecutable(candidate);
    } catch {
      continue; // keep looking, like a shell would
    }
    return npmWrapperBinary(candidate);
  }
  throw new TunnelStartError("binary-not-found", `cloudflared binary not found: no executable "${binPath}" on PATH: ${INSTALL_HINT} to its full path`);
}

/**
 * `npm start` puts node_modules/.bin on PATH, where `cloudflared` is the npm package's wrapper
 * script: run without its binary (its postinstall did not run, as `npm ci` skips unapproved
 * install scripts), it downloads one from GitHub at every start, and without internet it exits at
 * once, again and again. The service runs the wrapper's binary itself, or says it is missing.
 */
async function npmWrapperBinary(candidate: string): Promise<string> {
  const real = await realpath(candidate).catch(() => candidate);
  if (!real.endsWith(`${sep}cloudflared${sep}lib${sep}cloudflared.js`)) return candidate;
  // The wrapper's own default (cloudflared/lib/constants.js, DEFAULT_CLOUDFLARED_BIN).
  const binary = join(dirname(dirname(real)), "bin", "cloudflared");
  try {
    await checkExecutable(binary);
    return binary;
  } catch {
    throw new TunnelStartError(
      "binary-not-found",
      `cloudflared on PATH (${candidate}) is the npm package's wrapper, and its binary ${binary} is not installed (its install script did not run; the service never downloads at run time): run \`npx cloudflared bin install\` once, or ${INSTALL_HINT} to its full path`,
    );
  }
}

async function checkExecutable(file: string): Promise<void> {
  let info;
  try {
    info = await stat(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") {
      throw new TunnelStartError("binary-not-found", `cloudflared binary not found at ${file}: ${INSTALL_HINT}`);
    }
    throw new TunnelStartError("binary-not-executable", `cloudflared binary at ${file} cannot be read (${code ?? String(err)}): ${INSTALL_HINT}`);
  }
  if (!info.isFile()) {
    throw new TunnelStartError("binary-not-executable", `cloudflared binary at ${file} is not a file: ${INSTALL_HINT}`);
  }
  try {
    await access(file, constants.X_OK);
  } catch {
    throw new TunnelStartError(
      "binary-not-executable",
      `cloudflared binary at ${file} is not executable: chmod +x it, or ${INSTALL_HINT} to an executable one`,
    );
  }
}

export async function checkTunnelConfigFile(file: string): Promise<string> {
  const full = resolve(file);
  try {
    await access(full, constants.R_OK);
  } catch {
    throw new TunnelStartError(
      "config-not-found",
      `cloudflared tunnel config not found or unreadable at ${full}: create it (see wrangler-free-tunnel.yml) and set TUNNEL_CONFIG, or set TUNNEL_TOKEN`,
    );
  }
  return full;
}
