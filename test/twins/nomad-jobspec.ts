// HCL2 jobspec -> Nomad API Job JSON, as `POST /v1/jobs/parse` does it (jobspec2.ParseWithConfig).
// The output has Nomad's api.Job layout: PascalCase fields, unset optional fields null, durations
// in nanoseconds, `config` keys kept as written. Canonicalization (api.Job.Canonicalize) is in
// nomad-canonical.ts.

import {
  convertToType,
  diagnostic,
  EMPTY_SCOPE,
  type EvalScope,
  evaluate,
  HclError,
  isObject,
  parseGoDuration,
  parseHcl,
  parseTypeConstraint,
} from "./nomad-hcl.js";
import { type BlockSchema, type FieldKind, JOB } from "./nomad-jobspec-schema.js";
import type { Json, JsonObject } from "./nomad-types.js";

/** Nomad parses request bodies under this name, so its diagnostics say `input.hcl:line,col`. */
const SOURCE_NAME = "input.hcl";

export interface ParseJobInput {
  hcl: string;
  /** HCL variable-file content (`name = value` lines). */
  variables?: string;
  /**
   * Parse as `nomad job run <file>` does (the CLI parses locally with AllowFS, relative to the
   * file's directory); without it, as `/v1/jobs/parse` does (no filesystem functions).
   */
  cli?: { baseDir: string; readFile: (path: string) => string };
}

/** Parses a jobspec; throws HclError whose message is what Nomad puts after `Failed to parse job: `. */
export async function parseJobspec(input: ParseJobInput): Promise<JsonObject> {
  const file = await parseHcl(SOURCE_NAME, input.hcl);
  const assignments = await parseVariableContent(input.variables);
  rejectUnknownTopLevel(file);
  const vars = resolveVariables(file.variable, assignments);
  const scope: EvalScope = { vars, locals: {}, fs: input.cli };
  scope.locals = resolveLocals(file.locals, scope);
  const { label, body } = singleJobBlock(file.job);
  const evaluated = evaluate(body, scope);
  if (!isObject(evaluated)) throw diagnostic("Invalid job block", "A job block must have a body.");
  const job = new BlockDecoder(blockOrder(input.hcl)).decodeBlock(evaluated, JOB, "job");
  // jobspec2's normalizeJob: the block label is the ID and the name unless they are set.
  job.ID ??= label;
  job.Name ??= label;
  return job;
}

async function parseVariableContent(content: string | undefined): Promise<JsonObject> {
  if (!content) return {};
  try {
    return await parseHcl(SOURCE_NAME, content);
  } catch (err) {
    throw new HclError(`unable to parse var content: ${(err as Error).message}`);
  }
}

function rejectUnknownTopLevel(file: JsonObject): void {
  for (const key of Object.keys(file)) {
    if (key !== "job" && key !== "variable" && key !== "locals") {
      throw diagnostic("Unsupported block type", `Blocks of type "${key}" are not expected here.`, SOURCE_NAME);
    }
  }
}

function singleJobBlock(jobs: Json | undefined): { label: string; body: Json } {
  const entries = isObject(jobs) ? Object.entries(jobs) : [];
  const bodies = entries.flatMap(([label, blocks]) => (Array.isArray(blocks) ? blocks : [blocks]).map((body) => ({ label, body })));
  const first = bodies[0];
  if (!first) throw diagnostic("Missing job block", "A job block is required.", SOURCE_NAME);
  if (bodies.length > 1) {
    throw diagnostic("Duplicate job block", `Only one job definition is permitted. Job "${first.label}" was already defined.`, SOURCE_NAME);
  }
  return first;
}

// ---------------------------------------------------------------------------------------------
// Variables and locals

/** Values from the Variables content override defaults; unknown names are only a warning in Nomad's non-strict parse, so they are ignored. */
function resolveVariables(declarations: Json | undefined, assignments: JsonObject): Record<string, Json> {
  const values: Record<string, Json> = {};
  const declared = isObject(declarations) ? declarations : {};
  for (const [name, blocks] of Object.entries(declared)) {
    const block = Array.isArray(blocks) ? blocks[0] : blocks;
    const decl = isObject(block) ? block : {};
    const type = parseTypeConstraint(decl.type);
    if (Object.hasOwn(assignments, name)) {
      values[name] = convertVariable(name, evaluate(assignments[name] ?? null, EMPTY_SCOPE), type, "Invalid value for variable");
      validateVariable(name, values[name] ?? null, decl.validation, "varfile");
    } else if (Object.hasOwn(decl, "default")) {
      values[name] = convertVariable(name, evaluate(decl.default ?? null, EMPTY_SCOPE), type, "Invalid default value for variable");
      validateVariable(name, values[name] ?? null, decl.validation, "default");
    } else {
      throw diagnostic(
        `Unset variable "${name}"`,
        "A used variable must be set or have a default value; see https://developer.hashicorp.com/nomad/docs/reference/hcl2/variables  for details.",
      );
    }
  }
  return values;
}

/**
 * A variable's `validation` blocks, as hashicorp/nomad jobspec2/types.variables.go validateValue
 * checks them: each condition sees only `var.<name>` (and the jobspec functions); a false one
 * fails the parse with its error_message. `from` is where the value came from: "varfile" for the
 * Variables content /v1/jobs/parse gets, "default" for the declaration's.
 */
function validateVariable(name: string, value: Json, validations: Json | undefined, from: string): void {
  const rules = Array.isArray(validations) ? validations : validations === undefined ? [] : [validations];
  for (const rule of rules) {
    if (!isObject(rule) || rule.condition === undefined) {
      throw diagnostic("Invalid variable validation specification", "validation requires a condition.", SOURCE_NAME);
    }
    const result = evaluate(rule.condition, { vars: { [name]: value }, locals: {} });
    if (typeof result !== "boolean") {
      throw diagnostic("Invalid variable validation result", "Validation condition expression must return either true or false.", SOURCE_NAME);
    }
    if (!result) {
      throw diagnostic(
        `Invalid value for ${from} variable`,
        `${String(rule.error_message ?? "")}\n\nThis was checked by the validation rule at ${SOURCE_NAME}.`,
        SOURCE_NAME,
      );
    }
  }
}

function convertVariable(name: string, value: Json, type: ReturnType<typeof parseTypeConstraint>, summary: string): Json {
  try {
    return convertToType(value, type);
  } catch (err) {
    const detail =
      summary === "Invalid default value for variable"
        ? `This default value is not compatible with the variable's type constraint: ${(err as Error).message}.`
        : `The value for ${name} is not compatible with the variable's type constraint: ${(err as Error).message}.`;
    throw diagnostic(summary, detail, SOURCE_NAME);
  }
}

function resolveLocals(blocks: Json | undefined, scope: EvalScope): Record<string, Json> {
  const locals: Record<string, Json> = {};
  const list = Array.isArray(blocks) ? blocks : blocks === undefined ? [] : [blocks];
  for (const block of list) {
    if (!isObject(block)) continue;
    for (const [name, expr] of Object.entries(block)) locals[name] = evaluate(expr, { ...scope, locals });
  }
  return locals;
}

// ---------------------------------------------------------------------------------------------
// Decoding

/** Source order of labeled blocks: hcl2json sorts object keys, Nomad keeps the order written. */
type BlockOrder = Record<string, string[]>;

function blockOrder(hcl: string): BlockOrder {
  const order: BlockOrder = {};
  for (const match of hcl.matchAll(/^\s*(group|task)\s+"([^"]+)"/gm)) {
    const [, type = "", label = ""] = match;
    (order[type] ??= []).push(label);
  }
  return order;
}

class BlockDecoder {
  constructor(private readonly order: BlockOrder) {}

  decodeBlock(body: JsonObject, schema: BlockSchema, blockName: string): JsonObject {
    const out = schema.empty();
    for (const [key, value] of Object.entries(body)) {
      const field = schema.fields[key];
      if (!field) throw unexpected(key, value, blockName);
      const [apiName, kind] = field;
      out[apiName] = this.decodeField(key, value, kind);
    }
    schema.normalize?.(out);
    return out;
  }

  private decodeField(key: string, value: Json, field: FieldKind): Json {
    switch (field.kind) {
      case "string":
        return expectScalar(key, value, "string", (v) => (typeof v === "string" ? v : typeof v === "number" || typeof v === "boolean" ? String(v) : undefined));
      case "int":
        return expectScalar(key, value, "number", (v) =>
          typeof v === "number" ? Math.trunc(v) : typeof v === "string" && /^-?\d+$/.test(v) ? Number(v) : undefined,
        );
      case "bool":
        return expectScalar(key, value, "bool", (v) => (typeof v === "boolean" ? v : v === "true" || v === "false" ? v === "true" : undefined));
      case "duration":
        return decodeDuration(key, value);
      case "strings":
        if (!Array.isArray(value)) throw inappropriate(key, "list of string required");
        return value.map((item) => expectScalar(key, item, "string", (v) => (typeof v === "string" ? v : typeof v === "number" ? String(v) : undefined)));
      case "stringMap":
        return decodeStringMap(key, value);
      case "rawMap":
        return mergeBlockBodies(key, value);
      case "block":
        return this.decodeBlock(singleBlock(key, value), field.schema, key);
      case "blocks":
        return blockBodies(key, value).map((body) => this.decodeBlock(body, field.schema, key));
      case "labeledBlocks":
        return this.decodeLabeledBlocks(key, value, field.schema, field.orderKey);
      case "genericBlock":
        return genericObject(singleBlock(key, value));
      case "genericBlocks":
        return blockBodies(key, value).map(genericObject);
      case "genericLabeledMap":
        return decodeGenericLabeledMap(key, value);
    }
  }

  private decodeLabeledBlocks(key: string, value: Json, schema: BlockSchema, orderKey: string): Json {
    if (!isObject(value)) throw diagnostic(`Missing name for ${key}`, `All ${key} blocks must have 1 labels (name).`, SOURCE_NAME);
    const order = this.order[orderKey] ?? [];
    const labels = Object.keys(value).sort((a, b) => rank(order, a) - rank(order, b));
    return labels.flatMap((label) =>
      blockBodies(key, value[label] ?? []).map((body) => ({ ...this.decodeBlock(body, schema, `${key} "${label}"`), Name: label })),
    );
  }
}

function rank(order: string[], label: string): number {
  const index = order.indexOf(label);
  return index < 0 ? Number.MAX_SAFE_INTEGER : index;
}

function unexpected(key: string, value: Json, blockName: string): HclError {
  if (Array.isArray(value) && value.every(isObject)) {
    return diagnostic("Unsupported block type", `Blocks of type "${key}" are not expected here.`, SOURCE_NAME);
  }
  return diagnostic("Unsupported argument", `An argument named "${key}" is not expected here (in ${blockName}).`, SOURCE_NAME);
}

function expectScalar(key: string, value: Json, typeName: string, convert: (v: Json) => Json | undefined): Json {
  if (value === null) return null;
  const converted = convert(value);
  if (converted === undefined) throw inappropriate(key, `${typeName === "number" ? "a number" : typeName === "bool" ? "a bool" : "string"} required`);
  return converted;
}

function inappropriate(key: string, reason: string): HclError {
  return diagnostic("Incorrect attribute value type", `Inappropriate value for attribute "${key}": ${reason}.`, SOURCE_NAME);
}

function decodeDuration(key: string, value: Json): Json {
  if (value === null) return null;
  if (typeof value === "number") return value;
  if (typeof value !== "string") throw inappropriate(key, "string required");
  try {
    return parseGoDuration(value);
  } catch (err) {
    throw diagnostic("Unsuitable value type", `Unsuitable value: ${(err as Error).message}`, SOURCE_NAME);
  }
}

/** `meta { k = v }` (a block) and `meta = { k = v }` (an attribute) both decode to map[string]string. */
function decodeStringMap(key: string, value: Json): Json {
  const merged = mergeBlockBodies(key, value);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(merged)) {
    if (isObject(v) || Array.isArray(v)) throw inappropriate(`${key}.${k}`, "string required");
    out[k] = v === null ? "" : String(v);
  }
  return out;
}

function mergeBlockBodies(key: string, value: Json): JsonObject {
  if (isObject(value)) return value;
  if (Array.isArray(value) && value.every(isObject)) return Object.assign({}, ...value) as JsonObject;
  throw inappropriate(key, "object required");
}

function blockBodies(key: string, value: Json): JsonObject[] {
  if (Array.isArray(value) && value.every(isObject)) return value;
  if (isObject(value)) {
    throw diagnostic("Unsupported argument", `An argument named "${key}" is not expected here. Did you mean to define a block of type "${key}"?`, SOURCE_NAME);
  }
  throw inappropriate(key, "block required");
}

function singleBlock(key: string, value: Json): JsonObject {
  const bodies = blockBodies(key, value);
  if (bodies.length > 1) {
    throw diagnostic(`Duplicate ${key} block`, `Only one ${key} block is allowed. Another was defined earlier.`, SOURCE_NAME);
  }
  return bodies[0] ?? {};
}

function decodeGenericLabeledMap(key: string, value: Json): Json {
  if (!isObject(value)) throw inappropriate(key, "labeled block required");
  const out: JsonObject = {};
  for (const [label, bodies] of Object.entries(value)) out[label] = genericObject(singleBlock(key, bodies));
  return out;
}

/** Blocks the twin does not model closely: snake_case keys become PascalCase, as Nomad's structs name them. */
function genericObject(body: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(body)) {
    const pascal = key.replace(/(^|_)([a-z0-9])/g, (_match: string, _sep: string, ch: string) => ch.toUpperCase());
    out[pascal] = Array.isArray(value) && value.every(isObject) ? value.map(genericObject) : value;
  }
  return out;
}
