import { isStandardSchema, jsonSchemaOf, type JSONSchema, type StandardSchemaV1 } from "../request/standard-schema.js";
import { RoutePattern, type ConverterName } from "../request/route-pattern.js";
import type { RequestSchemas } from "../request/validation.js";
import type { ResponseDoc, RouteDoc } from "./route-doc.js";
import { statusText } from "../errors.js";
import { SchemaCollector } from "./json-schema.js";
import { pathWords, uniqueName } from "./names.js";

/** The document's `info`, and where the API is served. */
export interface DocumentInfo {
  /** Default "Catzilla API". */
  title?: string;
  /** The API's version (not the document format's). Default "0.1.0". */
  version?: string;
  description?: string;
  /** Server URLs, e.g. `["https://api.example.com"]`. Default none (relative to the document). */
  servers?: readonly string[];
}

/** An OpenAPI 3.1 document, as a plain object. */
export type OpenAPIDocument = Record<string, unknown> & { openapi: "3.1.0"; paths: Record<string, Record<string, unknown>> };

/** What the document needs of a route (the app's route definitions are these). */
export interface DocumentedRoute {
  readonly methods: readonly string[];
  readonly path: string;
  readonly doc: RouteDoc;
  readonly schema: RequestSchemas | undefined;
  /** The route's validation, if it validates (then it can answer 422). */
  readonly validator: object | null;
}

const PARAM_SCHEMA: Record<ConverterName, JSONSchema> = {
  str: { type: "string" },
  int: { type: "integer", minimum: 0 },
  float: { type: "number", minimum: 0 },
  uuid: { type: "string", format: "uuid" },
  path: { type: "string", description: "The rest of the path; may contain slashes." },
};

const METHOD_ORDER = ["GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE"];

/** The FastAPI-compatible schema of a 422 body. */
const VALIDATION_SCHEMAS: Record<string, JSONSchema> = {
  ValidationIssue: {
    type: "object",
    properties: {
      loc: { type: "array", items: { anyOf: [{ type: "string" }, { type: "integer" }] } },
      msg: { type: "string" },
      type: { type: "string" },
    },
    required: ["loc", "msg", "type"],
  },
  HTTPValidationError: {
    type: "object",
    properties: { detail: { type: "array", items: { $ref: "#/components/schemas/ValidationIssue" } } },
    required: ["detail"],
  },
};

/**
 * The OpenAPI 3.1 document of a set of routes: paths with their parameters (converters and
 * schemas), bodies, responses (JSON, SSE, streams, files with Range), and 422 where a route
 * validates.
 */
export function openAPIDocument(routes: readonly DocumentedRoute[], info: DocumentInfo = {}): OpenAPIDocument {
  const schemas = new SchemaCollector("#/components/schemas/");
  const paths: Record<string, Record<string, unknown>> = {};
  const operationIds = new Set<string>();
  let validates = false;
  for (const route of routes) {
    const doc = route.doc;
    if (doc.includeInSchema === false) continue;
    const pattern = new RoutePattern(route.path);
    const template = pattern.template;
    const item = (paths[template] ??= {});
    // GET routes answer HEAD too; the document lists the GET, as FastAPI's does.
    const methods = route.methods.filter((m) => !(m === "HEAD" && route.methods.includes("GET")));
    for (const method of [...methods].sort((a, b) => METHOD_ORDER.indexOf(a) - METHOD_ORDER.indexOf(b))) {
      const key = method.toLowerCase();
      if (key in item) continue; // A later route for the same method is never reached.
      const operation: Record<string, unknown> = {};
      if (doc.tags !== undefined) operation.tags = [...doc.tags];
      if (doc.summary !== undefined) operation.summary = doc.summary;
      if (doc.description !== undefined) operation.description = doc.description;
      operation.operationId = operationId(doc.operationId, key, template, operationIds);
      const parameters = [
        ...pathParameters(pattern, route.schema?.params, schemas),
        ...objectParameters("query", route.schema?.query, schemas),
        ...objectParameters("header", route.schema?.headers, schemas),
      ];
      const response: ResponseDoc = doc.response ?? { kind: "json" };
      if (kindOf(response) === "file") parameters.push(...FILE_PARAMETERS);
      if (parameters.length > 0) operation.parameters = parameters;
      const body = route.schema?.body;
      if (body !== undefined) {
        const schema = schemas.embed(body);
        operation.requestBody = {
          required: true,
          content: { "application/json": { schema }, "application/x-www-form-urlencoded": { schema } },
        };
      }
      const responses: Record<string, unknown> = { ...describeResponse(response, schemas, method) };
      for (const [status, extra] of Object.entries(doc.responses ?? {})) {
        responses[status] = typeof extra === "string" ? { description: extra } : describeResponse(extra, schemas, method)["200"];
      }
      if (route.validator !== null && !("422" in responses)) {
        validates = true;
        responses["422"] = {
          description: "Validation Error",
          content: { "application/json": { schema: { $ref: "#/components/schemas/HTTPValidationError" } } },
        };
      }
      operation.responses = responses;
      if (doc.deprecated === true) operation.deprecated = true;
      item[key] = operation;
    }
    if (Object.keys(item).length === 0) delete paths[template];
  }
  schemas.finish();
  const components: Record<string, JSONSchema> = { ...schemas.components, ...(validates ? VALIDATION_SCHEMAS : {}) };
  const document: OpenAPIDocument = {
    openapi: "3.1.0",
    info: { title: info.title ?? "Catzilla API", version: info.version ?? "0.1.0", ...(info.description === undefined ? {} : { description: info.description }) },
    paths,
  };
  if (info.servers !== undefined && info.servers.length > 0) document.servers = info.servers.map((url) => ({ url }));
  if (Object.keys(components).length > 0) document.components = { schemas: components };
  return document;
}

function kindOf(response: ResponseDoc): string {
  return isStandardSchema(response) ? "json" : response.kind;
}

/** The responses one {@link ResponseDoc} stands for, by status. */
function describeResponse(response: ResponseDoc, schemas: SchemaCollector, method: string): Record<string, unknown> {
  if (isStandardSchema(response)) return { 200: { description: "Successful Response", content: { "application/json": { schema: schemas.embed(response) } } } };
  const description = response.description;
  switch (response.kind) {
    case "json":
      return {
        200: {
          description: description ?? "Successful Response",
          content: { "application/json": { schema: response.schema === undefined ? {} : schemas.embed(response.schema) } },
        },
      };
    case "text":
      return { 200: { description: description ?? "Successful Response", content: { [response.contentType ?? "text/plain"]: { schema: { type: "string" } } } } };
    case "stream":
      return {
        200: {
          description: description ?? "A streamed body (chunked transfer coding), written as it is produced.",
          content: { [response.contentType ?? "application/octet-stream"]: { schema: { type: "string", format: "binary" } } },
        },
      };
    case "sse": {
      const media: Record<string, unknown> = {
        schema: {
          type: "string",
          description: "A stream of Server-Sent Events (text/event-stream): `event:`, `id:`, `data:` lines, a blank line after each event. Reconnect with `Last-Event-ID`.",
        },
      };
      // OpenAPI 3.1 has no field for the events of a stream; these extensions carry them.
      if (response.data !== undefined) media["x-event-data"] = schemas.embed(response.data);
      if (response.events !== undefined) media["x-events"] = [...response.events];
      return { 200: { description: description ?? "Server-Sent Events, sent as they happen until the stream ends.", content: { "text/event-stream": media } } };
    }
    case "file": {
      const type = response.contentType ?? "application/octet-stream";
      const body = method === "HEAD" ? undefined : { [type]: { schema: { type: "string", format: "binary" } } };
      return {
        200: {
          description: description ?? "The whole file.",
          headers: FILE_HEADERS,
          ...(body === undefined ? {} : { content: body }),
        },
        206: {
          description: "The ranges asked for with `Range` (one range, or multipart/byteranges for several).",
          headers: { ...FILE_HEADERS, "Content-Range": { schema: { type: "string" }, description: "bytes start-end/size (one range)" } },
          content: { [type]: { schema: { type: "string", format: "binary" } }, "multipart/byteranges": { schema: { type: "string", format: "binary" } } },
        },
        304: { description: "Not Modified: `If-None-Match` or `If-Modified-Since` matched." },
        412: { description: statusText(412) + ": `If-Match` or `If-Unmodified-Since` did not match." },
        416: { description: "Range Not Satisfiable", headers: { "Content-Range": { schema: { type: "string" }, description: "bytes */size" } } },
      };
    }
  }
}

const FILE_HEADERS = {
  "Accept-Ranges": { schema: { type: "string", const: "bytes" } },
  ETag: { schema: { type: "string" } },
  "Last-Modified": { schema: { type: "string" } },
};

const FILE_PARAMETERS = [
  { name: "Range", in: "header", required: false, schema: { type: "string" }, description: "bytes=start-end, several ranges separated by commas" },
  { name: "If-Range", in: "header", required: false, schema: { type: "string" } },
  { name: "If-None-Match", in: "header", required: false, schema: { type: "string" } },
  { name: "If-Modified-Since", in: "header", required: false, schema: { type: "string" } },
];

/** Path parameters: from the params schema where it names them, else from the converter. */
function pathParameters(pattern: RoutePattern, schema: StandardSchemaV1 | undefined, schemas: SchemaCollector): unknown[] {
  const properties = schema === undefined ? null : propertiesOf(schema, schemas);
  return pattern.parameters.map(({ name, converter }) => ({
    name,
    in: "path",
    required: true,
    schema: properties?.schemas[name] ?? PARAM_SCHEMA[converter],
  }));
}

/** Query or header parameters, one per property of an object schema. */
function objectParameters(where: "query" | "header", schema: StandardSchemaV1 | undefined, schemas: SchemaCollector): unknown[] {
  if (schema === undefined) return [];
  const properties = propertiesOf(schema, schemas);
  if (properties === null) return [];
  return Object.entries(properties.schemas).map(([name, property]) => {
    const parameter: Record<string, unknown> = { name, in: where, required: properties.required.has(name), schema: property };
    if (typeof property.description === "string") parameter.description = property.description;
    return parameter;
  });
}

/** The properties of an object schema, each ready to embed, and which are required. */
function propertiesOf(schema: StandardSchemaV1, schemas: SchemaCollector): { schemas: Record<string, JSONSchema>; required: Set<string> } | null {
  if (jsonSchemaOf(schema) === null) return null;
  const embedded = schemas.embed(schema);
  const properties = embedded.properties;
  if (typeof properties !== "object" || properties === null) return null;
  const required = new Set(Array.isArray(embedded.required) ? (embedded.required as string[]) : []);
  return { schemas: properties as Record<string, JSONSchema>, required };
}

/** A route's operationId: the one it gives (which no other route may have), or one made of its method and path. */
function operationId(given: string | undefined, method: string, template: string, taken: Set<string>): string {
  if (given !== undefined && taken.has(given)) throw new TypeError(`operationId ${JSON.stringify(given)} is used by two routes`);
  const words = pathWords(template);
  return uniqueName(given ?? (words === "" ? method : `${method}_${words}`), taken);
}
