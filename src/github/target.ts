import type { RunnerScope } from "../config.js";

/** Where a runner is registered: a repository, or its owner organisation for org-scoped runners. */
export interface RunnerTarget {
  owner: string;
  repo: string;
  installationId?: number;
}

/** The URL `config.sh --url` takes for this target's scope. */
export function scopeUrl(scope: RunnerScope, webUrl: string, target: RunnerTarget): string {
  return scope === "org" ? `${webUrl}/${target.owner}` : `${webUrl}/${target.owner}/${target.repo}`;
}

/** Targets with the same key share their runners and their registration token. */
export function scopeKey(scope: RunnerScope, target: RunnerTarget): string {
  return scope === "org" ? target.owner.toLowerCase() : `${target.owner}/${target.repo}`.toLowerCase();
}
