// Nomad Variables in the twin: the store and the HTTP handlers of `/v1/var/<path>` and `/v1/vars`.
//
// Followed from hashicorp/nomad:
//   command/agent/variable_endpoint.go  routing, `?cas=N`, 400 "variable missing required Items
//                                       object", 409 with the conflicting variable as the body and
//                                       X-Nomad-Index set to its ModifyIndex, DELETE answering 204
//   nomad/variables_endpoint.go         ACL per operation (read / write / destroy, list filtering
//                                       each listed path), conflicts redacted for a caller that
//                                       cannot read, the writer reading its own write
//   nomad/state/state_store_variables.go CAS (0 = only if absent; a missing variable conflicts as a
//                                       zero value), an unchanged write keeping ModifyIndex and
//                                       ModifyTime, CreateIndex/CreateTime kept on update
//   nomad/structs/variables.go          path validation, non-empty Items, 64 KiB limit
// Locks (`?lock-acquire`, `lock-renew`, `lock-release`) are not served: 400, as an unknown
// operation would be, so a caller relying on them finds out.

import type { AclSubject } from "./nomad-acl.js";
import { type Call, decodeBody, jsonReply, plainText, queryHeaders, queryReply, type Reply } from "./nomad-http-util.js";
import { NomadError } from "./nomad-server.js";
import { type NomadState, nowNanos } from "./nomad-state.js";
import type { JsonObject } from "./nomad-types.js";

/** structs.VariableDecrypted as the HTTP API encodes it (Lock omitted: never set here). */
export interface TwinVariable {
  Namespace: string;
  Path: string;
  CreateIndex: number;
  CreateTime: number;
  ModifyIndex: number;
  ModifyTime: number;
  Items?: Record<string, string>;
}

/** structs.validVariablePath */
const VALID_PATH = /^[a-zA-Z0-9-_~/]{1,128}$/;
/** structs.maxVariableSize */
const MAX_VARIABLE_SIZE = 65_536;

/** structs.ValidatePath, including the reserved top-level `nomad/` directory. */
export function validateVariablePath(path: string): void {
  if (path.length === 0) throw new NomadError(400, "variable requires path");
  if (!VALID_PATH.test(path)) throw new NomadError(400, `invalid path ${JSON.stringify(path)}`);
  const parts = path.split("/");
  if (parts[0] !== "nomad") return;
  if (parts.length === 1)
    throw new NomadError(
      400,
      `"nomad" is a reserved top-level directory path, but you may write variables to "nomad/jobs", "nomad/job-templates", "nomad/sentinel", or below`,
    );
  if (parts[1] === "jobs" || parts[1] === "sentinel") return;
  if (parts[1] === "job-templates" && parts.length === 3) return;
  if (parts[1] === "job-templates")
    throw new NomadError(
      400,
      `"nomad/job-templates" is a reserved directory path, but you may write variables at the level below it, for example, "nomad/job-templates/template-name"`,
    );
  throw new NomadError(400, `only paths at "nomad/jobs" or "nomad/job-templates" and below are valid paths under the top-level "nomad" directory`);
}

/** VariableItems.Size: keys and values. */
function itemsSize(items: Record<string, string>): number {
  return Object.entries(items).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
}

function sameItems(a: Record<string, string> | undefined, b: Record<string, string>): boolean {
  if (!a) return false;
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}

function key(namespace: string, path: string): string {
  return `${namespace}\u0000${path}`;
}

/** The variables table, behind the state store's raft index (a write bumps it, as raftApply does). */
export class VariableStore {
  private readonly vars = new Map<string, TwinVariable>();
  /** The table index (`state.TableVariables`) list queries report. */
  tableIndex = 1;

  constructor(private readonly state: NomadState) {}

  get(namespace: string, path: string): TwinVariable | undefined {
    const found = this.vars.get(key(namespace, path));
    return found ? structuredClone(found) : undefined;
  }

  /** GetVariablesByNamespaceAndPrefix: sorted by path, as the memdb index iterates. */
  list(namespace: string, prefix: string): TwinVariable[] {
    return [...this.vars.values()]
      .filter((v) => (namespace === "*" || v.Namespace === namespace) && v.Path.startsWith(prefix))
      .sort((a, b) => (a.Namespace === b.Namespace ? (a.Path < b.Path ? -1 : 1) : a.Namespace < b.Namespace ? -1 : 1))
      .map((v) => structuredClone(v));
  }

  /**
   * VarSet / VarSetCAS. `cas` undefined: an unconditional set. Returns the written variable, or the
   * conflict (the current one, or a zero value when the variable is absent).
   */
  set(
    namespace: string,
    path: string,
    items: Record<string, string>,
    cas: number | undefined,
  ): { ok: TwinVariable; index: number } | { conflict: TwinVariable } {
    const index = this.state.write(() => undefined);
    const existing = this.vars.get(key(namespace, path));
    if (cas !== undefined) {
      if (cas === 0 && existing) return { conflict: structuredClone(existing) };
      if (cas !== 0 && !existing) return { conflict: zeroValue(namespace, path) };
      if (existing && existing.ModifyIndex !== cas) return { conflict: structuredClone(existing) };
    }
    // An unchanged write keeps its ModifyIndex and ModifyTime (varSetTxn, existing.Equal).
    if (existing && sameItems(existing.Items, items)) return { ok: structuredClone(existing), index };
    const now = nowNanos();
    const written: TwinVariable = {
      Namespace: namespace,
      Path: path,
      CreateIndex: existing?.CreateIndex ?? index,
      CreateTime: existing?.CreateTime ?? now,
      ModifyIndex: index,
      ModifyTime: now,
      Items: { ...items },
    };
    this.vars.set(key(namespace, path), written);
    this.tableIndex = index;
    return { ok: structuredClone(written), index };
  }

  /** VarDelete / VarDeleteCAS (svDeleteCASTxn): CAS 0 means "only if absent". */
  delete(namespace: string, path: string, cas: number | undefined): { ok: number } | { conflict: TwinVariable } {
    const index = this.state.write(() => undefined);
    const existing = this.vars.get(key(namespace, path));
    if (cas !== undefined) {
      if (cas === 0 && !existing) return { ok: index };
      if (cas !== 0 && !existing) return { conflict: zeroValue(namespace, path) };
      if (existing && existing.ModifyIndex !== cas) return { conflict: structuredClone(existing) };
    }
    if (existing) {
      this.vars.delete(key(namespace, path));
      this.tableIndex = index;
    }
    return { ok: index };
  }
}

function zeroValue(namespace: string, path: string): TwinVariable {
  return { Namespace: namespace, Path: path, CreateIndex: 0, CreateTime: 0, ModifyIndex: 0, ModifyTime: 0 };
}

function metadata(v: TwinVariable): Omit<TwinVariable, "Items"> {
  const { Items: _items, ...meta } = v;
  return meta;
}

/** parseCAS: present means CAS; not an unsigned integer is 400. */
function parseCas(call: Call): number | undefined {
  const raw = call.query.get("cas");
  if (!raw) return undefined;
  if (!/^\d+$/.test(raw)) throw new NomadError(400, `can not parse cas: strconv.ParseUint: parsing ${JSON.stringify(raw)}: invalid syntax`);
  return Number(raw);
}

function deny(): never {
  throw new NomadError(403, "Permission denied");
}

/** A 409 carrying the conflict: its items only for a caller that may read the path (makeVariablesApplyResponse). */
function conflictReply(conflict: TwinVariable, canRead: boolean): Reply {
  const body = canRead ? conflict : metadata(conflict);
  return { status: 409, body: JSON.stringify(body), headers: { "content-type": "application/json", "x-nomad-index": String(conflict.ModifyIndex) } };
}

/** `GET /v1/vars?prefix=`: metadata only, each path filtered by the `list` capability. */
export function listVariables(call: Call, store: VariableStore, subject: AclSubject): Reply {
  if (call.method !== "GET") throw new NomadError(405, "Invalid method");
  const prefix = call.query.get("prefix") ?? "";
  const visible = store.list(call.namespace, prefix).filter((v) => subject.allowVariable(v.Namespace, v.Path, "list"));
  return queryReply(visible.map(metadata), Math.max(1, store.tableIndex));
}

/** `/v1/var/<path>`: VariableSpecificRequest. */
export function variableSpecific(call: Call, store: VariableStore, subject: AclSubject): Reply {
  const path = call.path.slice("/v1/var/".length);
  if (path.length === 0) throw new NomadError(400, "missing variable path");
  switch (call.method) {
    case "GET": {
      if (!subject.allowVariable(call.namespace, path, "read")) deny();
      const found = store.get(call.namespace, path);
      if (!found) return { status: 404, body: "variable not found", headers: { ...plainText(), ...queryHeaders(Math.max(1, store.tableIndex)) } };
      return queryReply(found, found.ModifyIndex);
    }
    case "PUT":
    case "POST":
      return upsert(call, path, store, subject);
    case "DELETE": {
      const cas = parseCas(call);
      if (!subject.allowVariable(call.namespace, path, "destroy")) deny();
      const result = store.delete(call.namespace, path, cas);
      if ("conflict" in result) return conflictReply(result.conflict, subject.allowVariable(call.namespace, path, "read"));
      return { status: 204, body: "", headers: { "x-nomad-index": String(result.ok) } };
    }
    default:
      throw new NomadError(400, "Invalid method");
  }
}

function upsert(call: Call, path: string, store: VariableStore, subject: AclSubject): Reply {
  const locking = ["lock-acquire", "lock-renew", "lock-release"].filter((op) => call.query.has(op));
  if (locking.length > 1) throw new NomadError(400, "multiple lock operations");
  if (locking.length === 1 && call.query.get("cas")) throw new NomadError(400, "CAS can't be used with lock operations");
  if (locking.length === 1) throw new NomadError(400, "variable locks are not served by the twin");
  const body: JsonObject = decodeBody(call);
  const items = body.Items;
  if (typeof items !== "object" || items === null || Array.isArray(items) || Object.keys(items).length === 0)
    throw new NomadError(400, "variable missing required Items object");
  const cas = parseCas(call);
  // The variable's own Namespace, else the request's (Variables.Apply).
  const namespace = typeof body.Namespace === "string" && body.Namespace !== "" ? body.Namespace : call.namespace;
  if (!subject.allowVariable(namespace, path, "write")) deny();
  if (namespace === "*") throw new NomadError(400, `can not target wildcard ("*")namespace`);
  const strings = Object.fromEntries(
    Object.entries(items).map(([k, v]) => {
      if (typeof v !== "string") throw new NomadError(400, `json: cannot unmarshal ${typeof v} into Go struct field VariableDecrypted.Items of type string`);
      return [k, v];
    }),
  );
  if (itemsSize(strings) > MAX_VARIABLE_SIZE) throw new NomadError(400, "variables are limited to 64KiB in total size");
  validateVariablePath(path);
  const result = store.set(namespace, path, strings, cas);
  if ("conflict" in result) return conflictReply(result.conflict, subject.allowVariable(namespace, path, "read"));
  // The header is the write's raft index, the body the variable as stored.
  return jsonReply(result.ok, { "x-nomad-index": String(result.index) });
}
