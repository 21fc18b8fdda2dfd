// Validates HTTP traffic against GitHub's official OpenAPI description (@octokit/openapi, the
// dereferenced api.github.com spec) and webhook payloads against @octokit/openapi-webhooks.
// The REST spec is ~70 MB, so it is loaded on first use and only the schemas of operations that
// are actually exercised get compiled. Reusable by any test: all functions return a list of
// human-readable violations (empty = conforms).

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";

/** JSON value as parsed from the spec. */
type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

export interface GitHubOperation {
  method: string;
  /** Path template as written in the spec, e.g. `/repos/{owner}/{repo}/actions/runners/{runner_id}`. */
  template: string;
  operationId: string;
  /** The operation's documentation page (what GitHub puts in `documentation_url`). */
  docsUrl: string | undefined;
  /** Path parameters extracted from the concrete path. */
  params: Record<string, string>;
}

const require = createRequire(import.meta.url);
// ajv-formats is CommonJS with `exports.default`; under NodeNext the default import is the
// module object at type level, so pick whichever form is callable.
const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ?? addFormatsModule) as unknown as (ajv: Ajv) => Ajv;

/** GitHub Enterprise Server serves the same API under this prefix. */
const GHES_PREFIX = "/api/v3";
const HTTP_METHODS = new Set(["get", "put", "post", "delete", "patch", "head", "options"]);

// ---------------------------------------------------------------------------------------------
// Loading

let restPaths: JsonObject | undefined;
let webhookComponents: JsonObject | undefined;

function loadRestPaths(): JsonObject {
  if (!restPaths) {
    const file = require.resolve("@octokit/openapi/generated/api.github.com.deref.json");
    const spec = JSON.parse(readFileSync(file, "utf8")) as JsonObject;
    // Keep only `paths`: the rest (notably the dereferenced x-webhooks) is large and unused.
    restPaths = spec["paths"] as JsonObject;
  }
  return restPaths;
}

function loadWebhookComponents(): JsonObject {
  if (!webhookComponents) {
    const file = require.resolve("@octokit/openapi-webhooks/generated/api.github.com.json");
    const spec = JSON.parse(readFileSync(file, "utf8")) as JsonObject;
    webhookComponents = { components: { schemas: (spec["components"] as JsonObject)["schemas"] as Json } };
  }
  return webhookComponents;
}

// ---------------------------------------------------------------------------------------------
// OpenAPI 3.0 -> JSON Schema

/** Keywords that are documentation only; `example` values are not schemas and can mislead ajv. */
const DOC_ONLY_KEYWORDS = new Set(["example", "examples", "description", "externalDocs", "xml", "title"]);

/**
 * Converts an OpenAPI 3.0 schema into JSON Schema: `nullable: true` becomes a type union (or an
 * `anyOf` with null when the schema has no `type`, e.g. a nullable `allOf`), and null is added to
 * enums of nullable schemas, because ajv does not implement `nullable` outside its own OpenAPI
 * mode and would otherwise reject GitHub's many `null` fields.
 */
export function openApiToJsonSchema(schema: Json): Json {
  if (Array.isArray(schema)) return schema.map(openApiToJsonSchema);
  if (schema === null || typeof schema !== "object") return schema;
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(schema)) {
    if (DOC_ONLY_KEYWORDS.has(key) || key === "nullable" || key.startsWith("x-")) continue;
    // `properties` maps names to schemas; a property may be called "nullable" or "example".
    out[key] = key === "properties" ? mapValues(value, openApiToJsonSchema) : openApiToJsonSchema(value);
  }
  return schema["nullable"] === true ? allowNull(out) : out;
}

function mapValues(value: Json, fn: (v: Json) => Json): Json {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fn(v)]));
}

function allowNull(schema: JsonObject): JsonObject {
  const { type, enum: enumValues } = schema;
  if (typeof type === "string") {
    const withNull: JsonObject = { ...schema, type: [type, "null"] };
    if (Array.isArray(enumValues) && !enumValues.includes(null)) withNull["enum"] = [...enumValues, null];
    return withNull;
  }
  return { anyOf: [schema, { type: "null" }] };
}

/**
 * Errors in GitHub's spec, corrected where they would reject real responses. The inline
 * `installation` schema of `GET /app/installations` says an account is `allOf` [Simple User,
 * Enterprise], which nothing satisfies (the spec's own example fails it); the `installation`
 * component it was copied from says `anyOf`.
 */
export function applySpecErrata(schema: Json): Json {
  if (Array.isArray(schema)) return schema.map(applySpecErrata);
  if (schema === null || typeof schema !== "object") return schema;
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(schema)) out[key] = applySpecErrata(value);
  const titles = Array.isArray(out["allOf"]) ? out["allOf"].map((s) => asObject(s)?.["title"]) : [];
  if (titles.length === 2 && titles.includes("Simple User") && titles.includes("Enterprise")) {
    out["anyOf"] = out["allOf"] ?? [];
    delete out["allOf"];
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Path matching

interface PathMatch {
  template: string;
  params: Record<string, string>;
}

const pathMatchCache = new Map<string, PathMatch | null>();

function splitPath(path: string): string[] {
  let pathname = path.split("?")[0] ?? "";
  if (pathname === GHES_PREFIX || pathname.startsWith(`${GHES_PREFIX}/`)) pathname = pathname.slice(GHES_PREFIX.length);
  return pathname.split("/").filter((s) => s !== "");
}

function isTemplate(path: string): boolean {
  return path.includes("{");
}

/**
 * Finds the spec template for a concrete path (or accepts a template as is). Among templates that
 * match, literal segments win over parameters, left to right, so `.../runners/generate-jitconfig`
 * beats `.../runners/{runner_id}`.
 */
export function matchGitHubPath(method: string, path: string): PathMatch | undefined {
  const key = `${method.toLowerCase()} ${path.split("?")[0]}`;
  const cached = pathMatchCache.get(key);
  if (cached !== undefined) return cached ?? undefined;
  const found = findTemplate(method.toLowerCase(), path);
  pathMatchCache.set(key, found ?? null);
  return found;
}

function findTemplate(method: string, path: string): PathMatch | undefined {
  const paths = loadRestPaths();
  const segments = splitPath(path);
  if (isTemplate(path)) {
    const template = `/${segments.join("/")}`;
    return hasMethod(paths[template], method) ? { template, params: {} } : undefined;
  }
  let best: { match: PathMatch; score: string } | undefined;
  for (const [template, item] of Object.entries(paths)) {
    if (!hasMethod(item, method)) continue;
    const match = matchSegments(template, segments);
    if (!match) continue;
    // One character per segment: "1" literal, "0" parameter; lexicographic max = most literal.
    const score = template
      .split("/")
      .slice(1)
      .map((s) => (s.startsWith("{") ? "0" : "1"))
      .join("");
    if (!best || score > best.score) best = { match, score };
  }
  return best?.match;
}

function hasMethod(item: Json | undefined, method: string): boolean {
  return item !== null && typeof item === "object" && !Array.isArray(item) && item[method] !== undefined;
}

function matchSegments(template: string, segments: string[]): PathMatch | undefined {
  const parts = template.split("/").slice(1);
  if (parts.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (const [i, part] of parts.entries()) {
    const segment = segments[i] ?? "";
    if (part.startsWith("{") && part.endsWith("}")) params[part.slice(1, -1)] = decodeURIComponent(segment);
    else if (part !== segment) return undefined;
  }
  return { template, params };
}

function operationObject(method: string, template: string): JsonObject | undefined {
  const item = loadRestPaths()[template];
  if (item === null || typeof item !== "object" || Array.isArray(item)) return undefined;
  const op = item[method.toLowerCase()];
  return op !== null && typeof op === "object" && !Array.isArray(op) ? op : undefined;
}

/** The operation a request addresses, or undefined when the spec has no such route. */
export function gitHubOperation(method: string, path: string): GitHubOperation | undefined {
  if (!HTTP_METHODS.has(method.toLowerCase())) return undefined;
  const match = matchGitHubPath(method, path);
  if (!match) return undefined;
  const op = operationObject(method, match.template);
  if (!op) return undefined;
  const docs = op["externalDocs"] as JsonObject | undefined;
  return {
    method: method.toUpperCase(),
    template: match.template,
    operationId: String(op["operationId"]),
    docsUrl: typeof docs?.["url"] === "string" ? docs["url"] : undefined,
    params: match.params,
  };
}

// ---------------------------------------------------------------------------------------------
// Compilation

let ajvInstance: Ajv | undefined;
let coercingAjv: Ajv | undefined;
const validatorCache = new Map<string, ValidateFunction>();

function newAjv(coerceTypes: boolean): Ajv {
  // strict: false because the spec uses keywords ajv does not know (discriminator, readOnly
  // variants, x-*); validateSchema: false because OpenAPI schemas are not draft-07 meta-valid.
  const ajv = new Ajv({ strict: false, allErrors: true, validateSchema: false, coerceTypes });
  addFormats(ajv);
  return ajv;
}

function compiled(key: string, schema: Json, coerce = false): ValidateFunction {
  const cacheKey = `${coerce ? "coerce:" : ""}${key}`;
  let validate = validatorCache.get(cacheKey);
  if (!validate) {
    const ajv = coerce ? (coercingAjv ??= newAjv(true)) : (ajvInstance ??= newAjv(false));
    validate = ajv.compile(openApiToJsonSchema(applySpecErrata(schema)) as object);
    validatorCache.set(cacheKey, validate);
  }
  return validate;
}

function describeErrors(errors: ErrorObject[] | null | undefined, where: string, stripPrefix = ""): string[] {
  return (errors ?? []).map((e) => {
    const pointer = e.instancePath.slice(stripPrefix.length);
    const extra = e.keyword === "additionalProperties" ? ` (${String(e.params["additionalProperty"])})` : "";
    const allowed = e.keyword === "enum" ? ` ${JSON.stringify(e.params["allowedValues"])}` : "";
    return `${where}${pointer ? ` ${pointer}` : ""} ${e.message ?? e.keyword}${extra}${allowed}`;
  });
}

// ---------------------------------------------------------------------------------------------
// Public validators

/** Error shape GitHub uses for every non-2xx status the spec does not describe specifically. */
const BASIC_ERROR_SCHEMA: Json = {
  type: "object",
  required: ["message"],
  properties: {
    message: { type: "string" },
    documentation_url: { type: "string" },
    status: { type: "string" },
  },
};

function asObject(value: Json | undefined): JsonObject | undefined {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? value : undefined;
}

function jsonContentSchema(holder: JsonObject | undefined): Json | undefined {
  const content = asObject(holder?.["content"]);
  const media = asObject(content?.["application/json"]) ?? asObject(content?.["application/scim+json"]);
  return media?.["schema"];
}

function parseBody(body: unknown): { value: unknown; error?: string } {
  if (typeof body !== "string") return { value: body };
  if (body === "") return { value: undefined };
  try {
    return { value: JSON.parse(body) };
  } catch {
    return { value: body, error: "body is not valid JSON" };
  }
}

/**
 * Validates a response. `path` may be concrete (`/repos/o/r/actions/runners/5`) or a template.
 * `body` may be the parsed JSON or its text. Statuses the spec does not list are accepted for
 * errors when the body has GitHub's error shape (the spec omits most 401/403/404s), and for 304
 * when the body is empty; an undocumented success status is a violation.
 */
export function validateGitHubResponse(method: string, path: string, status: number, body: unknown): string[] {
  const label = `${method.toUpperCase()} ${path.split("?")[0]} -> ${status}`;
  const op = gitHubOperation(method, path);
  if (!op) return [`${label}: no such operation in the GitHub OpenAPI`];
  const parsed = parseBody(body);
  if (parsed.error) return [`${label}: ${parsed.error}`];
  const responses = asObject(operationObject(method, op.template)?.["responses"]);
  const documented = asObject(responses?.[String(status)]);
  if (!documented) return undocumentedStatus(label, op, status, parsed.value);
  const schema = jsonContentSchema(documented);
  if (schema === undefined) {
    return parsed.value === undefined ? [] : [`${label}: the spec documents no body, got one`];
  }
  if (parsed.value === undefined) return [`${label}: the spec documents a JSON body, got none`];
  const validate = compiled(`${op.method} ${op.template} ${status}`, schema);
  return validate(parsed.value) ? [] : describeErrors(validate.errors, `${label}: body`);
}

/** The spec's own example bodies for a response (useful to check validators and fixtures). */
export function gitHubResponseExamples(method: string, path: string, status: number): unknown[] {
  const op = gitHubOperation(method, path);
  const responses = op && asObject(operationObject(method, op.template)?.["responses"]);
  const content = asObject(asObject(responses?.[String(status)])?.["content"]);
  const examples = asObject(asObject(content?.["application/json"])?.["examples"]);
  return Object.values(examples ?? {}).map((example) => asObject(example)?.["value"]);
}

function undocumentedStatus(label: string, op: GitHubOperation, status: number, body: unknown): string[] {
  if (status === 304) return body === undefined ? [] : [`${label}: 304 must not have a body`];
  if (status >= 400) {
    const validate = compiled("basic-error", BASIC_ERROR_SCHEMA);
    return validate(body) ? [] : describeErrors(validate.errors, `${label}: error body`);
  }
  return [`${label}: status not documented for ${op.operationId}`];
}

/**
 * Validates a request: path and query parameters (coerced from strings, as GitHub does) and the
 * JSON body. Unknown query parameters are ignored, like GitHub ignores them.
 */
export function validateGitHubRequest(method: string, pathWithQuery: string, body?: unknown): string[] {
  const label = `${method.toUpperCase()} ${pathWithQuery.split("?")[0]}`;
  const op = gitHubOperation(method, pathWithQuery);
  if (!op) return [`${label}: no such operation in the GitHub OpenAPI`];
  const operation = operationObject(method, op.template) ?? {};
  const query = new URLSearchParams(pathWithQuery.split("?")[1] ?? "");
  const problems = [...validateParameters(op, operation, isTemplate(pathWithQuery) ? undefined : op.params, query, label)];
  const parsed = parseBody(body);
  if (parsed.error) return [...problems, `${label}: request ${parsed.error}`];
  problems.push(...validateRequestBody(op, asObject(operation["requestBody"]), parsed.value, label));
  return problems;
}

function validateParameters(
  op: GitHubOperation,
  operation: JsonObject,
  pathParams: Record<string, string> | undefined,
  query: URLSearchParams,
  label: string,
): string[] {
  const problems: string[] = [];
  const parameters = Array.isArray(operation["parameters"]) ? operation["parameters"] : [];
  for (const parameter of parameters.map(asObject)) {
    if (!parameter) continue;
    const name = String(parameter["name"]);
    const where = parameter["in"];
    const raw = where === "path" ? pathParams?.[name] : where === "query" ? (query.get(name) ?? undefined) : undefined;
    if (raw === undefined) {
      if (where === "query" && parameter["required"] === true) problems.push(`${label}: missing query parameter ${name}`);
      continue;
    }
    const schema = parameter["schema"];
    if (schema === undefined) continue;
    // Coercion mutates its input, so validate a holder object rather than the bare string.
    const validate = compiled(
      `${op.method} ${op.template} param ${name}`,
      {
        type: "object",
        properties: { value: schema },
      },
      true,
    );
    if (!validate({ value: raw })) problems.push(...describeErrors(validate.errors, `${label}: ${where} parameter ${name}`, "/value"));
  }
  return problems;
}

function validateRequestBody(op: GitHubOperation, requestBody: JsonObject | undefined, body: unknown, label: string): string[] {
  if (!requestBody) return [];
  if (body === undefined) return requestBody["required"] === true ? [`${label}: request body is required`] : [];
  const schema = jsonContentSchema(requestBody);
  if (schema === undefined) return [];
  const validate = compiled(`${op.method} ${op.template} request`, schema);
  return validate(body) ? [] : describeErrors(validate.errors, `${label}: request body`);
}

// ---------------------------------------------------------------------------------------------
// Webhooks

let webhookAjv: Ajv | undefined;
const WEBHOOK_DOC_ID = "https://github.com/octokit/openapi-webhooks/api.github.com.json";

/** Component name of a webhook schema, e.g. `("workflow_job", "in_progress")` -> `webhook-workflow-job-in-progress`. */
export function webhookSchemaName(event: string, action?: string): string {
  return `webhook-${[event, action].filter(Boolean).join("-").replaceAll("_", "-")}`;
}

/** Validates a webhook payload against `components.schemas[<schemaName>]` of @octokit/openapi-webhooks. */
export function validateGitHubWebhook(event: string, action: string | undefined, payload: unknown): string[] {
  const name = webhookSchemaName(event, action);
  if (!webhookAjv) {
    // The webhooks spec is OpenAPI 3.1 (plain JSON Schema, `$ref`s into components), so it only
    // needs registering once; refs then resolve inside the document.
    webhookAjv = newAjv(false);
    webhookAjv.addSchema({ $id: WEBHOOK_DOC_ID, ...(openApiToJsonSchema(loadWebhookComponents()) as object) });
  }
  const components = asObject(asObject(loadWebhookComponents()["components"])?.["schemas"]);
  if (!components?.[name]) return [`no webhook schema ${name} in @octokit/openapi-webhooks`];
  const validate = webhookAjv.getSchema(`${WEBHOOK_DOC_ID}#/components/schemas/${name}`);
  if (!validate) return [`webhook schema ${name} did not compile`];
  return validate(payload) ? [] : describeErrors(validate.errors, `${name}: payload`);
}
