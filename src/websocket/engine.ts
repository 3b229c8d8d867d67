import type { IncomingRequest, UpgradeChannel } from "../http-engine.js";
import { HTTPError, WebSocketException, statusText } from "../errors.js";
import { DependencyScope, type DependencyOverrides } from "../request/dependencies.js";
import { Request } from "../request/request.js";
import { RoutePattern } from "../request/route-pattern.js";
import type { RequestValidator } from "../request/validation.js";
import type { WebSocketMiddleware, WebSocketRouteDefinition } from "./route.js";

export type { WebSocketMiddleware } from "./route.js";
import type { EngineChoice, Logger } from "../options.js";
import type { StatsCollector } from "../metrics/stats.js";
import { CloseCode, DEFAULT_DEFLATE_LEVEL } from "../protocol/websocket/constants.js";
import { negotiateDeflate, type DeflateParams } from "../protocol/websocket/extensions.js";
import { acceptResponse, checkHandshake, rejectResponse, selectProtocol, type HandshakeCheck } from "../protocol/websocket/handshake.js";
import { acceptKey } from "../node/websocket/accept-key.js";
import { ConnectionRegistry, NodeConnection, type ConnectionOptions } from "../node/websocket/connection.js";
import type { TransportEvents, WebSocketTransport } from "../transport.js";
import { loadBinding } from "../node/native/binding.js";
import { NativeEngine } from "../node/native/connection.js";
import { resolveWebSocketOptions, type ResolvedWebSocketOptions, type WebSocketOptions } from "./options.js";
import { WebSocket, failSession, sessionEvents, type AcceptOptions, type SessionRoute, type WebSocketListener } from "./session.js";


interface CompiledRoute {
  pattern: RoutePattern;
  route: WebSocketRouteDefinition;
  /** The route's routers' and its own WebSocket middleware, flattened; the app's run first. */
  chain: readonly WebSocketMiddleware[];
  /** The upgrade request's schemas, checked after the middleware and before the handler. */
  validator: RequestValidator | null;
  options: ResolvedWebSocketOptions;
  connection: ConnectionOptions;
  session: SessionRoute;
}

/** What an upgrade needs until accept or reject. */
interface Pending {
  channel: UpgradeChannel;
  check: Extract<HandshakeCheck, { ok: true }>;
  route: CompiledRoute;
  timer: NodeJS.Timeout;
  /** `close()` before accept: code and reason to close with once accepted. */
  closeRequested: [number, string] | null;
}

/** The app's side of the engine: shared state it reads. Not exported by the package. */
export interface EngineHost {
  readonly stats: StatsCollector;
  readonly logger: Logger;
  readonly isShuttingDown: boolean;
  readonly dependencyOverrides: DependencyOverrides;
}

/**
 * Upgrades HTTP requests to WebSocket connections: routing, handshake checks, limits,
 * middleware and handlers, and the connections' lifecycle.
 */
export class WebSocketEngine {
  readonly sessions = new Set<WebSocket<any, any>>();
  private table: CompiledRoute[] | null = null;
  private readonly pending = new WeakMap<WebSocket<any, any>, Pending>();
  private readonly perClient = new Map<string, number>();
  private readonly events: TransportEvents;
  private readonly registry: ConnectionRegistry;
  /** The native engine when it runs; connections it cannot take stay on node:net. */
  private readonly native: NativeEngine | null;
  /** @internal The native engine, when it runs (it also takes SSE room subscribers). */
  get nativeEngine(): NativeEngine | null {
    return this.native;
  }
  /** Which engine owns the connections. */
  readonly engineName: "native" | "node";
  /** @internal Why `"auto"` runs on node:net (the addon did not load), or null. */
  readonly fallbackReason: string | null;
  readonly stats: StatsCollector;

  constructor(
    private readonly host: EngineHost,
    private readonly routes: () => readonly WebSocketRouteDefinition[],
    private readonly middleware: readonly WebSocketMiddleware[],
    private readonly appOptions: WebSocketOptions | undefined,
    engine: EngineChoice = "auto",
  ) {
    this.native = engine === "node" ? null : nativeEngine(engine === "native");
    this.engineName = this.native === null ? "node" : "native";
    const loaded = engine === "auto" && this.native === null ? loadBinding() : null;
    this.fallbackReason = loaded !== null && "error" in loaded ? loaded.error.message : null;
    this.stats = host.stats;
    this.registry = new ConnectionRegistry();
    this.events = sessionEvents(host.stats, (error) => host.logger.error("catzilla: a WebSocket handler threw", error), (ws) => this.ended(ws));
    // Bad app-wide options fail at construction.
    resolveWebSocketOptions(appOptions);
  }

  /** Routes changed; compile again on the next upgrade. */
  invalidate(): void {
    this.table = null;
  }

  /** A request asks to switch to WebSocket: route it, check it, run its middleware and handler. */
  upgrade(raw: IncomingRequest, channel: UpgradeChannel): void {
    const req = new Request(raw, 0);
    if (this.host.isShuttingDown) return this.refuse(channel, 503, "Server is shutting down");
    const table = (this.table ??= this.compile());
    let found: CompiledRoute | null = null;
    for (const compiled of table) {
      const params = compiled.pattern.match(req.path);
      if (params === null) continue;
      if (params === undefined) return this.refuse(channel, 400, "Malformed percent-encoding in path");
      req.params = params;
      found = compiled;
      break;
    }
    if (found === null) return this.refuse(channel, 404, "No WebSocket route for this path");
    const check = checkHandshake(req.method, raw.httpVersion, raw.headers);
    if (!check.ok) return this.refuse(channel, check.status, check.reason, check.headers);
    const options = found.options;
    if (options.origins !== null && (check.origin === undefined || !options.origins.includes(check.origin))) {
      return this.refuse(channel, 403, "Origin not allowed");
    }
    if (this.sessions.size >= options.maxConnections) return this.refuse(channel, 503, "Too many WebSocket connections");
    const address = channel.remoteAddress;
    const fromClient = this.perClient.get(address) ?? 0;
    if (fromClient >= options.maxConnectionsPerClient) {
      return this.refuse(channel, 429, "Too many WebSocket connections from this address", { "Retry-After": "1" });
    }
    this.perClient.set(address, fromClient + 1);
    const ws = new WebSocket(req, found.session);
    this.sessions.add(ws);
    const timer = setTimeout(() => {
      this.refuseIfConnecting(ws, 408, "Handshake not completed in time");
    }, options.handshakeTimeoutMs);
    // A client that leaves during the handshake ends the session.
    channel.onClose(() => {
      if (ws.readyState === 0) ws.reject(499, "Client closed the connection");
    });
    this.pending.set(ws, { channel, check, route: found, timer, closeRequested: null });
    void this.run(ws, found);
  }

  /** @internal SessionHost: complete the handshake. */
  accept(ws: WebSocket<any, any>, options: AcceptOptions): WebSocketTransport {
    const pending = this.pending.get(ws);
    if (pending === undefined) throw new WebSocketException("The handshake of this WebSocket is over");
    const { channel, check, route, timer } = pending;
    if (options.subprotocol !== undefined && !check.protocols.includes(options.subprotocol)) {
      throw new WebSocketException(`Subprotocol ${options.subprotocol} was not offered by the client`);
    }
    const subprotocol = options.subprotocol ?? selectProtocol(check.protocols, route.options.subprotocols);
    let deflate: DeflateParams | null = null;
    let extensions: string | undefined;
    if (route.options.perMessageDeflate !== null) {
      const negotiated = negotiateDeflate(check.extensions, route.options.perMessageDeflate);
      if (negotiated !== null) {
        deflate = negotiated.params;
        extensions = negotiated.response;
      }
    }
    clearTimeout(timer);
    this.pending.delete(ws);
    const response = acceptResponse(acceptKey(check.key), subprotocol, extensions, Object.entries(options.headers ?? {}));
    ws.subprotocol = subprotocol;
    ws.request.detach();
    const stats = this.stats.websockets;
    const native = this.native;
    const first = Buffer.from(response);
    let adopted: WebSocketTransport | null = null;
    // The native engine takes the descriptor where it can (and writes the response itself).
    const switched = channel.switchProtocols(native === null ? null : (fd, owned, rest) => {
      adopted = native.adoptDescriptor(fd, owned, route.connection, this.events, first, rest, deflate, extensions, this.host.logger,
        channel.remoteAddress, channel.remotePort);
      return adopted !== null;
    });
    let transport: WebSocketTransport;
    if (switched === null) {
      transport = adopted!;
    } else {
      const { socket, rest } = switched;
      socket.write(response);
      const connection = new NodeConnection(socket, this.registry, route.connection, this.events, deflate, extensions);
      // Set before start: the bytes read past the head may hold messages.
      connection.user = ws;
      connection.start(rest);
      transport = connection;
    }
    transport.user = ws;
    stats.opened++;
    stats.active++;
    return transport;
  }

  /** @internal SessionHost: refuse the handshake with an HTTP status; `detail` is the JSON body's. */
  reject(ws: WebSocket<any, any>, status: number, detail: unknown, headers?: Record<string, string>): void {
    const pending = this.pending.get(ws);
    if (pending === undefined) return;
    clearTimeout(pending.timer);
    this.pending.delete(ws);
    this.sessions.delete(ws);
    this.releaseClient(ws);
    this.refuse(pending.channel, status, detail, headers);
  }

  /** @internal SessionHost: remember a close before accept. */
  closeBeforeAccept(ws: WebSocket<any, any>, code: number, reason: string): void {
    const pending = this.pending.get(ws);
    if (pending !== undefined) pending.closeRequested = [code, reason];
  }

  /** Close every connection with 1001 and refuse new ones; resolves when all ended or at the deadline. */
  async shutdown(deadline: number): Promise<void> {
    for (const ws of this.sessions) {
      if (ws.readyState === 0) this.refuseIfConnecting(ws, 503, "Server is shutting down");
      else ws.closeForShutdown();
    }
    while (this.sessions.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    for (const ws of this.sessions) ws.transport?.terminate();
    this.registry.stop();
  }

  private async run(ws: WebSocket<any, any>, compiled: CompiledRoute): Promise<void> {
    const route = compiled.route;
    const path = ws.path;
    const overrides = this.host.dependencyOverrides;
    const scope = route.dependencies === undefined && route.guards.length === 0
      ? null
      : new DependencyScope(ws.request, overrides.size === 0 ? null : overrides);
    const handler = route.handler;
    const listener = compiled.session.listener;
    const appList = this.middleware;
    const routeList = compiled.chain;
    let keepScope = false;
    try {
      let index = 0;
      const next = async (): Promise<void> => {
        const at = index++;
        const middleware = at < appList.length ? appList[at] : routeList[at - appList.length];
        if (middleware !== undefined) {
          await middleware(ws, next);
          return;
        }
        if (ws.readyState !== 0) return;
        if (compiled.validator !== null) {
          ws.request.valid = await compiled.validator.validate(ws.request);
          if (ws.readyState !== 0) return;
        }
        if (scope !== null && route.guards.length > 0) {
          await scope.resolveEach(route.guards);
          if (ws.readyState !== 0) return;
        }
        if (listener !== null) {
          // Event-style handlers do not receive values: the dependencies run for what they do
          // (refuse the upgrade, open what the connection uses), and close when it ends.
          if (scope !== null && route.dependencies !== undefined) {
            await scope.resolveAll(route.dependencies);
            if (ws.readyState !== 0) return;
          }
          await ws.accept();
          try {
            listener.onOpen?.(ws);
          } finally {
            if (!compiled.options.keepRequest) ws.releaseRequest();
          }
          keepScope = true;
          return;
        }
        const deps = scope === null || route.dependencies === undefined ? {} : await scope.resolveAll(route.dependencies);
        await (handler as (ws: WebSocket<any, any>, deps: unknown) => unknown)(ws, deps);
      };
      await next();
      const closeRequested = this.pending.get(ws)?.closeRequested ?? null;
      if (closeRequested !== null && ws.readyState === 0) {
        // close() before accept: complete the handshake so the client sees the code.
        const [code, reason] = closeRequested;
        await ws.accept();
        ws.close(code, reason);
      } else if (ws.readyState === 0) {
        this.refuseIfConnecting(ws, 403, "The handler did not accept the connection");
      } else if (listener === null && ws.readyState === 1) {
        ws.close(CloseCode.Normal);
      }
    } catch (error) {
      const log = (error: unknown): void => this.host.logger.error(`catzilla: unhandled error in WebSocket ${path}`, error);
      if (ws.readyState === 0) {
        if (error instanceof HTTPError) {
          if (ws.readyState === 0) ws.refuse(error.status, error.detail, error.headers);
        }
        else if (error instanceof WebSocketException && error.closeCode !== CloseCode.InternalError) {
          // As close() before accept: the handshake completes so that the client sees the code.
          await ws.accept().then(() => failSession(ws, error, log), () => undefined);
        } else {
          log(error);
          this.refuseIfConnecting(ws, 500, "Internal Server Error");
        }
      } else if (ws.readyState === 1) {
        failSession(ws, error, log);
      }
    }
    if (scope !== null) {
      // Event-style routes keep their dependencies until the connection ends.
      if (keepScope && ws.readyState !== 3) await new Promise<void>((resolve) => this.onEnd(ws, resolve));
      await scope.close((error) => this.host.logger.error("catzilla: dependency cleanup failed", error));
    }
  }

  private readonly endWaiters = new WeakMap<WebSocket<any, any>, () => void>();

  private onEnd(ws: WebSocket<any, any>, callback: () => void): void {
    this.endWaiters.set(ws, callback);
  }

  private refuseIfConnecting(ws: WebSocket<any, any>, status: number, detail: string): void {
    if (ws.readyState === 0) ws.reject(status, detail);
  }

  private ended(ws: WebSocket<any, any>): void {
    const stats = this.stats.websockets;
    stats.active--;
    stats.closed++;
    stats.closeCodes[ws.closeCode] = (stats.closeCodes[ws.closeCode] ?? 0) + 1;
    if (ws.endReason === "ping-timeout") stats.pingTimeouts++;
    this.sessions.delete(ws);
    this.releaseClient(ws);
    const waiter = this.endWaiters.get(ws);
    if (waiter !== undefined) {
      this.endWaiters.delete(ws);
      waiter();
    }
  }

  private releaseClient(ws: WebSocket<any, any>): void {
    const address = ws.client.host;
    const count = this.perClient.get(address) ?? 0;
    if (count <= 1) this.perClient.delete(address);
    else this.perClient.set(address, count - 1);
  }

  private refuse(channel: UpgradeChannel, status: number, detail: unknown, headers: Record<string, string> = {}): void {
    this.stats.websockets.rejectedHandshakes++;
    channel.refuse(rejectResponse(status, detail, statusText(status), headers));
  }

  private compile(): CompiledRoute[] {
    return this.routes().map((route) => {
      const options = resolveWebSocketOptions(this.appOptions, route.options);
      const handler = route.handler;
      return {
        pattern: new RoutePattern(route.path),
        route,
        chain: route.middleware.flat(),
        options,
        validator: route.validator,
        session: { host: this, options, listener: typeof handler === "function" ? null : (handler as WebSocketListener<any, any, unknown>), message: route.message },
        connection: {
          maxMessageBytes: options.maxMessageBytes,
          maxFrameBytes: options.maxFrameBytes,
          maxBufferedBytes: options.maxBufferedBytes,
          overLimitPolicy: options.overLimitPolicy,
          idleTimeoutMs: options.idleTimeoutMs,
          pingIntervalMs: options.pingIntervalMs,
          closeTimeoutMs: options.closeTimeoutMs,
          maxMessagesPerSecond: options.maxMessagesPerSecond,
          compressionThreshold: options.perMessageDeflate?.threshold ?? Infinity,
          compressionLevel: options.perMessageDeflate?.level ?? DEFAULT_DEFLATE_LEVEL,
        },
      };
    });
  }
}

let sharedNative: NativeEngine | null = null;

/** What to do where the package's binaries do not fit. @internal */
export const BUILD_HINT = 'Build it from source with "npm rebuild catzilla" (needs python3, make and a C compiler; with npm\'s allowScripts, allow catzilla\'s install script)';

/**
 * The process's native engine, or null when the addon cannot load (then `required` throws: an
 * explicit "native" never falls back silently).
 */
function nativeEngine(required: boolean): NativeEngine | null {
  if (sharedNative !== null) return sharedNative;
  const loaded = loadBinding();
  if ("error" in loaded) {
    if (!required) return null;
    throw new Error(
      `The native WebSocket engine was asked for (engine: "native" or CATZILLA_ENGINE=native) but its addon cannot load: ${loaded.error.message}. ` +
      `${BUILD_HINT}, or use engine "auto" or "node".`,
    );
  }
  sharedNative = new NativeEngine(loaded.binding);
  return sharedNative;
}
