// HCL2 evaluation for the Nomad twin. @cdktf/hcl2json does the real parsing (it is HashiCorp's
// HCL parser compiled to wasm) and hands back terraform-style JSON in which every expression is
// left as a `${...}` template string. This module evaluates those templates the way Nomad's
// jobspec2 does: `var.*`/`local.*` are resolved, runtime references (`${NOMAD_*}`, `${node.*}`,
// `${attr.*}`, `${meta.*}`) stay literal for the client to interpolate, and the `$${` escape turns
// into `${`.

import hcl2json from "@cdktf/hcl2json";
import type { Json, JsonObject } from "./nomad-types.js";

/** An HCL diagnostic, carrying the text Nomad would put in its error (`<range>: <summary>; <detail>`). */
export class HclError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HclError";
  }
}

/** Diagnostics without a source range print their nil `Subject` the way Go's fmt does. */
export function diagnostic(summary: string, detail: string, range = "<nil>"): HclError {
  return new HclError(`${range}: ${summary}; ${detail}`);
}

/** Parses HCL text into hcl2json's JSON. Syntax errors become an HclError with the parser's text. */
export async function parseHcl(filename: string, text: string): Promise<JsonObject> {
  try {
    const parsed: unknown = await hcl2json.parse(filename, text);
    return isObject(parsed) ? parsed : {};
  } catch (err) {
    throw new HclError(stripBridgeWrapping(err instanceof Error ? err.message : String(err)));
  }
}

/** hcl2json wraps the diagnostics as `parse config: [<diag>]`; Nomad prints the diagnostic alone. */
function stripBridgeWrapping(message: string): string {
  const match = /^parse config: \[(.*)\]$/s.exec(message);
  return match?.[1] ?? message;
}

export function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

// ---------------------------------------------------------------------------------------------
// Evaluation

export interface EvalScope {
  vars: Record<string, Json>;
  locals: Record<string, Json>;
  /** The iterators of the `dynamic` blocks being expanded (`<name>.key`, `<name>.value`). */
  iterators?: Record<string, { key: Json; value: Json }>;
  /**
   * Where `file()` reads from. Absent when parsing for the HTTP API: hashicorp/nomad
   * command/agent/job_endpoint.go parses `/v1/jobs/parse` bodies with AllowFS false, and
   * jobspec2/functions.go guardFS then fails every filesystem function. The CLI parses locally
   * with AllowFS true and the job file's directory as the base (jobspec2/parse.go BaseDir).
   */
  fs?: { baseDir: string; readFile: (path: string) => string };
}

export const EMPTY_SCOPE: EvalScope = { vars: {}, locals: {} };

/** Evaluates every template string inside a decoded HCL value, expanding `dynamic` blocks. */
export function evaluate(value: Json, scope: EvalScope): Json {
  if (typeof value === "string") return evaluateTemplate(value, scope);
  if (Array.isArray(value)) return value.map((item) => evaluate(item, scope));
  if (isObject(value)) {
    const out: JsonObject = {};
    for (const [key, item] of Object.entries(value)) if (key !== "dynamic" || !isObject(item)) out[key] = evaluate(item, scope);
    // After the static blocks: hcl2json gathers every `dynamic` under one key where the first
    // one stands, which may come before a static block of the same type.
    if (isObject(value.dynamic)) expandDynamicBlocks(value.dynamic, scope, out);
    return out;
  }
  return value;
}

/**
 * `dynamic "<type>" { for_each = ...  iterator = ...  content { ... } }`, as hashicorp/hcl
 * ext/dynblock expands it (Nomad's jobspec2/parse.go runs dynblock.Expand over the job body):
 * one `<type>` block per element of for_each, in order, with `<iterator>.key` (list index or map
 * key) and `<iterator>.value` in scope; the iterator is named after the block type by default.
 * The generated blocks come after the static blocks of the same type. `labels = [...]` names each
 * generated block of a labeled type (`dynamic "task" { labels = ["docker"] ... }`).
 */
function expandDynamicBlocks(dynamic: JsonObject, scope: EvalScope, out: JsonObject): void {
  for (const [type, specs] of Object.entries(dynamic)) {
    for (const spec of Array.isArray(specs) ? specs : [specs]) {
      if (!isObject(spec)) continue;
      const forEach = evaluate(spec.for_each ?? null, scope);
      const entries: [Json, Json][] = Array.isArray(forEach)
        ? forEach.map((item, index) => [index, item])
        : isObject(forEach)
          ? Object.entries(forEach)
          : (() => {
              throw diagnostic("Invalid dynamic for_each value", "Cannot use a value of this type in for_each. An iterable collection is required.");
            })();
      const iterator = typeof spec.iterator === "string" ? spec.iterator.replace(/^\$\{|\}$/g, "") : type;
      const content = Array.isArray(spec.content) ? spec.content[0] : spec.content;
      if (!isObject(content)) throw diagnostic("Missing content block", `A dynamic "${type}" block must have a content block.`);
      const scopeOf = (key: Json, item: Json): EvalScope => ({ ...scope, iterators: { ...scope.iterators, [iterator]: { key, value: item } } });
      if (spec.labels !== undefined) {
        // A labeled block type (`task`, `group`): hcl2json keys those by their label.
        const statics = out[type];
        const byLabel: JsonObject = isObject(statics) ? statics : {};
        for (const [key, item] of entries) {
          const labels = evaluate(spec.labels, scopeOf(key, item));
          const label = Array.isArray(labels) ? labels[0] : undefined;
          if (typeof label !== "string") throw diagnostic("Invalid dynamic block label", "Cannot use this value as a dynamic block label: string required.");
          const existing = byLabel[label];
          byLabel[label] = [...(Array.isArray(existing) ? existing : []), evaluate(content, scopeOf(key, item))];
        }
        if (Object.keys(byLabel).length > 0) out[type] = byLabel;
        continue;
      }
      const statics = out[type];
      const blocks: Json[] = Array.isArray(statics) ? statics : statics === undefined ? [] : [statics];
      for (const [key, item] of entries) blocks.push(evaluate(content, scopeOf(key, item)));
      if (blocks.length > 0) out[type] = blocks; // no element, no block: as if none were written
    }
  }
}

type Part = { literal: string } | { value: Json };

/**
 * A template that is exactly one interpolation yields the raw value (a list stays a list), as HCL
 * does; anything else concatenates into a string.
 */
export function evaluateTemplate(template: string, scope: EvalScope): Json {
  const parts = splitTemplate(template, scope);
  const only = parts[0];
  if (parts.length === 1 && only && "value" in only) return only.value;
  return parts.map((part) => ("literal" in part ? part.literal : stringifyForTemplate(part.value))).join("");
}

function splitTemplate(template: string, scope: EvalScope): Part[] {
  const parts: Part[] = [];
  let literal = "";
  let i = 0;
  while (i < template.length) {
    if (template.startsWith("$${", i) || template.startsWith("%%{", i)) {
      literal += template.slice(i + 1, i + 3);
      i += 3;
    } else if (template.startsWith("${", i)) {
      const end = findClosingBrace(template, i + 2);
      if (literal) parts.push({ literal });
      literal = "";
      const source = template.slice(i + 2, end).trim();
      parts.push({ value: evaluateExpressionSource(source, scope) });
      i = end + 1;
    } else if (template.startsWith("%{", i)) {
      throw diagnostic("Unsupported template directive", "The Nomad twin does not evaluate %{ } directives.");
    } else {
      literal += template[i];
      i += 1;
    }
  }
  if (literal || parts.length === 0) parts.push({ literal });
  return parts;
}

function findClosingBrace(text: string, from: number): number {
  let depth = 0;
  let inString = false;
  for (let i = from; i < text.length; i += 1) {
    const ch = text[i];
    if (inString) {
      if (ch === "\\") i += 1;
      else if (ch === '"') inString = false;
    } else if (ch === '"') inString = true;
    else if (ch === "{") depth += 1;
    else if (ch === "}") {
      if (depth === 0) return i;
      depth -= 1;
    }
  }
  throw diagnostic("Unclosed template interpolation sequence", "There is no closing brace for this interpolation sequence.");
}

function stringifyForTemplate(value: Json): string {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (value === null) {
    throw diagnostic("Invalid template interpolation value", "The expression result is null. Cannot include a null value in a string template.");
  }
  throw diagnostic("Invalid template interpolation value", "Cannot include the given value in a string template: string required.");
}

// ---------------------------------------------------------------------------------------------
// Expressions: literals, traversals, lists and a handful of functions. Anything rooted outside
// `var`/`local` is a runtime reference and is kept as written.

/** Marker for a reference only the Nomad client can resolve. */
class RuntimeReference {
  constructor(readonly source: string) {}
}

function evaluateExpressionSource(source: string, scope: EvalScope): Json {
  const literal = `\${${source}}`;
  let result: Value;
  try {
    result = new ExpressionParser(source, scope).parseComplete();
  } catch (err) {
    // Arithmetic and other syntax the twin does not evaluate is fine as long as only the client
    // would have resolved it: keep it for the client, as jobspec2 does.
    if (!/\b(var|local)\.|\b(file|filebase64|fileexists|fileset|abspath|basename|dirname|pathexpand)\s*\(/.test(source)) return literal;
    throw err;
  }
  return result instanceof RuntimeReference ? literal : result;
}

type Value = Json | RuntimeReference;

const FUNCTIONS: Record<string, (args: Json[]) => Json> = {
  upper: ([s]) => String(s).toUpperCase(),
  lower: ([s]) => String(s).toLowerCase(),
  trimspace: ([s]) => String(s).trim(),
  join: ([sep, list]) => (Array.isArray(list) ? list.map((item) => stringifyForTemplate(item)).join(String(sep)) : ""),
  split: ([sep, s]) => String(s).split(String(sep)),
  concat: (lists) => lists.flatMap((list) => (Array.isArray(list) ? list : [])),
  // go-cty stdlib CompactFunc: a list of strings without the empty ones.
  compact: ([list]) => (Array.isArray(list) ? list.filter((item) => item !== null && item !== "").map(String) : []),
  length: ([v]) => (Array.isArray(v) ? v.length : isObject(v) ? Object.keys(v).length : String(v).length),
  tostring: ([v]) => stringifyForTemplate(v ?? null),
  tonumber: ([v]) => Number(v),
  // go-cty stdlib MergeFunc: later objects win.
  merge: (objects) => Object.assign({}, ...objects.filter(isObject)) as JsonObject,
  // go-cty stdlib JSONEncodeFunc marshals with encoding/json, which escapes <, > and &.
  jsonencode: ([v]) => JSON.stringify(v ?? null).replace(/[<>&]/g, (ch) => `\\u00${ch.charCodeAt(0).toString(16)}`),
  // go-cty stdlib KeysFunc: a map's keys, in lexicographic order.
  keys: ([v]) => (isObject(v) ? Object.keys(v).sort() : []),
  // go-cty stdlib SetIntersectionFunc: the elements every set has (a set: no order, no repeats).
  setintersection: ([first, ...rest]) =>
    Array.isArray(first)
      ? [...new Set(first.map((item) => JSON.stringify(item)))]
          .map((item) => JSON.parse(item) as Json)
          .filter((item) => rest.every((set) => Array.isArray(set) && set.some((other) => sameValue(other, item))))
      : [],
  // go-cty stdlib ContainsFunc: is the value an element of the list?
  contains: ([list, v]) => Array.isArray(list) && list.some((item) => sameValue(item, v ?? null)),
  format: ([fmt, ...args]) => {
    let n = 0;
    return String(fmt).replace(/%[sdv]/g, () => stringifyForTemplate(args[n++] ?? null));
  },
};

/** cty equality of two plain values (`==`, `contains`). */
function sameValue(a: Json, b: Json): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** jobspec2/functions.go wraps these in guardFS. */
const FILESYSTEM_FUNCTIONS = new Set(["abspath", "basename", "dirname", "file", "filebase64", "fileexists", "fileset", "pathexpand"]);

class ExpressionParser {
  private pos = 0;

  constructor(
    private readonly src: string,
    private readonly scope: EvalScope,
  ) {}

  parseComplete(): Value {
    const value = this.parseExpression();
    this.skipSpace();
    if (this.pos < this.src.length) {
      throw diagnostic("Unsupported expression", `The Nomad twin cannot evaluate "${this.src}".`);
    }
    return value;
  }

  /**
   * hashicorp/hcl hclsyntax's operators, the few a jobspec uses: `c ? a : b` (both sides are
   * evaluated, the condition must be a bool), `||`, `&&`, `==`, `!=` and `!`. Any operand the
   * client resolves makes the whole expression the client's.
   */
  parseExpression(): Value {
    const condition = this.parseBinary(0);
    this.skipSpace();
    if (this.src[this.pos] !== "?") return condition;
    this.pos += 1;
    const whenTrue = this.parseExpression();
    this.skipSpace();
    if (this.src[this.pos] !== ":") throw diagnostic("Missing false expression in conditional", `Expected ":" in "${this.src}".`);
    this.pos += 1;
    const whenFalse = this.parseExpression();
    if (condition instanceof RuntimeReference) return new RuntimeReference(this.src);
    if (typeof condition !== "boolean") throw diagnostic("Incorrect condition type", "The condition expression must be of type bool.");
    return condition ? whenTrue : whenFalse;
  }

  private static readonly BINARY: Array<Array<[string, (a: Json, b: Json) => Json]>> = [
    [["||", (a, b) => a === true || b === true]],
    [["&&", (a, b) => a === true && b === true]],
    [
      ["==", (a, b) => sameValue(a, b)],
      ["!=", (a, b) => !sameValue(a, b)],
    ],
  ];

  private parseBinary(level: number): Value {
    const operators = ExpressionParser.BINARY[level];
    if (!operators) return this.parseUnary();
    let left = this.parseBinary(level + 1);
    for (;;) {
      this.skipSpace();
      const found = operators.find(([op]) => this.src.startsWith(op, this.pos));
      if (!found) return left;
      this.pos += found[0].length;
      const right = this.parseBinary(level + 1);
      if (left instanceof RuntimeReference || right instanceof RuntimeReference) left = new RuntimeReference(this.src);
      else if (found[0].length === 2 && /[|&]/.test(found[0]) && (typeof left !== "boolean" || typeof right !== "boolean")) {
        throw diagnostic("Invalid operand", `Unsuitable value for the "${found[0]}" operand: bool required.`);
      } else left = found[1](left, right);
    }
  }

  private parseUnary(): Value {
    this.skipSpace();
    if (this.src[this.pos] === "!" && this.src[this.pos + 1] !== "=") {
      this.pos += 1;
      const operand = this.parseUnary();
      if (operand instanceof RuntimeReference) return operand;
      if (typeof operand !== "boolean") throw diagnostic("Invalid operand", 'Unsuitable value for the "!" operand: bool required.');
      return !operand;
    }
    if (this.src[this.pos] === "(") {
      this.pos += 1;
      const inner = this.parseExpression();
      this.skipSpace();
      if (this.src[this.pos] !== ")") throw diagnostic("Unbalanced parentheses", `Expected ")" in "${this.src}".`);
      this.pos += 1;
      return inner;
    }
    return this.parseValue();
  }

  private parseValue(): Value {
    this.skipSpace();
    const ch = this.src[this.pos];
    if (ch === '"') return this.parseString();
    if (ch === "[") return this.parseList();
    if (ch !== undefined && /[-0-9]/.test(ch)) return this.parseNumber();
    const name = this.parseIdentifier();
    if (name === "true" || name === "false") return name === "true";
    if (name === "null") return null;
    this.skipSpace();
    if (this.src[this.pos] === "(") return this.parseCall(name);
    return this.parseTraversal(name);
  }

  private parseIdentifier(): string {
    const match = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(this.src.slice(this.pos));
    if (!match) throw diagnostic("Invalid expression", `Expected the start of an expression in "${this.src}".`);
    this.pos += match[0].length;
    return match[0];
  }

  /** A quoted template: its interpolations are evaluated, runtime references kept as written. */
  private parseString(): Json {
    const match = /^"((?:[^"\\]|\\.)*)"/.exec(this.src.slice(this.pos));
    if (!match) throw diagnostic("Invalid string", `Unterminated string in "${this.src}".`);
    this.pos += match[0].length;
    const text = JSON.parse(`"${match[1] ?? ""}"`) as string;
    return /\$\{|%\{/.test(text) ? evaluateTemplate(text, this.scope) : text;
  }

  private parseNumber(): number {
    const match = /^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?/.exec(this.src.slice(this.pos));
    if (!match) throw diagnostic("Invalid expression", `Expected a number in "${this.src}".`);
    this.pos += match[0].length;
    return Number(match[0]);
  }

  private parseList(): Value {
    this.pos += 1;
    const items = this.parseArguments("]");
    return items.some((item) => item instanceof RuntimeReference) ? new RuntimeReference(this.src) : (items as Json[]);
  }

  private parseCall(name: string): Value {
    this.pos += 1;
    const args = this.parseArguments(")");
    if (args.some((arg) => arg instanceof RuntimeReference)) return new RuntimeReference(this.src);
    if (FILESYSTEM_FUNCTIONS.has(name)) return this.callFilesystem(name, args as Json[]);
    const fn = FUNCTIONS[name];
    if (!fn) throw diagnostic("Call to unknown function", `There is no function named "${name}".`);
    return fn(args as Json[]);
  }

  /** jobspec2/functions.go: file() reads relative to the base dir; without AllowFS it fails. */
  private callFilesystem(name: string, args: Json[]): Json {
    const fs = this.scope.fs;
    if (!fs) throw diagnostic("Error in function call", `Call to function "${name}" failed: filesystem function disabled.`);
    if (name !== "file") throw diagnostic("Unsupported function", `The Nomad twin does not evaluate "${name}".`);
    const path = String(args[0] ?? "");
    try {
      return fs.readFile(path.startsWith("/") ? path : `${fs.baseDir}/${path}`);
    } catch (err) {
      throw diagnostic("Error in function call", `Call to function "file" failed: ${(err as Error).message}.`);
    }
  }

  private parseArguments(close: string): Value[] {
    const items: Value[] = [];
    for (;;) {
      this.skipSpace();
      if (this.src[this.pos] === close) {
        this.pos += 1;
        return items;
      }
      items.push(this.parseExpression());
      this.skipSpace();
      if (this.src[this.pos] === ",") this.pos += 1;
      else if (this.src[this.pos] !== close) {
        throw diagnostic("Missing item separator", `Expected a comma in "${this.src}".`);
      }
    }
  }

  private parseTraversal(root: string): Value {
    const iterator = this.scope.iterators?.[root];
    if (iterator) return this.parseIteratorTraversal(root, iterator);
    if (root !== "var" && root !== "local") {
      this.skipTraversalSteps();
      return new RuntimeReference(this.src);
    }
    let value: Json = root === "var" ? this.scope.vars : this.scope.locals;
    let first = true;
    while (this.src[this.pos] === "." || this.src[this.pos] === "[") {
      const key = this.parseStep();
      value = this.index(value, key, first ? root : undefined);
      first = false;
    }
    return value;
  }

  private parseIteratorTraversal(root: string, iterator: { key: Json; value: Json }): Json {
    if (this.src[this.pos] !== ".") throw diagnostic("Invalid reference", `The iterator "${root}" must be followed by .key or .value.`);
    const step = this.parseStep();
    if (step !== "key" && step !== "value") throw diagnostic("Unsupported attribute", `This object does not have an attribute named "${step}".`);
    let value: Json = iterator[step];
    while (this.src[this.pos] === "." || this.src[this.pos] === "[") value = this.index(value, this.parseStep(), undefined);
    return value;
  }

  private parseStep(): string | number {
    if (this.src[this.pos] === ".") {
      this.pos += 1;
      return this.parseIdentifier();
    }
    this.pos += 1;
    const key = this.parseValue();
    this.skipSpace();
    if (this.src[this.pos] !== "]") throw diagnostic("Invalid index", `Expected "]" in "${this.src}".`);
    this.pos += 1;
    if (typeof key !== "string" && typeof key !== "number") {
      throw diagnostic("Invalid index", "An index must be a string or a number.");
    }
    return key;
  }

  private index(value: Json, key: string | number, rootName: string | undefined): Json {
    if (Array.isArray(value) && typeof key === "number") {
      const item = value[key];
      if (item === undefined) throw diagnostic("Invalid index", `The given key does not identify an element in this collection value.`);
      return item;
    }
    if (isObject(value) && Object.hasOwn(value, String(key))) return value[String(key)] ?? null;
    if (rootName === "var") {
      throw diagnostic("Unknown variable", `There is no variable named "${key}".`);
    }
    throw diagnostic("Unsupported attribute", `This object does not have an attribute named "${key}".`);
  }

  private skipTraversalSteps(): void {
    while (this.src[this.pos] === "." || this.src[this.pos] === "[") this.parseStepLiterally();
  }

  private parseStepLiterally(): void {
    if (this.src[this.pos] === ".") {
      this.pos += 1;
      this.parseIdentifier();
      return;
    }
    const close = this.src.indexOf("]", this.pos);
    this.pos = close < 0 ? this.src.length : close + 1;
  }

  private skipSpace(): void {
    while (this.pos < this.src.length && /\s/.test(this.src[this.pos] ?? "")) this.pos += 1;
  }
}

// ---------------------------------------------------------------------------------------------
// Type constraints (`type = list(string)`), converted like cty's convert package.

export type TypeConstraint = { kind: "string" | "number" | "bool" | "any" } | { kind: "list" | "set" | "map"; element: TypeConstraint };

/** hcl2json renders `type = list(string)` as the template `${list(string)}`. */
export function parseTypeConstraint(raw: Json | undefined): TypeConstraint {
  if (typeof raw !== "string") return { kind: "any" };
  const source = raw.replace(/^\$\{/, "").replace(/\}$/, "").replace(/\s+/g, "");
  return parseTypeSource(source);
}

function parseTypeSource(source: string): TypeConstraint {
  if (source === "string" || source === "number" || source === "bool" || source === "any") return { kind: source };
  const match = /^(list|set|map)\((.*)\)$/.exec(source);
  if (match?.[1] === "list" || match?.[1] === "set" || match?.[1] === "map") {
    return { kind: match[1], element: parseTypeSource(match[2] ?? "any") };
  }
  // object(...) and tuple(...) constraints are accepted structurally as they come.
  return { kind: "any" };
}

/** Converts a value to a type constraint; throws the cty error text Nomad embeds in its diagnostic. */
export function convertToType(value: Json, type: TypeConstraint): Json {
  if (value === null || type.kind === "any") return value;
  switch (type.kind) {
    case "string":
      if (typeof value === "string") return value;
      if (typeof value === "number" || typeof value === "boolean") return String(value);
      throw new TypeError("string required");
    case "number":
      if (typeof value === "number") return value;
      if (typeof value === "string" && value.trim() !== "" && Number.isFinite(Number(value))) return Number(value);
      throw new TypeError("a number is required");
    case "bool":
      if (typeof value === "boolean") return value;
      if (value === "true" || value === "false") return value === "true";
      throw new TypeError("a bool is required");
    case "list":
    case "set":
      if (!Array.isArray(value)) throw new TypeError(`${type.kind} of ${describeType(type.element)} required`);
      return value.map((item) => convertToType(item, type.element));
    case "map": {
      if (!isObject(value)) throw new TypeError(`map of ${describeType(type.element)} required`);
      const out: JsonObject = {};
      for (const [key, item] of Object.entries(value)) out[key] = convertToType(item, type.element);
      return out;
    }
  }
}

function describeType(type: TypeConstraint): string {
  return "element" in type ? `${type.kind} of ${describeType(type.element)}` : type.kind;
}

// ---------------------------------------------------------------------------------------------
// Go durations ("30s", "1h30m", "500ms") as Nomad's JSON encodes time.Duration: nanoseconds.

const DURATION_UNITS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  µs: 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

export function parseGoDuration(text: string): number {
  if (text === "0") return 0;
  const re = /([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (let match = re.exec(text); match; match = re.exec(text)) {
    total += Number(match[1]) * (DURATION_UNITS[match[2] ?? "s"] ?? 0);
    consumed = re.lastIndex;
  }
  if (consumed === 0 || consumed !== text.length) throw new TypeError(`time: invalid duration "${text}"`);
  return Math.round(total);
}

/** Go's time.Duration.String() of a duration in ns: "300ms", "5s", "1m30s", "1h0m0s". */
export function formatGoDuration(ns: number): string {
  let rest = Math.round(Math.abs(ns));
  if (rest === 0) return "0s";
  const sign = ns < 0 ? "-" : "";
  // The fraction as Go prints it: up to the unit's digits, trailing zeros dropped.
  const decimal = (value: number, unit: number, digits: number): string => {
    const fraction = String(value % unit)
      .padStart(digits, "0")
      .replace(/0+$/, "");
    return `${Math.floor(value / unit)}${fraction === "" ? "" : `.${fraction}`}`;
  };
  if (rest < 1e3) return `${sign}${rest}ns`;
  if (rest < 1e6) return `${sign}${decimal(rest, 1e3, 3)}µs`;
  if (rest < 1e9) return `${sign}${decimal(rest, 1e6, 6)}ms`;
  const hours = Math.floor(rest / 3600e9);
  rest -= hours * 3600e9;
  const minutes = Math.floor(rest / 60e9);
  rest -= minutes * 60e9;
  const seconds = `${decimal(rest, 1e9, 9)}s`;
  if (hours > 0) return `${sign}${hours}h${minutes}m${seconds}`;
  if (minutes > 0) return `${sign}${minutes}m${seconds}`;
  return `${sign}${seconds}`;
}
