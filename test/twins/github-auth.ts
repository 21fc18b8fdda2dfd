// Credentials the GitHub twin issues and checks: classic PATs, GitHub App JWTs (RS256, verified
// against the app's public key with GitHub's iat/exp rules), installation access tokens, and the
// runner registration / remove tokens. Every secret issued is appended to `issued` so tests can
// assert none of them leaks into logs.

import { type KeyObject, randomBytes, verify } from "node:crypto";
import type { Account, App, GitHubState, Installation, RunnerScope } from "./github-model.js";
import { scopeKey } from "./github-model.js";

export type Principal =
  | { kind: "anonymous"; key: string }
  | { kind: "user"; user: Account; key: string }
  | { kind: "app"; app: App; key: string }
  | {
      kind: "installation";
      installation: Installation;
      repoIds: Set<number>;
      permissions: Record<string, string>;
      key: string;
    };

export type AuthResult = { ok: true; principal: Principal } | { ok: false; message: string };

export const JWT_DECODE_ERROR = "A JSON web token could not be decoded";
const EXP_TOO_FAR = "'Expiration time' claim ('exp') is too far in the future";
const EXP_PASSED = "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires";
const IAT_INVALID = "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued";
/** GitHub rejects app JWTs that live longer than 10 minutes. */
const MAX_JWT_LIFETIME_S = 600;
const TOKEN_TTL_MS = 60 * 60 * 1000;

interface InstallationToken {
  installation: Installation;
  repoIds: Set<number>;
  permissions: Record<string, string>;
  expiresAt: number;
}

interface RunnerToken {
  purpose: "registration" | "remove";
  scopeKey: string;
  expiresAt: number;
}

const ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

function randomChars(length: number, alphabet = ALPHANUMERIC): string {
  const bytes = randomBytes(length);
  let out = "";
  for (const byte of bytes) out += alphabet[byte % alphabet.length];
  return out;
}

function base64UrlJson(part: string): unknown {
  return JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
}

export class Credentials {
  private readonly pats = new Map<string, Account>();
  private readonly installationTokens = new Map<string, InstallationToken>();
  private readonly runnerTokens = new Map<string, RunnerToken>();

  constructor(
    private readonly state: GitHubState,
    /** Shared with the twin: every secret ever handed out. */
    readonly issued: string[],
  ) {}

  private remember(secret: string): string {
    this.issued.push(secret);
    return secret;
  }

  createPat(user: Account): string {
    const token = this.remember(`ghp_${randomChars(36)}`);
    this.pats.set(token, user);
    return token;
  }

  issueInstallationToken(installation: Installation, repoIds: Set<number>, permissions: Record<string, string>) {
    const token = this.remember(`ghs_${randomChars(36)}`);
    const expiresAt = this.state.clock() + TOKEN_TTL_MS;
    this.installationTokens.set(token, { installation, repoIds, permissions, expiresAt });
    return { token, expiresAt };
  }

  /** Registration and remove tokens look like GitHub's: 29 upper-case alphanumerics. */
  issueRunnerToken(purpose: RunnerToken["purpose"], scope: RunnerScope) {
    const token = this.remember(randomChars(29, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"));
    const expiresAt = this.state.clock() + TOKEN_TTL_MS;
    this.runnerTokens.set(token, { purpose, scopeKey: scopeKey(scope), expiresAt });
    return { token, expiresAt };
  }

  /** Registration tokens stay valid (and reusable) for their scope until they expire. */
  runnerTokenValid(token: string, purpose: RunnerToken["purpose"], scope: RunnerScope): boolean {
    const entry = this.runnerTokens.get(token);
    return entry !== undefined && entry.purpose === purpose && entry.scopeKey === scopeKey(scope) && entry.expiresAt > this.state.clock();
  }

  recordSecret(secret: string): void {
    this.remember(secret);
  }

  /** Resolves an `Authorization` header (`token X` or `Bearer X`) to who is calling. */
  authenticate(header: string | undefined, remoteAddress: string): AuthResult {
    if (!header) return { ok: true, principal: { kind: "anonymous", key: `ip:${remoteAddress}` } };
    const match = /^(token|bearer)\s+(\S+)\s*$/i.exec(header);
    const credential = match?.[2];
    if (!credential) return { ok: false, message: "Bad credentials" };
    if (looksLikeJwt(credential)) return this.authenticateJwt(credential);
    const user = this.pats.get(credential);
    if (user) return { ok: true, principal: { kind: "user", user, key: `user:${user.login}` } };
    const installationToken = this.installationTokens.get(credential);
    if (installationToken && installationToken.expiresAt > this.state.clock()) {
      const { installation, repoIds, permissions } = installationToken;
      return { ok: true, principal: { kind: "installation", installation, repoIds, permissions, key: `installation:${installation.id}` } };
    }
    return { ok: false, message: "Bad credentials" };
  }

  private authenticateJwt(jwt: string): AuthResult {
    const verified = verifyAppJwt(jwt, (iss) => this.findApp(iss), Math.floor(this.state.clock() / 1000));
    if (!verified.ok) return verified;
    return { ok: true, principal: { kind: "app", app: verified.app, key: `app:${verified.app.id}` } };
  }

  private findApp(iss: unknown): App | undefined {
    for (const app of this.state.apps.values()) {
      if (iss === app.id || iss === String(app.id) || iss === app.clientId) return app;
    }
    return undefined;
  }
}

function looksLikeJwt(credential: string): boolean {
  return credential.startsWith("eyJ") && credential.split(".").length === 3;
}

/**
 * Verifies an RS256 app JWT the way GitHub does, with GitHub's error messages (octokit's
 * auth-app recognises the clock-skew ones and retries with the server's `Date`).
 */
export function verifyAppJwt(
  jwt: string,
  findApp: (iss: unknown) => App | undefined,
  nowSeconds: number,
): { ok: true; app: App } | { ok: false; message: string } {
  const [headerPart = "", payloadPart = "", signaturePart = ""] = jwt.split(".");
  let header: unknown;
  let claims: unknown;
  try {
    header = base64UrlJson(headerPart);
    claims = base64UrlJson(payloadPart);
  } catch {
    return { ok: false, message: JWT_DECODE_ERROR };
  }
  if (!isRecord(header) || header["alg"] !== "RS256" || !isRecord(claims)) return { ok: false, message: JWT_DECODE_ERROR };
  const app = findApp(claims["iss"]);
  if (!app || !signatureValid(`${headerPart}.${payloadPart}`, signaturePart, app.publicKey)) {
    return { ok: false, message: JWT_DECODE_ERROR };
  }
  const { iat, exp } = claims;
  if (typeof iat !== "number" || !Number.isInteger(iat) || iat > nowSeconds) return { ok: false, message: IAT_INVALID };
  if (typeof exp !== "number" || exp <= nowSeconds) return { ok: false, message: EXP_PASSED };
  if (exp - nowSeconds > MAX_JWT_LIFETIME_S) return { ok: false, message: EXP_TOO_FAR };
  return { ok: true, app };
}

function signatureValid(signedPart: string, signature: string, publicKey: KeyObject): boolean {
  try {
    return verify("RSA-SHA256", Buffer.from(signedPart), publicKey, Buffer.from(signature, "base64url"));
  } catch {
    return false;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
