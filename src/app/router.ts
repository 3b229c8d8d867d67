import type { Response } from "../responses/response.js";
import { resolveWebSocketOptions } from "../websocket/options.js";
import type { WebSocketHandler, WebSocketRouteDefinition, WebSocketRouteOptions, WebSocketSchemas } from "../websocket/route.js";
import type { Dependency, DependencyMap, Resolved } from "../request/dependencies.js";
import type { WebSocketMiddleware } from "../websocket/route.js";
import type { Request } from "../request/request.js";
import { RoutePattern, type PathParams } from "../request/route-pattern.js";
import { RequestValidator, type RequestSchemas, type Validated } from "../request/validation.js";
import { isStandardSchema } from "../request/standard-schema.js";
import { pickRouteDoc, type RouteDoc } from "../docs/route-doc.js";

export type { WebSocketHandler, WebSocketRouteOptions, WebSocketSchemas } from "../websocket/route.js";

/**
 * A value a handler returns as JSON: an object or array. Not a Promise, Map, Set or stream (they
 * have a `Symbol.toStringTag`), a generator (`throw`) or a function (`Symbol.hasInstance`): JSON
 * would turn those into `{}` or `null`. Streams and generators go in a StreamingResponse.
 */
export type JSONValueLike = object & {
  readonly [Symbol.toStringTag]?: never;
  readonly [Symbol.hasInstance]?: never;
  readonly throw?: never;
};

/** What a handler may return: a Response, text, bytes, a JSON-serialisable value, or nothing (204). */
export type ResponseLike = Response | string | Uint8Array | JSONValueLike | number | boolean | null | undefined;

/**
 * A route handler. `deps` holds the route's resolved dependencies; `req.valid` what its schemas
 * validated.
 */
export type Handler<Path extends string = string, D extends DependencyMap = {}, S extends RequestSchemas = {}> = (
  req: Request<PathParams<Path>, Validated<S>>,
  deps: Resolved<D>,
) => ResponseLike | Promise<ResponseLike>;

/**
 * HTTP middleware: runs around the handler and returns the response. Added with `app.use()` it
 * runs around every request (before the route is matched); with `router.use()` or a route's
 * `middleware` option, around that router's or that route's handler only, after the route matched.
 */
export type Middleware = (req: Request, next: () => Promise<Response>) => ResponseLike | Promise<ResponseLike>;

/** Options of one route; the {@link RouteDoc} fields describe it in the OpenAPI document. */
export interface RouteOptions<D extends DependencyMap = {}, S extends RequestSchemas = {}> extends RouteDoc {
  /** Dependencies resolved once per request and passed to the handler as its second argument. */
  dependencies?: D;
  /**
   * Standard Schemas (zod, valibot, arktype, ...) of the route's params, query, headers and body.
   * They run after the route's middleware and before its dependencies; what they output is
   * `req.valid`. A request that fails gets 422 with every issue (see RequestValidationError).
   */
  schema?: S;
  /** Middleware around this route's handler only, inside its routers' middleware, in this order. */
  middleware?: readonly Middleware[];
}

/** Options of `include()`. */
export interface IncludeOptions {
  /** A prefix for the included routes, after this router's own and before the included router's. */
  prefix?: string;
  /**
   * Dependencies run before every included route's own (HTTP and WebSocket), for what they do —
   * check a token, throw an HTTPError — not for a value: handlers do not receive them. A route
   * that depends on one of them gets the same value, resolved once per request.
   */
  dependencies?: ReadonlyArray<Dependency<unknown>>;
}

/** A registered route. @internal */
export interface RouteDefinition {
  methods: readonly string[];
  path: string;
  handler: Handler<string, DependencyMap>;
  dependencies: DependencyMap | undefined;
  /** The route's input validation; null without schemas. */
  validator: RequestValidator | null;
  /** Dependencies of its routers and includes, resolved before its own; their values go nowhere. */
  guards: ReadonlyArray<Dependency<unknown>>;
  /** How the OpenAPI document describes it, and its schemas. */
  doc: RouteDoc;
  schema: RequestSchemas | undefined;
  /**
   * The middleware lists around the handler, outermost first: each router's own list (the live
   * array, so that `use()` after a route still applies to it), then the route's.
   */
  middleware: ReadonlyArray<readonly Middleware[]>;
}

/** Options of a {@link Router}. */
export interface RouterOptions {
  /** A path prefix for every route of the router, e.g. `/api/v1`. */
  prefix?: string;
  /** Dependencies run before each of the router's routes, as `include()`'s `dependencies` are. */
  dependencies?: ReadonlyArray<Dependency<unknown>>;
}

/**
 * A group of routes under a common prefix; `app.include(router)` mounts it.
 * @example
 * const api = new Router({ prefix: "/api/v1" });
 * api.get("/users/{id:int}", (req) => ({ id: req.params.id }));
 * app.include(api);
 */
export class Router {
  readonly prefix: string;
  /** @internal */
  readonly routes: RouteDefinition[] = [];
  /** @internal */
  readonly websocketRoutes: WebSocketRouteDefinition[] = [];
  /** Middleware around the handlers of this router's routes. */
  private readonly routerMiddleware: Middleware[] = [];
  /** WebSocket middleware of this router's WebSocket routes. */
  private readonly routerWebSocketMiddleware: WebSocketMiddleware[] = [];
  /** Dependencies run before each of this router's routes. */
  private readonly guards: ReadonlyArray<Dependency<unknown>>;

  constructor(options: RouterOptions = {}) {
    this.prefix = checkPrefix("Router prefix", options.prefix ?? "");
    this.guards = checkDependencies("Router dependencies", options.dependencies);
  }

  /**
   * Add middleware around the handlers of this router's routes (those added before and after),
   * in the order added, inside the app's middleware. Routes the router includes get it too.
   * Add it before the app serves requests.
   * @example
   * const admin = new Router({ prefix: "/admin" }).use(requireAdmin);
   */
  use(middleware: Middleware): this {
    this.routerMiddleware.push(middleware);
    this.changed();
    return this;
  }

  /**
   * Add WebSocket middleware to this router's WebSocket routes (and those of routers it
   * includes), after the app's WebSocket middleware and before the route's schemas and handler.
   * @example
   * const live = new Router({ prefix: "/live" }).useWebSocket(async (ws, next) => {
   *   if (ws.request.cookies.session === undefined) return ws.reject(401, "Log in first");
   *   await next();
   * });
   */
  useWebSocket(middleware: WebSocketMiddleware): this {
    this.routerWebSocketMiddleware.push(middleware);
    this.changed();
    return this;
  }

  /** Add a route for several methods. */
  route<P extends string, D extends DependencyMap = {}, S extends RequestSchemas = {}>(
    methods: readonly string[],
    path: P,
    handler: Handler<P, D, S>,
    options: RouteOptions<D, S> = {},
  ): this {
    this.addRoute({
      methods: methods.map((m) => m.toUpperCase()),
      path: this.prefix + path,
      handler: handler as unknown as Handler<string, DependencyMap>,
      dependencies: options.dependencies,
      validator: options.schema === undefined ? null : new RequestValidator(options.schema),
      guards: this.guards,
      doc: pickRouteDoc(options),
      schema: options.schema,
      middleware: options.middleware === undefined ? [this.routerMiddleware] : [this.routerMiddleware, [...options.middleware]],
    });
    this.changed();
    return this;
  }

  get<P extends string, D extends DependencyMap = {}, S extends RequestSchemas = {}>(path: P, handler: Handler<P, D, S>, options?: RouteOptions<D, S>): this {
    return this.route(["GET"], path, handler, options);
  }
  post<P extends string, D extends DependencyMap = {}, S extends RequestSchemas = {}>(path: P, handler: Handler<P, D, S>, options?: RouteOptions<D, S>): this {
    return this.route(["POST"], path, handler, options);
  }
  put<P extends string, D extends DependencyMap = {}, S extends RequestSchemas = {}>(path: P, handler: Handler<P, D, S>, options?: RouteOptions<D, S>): this {
    return this.route(["PUT"], path, handler, options);
  }
  patch<P extends string, D extends DependencyMap = {}, S extends RequestSchemas = {}>(path: P, handler: Handler<P, D, S>, options?: RouteOptions<D, S>): this {
    return this.route(["PATCH"], path, handler, options);
  }
  delete<P extends string, D extends DependencyMap = {}, S extends RequestSchemas = {}>(path: P, handler: Handler<P, D, S>, options?: RouteOptions<D, S>): this {
    return this.route(["DELETE"], path, handler, options);
  }
  head<P extends string, D extends DependencyMap = {}, S extends RequestSchemas = {}>(path: P, handler: Handler<P, D, S>, options?: RouteOptions<D, S>): this {
    return this.route(["HEAD"], path, handler, options);
  }
  options<P extends string, D extends DependencyMap = {}, S extends RequestSchemas = {}>(path: P, handler: Handler<P, D, S>, options?: RouteOptions<D, S>): this {
    return this.route(["OPTIONS"], path, handler, options);
  }

  /**
   * Add a WebSocket route.
   * @example
   * app.websocket("/echo", async (ws) => {
   *   await ws.accept();
   *   for await (const message of ws) ws.send(message);
   * });
   */
  websocket<P extends string, D extends DependencyMap = {}, S extends WebSocketSchemas = {}>(
    path: P,
    handler: WebSocketHandler<P, D, S>,
    options: WebSocketRouteOptions<D, S> = {},
  ): this {
    return this.addWebSocket(path, handler as unknown as WebSocketHandler<string, DependencyMap>, options as WebSocketRouteOptions<DependencyMap, WebSocketSchemas>, "websocket");
  }

  /** Add a WebSocket route; `kind` says whether it is a room's (`app.room()`), for the AsyncAPI document. */
  protected addWebSocket(path: string, handler: WebSocketHandler<string, DependencyMap>, options: WebSocketRouteOptions<DependencyMap, WebSocketSchemas>, kind: "websocket" | "room"): this {
    const { dependencies, schema, middleware, summary, description, tags, includeInSchema, sends, ...rest } = options;
    // Bad or unknown options fail here, as app-wide ones fail in the constructor.
    resolveWebSocketOptions(rest);
    const { message, ...upgrade }: WebSocketSchemas = schema ?? {};
    if ("body" in upgrade) throw new TypeError("A WebSocket route has no body to validate: use schema.message for its messages");
    if (message !== undefined && !isStandardSchema(message)) throw new TypeError("schema.message is not a Standard Schema (zod, valibot, arktype, ...)");
    this.addWebSocketRoute({
      path: this.prefix + path,
      handler,
      dependencies,
      validator: Object.keys(upgrade).length === 0 ? null : new RequestValidator(upgrade),
      message: message ?? null,
      guards: this.guards,
      doc: { summary, description, tags, includeInSchema, sends },
      schema,
      kind,
      middleware: middleware === undefined ? [this.routerWebSocketMiddleware] : [this.routerWebSocketMiddleware, [...middleware]],
      options: rest,
    });
    this.changed();
    return this;
  }

  /**
   * Mount every route of another router under this router's prefix and `options.prefix`; this
   * router's middleware runs around the included routes' own.
   * @example app.include(users, { prefix: "/api/v1" });
   */
  include(router: Router, options: IncludeOptions = {}): this {
    const prefix = this.prefix + checkPrefix("include() prefix", options.prefix ?? "");
    const guards = [...this.guards, ...checkDependencies("include() dependencies", options.dependencies)];
    for (const route of router.routes) {
      this.addRoute({
        ...route,
        path: prefix + route.path,
        middleware: [this.routerMiddleware, ...route.middleware],
        guards: guards.length === 0 ? route.guards : [...guards, ...route.guards],
      });
    }
    for (const route of router.websocketRoutes) {
      this.addWebSocketRoute({
        ...route,
        path: prefix + route.path,
        middleware: [this.routerWebSocketMiddleware, ...route.middleware],
        guards: guards.length === 0 ? route.guards : [...guards, ...route.guards],
      });
    }
    this.changed();
    return this;
  }

  /**
   * Add a route; its path must be a valid pattern, and no route added before may match the same
   * paths for one of its methods (the later one could never be reached).
   */
  private addRoute(route: RouteDefinition): void {
    const shape = shapeOf(route.path);
    for (const other of this.routes) {
      const method = route.methods.find((m) => other.methods.includes(m));
      if (method !== undefined && shapeOf(other.path) === shape) {
        throw new TypeError(`Route ${method} ${route.path} matches the same paths as ${method} ${other.path}, added before: the later one would never be reached`);
      }
    }
    this.routes.push(route);
  }

  private addWebSocketRoute(route: WebSocketRouteDefinition): void {
    const shape = shapeOf(route.path);
    const other = this.websocketRoutes.find((r) => shapeOf(r.path) === shape);
    if (other !== undefined) {
      throw new TypeError(`WebSocket route ${route.path} matches the same paths as ${other.path}, added before: the later one would never be reached`);
    }
    this.websocketRoutes.push(route);
  }

  /** Hook for subclasses that cache a compiled route table. @internal */
  protected changed(): void {}
}

function checkDependencies(what: string, list: ReadonlyArray<Dependency<unknown>> | undefined): ReadonlyArray<Dependency<unknown>> {
  if (list === undefined) return NO_GUARDS;
  if (!Array.isArray(list) || list.some((d) => typeof d !== "function")) {
    throw new TypeError(`${what} must be a list of dependency functions`);
  }
  return [...list];
}

const NO_GUARDS: ReadonlyArray<Dependency<unknown>> = Object.freeze([]);

function checkPrefix(what: string, prefix: string): string {
  if (prefix !== "" && (!prefix.startsWith("/") || prefix.endsWith("/"))) {
    throw new TypeError(`${what} must start with "/" and not end with one: ${JSON.stringify(prefix)}`);
  }
  return prefix;
}

const shapes = new Map<string, string>();

/** The shape of a route path (RoutePattern.shape); a malformed pattern fails here, at registration. */
function shapeOf(path: string): string {
  let shape = shapes.get(path);
  if (shape === undefined) shapes.set(path, (shape = new RoutePattern(path).shape));
  return shape;
}

/** Outcome of matching a request against a {@link RouteTable}. @internal */
export type RouteMatch =
  | { kind: "found"; route: RouteDefinition; params: Record<string, string | number>; chain: readonly Middleware[] | null }
  | { kind: "not-found" }
  | { kind: "method-not-allowed"; allow: string }
  | { kind: "bad-path" };

/** A route as the table keeps it: with its middleware flattened when the table is made (null: none). */
interface TableEntry {
  route: RouteDefinition;
  chain: readonly Middleware[] | null;
}

interface CompiledRoute {
  pattern: RoutePattern;
  byMethod: Map<string, TableEntry>;
}

const NO_PARAMS: Record<string, string | number> = Object.freeze({}) as Record<string, string | number>;

/** Routes compiled for matching: static paths by map lookup, the rest by pattern in order. @internal */
export class RouteTable {
  private readonly statics = new Map<string, CompiledRoute>();
  private readonly dynamics: CompiledRoute[] = [];

  constructor(routes: readonly RouteDefinition[]) {
    const byPath = new Map<string, CompiledRoute>();
    for (const route of routes) {
      const chain = route.middleware.flat();
      const entry: TableEntry = { route, chain: chain.length === 0 ? null : chain };
      let compiled = byPath.get(route.path);
      if (compiled === undefined) {
        compiled = { pattern: new RoutePattern(route.path), byMethod: new Map() };
        byPath.set(route.path, compiled);
        if (compiled.pattern.isStatic) this.statics.set(route.path, compiled);
        else this.dynamics.push(compiled);
      }
      for (const method of route.methods) {
        // The first registration wins, as it would with ordered matching.
        if (!compiled.byMethod.has(method)) compiled.byMethod.set(method, entry);
      }
    }
  }

  match(method: string, path: string): RouteMatch {
    const exact = this.statics.get(path);
    if (exact !== undefined) {
      const entry = pick(exact.byMethod, method);
      if (entry !== undefined) return { kind: "found", route: entry.route, params: NO_PARAMS, chain: entry.chain };
    }
    const allowed = new Set<string>();
    if (exact !== undefined) for (const m of exact.byMethod.keys()) allowed.add(m);
    for (const compiled of this.dynamics) {
      const params = compiled.pattern.match(path);
      if (params === null) continue;
      if (params === undefined) return { kind: "bad-path" };
      const entry = pick(compiled.byMethod, method);
      if (entry !== undefined) return { kind: "found", route: entry.route, params, chain: entry.chain };
      for (const m of compiled.byMethod.keys()) allowed.add(m);
    }
    if (allowed.size === 0) return { kind: "not-found" };
    if (allowed.has("GET")) allowed.add("HEAD");
    return { kind: "method-not-allowed", allow: [...allowed].sort().join(", ") };
  }
}

function pick(byMethod: Map<string, TableEntry>, method: string): TableEntry | undefined {
  return byMethod.get(method) ?? (method === "HEAD" ? byMethod.get("GET") : undefined);
}
