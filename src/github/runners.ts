import type { RunnerScope } from "../config.js";
import type { Octokits } from "./auth.js";
import type { ConditionalGets } from "./conditional.js";
import { hasStatus } from "./errors.js";
import { PAGE_SIZE, readAllPages } from "./pages.js";
import { type RunnerTarget, scopeKey } from "./target.js";

export interface GitHubRunner {
  id: number;
  name: string;
  status: string;
  busy: boolean;
  labels: string[];
}

/** The self-hosted runners registered in a target's scope (repository or organisation). */
export class Runners {
  constructor(
    private readonly octokits: Octokits,
    private readonly conditional: ConditionalGets,
    private readonly scope: RunnerScope,
  ) {}

  async find(target: RunnerTarget, name: string): Promise<GitHubRunner | undefined> {
    const res = await this.octokits.call(target, "find runner", (o) =>
      this.scope === "org"
        ? o.rest.actions.listSelfHostedRunnersForOrg({ org: target.owner, name, per_page: 100 })
        : o.rest.actions.listSelfHostedRunnersForRepo({ owner: target.owner, repo: target.repo, name, per_page: 100 }),
    );
    const runner = res.data.runners.find((r) => r.name === name);
    return runner && toRunner(runner);
  }

  /** Deregisters a runner; a busy runner is left alone ("busy"), a missing one is "gone". */
  async delete(target: RunnerTarget, runnerId: number): Promise<"deleted" | "busy" | "gone"> {
    try {
      await this.octokits.call(target, "delete runner", (o) =>
        this.scope === "org"
          ? o.rest.actions.deleteSelfHostedRunnerFromOrg({ org: target.owner, runner_id: runnerId })
          : o.rest.actions.deleteSelfHostedRunnerFromRepo({ owner: target.owner, repo: target.repo, runner_id: runnerId }),
      );
      return "deleted";
    } catch (err) {
      if (hasStatus(err, 404)) return "gone";
      // GitHub refuses to delete a runner that is running a job (422).
      if (hasStatus(err, 422)) return "busy";
      throw err;
    }
  }

  /** Runners whose names start with `prefix`, every page a conditional request. */
  async list(target: RunnerTarget, prefix: string): Promise<GitHubRunner[]> {
    const runners = await readAllPages((page) =>
      this.conditional.get(
        target,
        "list runners",
        `runners:${scopeKey(this.scope, target)}:${page}`,
        (o, headers) =>
          this.scope === "org"
            ? o.rest.actions.listSelfHostedRunnersForOrg({ org: target.owner, per_page: PAGE_SIZE, page, headers })
            : o.rest.actions.listSelfHostedRunnersForRepo({ owner: target.owner, repo: target.repo, per_page: PAGE_SIZE, page, headers }),
        (data) => ({ items: data.runners.map(toRunner), count: data.runners.length }),
      ),
    );
    return runners.filter((r) => r.name.startsWith(prefix));
  }
}

interface RestRunner {
  id: number;
  name: string;
  status: string;
  busy: boolean;
  labels: Array<{ name: string }>;
}

function toRunner(r: RestRunner): GitHubRunner {
  return { id: r.id, name: r.name, status: r.status, busy: r.busy, labels: r.labels.map((l) => l.name) };
}
