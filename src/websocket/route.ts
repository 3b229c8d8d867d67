import type { DependencyMap, Resolved } from "../request/dependencies.js";
import type { PathParams } from "../request/route-pattern.js";
import type { WebSocket, WebSocketListener } from "./session.js";
import type { WebSocketOptions } from "./options.js";

/**
 * A WebSocket route handler: a function (pull style, it owns the connection until it returns) or
 * an object of event handlers (event style, for very many connections).
 */
export type WebSocketHandler<Path extends string = string, D extends DependencyMap = {}> =
  | ((ws: WebSocket<PathParams<Path>>, deps: Resolved<D>) => unknown)
  | WebSocketListener<PathParams<Path>>;

/** Options of one WebSocket route: its dependencies and any WebSocket option to override. */
export interface WebSocketRouteOptions<D extends DependencyMap = {}> extends WebSocketOptions {
  dependencies?: D;
}

/** A registered WebSocket route. Not exported by the package. */
export interface WebSocketRouteDefinition {
  path: string;
  handler: WebSocketHandler<string, DependencyMap>;
  dependencies: DependencyMap | undefined;
  options: WebSocketOptions;
}
