import { HTTPError, RequestValidationError, type ValidationIssue } from "../errors.js";
import type { Request } from "./request.js";
import { isStandardSchema, jsonSchemaOf, type InferOutput, type JSONSchema, type StandardSchemaV1 } from "./standard-schema.js";

/** Where a validated input comes from; the first element of an issue's `loc`. */
export type InputLocation = "path" | "query" | "header" | "body" | "message";

export { RequestValidationError, type ValidationIssue };

/** The schemas of an HTTP route's inputs. */
export interface RequestSchemas {
  /** The path params, after the pattern's converters (`{id:int}` is a number already). */
  params?: StandardSchemaV1;
  /** The query string as an object: one value per name, an array where the schema asks for one. */
  query?: StandardSchemaV1;
  /** The headers as an object, names in lower case. */
  headers?: StandardSchemaV1;
  /** The body: JSON (no Content-Type or a JSON one), or a URL-encoded form as an object. */
  body?: StandardSchemaV1;
}

/** What `req.valid` holds for a route's schemas. */
export type Validated<S> = { -readonly [K in keyof S]-?: InferOutput<S[K]> };

/** `loc[0]` for each input of {@link RequestSchemas}. */
const LOCATION = { params: "path", query: "query", headers: "header", body: "body" } as const;

type JSONType = "string" | "number" | "integer" | "boolean" | "null" | "array" | "object";

/** How a string value of one field is read: as a list or one value, and which scalar types it may take. */
interface Field {
  array: boolean;
  types: ReadonlySet<JSONType>;
}

/** The fields of an object schema, by name; null where the schema gives no JSON Schema. */
type Shape = ReadonlyMap<string, Field> | null;

/** What the body is read as, by Content-Type. */
type BodyKind = "json" | "form" | null;

/**
 * Validates the inputs of one route. Made once per route; a route without schemas has none, and
 * pays nothing per request.
 */
export class RequestValidator {
  private readonly shapes = new Map<keyof RequestSchemas, Shape>();

  constructor(private readonly schemas: RequestSchemas) {
    for (const key of Object.keys(schemas) as Array<keyof RequestSchemas>) {
      if (!(key in LOCATION)) throw new TypeError(`Unknown schema ${JSON.stringify(key)}: a route validates params, query, headers and body`);
      const schema = schemas[key];
      if (schema === undefined) continue;
      if (!isStandardSchema(schema)) throw new TypeError(`schema.${key} is not a Standard Schema (zod, valibot, arktype, ...)`);
      this.shapes.set(key, shapeOf(schema));
    }
  }

  /**
   * Validate what the request carries (an HTTP request, or a WebSocket's upgrade request, whose
   * route has no body schema); the body is read only when there is a schema for it.
   * @returns the validated values by input, or throws {@link RequestValidationError} with every issue.
   */
  async validate(req: Request<Record<string, string | number>, unknown>): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = {};
    const issues: ValidationIssue[] = [];
    const { params, query, headers, body } = this.schemas;
    if (params !== undefined) out.params = await check(params, "path", coerceRecord(req.params, this.shapes.get("params")!), issues);
    if (query !== undefined) out.query = await check(query, "query", fromSearchParams(req.query, this.shapes.get("query")!), issues);
    if (headers !== undefined) out.headers = await check(headers, "header", fromHeaders(req.headers, this.shapes.get("headers")!), issues);
    if (body !== undefined) {
      const text = await req.text();
      const kind = bodyKind(req.headers["content-type"]);
      let value: unknown;
      let parsed = true;
      if (kind === "form") {
        value = fromSearchParams(new URLSearchParams(text), this.shapes.get("body")!);
      } else if (kind === "json") {
        try {
          value = text === "" ? undefined : JSON.parse(text);
        } catch (error) {
          parsed = false;
          issues.push({ loc: ["body"], msg: `JSON decode error: ${(error as Error).message}`, type: "json_invalid" });
        }
      } else {
        throw new HTTPError(415, "The body must be JSON (application/json) or a URL-encoded form");
      }
      if (parsed) out.body = await check(body, "body", value, issues);
    }
    if (issues.length > 0) throw new RequestValidationError(issues);
    return out;
  }
}

/** What a body is read as, from its Content-Type: JSON when there is none, as FastAPI does. */
function bodyKind(contentType: string | undefined): BodyKind {
  if (contentType === undefined) return "json";
  const type = contentType.split(";", 1)[0]!.trim().toLowerCase();
  if (type === "application/json" || (type.startsWith("application/") && type.endsWith("+json"))) return "json";
  if (type === "application/x-www-form-urlencoded") return "form";
  return null;
}

/**
 * Validate a value against a schema; issues are added to `issues` under `location`.
 * @returns the schema's output, or undefined when it failed.
 */
async function check(schema: StandardSchemaV1, location: InputLocation, value: unknown, issues: ValidationIssue[]): Promise<unknown> {
  let result = schema["~standard"].validate(value);
  if (result instanceof Promise) result = await result;
  if (result.issues === undefined) return result.value;
  for (const issue of result.issues) issues.push(toValidationIssue(location, issue));
  return undefined;
}

/** The outcome of {@link validateValue}. */
export type ValueCheck = { ok: true; value: unknown } | { ok: false; issues: ValidationIssue[] };

/**
 * Validate one value (a WebSocket message) against a schema, synchronously where the schema is.
 * @returns the output, or the issues.
 */
export function validateValue(schema: StandardSchemaV1, location: InputLocation, value: unknown): ValueCheck | Promise<ValueCheck> {
  const result = schema["~standard"].validate(value);
  const settle = (r: StandardSchemaV1.Result<unknown>): ValueCheck =>
    r.issues === undefined
      ? { ok: true as const, value: r.value }
      : { ok: false as const, issues: r.issues.map((issue) => toValidationIssue(location, issue)) };
  return result instanceof Promise ? result.then(settle) : settle(result);
}

export function toValidationIssue(location: InputLocation, issue: StandardSchemaV1.Issue): ValidationIssue {
  const loc: Array<string | number> = [location];
  for (const segment of issue.path ?? []) {
    const key = typeof segment === "object" && segment !== null ? segment.key : segment;
    loc.push(typeof key === "number" ? key : String(key));
  }
  const raw = issue as { code?: unknown; type?: unknown };
  const type = typeof raw.code === "string" ? raw.code : typeof raw.type === "string" ? raw.type : "invalid";
  return { loc, msg: issue.message, type };
}

/** The query string (or a form) as an object, coerced per the schema's fields; one pass over it. */
function fromSearchParams(search: URLSearchParams, shape: Shape): Record<string, unknown> {
  const byName = new Map<string, string[]>();
  for (const [name, value] of search) {
    const values = byName.get(name);
    if (values === undefined) byName.set(name, [value]);
    else values.push(value);
  }
  const out = record();
  for (const [name, values] of byName) {
    const field = shape?.get(name);
    if (field === undefined) {
      // A name the schema does not describe: one value, or a list when it is repeated.
      out[name] = values.length === 1 ? values[0] : values;
    } else {
      out[name] = read(values, field);
    }
  }
  return out;
}

/** The values a field got, as the field asks: all of them coerced for a list, else the first. */
function read(values: readonly string[], field: Field): unknown {
  return field.array ? values.map((v) => coerce(v, field.types)) : coerce(values[0]!, field.types);
}

function fromHeaders(headers: Record<string, string | string[] | undefined>, shape: Shape): Record<string, unknown> {
  const out = record();
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    const field = shape?.get(name);
    out[name] = field === undefined ? value : read(Array.isArray(value) ? value : [value], field);
  }
  return out;
}

function coerceRecord(params: Record<string, string | number>, shape: Shape): Record<string, unknown> {
  if (shape === null) return Object.assign(record(), params);
  const out = record();
  for (const name in params) {
    const value = params[name]!;
    const field = shape.get(name);
    out[name] = typeof value === "string" && field !== undefined ? coerce(value, field.types) : value;
  }
  return out;
}

/**
 * An object for names the client chose: without a prototype, so that `__proto__` in a query is a
 * name like any other and cannot change what the object is.
 */
function record(): Record<string, unknown> {
  return Object.create(null) as Record<string, unknown>;
}

const NUMBER = /^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$/;
const TRUE = new Set(["true", "1", "yes", "on"]);
const FALSE = new Set(["false", "0", "no", "off"]);

/**
 * A string read as the schema asks: a number where it wants one and the text is a number, a
 * boolean for true/false, 1/0, yes/no, on/off (as FastAPI does). Anything else stays a string, for
 * the schema to refuse with its own message; a field that also takes strings stays a string.
 */
function coerce(value: string, types: ReadonlySet<JSONType>): unknown {
  if (types.size === 0 || types.has("string")) return value;
  if ((types.has("number") || types.has("integer")) && NUMBER.test(value)) return Number(value);
  if (types.has("boolean")) {
    const lower = value.toLowerCase();
    if (TRUE.has(lower)) return true;
    if (FALSE.has(lower)) return false;
  }
  return value;
}

/** The fields of an object schema, from its JSON Schema. */
function shapeOf(schema: StandardSchemaV1): Shape {
  const root = jsonSchemaOf(schema);
  if (root === null) return null;
  const object = resolve(root, root);
  const properties = object.properties;
  if (typeof properties !== "object" || properties === null) return null;
  const shape = new Map<string, Field>();
  for (const [name, property] of Object.entries(properties as Record<string, JSONSchema>)) {
    const node = resolve(root, property);
    const types = scalarTypes(root, node);
    if (types.has("array")) {
      const items = typeof node.items === "object" && node.items !== null ? resolve(root, node.items as JSONSchema) : {};
      shape.set(name, { array: true, types: scalarTypes(root, items) });
    } else {
      shape.set(name, { array: false, types });
    }
  }
  return shape;
}

/** The `type`s a JSON Schema node allows, through anyOf/oneOf and `$ref`s ("array" included). */
function scalarTypes(root: JSONSchema, node: JSONSchema, depth = 0): Set<JSONType> {
  const out = new Set<JSONType>();
  if (depth > 8) return out;
  const type = node.type;
  if (typeof type === "string") out.add(type as JSONType);
  else if (Array.isArray(type)) for (const t of type) out.add(t as JSONType);
  if (typeof node.const === "string" || (Array.isArray(node.enum) && node.enum.some((v) => typeof v === "string"))) out.add("string");
  if (typeof node.const === "number" || (Array.isArray(node.enum) && node.enum.some((v) => typeof v === "number"))) out.add("number");
  if (typeof node.const === "boolean" || (Array.isArray(node.enum) && node.enum.some((v) => typeof v === "boolean"))) out.add("boolean");
  for (const key of ["anyOf", "oneOf", "allOf"]) {
    const list = node[key];
    if (Array.isArray(list)) for (const branch of list) for (const t of scalarTypes(root, resolve(root, branch as JSONSchema), depth + 1)) out.add(t);
  }
  return out;
}

/** Follow a local `$ref` (`#/$defs/...`, `#/definitions/...`). */
function resolve(root: JSONSchema, node: JSONSchema): JSONSchema {
  let current = node;
  for (let hops = 0; hops < 8 && typeof current.$ref === "string"; hops++) {
    const ref = current.$ref as string;
    if (!ref.startsWith("#")) break;
    let target: unknown = root;
    for (const part of ref.slice(1).split("/").filter(Boolean)) {
      target = (target as Record<string, unknown> | undefined)?.[part.replace(/~1/g, "/").replace(/~0/g, "~")];
    }
    if (typeof target !== "object" || target === null) break;
    current = target as JSONSchema;
  }
  return current;
}
