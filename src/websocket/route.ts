import type { Dependency, DependencyMap, Resolved } from "../request/dependencies.js";
import type { PathParams } from "../request/route-pattern.js";
import type { StandardSchemaV1, InferOutput } from "../request/standard-schema.js";
import type { RequestValidator, Validated } from "../request/validation.js";
import type { Message, WebSocket, WebSocketListener } from "./session.js";
import type { WebSocketOptions } from "./options.js";
import type { WebSocketRouteDoc } from "../docs/route-doc.js";

/** WebSocket middleware: runs before accept; it may reject (HTTP status) or close (4xxx after accept). */
export type WebSocketMiddleware = (ws: WebSocket, next: () => Promise<void>) => unknown;

/**
 * The schemas of a WebSocket route: the upgrade request's params, query and headers, checked
 * before the handler runs (a failure refuses the upgrade with 422), and the messages a client
 * sends (JSON; a message that fails closes the connection with 1007).
 */
export interface WebSocketSchemas {
  params?: StandardSchemaV1;
  query?: StandardSchemaV1;
  headers?: StandardSchemaV1;
  /**
   * Every message, parsed as JSON and validated: event-style `onMessage` gets the schema's output,
   * and `receiveJson()` validates with it when it is not given a schema of its own.
   */
  message?: StandardSchemaV1;
}

/** What `ws.valid` holds for a route's schemas (the message schema aside). */
export type ValidatedUpgrade<S> = Validated<Omit<S, "message">>;

/** What event-style `onMessage` gets: the message schema's output, or the message as received. */
export type RouteMessage<S> = S extends { message: infer M } ? InferOutput<M> : Message;

/**
 * A WebSocket route handler: a function (pull style, it owns the connection until it returns) or
 * an object of event handlers (event style, for very many connections).
 */
export type WebSocketHandler<Path extends string = string, D extends DependencyMap = {}, S extends WebSocketSchemas = {}> =
  | ((ws: WebSocket<PathParams<Path>, ValidatedUpgrade<S>>, deps: Resolved<D>) => unknown)
  | WebSocketListener<PathParams<Path>, ValidatedUpgrade<S>, RouteMessage<S>>;

/**
 * Options of one WebSocket route: its dependencies, schemas, middleware, how the AsyncAPI document
 * describes it, and any WebSocket option to override.
 */
export interface WebSocketRouteOptions<D extends DependencyMap = {}, S extends WebSocketSchemas = {}> extends WebSocketOptions, WebSocketRouteDoc {
  dependencies?: D;
  /** WebSocket middleware of this route only, after the app's and its routers'. */
  middleware?: readonly WebSocketMiddleware[];
  /** Schemas of the upgrade request and the messages; see {@link WebSocketSchemas}. */
  schema?: S;
}

/** A registered WebSocket route. Not exported by the package. */
export interface WebSocketRouteDefinition {
  path: string;
  handler: WebSocketHandler<string, DependencyMap>;
  dependencies: DependencyMap | undefined;
  /** The upgrade request's validation; null without schemas for it. */
  validator: RequestValidator | null;
  /** The messages' schema, or null. */
  message: StandardSchemaV1 | null;
  /** Dependencies of its routers and includes, resolved before the handler; their values go nowhere. */
  guards: ReadonlyArray<Dependency<unknown>>;
  /** How the AsyncAPI document describes it, and its schemas. */
  doc: WebSocketRouteDoc;
  schema: WebSocketSchemas | undefined;
  /** A route of its own, or a room's (`app.room()`: one room per path). */
  kind: "websocket" | "room";
  /** The WebSocket middleware lists of its routers (live arrays) and its own, outermost first; the app's run before them. */
  middleware: ReadonlyArray<readonly WebSocketMiddleware[]>;
  options: WebSocketOptions;
}
