import { createAppAuth } from "@octokit/auth-app";
import { Octokit } from "@octokit/rest";
import type { GitHubAuthConfig } from "../config.js";
import { DependencyError } from "../core/errors.js";
import { toDependencyError } from "./errors.js";
import { githubAgent, octokitFetch } from "./fetch.js";
import type { Budgets } from "./requests.js";
import type { RunnerTarget } from "./target.js";

export interface AuthOptions {
  auth: GitHubAuthConfig;
  apiUrl: string;
  userAgent?: string;
}

type OctokitAuth = Pick<NonNullable<ConstructorParameters<typeof Octokit>[0]>, "auth" | "authStrategy">;

/**
 * Which of our identities a target's calls use, and so which Octokit and which budget they share:
 * the PAT, or the App installation the repository belongs to. The App's own JWT ("app") serves
 * only calls about the App itself.
 */
export function authKey(auth: GitHubAuthConfig, target: Pick<RunnerTarget, "installationId">): string {
  return auth.kind === "app" ? `installation:${target.installationId ?? "?"}` : "pat";
}

/** One Octokit per auth key (PAT, App JWT, App installation), each throttled by its budget. */
export class Octokits {
  private readonly byKey = new Map<string, Octokit>();

  /**
   * Octokit's requests go through the same undici as Nomad's and Vault's, over a keep-alive
   * agent, rather than Node's built-in fetch: a second HTTP stack costs resident memory.
   */
  private readonly fetch = octokitFetch(githubAgent()) as unknown as typeof globalThis.fetch;

  constructor(
    private readonly opts: AuthOptions,
    private readonly budgets: Budgets,
  ) {}

  get auth(): GitHubAuthConfig {
    return this.opts.auth;
  }

  /** Runs `fn` with the target's Octokit; whatever fails is a DependencyError naming `what`. */
  async call<T>(target: RunnerTarget, what: string, fn: (o: Octokit) => Promise<T>): Promise<T> {
    try {
      return await fn(this.forTarget(target));
    } catch (err) {
      throw toDependencyError(what, err);
    }
  }

  /** Runs `fn` as the App itself (its JWT): calls about the App rather than a repository. */
  async callApp<T>(what: string, fn: (app: Octokit) => Promise<T>): Promise<T> {
    const app = this.forApp();
    try {
      return await fn(app);
    } catch (err) {
      throw toDependencyError(what, err);
    }
  }

  private forApp(): Octokit {
    const { auth } = this.opts;
    return this.octokit("app", () => {
      if (auth.kind !== "app") throw new Error("not a GitHub App");
      return { authStrategy: createAppAuth, auth: { appId: auth.appId, privateKey: auth.privateKey } };
    });
  }

  private forTarget(target: RunnerTarget): Octokit {
    const { auth } = this.opts;
    return this.octokit(authKey(auth, target), () => {
      if (auth.kind === "token") return { auth: auth.token };
      if (target.installationId === undefined) {
        throw new DependencyError("github", "GitHub App auth needs an installation id (webhook payload has none)", undefined, false);
      }
      return { authStrategy: createAppAuth, auth: { appId: auth.appId, privateKey: auth.privateKey, installationId: target.installationId } };
    });
  }

  private octokit(key: string, auth: () => OctokitAuth): Octokit {
    let octokit = this.byKey.get(key);
    if (!octokit) {
      const base = { baseUrl: this.opts.apiUrl, userAgent: this.opts.userAgent ?? "nomad-gha-dispatcher", log: silentLog, request: { fetch: this.fetch } };
      octokit = this.budgets.throttle(new Octokit({ ...base, ...auth() }), key);
      this.byKey.set(key, octokit);
    }
    return octokit;
  }
}

const silentLog = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };
