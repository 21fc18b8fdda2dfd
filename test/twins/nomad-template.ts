// The client's `template` blocks: consul-template rendering a Go text/template into a file of the
// task directory, with the owner and mode Nomad gives it.
//
// Ownership and mode follow hashicorp/nomad client/allocrunner/taskrunner/template/template.go
// (parseTemplateConfigs): `perms` is parsed as octal, and the owner is set only when `uid`/`gid`
// are given (>= 0); otherwise the file belongs to the client process, root on a real node
// (hashicorp/nomad#5020). `perms` defaults to "0644" (nomad/structs/structs.go Template
// Canonicalize; api/tasks.go).
//
// The text is a subset of Go's text/template as consul-template evaluates it: text, `{{ }}`
// actions with `{{-`/`-}}` trimming, comments, `with`/`if`/`else`/`end`, pipelines, field access
// on `.`, and the functions the project's jobs use: `env`, `secret` (Vault, through the task's
// token; consul-template dependency/vault_read.go: the result's `.Data` is Vault's `data`), and
// `toJSON` (json.Marshal, which escapes <, > and &). Anything else fails the render loudly.

import { chmod, chown, mkdir, rename, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import type { Json, JsonObject, TwinTemplate } from "./nomad-types.js";

export interface TemplateFunctions {
  env(name: string): string;
  /** consul-template's `secret`: the Vault read of `path` with the task's token. */
  secret?(path: string): Promise<JsonObject>;
}

export class TemplateError extends Error {
  override name = "TemplateError";
}

/** Renders a template into the task directory, as the client's template hook does. */
export async function renderTemplateFile(template: TwinTemplate, taskDir: string, fns: TemplateFunctions): Promise<string> {
  const destination = resolve(taskDir, template.DestPath);
  // Sandboxed by default (template.disable_file_sandbox = false): the file stays in the task dir.
  if (!destination.startsWith(`${resolve(taskDir)}/`)) throw new TemplateError(`template destination ${template.DestPath} escapes the task directory`);
  const left = typeof template.LeftDelim === "string" && template.LeftDelim !== "" ? template.LeftDelim : "{{";
  const right = typeof template.RightDelim === "string" && template.RightDelim !== "" ? template.RightDelim : "}}";
  const text = await renderText(template.EmbeddedTmpl, fns, left, right);
  await mkdir(dirname(destination), { recursive: true });
  // consul-template writes atomically: a temporary file in the same directory, then a rename.
  const temporary = join(dirname(destination), `.${Date.now()}-${Math.random().toString(16).slice(2)}.tmp`);
  await writeFile(temporary, text);
  await chmod(temporary, Number.parseInt(template.Perms || "0644", 8));
  const uid = typeof template.Uid === "number" && template.Uid >= 0 ? template.Uid : undefined;
  const gid = typeof template.Gid === "number" && template.Gid >= 0 ? template.Gid : undefined;
  if (uid !== undefined || gid !== undefined) await chown(temporary, uid ?? -1, gid ?? -1);
  await rename(temporary, destination);
  return text;
}

// ---------------------------------------------------------------------------------------------
// Parsing

type Node = { kind: "text"; text: string } | { kind: "output"; pipeline: string } | { kind: "with" | "if"; pipeline: string; body: Node[]; otherwise: Node[] };

interface Token {
  kind: "text" | "action";
  value: string;
}

function tokenize(source: string, left: string, right: string): Token[] {
  const tokens: Token[] = [];
  let pos = 0;
  let trimNext = false;
  while (pos < source.length) {
    const open = source.indexOf(left, pos);
    let text = source.slice(pos, open < 0 ? source.length : open);
    if (trimNext) text = text.replace(/^\s+/, "");
    trimNext = false;
    if (open < 0) {
      tokens.push({ kind: "text", value: text });
      break;
    }
    const close = source.indexOf(right, open + left.length);
    if (close < 0) throw new TemplateError(`unclosed action at offset ${open}`);
    let action = source.slice(open + left.length, close);
    if (action.startsWith("- ") || action === "-") {
      text = text.replace(/\s+$/, "");
      action = action.slice(1);
    }
    if (action.endsWith(" -")) {
      trimNext = true;
      action = action.slice(0, -1);
    }
    tokens.push({ kind: "text", value: text });
    action = action.trim();
    if (!(action.startsWith("/*") && action.endsWith("*/"))) tokens.push({ kind: "action", value: action });
    pos = close + right.length;
  }
  return tokens.filter((t) => t.kind === "action" || t.value !== "");
}

function parse(tokens: Token[]): Node[] {
  let pos = 0;
  const block = (terminators: string[]): { nodes: Node[]; end: string } => {
    const nodes: Node[] = [];
    while (pos < tokens.length) {
      const token = tokens[pos++]!;
      if (token.kind === "text") {
        nodes.push({ kind: "text", text: token.value });
        continue;
      }
      const [word = "", ...rest] = token.value.split(/\s+/);
      if (terminators.includes(word)) return { nodes, end: word };
      if (word === "with" || word === "if") {
        const body = block(["else", "end"]);
        const otherwise = body.end === "else" ? block(["end"]).nodes : [];
        nodes.push({ kind: word, pipeline: rest.join(" "), body: body.nodes, otherwise });
      } else if (["range", "define", "template", "block"].includes(word)) {
        throw new TemplateError(`the Nomad twin's template engine does not support "${word}"`);
      } else {
        nodes.push({ kind: "output", pipeline: token.value });
      }
    }
    if (terminators.length > 0) throw new TemplateError(`unexpected EOF: missing {{end}}`);
    return { nodes, end: "" };
  };
  return block([]).nodes;
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/** A Go map lookup of a missing key prints "<no value>" (text/template, missingkey=default). */
const NO_VALUE = Symbol("no value");
type Value = Json | typeof NO_VALUE | undefined;

export async function renderText(source: string, fns: TemplateFunctions, left = "{{", right = "}}"): Promise<string> {
  const nodes = parse(tokenize(source, left, right));
  return execute(nodes, undefined, fns);
}

async function execute(nodes: Node[], dot: Value, fns: TemplateFunctions): Promise<string> {
  let out = "";
  for (const node of nodes) {
    if (node.kind === "text") out += node.text;
    else if (node.kind === "output") out += print(await pipeline(node.pipeline, dot, fns));
    else {
      const value = await pipeline(node.pipeline, dot, fns);
      if (truthy(value)) out += await execute(node.body, node.kind === "with" ? value : dot, fns);
      else out += await execute(node.otherwise, dot, fns);
    }
  }
  return out;
}

function truthy(value: Value): boolean {
  if (value === undefined || value === null || value === NO_VALUE || value === false || value === "" || value === 0) return false;
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value === "object") return Object.keys(value).length > 0;
  return true;
}

function print(value: Value): string {
  if (value === NO_VALUE || value === undefined) return "<no value>";
  if (value === null) return "<nil>";
  if (typeof value === "object") throw new TemplateError("printing a map or list is not supported by the twin");
  return String(value);
}

async function pipeline(source: string, dot: Value, fns: TemplateFunctions): Promise<Value> {
  let value: Value;
  let first = true;
  for (const command of splitPipes(source)) {
    const args = command.trim().match(/"(?:[^"\\]|\\.)*"|\S+/g) ?? [];
    value = await call(args, dot, fns, first ? [] : [value]);
    first = false;
  }
  return value;
}

function splitPipes(source: string): string[] {
  const parts: string[] = [];
  let current = "";
  let inString = false;
  for (let i = 0; i < source.length; i++) {
    const ch = source[i]!;
    if (inString && ch === "\\") {
      current += ch + (source[++i] ?? "");
      continue;
    }
    if (ch === '"') inString = !inString;
    if (ch === "|" && !inString) {
      parts.push(current);
      current = "";
    } else current += ch;
  }
  parts.push(current);
  return parts;
}

async function call(args: string[], dot: Value, fns: TemplateFunctions, piped: Value[]): Promise<Value> {
  const [head = "", ...rest] = args;
  const operand = (word: string): Value => {
    if (word.startsWith('"')) return JSON.parse(word) as string;
    if (/^-?\d+(\.\d+)?$/.test(word)) return Number(word);
    if (word.startsWith(".")) return field(dot, word);
    throw new TemplateError(`the Nomad twin's template engine cannot evaluate "${word}"`);
  };
  if (head.startsWith(".") || head.startsWith('"') || /^-?\d/.test(head)) {
    if (rest.length > 0 || piped.length > 0) throw new TemplateError(`cannot give arguments to ${head}`);
    return operand(head);
  }
  const values = [...rest.map(operand), ...piped];
  switch (head) {
    case "env":
      return fns.env(String(values[0] ?? ""));
    case "secret": {
      if (!fns.secret) throw new TemplateError("secret: this task has no Vault token (no vault block)");
      return (await fns.secret(String(values[0] ?? ""))) as Json;
    }
    case "toJSON":
      return goJson(values[0]);
    case "printf": {
      let n = 1;
      return String(values[0] ?? "").replace(/%[sdvq]/g, (verb) => {
        const v = values[n++];
        return verb === "%q" ? JSON.stringify(print(v)) : print(v);
      });
    }
    default:
      throw new TemplateError(`function "${head}" not defined in the Nomad twin's template engine`);
  }
}

function field(dot: Value, path: string): Value {
  if (path === ".") return dot;
  let current: Value = dot;
  for (const key of path.slice(1).split(".")) {
    if (current === undefined || current === NO_VALUE || current === null) return NO_VALUE;
    if (typeof current !== "object" || Array.isArray(current)) throw new TemplateError(`can't evaluate field ${key} in ${typeof current}`);
    current = Object.hasOwn(current, key) ? (current as JsonObject)[key] : NO_VALUE;
  }
  return current;
}

/** Go's json.Marshal, which HTML-escapes <, > and & in strings. */
function goJson(value: Value): string {
  if (value === NO_VALUE || value === undefined) return "null";
  return JSON.stringify(value).replace(/[<>&]/g, (ch) => `\\u00${ch.charCodeAt(0).toString(16)}`);
}
