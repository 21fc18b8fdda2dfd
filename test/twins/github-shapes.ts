// JSON representations of the twin's state, shaped like api.github.com responses (the field sets
// the OpenAPI requires: simple-user, full-repository, runner, job, workflow-run, installation,
// integration). Webhook payloads reuse them.

import type { Account, App, GitHubState, Installation, Job, Repo, Run, Runner } from "./github-model.js";
import { DEFAULT_RUNNER_GROUP, isoSeconds } from "./github-model.js";

export type JsonObject = { [key: string]: unknown };

export interface TwinUrls {
  /** REST API base, e.g. http://127.0.0.1:1234/api/v3 */
  api: string;
  /** Web host for html_url, runner scope URLs and the runner services, e.g. http://127.0.0.1:1234 */
  web: string;
}

/**
 * Where a runner finds the Actions services: on github.com separate hosts (pipelines.actions.
 * githubusercontent.com, broker.actions.githubusercontent.com, vstoken...), on GitHub Enterprise
 * Server paths of the instance's own host (`https://my-ghes/_services/pipelines/...`, as the
 * comment in actions/runner ConfigurationManager.cs shows). The twin serves them on its web host.
 */
export function actionsServiceUrls(urls: TwinUrls) {
  return {
    /** `.runner` ServerUrl (and the runner-registration tenant URL): the run service. */
    pipelines: `${urls.web}/_services/pipelines/`,
    /** `.runner` ServerUrlV2: the broker the listener long-polls. */
    broker: `${urls.web}/_services/broker/`,
    /** `.credentials` authorizationUrl: the OAuth token endpoint. */
    token: `${urls.web}/_services/vstoken/_apis/oauth2/token`,
  };
}

/** What an app may do; installations inherit it, installation tokens may narrow it. */
export const APP_PERMISSIONS: Readonly<Record<string, "read" | "write">> = {
  actions: "read",
  administration: "write",
  metadata: "read",
  organization_self_hosted_runners: "write",
};

/** GitHub's legacy global node IDs: base64 of "<len>:<Type><id>", e.g. MDQ6VXNlcjE= for user 1. */
export function legacyNodeId(type: string, id: number): string {
  return Buffer.from(`${String(type.length).padStart(2, "0")}:${type}${id}`).toString("base64");
}

export class GitHubShapes {
  private readonly labelIds = new Map<string, number>();

  constructor(
    readonly urls: TwinUrls,
    private readonly state: GitHubState,
  ) {}

  simpleUser(account: Account): JsonObject {
    const api = `${this.urls.api}/users/${account.login}`;
    return {
      login: account.login,
      id: account.id,
      node_id: legacyNodeId(account.type, account.id),
      avatar_url: `https://avatars.githubusercontent.com/u/${account.id}?v=4`,
      gravatar_id: "",
      url: api,
      html_url: `${this.urls.web}/${account.login}`,
      followers_url: `${api}/followers`,
      following_url: `${api}/following{/other_user}`,
      gists_url: `${api}/gists{/gist_id}`,
      starred_url: `${api}/starred{/owner}{/repo}`,
      subscriptions_url: `${api}/subscriptions`,
      organizations_url: `${api}/orgs`,
      repos_url: `${api}/repos`,
      events_url: `${api}/events{/privacy}`,
      received_events_url: `${api}/received_events`,
      type: account.type,
      site_admin: false,
    };
  }

  /** `GET /user` for a PAT's owner (private-user). */
  privateUser(account: Account): JsonObject {
    const created = isoSeconds(0);
    return {
      ...this.simpleUser(account),
      user_view_type: "private",
      name: account.login,
      company: null,
      blog: "",
      location: null,
      email: null,
      hireable: null,
      bio: null,
      twitter_username: null,
      notification_email: null,
      public_repos: 0,
      public_gists: 0,
      followers: 0,
      following: 0,
      created_at: created,
      updated_at: created,
      private_gists: 0,
      total_private_repos: [...this.state.repos.values()].filter((r) => r.owner.id === account.id).length,
      owned_private_repos: 0,
      disk_usage: 0,
      collaborators: 0,
      two_factor_authentication: true,
    };
  }

  /** A full-repository object (also satisfies the `repository` and `minimal-repository` schemas). */
  repository(repo: Repo): JsonObject {
    const api = `${this.urls.api}/repos/${repo.fullName}`;
    const html = `${this.urls.web}/${repo.fullName}`;
    const host = new URL(this.urls.web).host;
    return {
      id: repo.id,
      node_id: legacyNodeId("Repository", repo.id),
      name: repo.name,
      full_name: repo.fullName,
      private: true,
      owner: this.simpleUser(repo.owner),
      html_url: html,
      description: null,
      fork: false,
      url: api,
      forks_url: `${api}/forks`,
      keys_url: `${api}/keys{/key_id}`,
      collaborators_url: `${api}/collaborators{/collaborator}`,
      teams_url: `${api}/teams`,
      hooks_url: `${api}/hooks`,
      issue_events_url: `${api}/issues/events{/number}`,
      events_url: `${api}/events`,
      assignees_url: `${api}/assignees{/user}`,
      branches_url: `${api}/branches{/branch}`,
      tags_url: `${api}/tags`,
      blobs_url: `${api}/git/blobs{/sha}`,
      git_tags_url: `${api}/git/tags{/sha}`,
      git_refs_url: `${api}/git/refs{/sha}`,
      trees_url: `${api}/git/trees{/sha}`,
      statuses_url: `${api}/statuses/{sha}`,
      languages_url: `${api}/languages`,
      stargazers_url: `${api}/stargazers`,
      contributors_url: `${api}/contributors`,
      subscribers_url: `${api}/subscribers`,
      subscription_url: `${api}/subscription`,
      commits_url: `${api}/commits{/sha}`,
      git_commits_url: `${api}/git/commits{/sha}`,
      comments_url: `${api}/comments{/number}`,
      issue_comment_url: `${api}/issues/comments{/number}`,
      contents_url: `${api}/contents/{+path}`,
      compare_url: `${api}/compare/{base}...{head}`,
      merges_url: `${api}/merges`,
      archive_url: `${api}/{archive_format}{/ref}`,
      downloads_url: `${api}/downloads`,
      issues_url: `${api}/issues{/number}`,
      pulls_url: `${api}/pulls{/number}`,
      milestones_url: `${api}/milestones{/number}`,
      notifications_url: `${api}/notifications{?since,all,participating}`,
      labels_url: `${api}/labels{/name}`,
      releases_url: `${api}/releases{/id}`,
      deployments_url: `${api}/deployments`,
      created_at: repo.createdAt,
      updated_at: repo.createdAt,
      pushed_at: repo.createdAt,
      git_url: `git://${host}/${repo.fullName}.git`,
      ssh_url: `git@${host}:${repo.fullName}.git`,
      clone_url: `${html}.git`,
      svn_url: html,
      homepage: null,
      size: 0,
      stargazers_count: 0,
      watchers_count: 0,
      language: null,
      has_issues: true,
      has_projects: true,
      has_downloads: true,
      has_wiki: true,
      has_pages: false,
      has_discussions: false,
      forks_count: 0,
      mirror_url: null,
      archived: false,
      disabled: false,
      open_issues_count: 0,
      license: null,
      allow_forking: false,
      is_template: false,
      web_commit_signoff_required: false,
      topics: [],
      visibility: "private",
      forks: 0,
      open_issues: 0,
      watchers: 0,
      default_branch: "main",
      network_count: 0,
      subscribers_count: 0,
    };
  }

  runner(runner: Runner): JsonObject {
    return {
      id: runner.id,
      name: runner.name,
      os: "Linux",
      status: runner.status,
      busy: runner.busy,
      ephemeral: runner.ephemeral,
      runner_group_id: runner.groupId,
      labels: runner.labels.map((name) => ({ id: this.labelId(name), name, type: "custom" })),
    };
  }

  private labelId(name: string): number {
    const key = name.toLowerCase();
    let id = this.labelIds.get(key);
    if (id === undefined) {
      id = this.labelIds.size + 1;
      this.labelIds.set(key, id);
    }
    return id;
  }

  /** A workflow job, as REST returns it and as `workflow_job` webhooks carry it. */
  job(job: Job): JsonObject {
    const repoApi = `${this.urls.api}/repos/${job.run.repo.fullName}`;
    return {
      id: job.id,
      run_id: job.run.id,
      workflow_name: job.run.workflowName,
      head_branch: "main",
      run_url: `${repoApi}/actions/runs/${job.run.id}`,
      run_attempt: 1,
      node_id: `CR_${Buffer.from(`job:${job.id}`).toString("base64url")}`,
      head_sha: job.run.headSha,
      url: `${repoApi}/actions/jobs/${job.id}`,
      html_url: `${this.urls.web}/${job.run.repo.fullName}/actions/runs/${job.run.id}/job/${job.id}`,
      status: job.status,
      conclusion: job.conclusion,
      created_at: job.createdAt,
      started_at: job.startedAt,
      completed_at: job.completedAt,
      name: job.name,
      steps: this.steps(job),
      check_run_url: `${repoApi}/check-runs/${job.id}`,
      labels: [...job.labels],
      runner_id: job.runnerId,
      runner_name: job.runnerName,
      runner_group_id: job.runnerGroupId,
      runner_group_name: job.runnerGroupId === null ? null : DEFAULT_RUNNER_GROUP.name,
    };
  }

  /** Steps appear once a runner reports them: "Set up job" while running, all of them at the end. */
  private steps(job: Job): JsonObject[] {
    if (job.status === "queued" || job.status === "waiting" || job.runnerId === null) return [];
    const step = (number: number, name: string, done: boolean): JsonObject => ({
      name,
      status: done ? "completed" : "in_progress",
      conclusion: done ? (job.conclusion ?? "success") : null,
      number,
      started_at: job.startedAt,
      completed_at: done ? job.completedAt : null,
    });
    if (job.status === "in_progress") return [step(1, "Set up job", false)];
    return [step(1, "Set up job", true), step(2, "Run build", true), step(3, "Complete job", true)];
  }

  workflowRun(run: Run): JsonObject {
    const repoApi = `${this.urls.api}/repos/${run.repo.fullName}`;
    const runApi = `${repoApi}/actions/runs/${run.id}`;
    const { status, conclusion } = this.state.runStatus(run);
    const actor = this.simpleUser(run.repo.owner);
    const workflowId = 1000 + run.repo.id;
    return {
      id: run.id,
      name: run.workflowName,
      node_id: `WFR_${Buffer.from(`run:${run.id}`).toString("base64url")}`,
      head_branch: "main",
      head_sha: run.headSha,
      path: ".github/workflows/ci.yml",
      display_title: "CI",
      run_number: run.runNumber,
      event: "push",
      status,
      conclusion,
      workflow_id: workflowId,
      check_suite_id: run.id + 1,
      check_suite_node_id: `CS_${Buffer.from(`cs:${run.id}`).toString("base64url")}`,
      url: runApi,
      html_url: `${this.urls.web}/${run.repo.fullName}/actions/runs/${run.id}`,
      pull_requests: [],
      created_at: run.createdAt,
      updated_at: run.updatedAt,
      actor,
      triggering_actor: actor,
      run_attempt: 1,
      referenced_workflows: [],
      run_started_at: run.createdAt,
      jobs_url: `${runApi}/jobs`,
      logs_url: `${runApi}/logs`,
      check_suite_url: `${repoApi}/check-suites/${run.id + 1}`,
      artifacts_url: `${runApi}/artifacts`,
      cancel_url: `${runApi}/cancel`,
      rerun_url: `${runApi}/rerun`,
      previous_attempt_url: null,
      workflow_url: `${repoApi}/actions/workflows/${workflowId}`,
      head_commit: {
        id: run.headSha,
        tree_id: run.headSha.split("").reverse().join(""),
        message: "Update CI",
        timestamp: run.createdAt,
        author: { name: run.repo.owner.login, email: `${run.repo.owner.login}@users.noreply.github.com` },
        committer: { name: "GitHub", email: "noreply@github.com" },
      },
      repository: this.repository(run.repo),
      head_repository: this.repository(run.repo),
    };
  }

  installation(installation: Installation): JsonObject {
    const app = installation.appId === undefined ? undefined : this.state.apps.get(installation.appId);
    const accountPath = installation.account.type === "Organization" ? `organizations/${installation.account.login}/` : "";
    return {
      id: installation.id,
      account: this.simpleUser(installation.account),
      repository_selection: "selected",
      access_tokens_url: `${this.urls.api}/app/installations/${installation.id}/access_tokens`,
      repositories_url: `${this.urls.api}/installation/repositories`,
      html_url: `${this.urls.web}/${accountPath}settings/installations/${installation.id}`,
      app_id: installation.appId ?? 0,
      app_slug: app?.slug ?? "",
      client_id: app?.clientId ?? "",
      target_id: installation.account.id,
      target_type: installation.account.type,
      permissions: { ...APP_PERMISSIONS },
      events: ["workflow_job"],
      created_at: installation.createdAt,
      updated_at: installation.createdAt,
      single_file_name: null,
      has_multiple_single_files: false,
      single_file_paths: [],
      suspended_by: null,
      suspended_at: null,
    };
  }

  app(app: App): JsonObject {
    return {
      id: app.id,
      slug: app.slug,
      client_id: app.clientId,
      node_id: legacyNodeId("Integration", app.id),
      owner: this.simpleUser(app.owner),
      name: app.name,
      description: "Dispatches ephemeral self-hosted runners (GitHub twin)",
      external_url: `${this.urls.web}/${app.owner.login}`,
      html_url: `${this.urls.web}/apps/${app.slug}`,
      created_at: app.createdAt,
      updated_at: app.createdAt,
      permissions: { ...APP_PERMISSIONS },
      events: ["workflow_job"],
      installations_count: [...this.state.installations.values()].filter((i) => i.appId === app.id).length,
    };
  }
}
