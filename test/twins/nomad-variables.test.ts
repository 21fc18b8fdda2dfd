// The Nomad twin's Variables API against what hashicorp/nomad does (command/agent/
// variable_endpoint.go, nomad/variables_endpoint.go, nomad/state/state_store_variables.go,
// acl/acl.go AllowVariableOperation): CAS and its 409 body, ModifyIndex, prefix listing, ACLs.

import { afterEach, describe, expect, it, vi } from "vitest";
import { NomadTwin } from "./nomad.js";
import { api } from "./nomad-fakes.js";

let twin: NomadTwin | undefined;
afterEach(async () => {
  await twin?.close();
  twin = undefined;
});

const start = async (acl = false) => {
  twin = await NomadTwin.start({ images: () => undefined, acl });
  return twin;
};

interface Var {
  Namespace: string;
  Path: string;
  CreateIndex: number;
  ModifyIndex: number;
  CreateTime: number;
  ModifyTime: number;
  Items?: Record<string, string>;
}

describe("Nomad twin: variables", () => {
  it("creates, reads, updates with CAS, answers 409 with the current variable, and deletes", async () => {
    const t = await start();
    const created = await api(t, "PUT", "/v1/var/app/slots?cas=0", { Items: { a: "1" } });
    expect(created.status, created.text).toBe(200);
    const v1 = created.json<Var>();
    expect(v1).toMatchObject({ Namespace: "default", Path: "app/slots", Items: { a: "1" } });
    expect(v1.CreateIndex).toBe(v1.ModifyIndex);
    expect(created.headers.get("x-nomad-index")).toBe(String(v1.ModifyIndex));

    // cas=0 means "only if absent".
    const again = await api(t, "PUT", "/v1/var/app/slots?cas=0", { Items: { a: "2" } });
    expect(again.status).toBe(409);
    expect(again.json<Var>()).toMatchObject({ Path: "app/slots", ModifyIndex: v1.ModifyIndex, Items: { a: "1" } });
    expect(again.headers.get("x-nomad-index")).toBe(String(v1.ModifyIndex));

    const updated = await api(t, "PUT", `/v1/var/app/slots?cas=${v1.ModifyIndex}`, { Items: { a: "2" } });
    expect(updated.status).toBe(200);
    const v2 = updated.json<Var>();
    expect(v2.ModifyIndex).toBeGreaterThan(v1.ModifyIndex);
    expect(v2.CreateIndex).toBe(v1.CreateIndex);
    expect(v2.ModifyTime).toBeGreaterThanOrEqual(v1.ModifyTime);

    // A stale index loses: the body is the variable that won.
    const stale = await api(t, "PUT", `/v1/var/app/slots?cas=${v1.ModifyIndex}`, { Items: { a: "3" } });
    expect(stale.status).toBe(409);
    expect(stale.json<Var>()).toMatchObject({ ModifyIndex: v2.ModifyIndex, Items: { a: "2" } });

    // An unchanged write keeps ModifyIndex (varSetTxn, existing.Equal).
    const same = await api(t, "PUT", "/v1/var/app/slots", { Items: { a: "2" } });
    expect(same.json<Var>().ModifyIndex).toBe(v2.ModifyIndex);

    const read = await api(t, "GET", "/v1/var/app/slots");
    expect(read.json<Var>()).toEqual(v2);
    expect(read.headers.get("x-nomad-index")).toBe(String(v2.ModifyIndex));

    // CAS on a missing variable conflicts with a zero value (no Items).
    const missing = await api(t, "PUT", "/v1/var/app/none?cas=7", { Items: { a: "1" } });
    expect(missing.status).toBe(409);
    expect(missing.json()).toEqual({ Namespace: "default", Path: "app/none", CreateIndex: 0, CreateTime: 0, ModifyIndex: 0, ModifyTime: 0 });

    expect((await api(t, "DELETE", `/v1/var/app/slots?cas=${v1.ModifyIndex}`)).status).toBe(409);
    const deleted = await api(t, "DELETE", `/v1/var/app/slots?cas=${v2.ModifyIndex}`);
    expect(deleted.status).toBe(204);
    const gone = await api(t, "GET", "/v1/var/app/slots");
    expect([gone.status, gone.text]).toEqual([404, "variable not found"]);
    // Deleting what is not there is fine.
    expect((await api(t, "DELETE", "/v1/var/app/slots")).status).toBe(204);
  });

  it("validates as Nomad does: Items required, path syntax, reserved nomad/, cas syntax", async () => {
    const t = await start();
    const noItems = await api(t, "PUT", "/v1/var/app/x", { Items: {} });
    expect([noItems.status, noItems.text]).toEqual([400, "variable missing required Items object"]);
    expect((await api(t, "PUT", "/v1/var/app/x.y", { Items: { a: "1" } })).text).toBe('invalid path "app/x.y"');
    expect((await api(t, "PUT", "/v1/var/nomad/other", { Items: { a: "1" } })).status).toBe(400);
    expect((await api(t, "PUT", "/v1/var/nomad/jobs/x", { Items: { a: "1" } })).status).toBe(200);
    expect((await api(t, "PUT", "/v1/var/app/x?cas=abc", { Items: { a: "1" } })).status).toBe(400);
    expect((await api(t, "PUT", "/v1/var/app/x?cas=1&lock-acquire", { Items: { a: "1" } })).text).toBe("CAS can't be used with lock operations");
    expect((await api(t, "PUT", "/v1/var/", { Items: { a: "1" } })).text).toBe("missing variable path");
  });

  it("lists metadata by prefix, sorted by path, in the request's namespace", async () => {
    const t = await start();
    for (const path of ["app/b", "app/a", "other/c"]) await api(t, "PUT", `/v1/var/${path}`, { Items: { k: "v" } });
    const list = await api(t, "GET", "/v1/vars?prefix=app/");
    expect(list.status).toBe(200);
    const items = list.json<Var[]>();
    expect(items.map((v) => v.Path)).toEqual(["app/a", "app/b"]);
    expect(items.every((v) => v.Items === undefined)).toBe(true);
    expect((await api(t, "GET", "/v1/vars?prefix=app/&namespace=elsewhere")).json()).toEqual([]);
  });

  it("enforces the variables block of a namespace rule by path: read, write, list, destroy, closest glob", async () => {
    const t = await start(true);
    const rules = `namespace "default" {
  capabilities = ["list-jobs"]
  variables {
    path "svc/*" { capabilities = ["read", "write", "destroy"] }
    path "svc/secret" { capabilities = ["deny"] }
    path "svc/ro/*" { capabilities = ["read"] }
  }
}`;
    const token = t.createToken(rules, "svc");
    const mgmt = t.managementToken;
    expect((await api(t, "PUT", "/v1/var/svc/a", { Items: { k: "v" } }, token)).status).toBe(200);
    expect((await api(t, "GET", "/v1/var/svc/a", undefined, token)).status).toBe(200);
    // The exact path rule (deny) wins over the glob.
    expect((await api(t, "PUT", "/v1/var/svc/secret", { Items: { k: "v" } }, token)).status).toBe(403);
    // The closest glob: svc/ro/* (read, list implied) beats svc/*.
    expect((await api(t, "PUT", "/v1/var/svc/ro/x", { Items: { k: "v" } }, token)).status).toBe(403);
    expect((await api(t, "PUT", "/v1/var/svc/ro/x", { Items: { k: "v" } }, mgmt)).status).toBe(200);
    expect((await api(t, "GET", "/v1/var/svc/ro/x", undefined, token)).status).toBe(200);
    // Outside the paths, and in another namespace: nothing.
    expect((await api(t, "PUT", "/v1/var/other/a", { Items: { k: "v" } }, token)).status).toBe(403);
    expect((await api(t, "PUT", "/v1/var/svc/a?namespace=elsewhere", { Items: { k: "v" } }, token)).status).toBe(403);
    expect((await api(t, "PUT", "/v1/var/other/b", { Items: { k: "v" } }, mgmt)).status).toBe(200);
    // Listing filters each path by `list` (read implies it): other/b is not listed.
    const listed = await api(t, "GET", "/v1/vars?prefix=", undefined, token);
    expect(listed.json<Var[]>().map((v) => v.Path)).toEqual(["svc/a", "svc/ro/x"]);
    expect((await api(t, "DELETE", "/v1/var/svc/a", undefined, token)).status).toBe(204);
    expect((await api(t, "DELETE", "/v1/var/svc/ro/x", undefined, token)).status).toBe(403);
  });

  it("a CAS conflict for a caller that may write but not read carries no items", async () => {
    const t = await start(true);
    const token = t.createToken('namespace "default" {\n  variables {\n    path "w/*" { capabilities = ["write"] }\n  }\n}');
    expect((await api(t, "PUT", "/v1/var/w/a", { Items: { k: "v" } }, token)).status).toBe(200);
    const conflict = await api(t, "PUT", "/v1/var/w/a?cas=0", { Items: { k: "x" } }, token);
    expect(conflict.status).toBe(409);
    expect(conflict.json<Var>().Items).toBeUndefined();
    expect(conflict.json<Var>().ModifyIndex).toBeGreaterThan(0);
  });

  it("locks: acquire (defaults, ID), a held lock conflicts, renew and release need the ID, writes need it too", async () => {
    const t = await start(true);
    const mgmt = t.managementToken;
    const token = t.createToken('namespace "default" {\n  variables {\n    path "locks/*" { capabilities = ["read", "write", "destroy"] }\n  }\n}');
    const acquired = await api(t, "PUT", "/v1/var/locks/leader?lock-acquire", { Items: { who: "a" } }, token);
    expect(acquired.status, acquired.text).toBe(200);
    const lock = acquired.json<{ Lock: { ID: string; TTL: string; LockDelay: string } }>().Lock;
    expect(lock).toMatchObject({ TTL: "15s", LockDelay: "15s" });
    expect(lock.ID).toMatch(/^[0-9a-f-]{36}$/);
    // Held: another acquire conflicts with a zero value.
    const second = await api(t, "PUT", "/v1/var/locks/leader?lock-acquire", { Lock: { TTL: "10s" } }, token);
    expect(second.status).toBe(409);
    expect(second.json()).toEqual({ Namespace: "default", Path: "locks/leader", CreateIndex: 0, CreateTime: 0, ModifyIndex: 0, ModifyTime: 0 });
    // Reads hide the lock from a client token, not from a management one.
    expect((await api(t, "GET", "/v1/var/locks/leader", undefined, token)).json<{ Lock?: unknown }>().Lock).toBeUndefined();
    expect((await api(t, "GET", "/v1/var/locks/leader", undefined, mgmt)).json<{ Lock?: { ID: string } }>().Lock?.ID).toBe(lock.ID);
    // A plain write or delete without the lock's ID conflicts; with it, it goes through.
    expect((await api(t, "PUT", "/v1/var/locks/leader", { Items: { who: "b" } }, token)).status).toBe(409);
    expect((await api(t, "DELETE", "/v1/var/locks/leader", undefined, token)).status).toBe(409);
    expect((await api(t, "PUT", "/v1/var/locks/leader", { Items: { who: "a2" }, Lock: { ID: lock.ID } }, token)).status).toBe(200);
    expect((await api(t, "PUT", "/v1/var/locks/leader", { Items: { who: "a2" }, Lock: { ID: lock.ID, TTL: "20s" } }, token)).text).toBe(
      "variable should not contain lock definition",
    );
    // Renew: only its holder.
    expect((await api(t, "PUT", "/v1/var/locks/leader?lock-renew", { Lock: { ID: "other" } }, token)).status).toBe(409);
    const renewed = await api(t, "PUT", "/v1/var/locks/leader?lock-renew", { Lock: { ID: lock.ID } }, token);
    expect(renewed.status).toBe(200);
    expect(renewed.json<{ Lock: { ID: string } }>().Lock.ID).toBe(lock.ID);
    // Release: not with items, not with another ID; then the items stay and the lock is gone.
    expect((await api(t, "PUT", "/v1/var/locks/leader?lock-release", { Items: { x: "1" }, Lock: { ID: lock.ID } }, token)).status).toBe(400);
    expect((await api(t, "PUT", "/v1/var/locks/leader?lock-release", { Lock: { ID: "other" } }, token)).status).toBe(409);
    const released = await api(t, "PUT", "/v1/var/locks/leader?lock-release", { Lock: { ID: lock.ID } }, token);
    expect(released.status).toBe(200);
    const after = (await api(t, "GET", "/v1/var/locks/leader", undefined, mgmt)).json<{ Lock?: unknown; Items: Record<string, string> }>();
    expect(after.Lock).toBeUndefined();
    expect(after.Items).toEqual({ who: "a2" });
    expect((await api(t, "PUT", "/v1/var/locks/leader?lock-release", { Lock: { ID: lock.ID } }, token)).text).toBe("variable doesn't hold a lock");
    expect((await api(t, "PUT", "/v1/var/locks/none?lock-renew", { Lock: { ID: lock.ID } }, token)).text).toBe("variable doesn't exist");
    expect((await api(t, "PUT", "/v1/var/locks/x?lock-acquire", { Lock: { TTL: "5s" } }, token)).status).toBe(400);
    expect((await api(t, "PUT", "/v1/var/locks/x?lock-acquire&lock-renew", {}, token)).text).toBe("multiple lock operations");
  });

  it("locks: unrenewed, a lock outlives twice its TTL, then LockDelay, and only then can be taken again", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    try {
      const t = await start();
      const first = await api(t, "PUT", "/v1/var/locks/l?lock-acquire", { Lock: { TTL: "10s", LockDelay: "5s" } });
      const id = first.json<{ Lock: { ID: string } }>().Lock.ID;
      vi.advanceTimersByTime(19_000);
      expect((await api(t, "PUT", "/v1/var/locks/l?lock-renew", { Lock: { ID: id } })).status).toBe(200);
      vi.advanceTimersByTime(20_500); // the timer fired (2 x TTL after the renewal): no more renewals
      expect((await api(t, "PUT", "/v1/var/locks/l?lock-renew", { Lock: { ID: id } })).text).toBe("attempting to modify locked variable");
      // Still held during LockDelay.
      expect((await api(t, "PUT", "/v1/var/locks/l?lock-acquire", {})).status).toBe(409);
      vi.advanceTimersByTime(5_000);
      expect((await api(t, "PUT", "/v1/var/locks/l?lock-acquire", {})).status).toBe(200);
    } finally {
      vi.useRealTimers();
    }
  });
});
