import { readFileSync } from "node:fs";
import type { GitHubAuthConfig } from "../config.js";
import type { Env } from "./env-schema.js";

/** A PAT, or an App with its private key (inline or from a file); every problem goes to `problems`. */
export function githubAuth(e: Env, problems: string[]): GitHubAuthConfig | undefined {
  const hasApp = e.GITHUB_APP_ID !== undefined;
  const hasKey = e.GITHUB_APP_PRIVATE_KEY !== undefined || e.GITHUB_APP_PRIVATE_KEY_FILE !== undefined;
  if (e.GITHUB_TOKEN && (hasApp || hasKey)) {
    problems.push("set either GITHUB_TOKEN or GITHUB_APP_ID with GITHUB_APP_PRIVATE_KEY(_FILE), not both");
    return undefined;
  }
  if (e.GITHUB_TOKEN) return { kind: "token", token: e.GITHUB_TOKEN };
  if (!hasApp && !hasKey) {
    problems.push("GitHub credentials missing: set GITHUB_TOKEN, or GITHUB_APP_ID with GITHUB_APP_PRIVATE_KEY or GITHUB_APP_PRIVATE_KEY_FILE");
    return undefined;
  }
  if (!hasApp) {
    problems.push("GITHUB_APP_ID is required with GITHUB_APP_PRIVATE_KEY(_FILE)");
    return undefined;
  }
  if (!/^\d+$/.test(e.GITHUB_APP_ID ?? "")) return undefined; // reported by the schema
  const privateKey = readPrivateKey(e, problems);
  return privateKey ? { kind: "app", appId: Number(e.GITHUB_APP_ID), privateKey } : undefined;
}

function readPrivateKey(e: Env, problems: string[]): string | undefined {
  let key = e.GITHUB_APP_PRIVATE_KEY;
  if (!key && e.GITHUB_APP_PRIVATE_KEY_FILE) {
    try {
      key = readFileSync(e.GITHUB_APP_PRIVATE_KEY_FILE, "utf8");
    } catch (err) {
      problems.push(`GITHUB_APP_PRIVATE_KEY_FILE cannot be read: ${(err as Error).message}`);
      return undefined;
    }
  }
  if (!key) {
    problems.push("GITHUB_APP_PRIVATE_KEY or GITHUB_APP_PRIVATE_KEY_FILE is required with GITHUB_APP_ID");
    return undefined;
  }
  // Env files often carry the PEM with literal "\n"; accept both forms.
  key = key.replace(/\\n/g, "\n");
  if (!key.includes("PRIVATE KEY-----")) {
    problems.push("GITHUB_APP_PRIVATE_KEY is not a PEM private key (expected -----BEGIN ... PRIVATE KEY-----)");
    return undefined;
  }
  return key;
}
