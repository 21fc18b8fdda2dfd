import type { RunnerScope } from "../config.js";
import type { Octokits } from "./auth.js";
import type { Claim } from "./budget.js";
import { hasStatus } from "./errors.js";
import { type RunnerTarget, scopeKey } from "./target.js";

/** Refresh cached registration tokens this long before GitHub expires them (1 h). */
const TOKEN_REFRESH_MARGIN_MS = 10 * 60_000;

export class RunnerExistsError extends Error {
  constructor(readonly runnerName: string) {
    super(`a runner named ${runnerName} already exists`);
    this.name = "RunnerExistsError";
  }
}

/** What a runner registers with: a single-use JIT config, or a registration token for `config.sh`. */
export class RunnerCredentials {
  /** By scope key: one in-flight or fresh token per scope. */
  private readonly tokens = new Map<string, Promise<{ token: string; expiresAt: number }>>();

  constructor(
    private readonly octokits: Octokits,
    private readonly scope: RunnerScope,
    private readonly runnerGroupId: number,
  ) {}

  /**
   * Creates the runner and its single-use JIT config. Throws RunnerExistsError on a name clash.
   * A `claim` on the target's budget (see Budget.claim) pays for the request.
   */
  async createJitRunner(target: RunnerTarget, name: string, labels: string[], claim?: Claim): Promise<{ runnerId: number; jitconfig: string }> {
    const body = { name, runner_group_id: this.runnerGroupId, labels, work_folder: "_work", request: { budgetClaim: claim } };
    try {
      const res = await this.octokits.call(target, "generate JIT runner config", (o) =>
        this.scope === "org"
          ? o.rest.actions.generateRunnerJitconfigForOrg({ org: target.owner, ...body })
          : o.rest.actions.generateRunnerJitconfigForRepo({ owner: target.owner, repo: target.repo, ...body }),
      );
      return { runnerId: res.data.runner.id, jitconfig: res.data.encoded_jit_config };
    } catch (err) {
      if (hasStatus(err, 409)) throw new RunnerExistsError(name);
      throw err;
    }
  }

  /** A registration token for the target's scope, reused until shortly before it expires. */
  registrationToken(target: RunnerTarget): Promise<string> {
    const key = scopeKey(this.scope, target);
    const cached = this.tokens.get(key);
    const fresh = async () => {
      const res = await this.octokits.call(target, "create registration token", (o) =>
        this.scope === "org"
          ? o.rest.actions.createRegistrationTokenForOrg({ org: target.owner })
          : o.rest.actions.createRegistrationTokenForRepo({ owner: target.owner, repo: target.repo }),
      );
      return { token: res.data.token, expiresAt: Date.parse(res.data.expires_at) };
    };
    const pending = (async () => {
      if (cached) {
        try {
          const value = await cached;
          if (value.expiresAt - Date.now() > TOKEN_REFRESH_MARGIN_MS) return value;
        } catch {
          // a failed earlier attempt is simply retried below
        }
      }
      return fresh();
    })();
    // One in-flight request per scope: a burst for one repository shares it.
    this.tokens.set(key, pending);
    pending.catch(() => this.tokens.get(key) === pending && this.tokens.delete(key));
    return pending.then((v) => v.token);
  }
}
