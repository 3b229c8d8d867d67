import type { Server, ServerResponse } from "node:http";
import type { BodyWriters, IncomingRequest, ResponseSink } from "../http-engine.js";
import { nodeBodyWriters } from "../node/http-engine.js";
import { HTTPError, TooManyRequestsError } from "../errors.js";
import { renderPrometheus } from "../metrics/prometheus.js";
import { StatsCollector, type Stats } from "../metrics/stats.js";
import { resolveAppOptions, type AppOptions, type ResolvedAppOptions } from "../options.js";
import { HTMLResponse, JSONResponse, Response, type ResponseHost, type SendContext, type TrackedStream } from "../responses/response.js";
import { staticHandler, type StaticOptions } from "../responses/static.js";
import { DependencyScope, type Dependency } from "../request/dependencies.js";
import { RateLimiter, StreamSlots } from "./limits.js";
import { Request } from "../request/request.js";
import { RouteTable, Router, type Middleware, type ResponseLike, type RouteDefinition } from "./router.js";
import { toResponse } from "./to-response.js";
import { openAPIDocument, type DocumentInfo, type OpenAPIDocument } from "../docs/openapi.js";
import { asyncAPIDocument, type AsyncAPIDocument } from "../docs/asyncapi.js";
import { DOCS_PAGE_CSP, docsPage, type DocsPageOptions } from "../docs/page.js";
import { WebSocketEngine, type WebSocketMiddleware } from "../websocket/engine.js";
import { RoomRegistry } from "../rooms/registry.js";
import { AppServer, type ListenOptions, type ListeningAddress } from "./server.js";
import type { Room } from "../rooms/room.js";
import type { WebSocket, Message } from "../websocket/session.js";
import type { WebSocketRouteOptions } from "./router.js";
import type { RouteMessage, ValidatedUpgrade, WebSocketSchemas } from "../websocket/route.js";
import type { DependencyMap } from "../request/dependencies.js";
import type { PathParams } from "../request/route-pattern.js";

export type { Middleware } from "./router.js";

/** One request in flight: what sending needs, plus the request's dependency scope. */
interface Exchange extends SendContext {
  req: Request;
  scope: DependencyScope | null;
  settled: boolean;
}

const NO_DEPENDENCIES = Object.freeze({}) as never;


/** Event-style room handlers of `app.room()`; each gets the connection's room. */
export interface RoomHandlers<P = Record<string, string | number>, V = {}, M = Message> {
  onConnect?(ws: WebSocket<P, V>, room: Room): void;
  /** Every message; with a `schema.message`, the validated value (one that fails closes with 1007). */
  onMessage?(ws: WebSocket<P, V>, message: M, room: Room): void;
  onDisconnect?(ws: WebSocket<P, V>, room: Room, code: number, reason: string): void;
}


/**
 * Turns an error into a response. Return `undefined` to fall back to the default handling
 * (HTTPError → its status, anything else → 500 without details).
 */
export type ErrorHandler = (error: unknown, req: Request) => ResponseLike | Promise<ResponseLike>;

/**
 * The application: routes, middleware, lifecycle and the HTTP server.
 * @example
 * const app = new Catzilla();
 * app.get("/hello", () => "Hello, World!");
 * await app.listen({ port: 8000 });
 */
export class Catzilla extends Router {
  /** The options in effect, defaults filled in. */
  readonly config: ResolvedAppOptions;
  private table: RouteTable | null = null;
  /** Counts route changes, for what is made from the routes (the documents). */
  private routesVersion = 0;
  private readonly middleware: Middleware[] = [];
  private readonly websocketMiddleware: WebSocketMiddleware[] = [];
  /** @internal */
  readonly websockets: WebSocketEngine;
  /** Rooms for broadcasting to WebSocket and SSE members. */
  readonly rooms: RoomRegistry;
  private errorHandler: ErrorHandler | null = null;
  /**
   * Dependencies to resolve as something else, wherever they are used (HTTP and WebSocket
   * routes, guards, dependencies of dependencies): for tests, as FastAPI's
   * `dependency_overrides`. TestClient's `override()` sets them for one client.
   */
  readonly dependencyOverrides = new Map<Dependency<any>, Dependency<any>>();
  private readonly startupHooks: Array<() => unknown> = [];
  private readonly shutdownHooks: Array<() => unknown> = [];
  private readonly collector = new StatsCollector();
  private readonly rateLimiter: RateLimiter | null;
  private readonly streamSlots: StreamSlots;
  private readonly streams = new Set<TrackedStream>();
  private readonly host: ResponseHost;
  /** Listening, workers, signals, connection accounting and shutdown. */
  private readonly appServer: AppServer;

  constructor(options: AppOptions = {}) {
    super();
    this.config = resolveAppOptions(options);
    this.rooms = new RoomRegistry(this.config.maxRooms, this.config.maxHistoryBytes);
    this.rateLimiter = this.config.rateLimit === null ? null : new RateLimiter(this.config.rateLimit);
    this.streamSlots = new StreamSlots(this.config.maxStreamsPerClient);
    const slots = this.streamSlots;
    const streams = this.streams;
    const app = this;
    this.websockets = new WebSocketEngine(
      {
        stats: this.collector,
        logger: this.config.logger,
        dependencyOverrides: this.dependencyOverrides,
        get isShuttingDown() {
          return app.appServer.shuttingDown;
        },
      },
      () => this.websocketRoutes,
      this.websocketMiddleware,
      this.config.websocket,
      this.config.engine,
    );
    this.host = {
      stats: this.collector,
      logger: this.config.logger,
      streamIdleTimeoutMs: this.config.streamIdleTimeoutMs,
      acquireStream: (address) => slots.acquire(address),
      releaseStream: (address) => slots.release(address),
      trackStream: (stream) => streams.add(stream),
      untrackStream: (stream) => streams.delete(stream),
      nativeStreams: this.websockets.nativeEngine,
      keepConnection: () => this.appServer.keepConnection(),
      dropConnection: () => this.appServer.dropConnection(),
    };
    this.appServer = new AppServer({
      config: this.config,
      collector: this.collector,
      websockets: this.websockets,
      rooms: this.rooms,
      streams,
      startupHooks: this.startupHooks,
      shutdownHooks: this.shutdownHooks,
      serve: this.serve,
      hasWebSocketRoutes: () => this.websocketRoutes.length > 0,
    });
  }

  /**
   * The node:http server, once `listen()` was called on the node:http engine (null on the native
   * HTTP engine, and in the primary of workers).
   */
  get server(): Server | null {
    return this.appServer.nodeServer;
  }

  /**
   * Add WebSocket middleware; it runs before the handler and before accept, on every WebSocket
   * route (a router's `useWebSocket()` runs after these, on its own routes). It may call
   * `ws.reject(status)` or throw an HTTPError to refuse the upgrade, `ws.close(4001, ...)` to
   * close with a code, or `await next()` to go on.
   */
  override useWebSocket(middleware: WebSocketMiddleware): this {
    this.websocketMiddleware.push(middleware);
    return this;
  }

  /**
   * An event-style room: every connection to `path` joins the room named by the request path
   * (so `/game/{id}` makes one room per id), with no promise chain per connection.
   * @example
   * app.room("/global-events", {
   *   onConnect(ws, room) { room.broadcast(`joined ${ws.id}`); },
   *   onMessage(ws, message, room) { room.broadcast(`Global: ${message}`); },
   *   onDisconnect(ws, room) { room.broadcast(`left ${ws.id}`); },
   * });
   */
  room<P extends string, S extends WebSocketSchemas = {}>(
    path: P,
    handlers: RoomHandlers<PathParams<P>, ValidatedUpgrade<S>, RouteMessage<S>>,
    options: WebSocketRouteOptions<{}, S> = {},
  ): this {
    const rooms = this.rooms;
    // The room a connection joined; it may be gone from the registry by the time the
    // connection ends (the last member left), and must not be made again then.
    const joined = new WeakMap<WebSocket<any, any>, Room>();
    return this.addWebSocket(path, {
      onOpen(ws: WebSocket<any, any>) {
        const room = rooms.getOrCreate(ws.path);
        joined.set(ws, room);
        room.add(ws);
        handlers.onConnect?.(ws, room);
      },
      onMessage(ws: WebSocket<any, any>, message: unknown) {
        handlers.onMessage?.(ws, message as RouteMessage<S>, joined.get(ws)!);
      },
      onClose(ws: WebSocket<any, any>, code: number, reason: string) {
        const room = joined.get(ws);
        if (room !== undefined) handlers.onDisconnect?.(ws, room, code, reason);
      },
    }, options as WebSocketRouteOptions<DependencyMap, WebSocketSchemas>, "room");
  }

  /**
   * Add HTTP middleware; they run in the order added, around every request, before the route is
   * matched (so they also see 404s and preflight requests). A router's `use()` runs inside these,
   * around its own routes only.
   */
  override use(middleware: Middleware): this {
    this.middleware.push(middleware);
    return this;
  }

  /** Set the error handler. */
  onError(handler: ErrorHandler): this {
    this.errorHandler = handler;
    return this;
  }

  /** Run a function before the server starts listening. */
  onStartup(hook: () => unknown): this {
    this.startupHooks.push(hook);
    return this;
  }

  /** Run a function after the server stopped, during `close()`. */
  onShutdown(hook: () => unknown): this {
    this.shutdownHooks.push(hook);
    return this;
  }

  /**
   * Serve files from a directory under a URL prefix, with Range, ETag and the rest of
   * FileResponse. Paths that leave the directory (`..`, encoded or not, symlinks) get 404.
   */
  static(prefix: string, directory: string, options: StaticOptions = {}): this {
    const handler = staticHandler(directory, options);
    const base = prefix === "/" ? "" : prefix;
    this.route(["GET", "HEAD"], `${base}/{path:path}`, handler, { summary: `Files under ${prefix}`, tags: ["files"], response: { kind: "file" } });
    return this;
  }

  /** Serve the statistics in the Prometheus text format at `path`. */
  metrics(path = "/metrics"): this {
    return this.get(path, () => new Response(renderPrometheus(this.stats()), {
      headers: { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" },
    }), { summary: "Statistics in the Prometheus text format", tags: ["operations"], response: { kind: "text", contentType: "text/plain; version=0.0.4" } });
  }

  /** The OpenAPI 3.1 document of the app's HTTP routes. */
  openAPIDocument(info: DocumentInfo = {}): OpenAPIDocument {
    return openAPIDocument(this.routes, info);
  }

  /** The AsyncAPI 3.0 document of the app's WebSocket routes and rooms. */
  asyncAPIDocument(info: DocumentInfo = {}): AsyncAPIDocument {
    return asyncAPIDocument(this.websocketRoutes, info);
  }

  /**
   * Serve the OpenAPI document at `path` (made at the first request after routes changed).
   * @example app.openapi("/openapi.json", { title: "Shop", version: "2.1.0" });
   */
  openapi(path = "/openapi.json", info: DocumentInfo = {}): this {
    return this.get(path, this.documentHandler(() => this.openAPIDocument(info)), { includeInSchema: false });
  }

  /** Serve the AsyncAPI document of the WebSocket routes at `path`. */
  asyncapi(path = "/asyncapi.json", info: DocumentInfo = {}): this {
    return this.get(path, this.documentHandler(() => this.asyncAPIDocument(info)), { includeInSchema: false });
  }

  /**
   * Serve the API docs page at `path`: operations and WebSocket channels read from the documents
   * `app.openapi()` and `app.asyncapi()` serve, each with a form to try it. Self-contained: it
   * loads nothing from anywhere else, so it works offline.
   */
  docs(path = "/docs", options: DocsPageOptions = {}): this {
    const html = docsPage(options);
    return this.get(path, () => new HTMLResponse(html, { headers: { "Content-Security-Policy": DOCS_PAGE_CSP, "Cache-Control": "no-cache" } }), { includeInSchema: false });
  }

  /** A handler that serves a document as JSON, made again when the routes change. */
  private documentHandler(make: () => object): () => Response {
    let made: { version: number; text: string } | null = null;
    return () => {
      if (made === null || made.version !== this.routesVersion) made = { version: this.routesVersion, text: JSON.stringify(make()) };
      return new Response(made.text, { headers: { "Content-Type": "application/json" } });
    };
  }

  /** A snapshot of the statistics. */
  stats(): Stats {
    const stats: Stats = {
      ...this.collector.snapshot(),
      engine: this.websockets.engineName,
      // Which engine serves is known once the app listens.
      ...(this.appServer.httpEngineName === null ? {} : { httpEngine: this.appServer.httpEngineName }),
      rooms: this.rooms.summary(),
    };
    const counts = this.appServer.connectionCounts();
    if (counts !== null) {
      stats.connections.active += counts.active;
      stats.connections.total += counts.total;
    }
    // Connections node:http handed to the native engine are open connections too.
    const native = this.websockets.nativeEngine;
    if (native !== null) stats.connections.active += native.size + native.streamCount;
    return stats;
  }

  /** The node:http request listener, for mounting the app on a server of your own. */
  readonly handle = (raw: IncomingRequest, res: ServerResponse): void => {
    this.dispatch(raw, res, nodeBodyWriters);
  };

  /** An engine's request: what the server's HTTP engine calls. @internal */
  readonly serve = (raw: IncomingRequest, res: ResponseSink, writers: BodyWriters): void => {
    this.dispatch(raw, res, writers);
  };

  protected override changed(): void {
    this.table = null;
    this.routesVersion++;
    // The engine is made in the constructor, after the first routes may have been added.
    this.websockets?.invalidate();
  }

  private dispatch(raw: IncomingRequest, res: ResponseSink, writers: BodyWriters): void {
    const stats = this.collector.http;
    stats.requests++;
    stats.active++;
    const req = new Request(raw, this.config.maxBodyBytes);
    const exchange: Exchange = { req, res, writers, host: this.host, scope: null, settled: false };
    let result: Response | Promise<Response>;
    try {
      result = this.runChain(exchange);
    } catch (error) {
      result = this.renderError(error, req);
    }
    // Plain responses from synchronous handlers are sent without a promise in between.
    const sent = result instanceof Response
      ? this.send(exchange, result)
      : result.then(
        (response) => this.send(exchange, response),
        (error: unknown) => this.renderError(error, req).then((response) => this.send(exchange, response)),
      );
    // Nothing may escape as an unhandled rejection: that would end the process.
    if (sent !== undefined) sent.catch((error: unknown) => this.fail(exchange, error));
  }

  /** The last resort when even the error response could not be made: log, cut, count. */
  private fail(exchange: Exchange, error: unknown): void {
    this.config.logger.error("catzilla: could not answer a request", error);
    exchange.res.destroy();
    this.settle(exchange);
  }

  private send(exchange: Exchange, response: Response): void | Promise<void> {
    let sent: void | Promise<void>;
    try {
      sent = this.sendResponse(response, exchange);
    } catch (error) {
      return this.recover(exchange, error);
    }
    if (sent === undefined) {
      this.settle(exchange);
      return;
    }
    return sent.then(() => this.settle(exchange), (error: unknown) => this.recover(exchange, error));
  }

  /** Sending failed: answer with the error response if nothing was sent yet, else cut. */
  private async recover(exchange: Exchange, error: unknown): Promise<void> {
    const { req, res } = exchange;
    try {
      if (res.headersSent) {
        this.config.logger.error("catzilla: sending the response failed", error);
        res.destroy();
        return;
      }
      const response = await this.renderError(error, req);
      try {
        await this.sendResponse(response, exchange);
      } catch (secondError) {
        this.config.logger.error("catzilla: sending the error response failed", secondError);
        res.destroy();
      }
    } finally {
      this.settle(exchange);
    }
  }

  /** The response is done (sent, streamed or cut): count it and close the dependencies. */
  private settle(exchange: Exchange): void {
    if (exchange.settled) return;
    exchange.settled = true;
    exchange.req.responseDone();
    this.collector.http.active--;
    this.collector.countResponse(exchange.res.statusCode);
    if (exchange.scope !== null) {
      void exchange.scope.close((error) => this.config.logger.error("catzilla: dependency cleanup failed", error));
    }
  }

  private sendResponse(response: Response, exchange: Exchange): void | Promise<void> {
    if (this.appServer.shuttingDown || this.abandonsBody(exchange.req)) response.headers.set("Connection", "close");
    return response.send(exchange);
  }

  /**
   * Whether the rest of the request body should not be read: reading stopped at the size limit,
   * or the declared length is over it. Closing is cheaper than draining such a body; a smaller
   * unread body is drained by node:http and the connection is kept.
   */
  private abandonsBody(req: Request): boolean {
    if (req.source.complete) return false;
    return req.bodyConsumed || Number(req.headers["content-length"]) > this.config.maxBodyBytes;
  }

  private runChain(exchange: Exchange): Response | Promise<Response> {
    // RFC 9112 §3.2: a request with more than one Host header field gets 400.
    if (hasDuplicateHost(exchange.req.source.rawHeaders)) throw new HTTPError(400, "More than one Host header");
    if (this.rateLimiter !== null) {
      const retryAfter = this.rateLimiter.take(exchange.req.remoteAddress);
      if (retryAfter > 0) {
        this.collector.http.rateLimited++;
        throw new TooManyRequestsError("Rate limit exceeded", retryAfter);
      }
    }
    if (this.middleware.length === 0) return this.endpoint(exchange);
    return around(this.middleware, exchange.req, () => this.endpoint(exchange), this.renderError);
  }

  private endpoint(exchange: Exchange): Response | Promise<Response> {
    const req = exchange.req;
    const table = (this.table ??= new RouteTable(this.routes));
    const match = table.match(req.method, req.path);
    switch (match.kind) {
      case "found": {
        req.params = match.params;
        const route = match.route;
        // The middleware of the route's routers and its own run around its handler.
        if (match.chain !== null) return around(match.chain, req, () => this.callHandler(route, exchange), this.renderError);
        return this.callHandler(route, exchange);
      }
      case "not-found":
        throw new HTTPError(404);
      case "method-not-allowed":
        throw new HTTPError(405, undefined, { Allow: match.allow });
      case "bad-path":
        throw new HTTPError(400, "Malformed percent-encoding in path");
    }
  }

  /** Run a matched route's handler with its dependencies, once its schemas validated the request. */
  private callHandler(route: RouteDefinition, exchange: Exchange): Response | Promise<Response> {
    const req = exchange.req;
    if (route.validator !== null) {
      return route.validator.validate(req).then((valid) => {
        req.valid = valid;
        return this.resolveAndCall(route, exchange);
      });
    }
    return this.resolveAndCall(route, exchange);
  }

  private resolveAndCall(route: RouteDefinition, exchange: Exchange): Response | Promise<Response> {
    const req = exchange.req;
    const dependencies = route.dependencies;
    if (dependencies === undefined && route.guards.length === 0) {
      const value = route.handler(req as never, NO_DEPENDENCIES);
      return value instanceof Promise ? value.then(toResponse) : toResponse(value);
    }
    const overrides = this.dependencyOverrides;
    const scope = (exchange.scope = new DependencyScope(req, overrides.size === 0 ? null : overrides));
    return scope.resolveEach(route.guards)
      .then(() => (dependencies === undefined ? NO_DEPENDENCIES : scope.resolveAll(dependencies)))
      .then((deps) => route.handler(req as never, deps))
      .then(toResponse);
  }

  private readonly renderError = async (error: unknown, req: Request): Promise<Response> => {
    if (this.errorHandler !== null) {
      try {
        const handled = await this.errorHandler(error, req);
        if (handled !== undefined) return toResponse(handled);
      } catch (handlerError) {
        this.config.logger.error("catzilla: the error handler threw", handlerError);
        error = handlerError;
      }
    }
    if (error instanceof HTTPError) {
      try {
        return new JSONResponse({ detail: error.detail }, { status: error.status, headers: error.headers ?? {} });
      } catch (renderFailure) {
        // A detail that does not serialise or a header that is not valid: the 500 below.
        error = renderFailure;
      }
    }
    this.collector.http.unhandledErrors++;
    this.config.logger.error(`catzilla: unhandled error in ${req.method} ${req.path}`, error);
    return new JSONResponse({ detail: "Internal Server Error" }, { status: 500 });
  };

  /**
   * Run the startup hooks and start listening.
   * @returns the address actually bound (useful with `port: 0`).
   */
  listen(options: ListenOptions = {}): Promise<ListeningAddress> {
    return this.appServer.listen(options);
  }

  /**
   * Shut down gracefully: stop accepting connections, let in-flight requests and streams finish
   * for up to `shutdownTimeoutMs`, then cut what is left and run the shutdown hooks.
   */
  close(): Promise<void> {
    return this.appServer.close();
  }
}

function hasDuplicateHost(rawHeaders: readonly string[]): boolean {
  let seen = false;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.length === 4 && name.toLowerCase() === "host") {
      if (seen) return true;
      seen = true;
    }
  }
  return false;
}

/**
 * Run middleware in order around `inner`; what each returns becomes a Response. `next()` never
 * throws: an error from inside is answered (`render`) where it happened, so middleware outside
 * sees its response — a 404, a 422, a 500 — as it sees any other (CORS headers reach error responses).
 */
function around(
  list: readonly Middleware[],
  req: Request,
  inner: () => Response | Promise<Response>,
  render: (error: unknown, req: Request) => Promise<Response>,
): Promise<Response> {
  let index = 0;
  const next = async (): Promise<Response> => {
    const middleware = list[index++];
    try {
      return middleware === undefined ? await inner() : toResponse(await middleware(req, next));
    } catch (error) {
      return render(error, req);
    }
  };
  return next();
}
