import type { StandardSchemaV1 } from "../request/standard-schema.js";

/**
 * What a route answers with, for the OpenAPI document: a JSON body (give its schema, or the schema
 * alone), Server-Sent Events, a byte stream, a file (with Range), or text.
 */
export type ResponseDoc =
  | StandardSchemaV1
  | { kind: "json"; schema?: StandardSchemaV1; description?: string }
  | {
    kind: "sse";
    /** The schema of each event's `data` once parsed as JSON. */
    data?: StandardSchemaV1;
    /** The event names the stream sends (`event:` lines). */
    events?: readonly string[];
    description?: string;
  }
  | { kind: "stream"; contentType?: string; description?: string }
  | { kind: "file"; contentType?: string; description?: string }
  | { kind: "text"; contentType?: string; description?: string };

/** How a route is described in the OpenAPI document. Every field is optional. */
export interface RouteDoc {
  /** A one-line summary. */
  summary?: string;
  /** A longer description (CommonMark). */
  description?: string;
  /** Tags to group operations by. */
  tags?: readonly string[];
  /** A unique id; by default made of the method and the path (`get_users_id`). */
  operationId?: string;
  deprecated?: boolean;
  /** False leaves the route out of the document. Default true. */
  includeInSchema?: boolean;
  /** What a successful request gets (200). Default: a JSON body of any shape. */
  response?: ResponseDoc;
  /** Other responses by status: a description, or a response as `response` takes it. */
  responses?: Readonly<Record<number, string | ResponseDoc>>;
}

/** How a WebSocket route is described in the AsyncAPI document. */
export interface WebSocketRouteDoc {
  summary?: string;
  description?: string;
  tags?: readonly string[];
  /** False leaves the route out of the document. Default true. */
  includeInSchema?: boolean;
  /** The schema of the messages the server sends on the route (those a client receives). */
  sends?: StandardSchemaV1;
}

/** The documentation fields of route options, kept with the route. @internal */
export function pickRouteDoc(options: RouteDoc): RouteDoc {
  const { summary, description, tags, operationId, deprecated, includeInSchema, response, responses } = options;
  return { summary, description, tags, operationId, deprecated, includeInSchema, response, responses };
}
