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
//   nomad/locks.go                      a lock's TTL timer runs for twice the TTL; once it fires,
//                                       LockDelay passes before the lock is removed from the
//                                       variable (until then nobody else can acquire it); renew
//                                       resets the timer and fails once it has fired
//   nomad/state VarLockAcquire/Release  acquire overwrites the variable, items included; release
//                                       keeps the items; a locked variable is written or deleted
//                                       only with its lock's ID (isLocked)

import { randomUUID } from "node:crypto";
import type { AclSubject } from "./nomad-acl.js";
import { HclError, parseGoDuration } from "./nomad-hcl.js";
import { type Call, decodeBody, jsonReply, plainText, queryHeaders, queryReply, type Reply } from "./nomad-http-util.js";
import { NomadError } from "./nomad-server.js";
import { type NomadState, nowNanos } from "./nomad-state.js";
import type { JsonObject } from "./nomad-types.js";

/** structs.VariableLock, durations in nanoseconds as Go keeps them. */
export interface TwinLock {
  ID: string;
  TTL: number;
  LockDelay: number;
}

/** structs.VariableDecrypted; its Lock is encoded with duration strings (VariableLock.MarshalJSON). */
export interface TwinVariable {
  Namespace: string;
  Path: string;
  Lock?: TwinLock;
  CreateIndex: number;
  CreateTime: number;
  ModifyIndex: number;
  ModifyTime: number;
  Items?: Record<string, string>;
}

/** structs defaultLockTTL, defaultLockDelay, minVariableLockTTL, maxVariableLockTTL (ns). */
const SECOND_NS = 1e9;
const DEFAULT_LOCK_TTL_NS = 15 * SECOND_NS;
const DEFAULT_LOCK_DELAY_NS = 15 * SECOND_NS;
const MIN_LOCK_TTL_NS = 10 * SECOND_NS;
const MAX_LOCK_TTL_NS = 24 * 3600 * SECOND_NS;

/** time.Duration.String for the whole-millisecond durations locks use. */
export function goDuration(ns: number): string {
  if (ns === 0) return "0s";
  if (ns < SECOND_NS) return `${ns / 1e6}ms`;
  const totalSeconds = ns / SECOND_NS;
  const h = Math.floor(totalSeconds / 3600);
  const m = Math.floor((totalSeconds % 3600) / 60);
  const sec = Number((totalSeconds % 60).toFixed(9));
  if (h > 0) return `${h}h${m}m${sec}s`;
  if (m > 0) return `${m}m${sec}s`;
  return `${sec}s`;
}

/** The variable as the API answers it: the Lock's durations as strings, empty ones as "". */
function encoded(v: TwinVariable, withLock: boolean): JsonObject {
  const { Lock, ...rest } = v;
  const out: JsonObject = { ...rest } as JsonObject;
  if (withLock && Lock) out.Lock = { ID: Lock.ID, TTL: Lock.TTL ? goDuration(Lock.TTL) : "", LockDelay: Lock.LockDelay ? goDuration(Lock.LockDelay) : "" };
  // Field order as Go encodes the struct: Namespace, Path, Lock, indexes and times, Items.
  return Object.fromEntries(
    ["Namespace", "Path", "Lock", "CreateIndex", "CreateTime", "ModifyIndex", "ModifyTime", "Items"].filter((k) => k in out).map((k) => [k, out[k]]),
  ) as JsonObject;
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
    lockId?: string,
  ): { ok: TwinVariable; index: number } | { conflict: TwinVariable } {
    const index = this.state.write(() => undefined);
    const existing = this.vars.get(key(namespace, path));
    if (cas !== undefined) {
      if (cas === 0 && existing) return { conflict: structuredClone(existing) };
      if (cas !== 0 && !existing) return { conflict: zeroValue(namespace, path) };
      if (existing && existing.ModifyIndex !== cas) return { conflict: structuredClone(existing) };
    }
    return this.setTxn(namespace, path, items, index, lockId, existing?.Lock);
  }

  /** varSetTxn: a locked variable only with its lock's ID; the lock is kept (or set, for acquire). */
  private setTxn(
    namespace: string,
    path: string,
    items: Record<string, string>,
    index: number,
    lockId: string | undefined,
    lock: TwinLock | undefined,
  ): { ok: TwinVariable; index: number } | { conflict: TwinVariable } {
    const existing = this.vars.get(key(namespace, path));
    if (existing?.Lock && existing.Lock.ID !== lockId) return { conflict: zeroValue(namespace, path) };
    // An unchanged write keeps its ModifyIndex and ModifyTime (varSetTxn, existing.Equal).
    if (existing && sameItems(existing.Items, items) && sameLock(existing.Lock, lock)) return { ok: structuredClone(existing), index };
    const now = nowNanos();
    const written: TwinVariable = {
      Namespace: namespace,
      Path: path,
      ...(lock && { Lock: { ...lock } }),
      CreateIndex: existing?.CreateIndex ?? index,
      CreateTime: existing?.CreateTime ?? now,
      ModifyIndex: index,
      ModifyTime: now,
      ...(Object.keys(items).length > 0 && { Items: { ...items } }),
    };
    this.vars.set(key(namespace, path), written);
    this.tableIndex = index;
    return { ok: structuredClone(written), index };
  }

  /** VarDelete / VarDeleteCAS (svDeleteCASTxn): CAS 0 means "only if absent"; a locked variable conflicts. */
  delete(namespace: string, path: string, cas: number | undefined): { ok: number } | { conflict: TwinVariable } {
    const index = this.state.write(() => undefined);
    const existing = this.vars.get(key(namespace, path));
    if (cas !== undefined) {
      if (cas === 0 && !existing) return { ok: index };
      if (cas !== 0 && !existing) return { conflict: zeroValue(namespace, path) };
      if (existing && existing.ModifyIndex !== cas) return { conflict: structuredClone(existing) };
    }
    if (existing?.Lock) return { conflict: zeroValue(namespace, path) };
    if (existing) {
      this.vars.delete(key(namespace, path));
      this.tableIndex = index;
    }
    return { ok: index };
  }

  // -------------------------------------------------------------------------------------------
  // Locks

  /** TTL timers by variable (Server.lockTTLTimer): present while the lock may still be renewed. */
  private readonly ttlTimers = new Map<string, NodeJS.Timeout>();
  private readonly delayTimers = new Set<NodeJS.Timeout>();

  /** VarLockAcquire: a lock held by another ID conflicts (zero value); otherwise the variable is overwritten. */
  acquire(namespace: string, path: string, items: Record<string, string>, lock: TwinLock): { ok: TwinVariable; index: number } | { conflict: TwinVariable } {
    const index = this.state.write(() => undefined);
    const result = this.setTxn(namespace, path, items, index, lock.ID, lock);
    if ("ok" in result) this.startTtlTimer(result.ok);
    return result;
  }

  /** Variables.RenewLock: the holder's ID, and a TTL timer that has not fired. */
  renew(namespace: string, path: string, lockId: string): TwinVariable {
    const existing = this.vars.get(key(namespace, path));
    if (!existing) throw new NomadError(404, "variable doesn't exist");
    if (!existing.Lock) throw new NomadError(409, "variable doesn't hold a lock");
    if (existing.Lock.ID !== lockId || !this.ttlTimers.has(key(namespace, path))) throw new NomadError(409, "attempting to modify locked variable");
    this.startTtlTimer(existing);
    return structuredClone(existing);
  }

  /** VarLockRelease: the items stay, the lock goes, at a new index. */
  release(namespace: string, path: string, lockId: string): { ok: TwinVariable; index: number } | { conflict: TwinVariable } {
    const index = this.state.write(() => undefined);
    const existing = this.vars.get(key(namespace, path));
    if (!existing) throw new NomadError(404, "variable doesn't exist");
    if (!existing.Lock || existing.Lock.ID === "") throw new NomadError(409, "variable doesn't hold a lock");
    if (existing.Lock.ID !== lockId) return { conflict: { ...zeroValue(namespace, path), Lock: { ID: "", TTL: 0, LockDelay: 0 } } };
    this.unlock(existing, index);
    clearTimeout(this.ttlTimers.get(key(namespace, path)));
    this.ttlTimers.delete(key(namespace, path));
    return { ok: structuredClone(this.vars.get(key(namespace, path))!), index };
  }

  /** Server shutdown: no timer outlives the twin. */
  stopTimers(): void {
    for (const t of this.ttlTimers.values()) clearTimeout(t);
    for (const t of this.delayTimers) clearTimeout(t);
    this.ttlTimers.clear();
    this.delayTimers.clear();
  }

  /** CreateVariableLockTTLTimer / RenewTTLTimer: twice the TTL, then LockDelay, then the lock goes. */
  private startTtlTimer(v: TwinVariable): void {
    const k = key(v.Namespace, v.Path);
    const lock = v.Lock!;
    clearTimeout(this.ttlTimers.get(k));
    const ttl = setTimeout(
      () => {
        this.ttlTimers.delete(k);
        const delay = setTimeout(() => {
          this.delayTimers.delete(delay);
          const current = this.vars.get(k);
          if (current?.Lock?.ID === lock.ID)
            this.unlock(
              current,
              this.state.write(() => undefined),
            );
        }, lock.LockDelay / 1e6);
        this.delayTimers.add(delay);
      },
      (2 * lock.TTL) / 1e6,
    );
    this.ttlTimers.set(k, ttl);
  }

  private unlock(v: TwinVariable, index: number): void {
    const { Lock: _lock, ...rest } = v;
    this.vars.set(key(v.Namespace, v.Path), { ...rest, ModifyIndex: index });
    this.tableIndex = index;
  }
}

function sameLock(a: TwinLock | undefined, b: TwinLock | undefined): boolean {
  if (!a || !b) return a === b;
  return a.ID === b.ID && a.TTL === b.TTL && a.LockDelay === b.LockDelay;
}

function zeroValue(namespace: string, path: string): TwinVariable {
  return { Namespace: namespace, Path: path, CreateIndex: 0, CreateTime: 0, ModifyIndex: 0, ModifyTime: 0 };
}

function metadata(v: TwinVariable): TwinVariable {
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
function conflictReply(conflict: TwinVariable, canRead: boolean, management: boolean): Reply {
  const body = encoded(canRead ? conflict : metadata(conflict), management || conflict.Lock?.ID === "");
  return { status: 409, body: JSON.stringify(body), headers: { "content-type": "application/json", "x-nomad-index": String(conflict.ModifyIndex) } };
}

/** `GET /v1/vars?prefix=`: metadata only, each path filtered by the `list` capability. */
export function listVariables(call: Call, store: VariableStore, subject: AclSubject): Reply {
  if (call.method !== "GET") throw new NomadError(405, "Invalid method");
  const prefix = call.query.get("prefix") ?? "";
  const visible = store.list(call.namespace, prefix).filter((v) => subject.allowVariable(v.Namespace, v.Path, "list"));
  // The lock only for a management token (Variables.List).
  return queryReply(
    visible.map((v) => encoded(metadata(v), subject.management)),
    Math.max(1, store.tableIndex),
  );
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
      return queryReply(encoded(found, subject.management), found.ModifyIndex);
    }
    case "PUT":
    case "POST":
      return upsert(call, path, store, subject);
    case "DELETE": {
      const cas = parseCas(call);
      if (!subject.allowVariable(call.namespace, path, "destroy")) deny();
      const result = store.delete(call.namespace, path, cas);
      if ("conflict" in result) return conflictReply(result.conflict, subject.allowVariable(call.namespace, path, "read"), subject.management);
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
  const body: JsonObject = decodeBody(call);
  const lockOp = locking[0];
  if (lockOp) return lockOperation(call, path, lockOp, body, store, subject);
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
  // A plain write may name the lock it holds, but not define one (errLockOnVarCreation).
  const lock = parseLock(body.Lock);
  if (lock && (lock.TTL !== 0 || lock.LockDelay !== 0)) throw new NomadError(400, "variable should not contain lock definition");
  validateVariablePath(path);
  const result = store.set(namespace, path, strings, cas, lock?.ID);
  if ("conflict" in result) return conflictReply(result.conflict, subject.allowVariable(namespace, path, "read"), subject.management);
  // The header is the write's raft index, the body the variable as stored (its lock for its holder).
  const owner = lock?.ID !== undefined && lock.ID !== "" && result.ok.Lock?.ID === lock.ID;
  return jsonReply(encoded(result.ok, owner || subject.management), { "x-nomad-index": String(result.index) });
}

/** VariableLock.UnmarshalJSON: durations as strings ("15s") or nanoseconds. */
function parseLock(value: unknown): TwinLock | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "object" || Array.isArray(value)) throw new NomadError(400, "json: cannot unmarshal Lock");
  const raw = value as Record<string, unknown>;
  const duration = (v: unknown): number => {
    if (typeof v === "number") return v;
    if (typeof v !== "string" || v === "") return 0;
    try {
      return parseGoDuration(v);
    } catch (err) {
      if (err instanceof HclError) throw new NomadError(400, `time: invalid duration ${JSON.stringify(v)}`);
      throw err;
    }
  };
  return { ID: typeof raw.ID === "string" ? raw.ID : "", TTL: duration(raw.TTL), LockDelay: duration(raw.LockDelay) };
}

/** `?lock-acquire`, `?lock-renew`, `?lock-release` (variableLockOperation, variableLockRenew). */
function lockOperation(call: Call, path: string, op: string, body: JsonObject, store: VariableStore, subject: AclSubject): Reply {
  const namespace = call.namespace;
  // All three need write (hasOperationPermissions; RenewLock checks write too).
  if (!subject.allowVariable(namespace, path, "write")) deny();
  const lock = parseLock(body.Lock);
  const items = typeof body.Items === "object" && body.Items !== null && !Array.isArray(body.Items) ? (body.Items as Record<string, string>) : undefined;
  if (op === "lock-renew") {
    const renewed = store.renew(namespace, path, lock?.ID ?? "");
    return jsonReply(encoded(metadata(renewed), true));
  }
  if (op === "lock-release") {
    if (!lock || lock.ID === "") throw new NomadError(400, "missing lock information");
    if (items !== undefined) throw new NomadError(400, "lock release operation doesn't take variable items");
    validateVariablePath(path);
    const result = store.release(namespace, path, lock.ID);
    if ("conflict" in result) return conflictReply(result.conflict, subject.allowVariable(namespace, path, "read"), true);
    return jsonReply(encoded(metadata(result.ok), false), { "x-nomad-index": String(result.index) });
  }
  // Acquire: defaults filled (VariableLock.Canonicalize), then ValidateForLock.
  const wanted: TwinLock = {
    ID: lock?.ID || randomUUID(),
    TTL: lock?.TTL || DEFAULT_LOCK_TTL_NS,
    LockDelay: lock?.LockDelay || DEFAULT_LOCK_DELAY_NS,
  };
  if (wanted.TTL < 0 || wanted.LockDelay < 0) throw new NomadError(400, "1 error occurred:\n\t* Lock delay and TTL must be positive\n\n");
  if (wanted.TTL > MAX_LOCK_TTL_NS || wanted.TTL < MIN_LOCK_TTL_NS)
    throw new NomadError(400, "1 error occurred:\n\t* TTL must be between 10 seconds and 24 hours\n\n");
  const strings = items ? Object.fromEntries(Object.entries(items).map(([k, v]) => [k, String(v)])) : {};
  if (itemsSize(strings) > MAX_VARIABLE_SIZE) throw new NomadError(400, "variables are limited to 64KiB in total size");
  validateVariablePath(path);
  const result = store.acquire(namespace, path, strings, wanted);
  if ("conflict" in result) return conflictReply(result.conflict, subject.allowVariable(namespace, path, "read"), subject.management);
  return jsonReply(encoded(result.ok, true), { "x-nomad-index": String(result.index) });
}
