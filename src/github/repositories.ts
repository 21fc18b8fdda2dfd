import type { Octokits } from "./auth.js";
import { hasStatus } from "./errors.js";
import type { RunnerTarget } from "./target.js";

/** The repositories of an organisation or user (ALLOWED_OWNERS with a PAT), archived ones left out. */
export async function listOwnerRepos(octokits: Octokits, owner: string): Promise<RunnerTarget[]> {
  const probe = { owner, repo: "" };
  const list = async (kind: "org" | "user") =>
    octokits.call(probe, `list repositories of ${owner}`, (o) =>
      kind === "org"
        ? o.paginate(o.rest.repos.listForOrg, { org: owner, per_page: 100 })
        : o.paginate(o.rest.repos.listForUser, { username: owner, per_page: 100 }),
    );
  let repos;
  try {
    repos = await list("org");
  } catch (err) {
    if (!hasStatus(err, 404)) throw err;
    repos = await list("user");
  }
  return repos.filter((r) => !r.archived).map((r) => ({ owner: r.owner.login, repo: r.name }));
}

/** Every repository the App's installations can access (App auth only). */
export async function listInstallationRepos(octokits: Octokits): Promise<RunnerTarget[]> {
  if (octokits.auth.kind !== "app") return [];
  const installations = await octokits.callApp("list installations", (app) => app.paginate(app.rest.apps.listInstallations, { per_page: 100 }));
  const targets: RunnerTarget[] = [];
  for (const installation of installations) {
    const probe = { owner: "", repo: "", installationId: installation.id };
    const repos = await octokits.call(probe, "list installation repositories", (o) =>
      o.paginate(o.rest.apps.listReposAccessibleToInstallation, { per_page: 100 }),
    );
    for (const repo of repos) targets.push({ owner: repo.owner.login, repo: repo.name, installationId: installation.id });
  }
  return targets;
}
