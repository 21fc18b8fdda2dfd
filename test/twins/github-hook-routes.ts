// Organization and repository webhooks, as api.github.com serves them: listing the hooks, their
// deliveries and redelivering one. These are how a PAT setup finds its own failed deliveries (an
// App has /app/hook/deliveries). The shapes are the OpenAPI's `org-hook` and `hook` schemas;
// every reply is validated against the spec like all twin routes (github-http.ts).

import type { Reply, RestDependencies, Route, RouteContext } from "./github-rest.js";
import { deliveryPage, isReply, notFound } from "./github-rest.js";
import type { WebhookHook } from "./github-webhooks.js";

const ORG_DOCS = "https://docs.github.com/rest/orgs/webhooks";
const REPO_DOCS = "https://docs.github.com/rest/repos/webhooks";

/** Where a hook lives: its REST base (`/orgs/{org}` or `/repos/{owner}/{repo}`) and its hooks. */
interface HookScope {
  base: string;
  hooks: WebhookHook[];
}

export function hookRoutes(deps: RestDependencies): Route[] {
  const orgScope = (ctx: RouteContext, docs: string): HookScope | Reply => {
    const org = deps.state.findOrg(ctx.params["org"] ?? "");
    if (!org) return notFound(docs);
    const principal = ctx.principal;
    if (principal.kind === "installation" && principal.installation.account.id !== org.id) return notFound(docs);
    const login = org.login.toLowerCase();
    return { base: `/orgs/${org.login}`, hooks: deps.webhooks.hooks.filter((h) => h.org === login) };
  };
  const repoScope = (ctx: RouteContext, docs: string): HookScope | Reply => {
    const repo = deps.state.findRepo(ctx.params["owner"] ?? "", ctx.params["repo"] ?? "");
    if (!repo) return notFound(docs);
    const principal = ctx.principal;
    // GitHub hides repositories the caller cannot see.
    if (principal.kind === "installation" && !principal.repoIds.has(repo.id)) return notFound(docs);
    const name = repo.fullName.toLowerCase();
    return { base: `/repos/${repo.fullName}`, hooks: deps.webhooks.hooks.filter((h) => h.repo === name) };
  };
  const kinds = [
    {
      scopeOf: orgScope,
      template: "/orgs/{org}/hooks",
      docs: ORG_DOCS,
      where: "an-organization-webhook",
      list: "list-organization-webhooks",
      permission: "organization_hooks",
      type: "Organization" as const,
    },
    {
      scopeOf: repoScope,
      template: "/repos/{owner}/{repo}/hooks",
      docs: REPO_DOCS,
      where: "a-repository-webhook",
      list: "list-repository-webhooks",
      permission: "repository_hooks",
      type: "Repository" as const,
    },
  ];
  const routes: Route[] = [];
  for (const kind of kinds) {
    const listDocs = `${kind.docs}#${kind.list}`;
    const deliveriesDocs = `${kind.docs}#list-deliveries-for-${kind.where}`;
    const redeliverDocs = `${kind.docs}#redeliver-a-delivery-for-${kind.where}`;
    const read = { name: kind.permission, level: "read" as const };
    const write = { name: kind.permission, level: "write" as const };
    const hookIn = (ctx: RouteContext, docs: string): { scope: HookScope; hook: WebhookHook } | Reply => {
      const scope = kind.scopeOf(ctx, docs);
      if (isReply(scope)) return scope;
      const hook = scope.hooks.find((h) => h.id === Number(ctx.params["hook_id"]));
      return hook ? { scope, hook } : notFound(docs);
    };
    routes.push(
      {
        // orgs/list-webhooks, repos/list-webhooks
        method: "GET",
        template: kind.template,
        docs: listDocs,
        auth: "token",
        permission: read,
        handle: (ctx) => {
          const scope = kind.scopeOf(ctx, listDocs);
          if (isReply(scope)) return scope;
          return { status: 200, body: scope.hooks.map((h) => hookShape(deps, scope.base, h, kind.type)) };
        },
      },
      {
        // orgs/list-webhook-deliveries, repos/list-webhook-deliveries
        method: "GET",
        template: `${kind.template}/{hook_id}/deliveries`,
        docs: deliveriesDocs,
        auth: "token",
        permission: read,
        handle: (ctx) => {
          const found = hookIn(ctx, deliveriesDocs);
          return isReply(found) ? found : deliveryPage(deps.webhooks.forHook(found.hook.id), ctx, deliveriesDocs);
        },
      },
      {
        // orgs/redeliver-webhook-delivery, repos/redeliver-webhook-delivery: accepted at once,
        // redelivered in the background like on GitHub.
        method: "POST",
        template: `${kind.template}/{hook_id}/deliveries/{delivery_id}/attempts`,
        docs: redeliverDocs,
        auth: "token",
        permission: write,
        handle: (ctx) => {
          const found = hookIn(ctx, redeliverDocs);
          if (isReply(found)) return found;
          const delivery = deps.webhooks.forHook(found.hook.id).find((d) => d.id === Number(ctx.params["delivery_id"]));
          if (!delivery) return notFound(redeliverDocs);
          void deps.webhooks.redeliver(delivery.id);
          return { status: 202, body: {} };
        },
      },
    );
  }
  return routes;
}

/** The `org-hook` or `hook` representation (GitHub masks the secret). */
function hookShape(deps: RestDependencies, base: string, hook: WebhookHook, type: "Organization" | "Repository") {
  const url = `${deps.shapes.urls.api}${base}/hooks/${hook.id}`;
  const shape: Record<string, unknown> = {
    type,
    id: hook.id,
    name: "web",
    active: true,
    events: ["workflow_job"],
    config: { url: hook.url, content_type: "json", insecure_ssl: "0", secret: "********" },
    updated_at: hook.createdAt,
    created_at: hook.createdAt,
    url,
    ping_url: `${url}/pings`,
    deliveries_url: `${url}/deliveries`,
  };
  if (type === "Repository") {
    shape["test_url"] = `${url}/test`;
    shape["last_response"] = { code: null, status: "unused", message: null };
  }
  return shape;
}
