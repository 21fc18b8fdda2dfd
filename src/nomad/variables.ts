import type { Dispatcher } from "undici";
import { DependencyError } from "../core/errors.js";
import { z } from "../validation.js";
import { type NomadClientOptions, nomadAgent, nomadOk, nomadRequest } from "./http.js";

/** structs.VariableDecrypted / VariableMetadata as the HTTP API sends them (Items omitted when empty or redacted). */
const variableShape = z.object({
  Path: z.string(),
  ModifyIndex: z.number(),
  ModifyTime: z.number(),
  Items: z.optional(z.record(z.string(), z.string())),
});
type VariableWire = z.infer<typeof variableShape>;

export interface Variable {
  path: string;
  items: Record<string, string>;
  modifyIndex: number;
  modifyTimeNs: number;
}

export type VariableMetadata = Omit<Variable, "items">;

/**
 * Nomad Variables (`/v1/var/<path>`, `/v1/vars`) in the service's namespace, for coordinating
 * replicas. Check-and-set is `?cas=<ModifyIndex>`; a lost race is a 409 whose body is the variable
 * that won (hashicorp/nomad command/agent/variable_endpoint.go variableUpsert), or a zero value
 * (ModifyIndex 0) when there is none.
 */
export class NomadVariables {
  private readonly dispatcher: Dispatcher;

  constructor(private readonly opts: NomadClientOptions) {
    this.dispatcher = nomadAgent(opts.tls);
  }

  async read(path: string): Promise<Variable | undefined> {
    const res = await this.call("GET", `/v1/var/${path}`);
    if (res.status === 404) return undefined;
    return toVariable(this.expectOk(res, "GET", path));
  }

  async compareAndSet(path: string, items: Record<string, string>, index: number): Promise<{ written: Variable } | { conflict: Variable | undefined }> {
    const res = await this.call("PUT", `/v1/var/${path}`, { Items: items }, { cas: String(index) });
    if (res.status === 409) {
      const current = parseVariable(res.text, "PUT", path);
      if (current.ModifyIndex === 0) return { conflict: undefined };
      // Without items the token may write but not read the path: the ledger cannot be decided on.
      if (current.Items === undefined)
        throw new DependencyError("nomad", `Nomad PUT /v1/var/${path}: 409 without the variable's items (no read capability)`, 409, false);
      return { conflict: toVariable(current) };
    }
    return { written: toVariable(this.expectOk(res, "PUT", path)) };
  }

  async put(path: string, items: Record<string, string>): Promise<Variable> {
    return toVariable(this.expectOk(await this.call("PUT", `/v1/var/${path}`, { Items: items }), "PUT", path));
  }

  async list(prefix: string): Promise<VariableMetadata[]> {
    const res = await this.call("GET", "/v1/vars", undefined, { prefix });
    const parsed = z.array(variableShape).safeParse(JSON.parse(this.okText(res, "GET", "/v1/vars")));
    if (!parsed.success) throw new DependencyError("nomad", "Nomad GET /v1/vars: unexpected answer", res.status, false);
    return parsed.data.map((v) => ({ path: v.Path, modifyIndex: v.ModifyIndex, modifyTimeNs: v.ModifyTime }));
  }

  async remove(path: string, index?: number): Promise<void> {
    const res = await this.call("DELETE", `/v1/var/${path}`, undefined, index === undefined ? {} : { cas: String(index) });
    // A CAS delete that lost: someone wrote it since; it is theirs now.
    if (res.status === 409) return;
    this.okText(res, "DELETE", path);
  }

  private expectOk(res: { status: number; text: string }, method: string, path: string): VariableWire {
    return parseVariable(this.okText(res, method, path), method, path);
  }

  private okText(res: { status: number; text: string }, method: string, path: string): string {
    return nomadOk(res, method, path);
  }

  private call(method: Dispatcher.HttpMethod, path: string, body?: unknown, query: Record<string, string> = {}): Promise<{ status: number; text: string }> {
    return nomadRequest(this.dispatcher, this.opts, method, path, body, query);
  }
}

function parseVariable(text: string, method: string, path: string): VariableWire {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new DependencyError("nomad", `Nomad ${method} /v1/var/${path}: not JSON`, undefined, false);
  }
  const parsed = variableShape.safeParse(json);
  if (!parsed.success) throw new DependencyError("nomad", `Nomad ${method} /v1/var/${path}: unexpected answer`, undefined, false);
  return parsed.data;
}

function toVariable(v: VariableWire): Variable {
  return { path: v.Path, items: v.Items ?? {}, modifyIndex: v.ModifyIndex, modifyTimeNs: v.ModifyTime };
}
