import type { Octokits } from "./auth.js";

export type GitHubIdentity =
  | { kind: "token"; login: string; scopes: string[] | undefined }
  | { kind: "app"; slug: string; installations: Array<{ id: number; account: string; permissions: Record<string, string> }> };

/**
 * Who our credentials are and what they may do (doctor). A PAT reports its OAuth scopes
 * (fine-grained tokens report none); an App reports each installation's permissions.
 */
export async function identity(octokits: Octokits): Promise<GitHubIdentity> {
  const auth = octokits.auth;
  if (auth.kind === "token") {
    const res = await octokits.call({ owner: "", repo: "" }, "read authenticated user", (o) => o.rest.users.getAuthenticated());
    const header = res.headers["x-oauth-scopes"];
    return { kind: "token", login: res.data.login, scopes: header === undefined ? undefined : String(header).split(/,\s*/).filter(Boolean) };
  }
  return octokits.callApp("read GitHub App", async (app) => {
    const me = await app.rest.apps.getAuthenticated();
    const installations = await app.paginate(app.rest.apps.listInstallations, { per_page: 100 });
    return {
      kind: "app",
      slug: me.data?.slug ?? String(auth.appId),
      installations: installations.map((i) => ({
        id: i.id,
        account: accountName(i.account) ?? String(i.id),
        permissions: Object.fromEntries(
          Object.entries(i.permissions as Record<string, unknown>).filter((e): e is [string, string] => typeof e[1] === "string"),
        ),
      })),
    };
  });
}

function accountName(account: unknown): string | undefined {
  const a = account as { login?: string; name?: string; slug?: string } | null | undefined;
  return a?.login ?? a?.slug ?? a?.name;
}
