import type { Server } from "node:http";
import type { HttpEngine, HttpEvents } from "../http-engine.js";
import type { StatsCollector } from "../metrics/stats.js";
import { ClusterPrimary, WORKER_PORT_ENV, announceListening, cluster, clusterBroker } from "../node/cluster.js";
import { NodeHttpEngine } from "../node/http-engine.js";
import { loadBinding } from "../node/native/binding.js";
import { NativeHttpEngine } from "../node/native/http-engine.js";
import type { ResolvedAppOptions } from "../options.js";
import type { TrackedStream } from "../responses/response.js";
import type { Broker } from "../rooms/broker.js";
import type { RoomRegistry } from "../rooms/registry.js";
import { BUILD_HINT, type WebSocketEngine } from "../websocket/engine.js";

/** Where to listen. */
export interface ListenOptions {
  /**
   * Connects rooms across processes and machines: a broadcast on any server reaches members on
   * every server once. `redisBroker({ url })` from `catzilla/redis`, or your own {@link Broker}.
   * @default none (rooms span this process)
   */
  broker?: Broker;
  /**
   * Run this many worker processes (node:cluster) sharing the port; this process becomes their
   * primary: it relays room broadcasts between them (unless `broker` connects them another way),
   * restarts a worker that dies, and stops them on `close()`/SIGTERM. The script runs in every
   * worker too, so it must be the one that calls `listen()`.
   * @default 1 (no workers)
   */
  workers?: number;
  /** @default 8000 */
  port?: number;
  /** @default "127.0.0.1" */
  host?: string;
}

/** Where the server listens once `listen()` resolved. */
export interface ListeningAddress {
  host: string;
  port: number;
  /** `http://host:port` */
  url: string;
}

/** What the server runs: the app's parts it starts, accounts for and stops. */
export interface ServedApp {
  readonly config: ResolvedAppOptions;
  readonly collector: StatsCollector;
  readonly websockets: WebSocketEngine;
  readonly rooms: RoomRegistry;
  /** Streams in flight: shutdown waits for them, then cuts what is left. */
  readonly streams: ReadonlySet<TrackedStream>;
  readonly startupHooks: ReadonlyArray<() => unknown>;
  readonly shutdownHooks: ReadonlyArray<() => unknown>;
  /** What the HTTP engine calls per request. */
  readonly serve: HttpEvents["request"];
  hasWebSocketRoutes(): boolean;
}

/** The engine in use is logged once per process, by the first app with WebSocket routes. */
let engineLogged = false;

/**
 * The app's server: listening (on an HTTP engine, or as the primary of workers), the signals
 * that stop it, the connections it counts toward `maxConnections`, and graceful shutdown.
 */
export class AppServer {
  /** True from the moment shutdown begins: new requests get `Connection: close`, upgrades 503. */
  shuttingDown = false;
  private engine: HttpEngine | null = null;
  private primary: ClusterPrimary | null = null;
  /** Connections the native engine took from the HTTP engine that count toward `maxConnections`. */
  private adoptedConnections = 0;
  private closing: Promise<void> | null = null;
  private sampler: NodeJS.Timeout | null = null;
  private readonly signalHandler = (): void => {
    void this.close().finally(() => process.exit(0));
  };

  constructor(private readonly app: ServedApp) {}

  /** node:http's server, once listening on it. */
  get nodeServer(): Server | null {
    return this.engine?.nodeServer ?? null;
  }

  /**
   * Run the startup hooks and start listening, or start the workers.
   * @returns the address actually bound (useful with `port: 0`).
   */
  async listen(options: ListenOptions = {}): Promise<ListeningAddress> {
    if (this.engine !== null || this.primary !== null) throw new Error("This app is already listening");
    checkListenOptions(options);
    const workers = options.workers ?? 1;
    if (workers > 1 && cluster.isPrimary) {
      // The workers make their own broker connections; the primary's copy is not used.
      if (options.broker !== undefined) await options.broker.close();
      const primary = (this.primary = new ClusterPrimary(workers, this.app.config.logger));
      const { port, host } = await primary.start();
      this.installSignals();
      return addressOf(host, port);
    }
    const app = this.app;
    for (const hook of app.startupHooks) await hook();
    const broker = options.broker ?? (workers > 1 && cluster.isWorker ? clusterBroker() : undefined);
    if (broker !== undefined) app.rooms.attachBroker(broker, app.config.logger);
    const websockets = app.websockets;
    const events: HttpEvents = {
      request: app.serve,
      upgrade: (raw, channel) => websockets.upgrade(raw, channel),
    };
    const engine = (this.engine = this.makeEngine(events));
    this.applyConnectionLimit();
    // Workers on the native engine bind the port each; the first one's, when the app asked for 0.
    const shared = cluster.isWorker && engine.name === "native";
    const inherited = shared && options.port === 0 ? Number(process.env[WORKER_PORT_ENV] ?? 0) : 0;
    const bound = await engine.listen(inherited || (options.port ?? 8000), options.host ?? "127.0.0.1", shared);
    this.sampler = setInterval(() => app.collector.sample(), 1000).unref();
    this.logEngine();
    this.installSignals();
    if (cluster.isWorker) announceListening(bound.port, bound.address, engine.name);
    return addressOf(bound.address, bound.port);
  }

  /** The HTTP engine the options ask for. */
  private makeEngine(events: HttpEvents): HttpEngine {
    const app = this.app;
    const choice = app.config.httpEngine;
    if (choice !== "node") {
      const loaded = loadBinding();
      if ("binding" in loaded) return new NativeHttpEngine(loaded.binding, app.config, app.collector.connections, events);
      if (choice === "native") {
        throw new Error(`The native HTTP engine was asked for (httpEngine: "native" or CATZILLA_HTTP_ENGINE=native) but its addon cannot load: ${loaded.error.message}. ` +
          `${BUILD_HINT}; or choose httpEngine "auto" or "node".`);
      }
    }
    return new NodeHttpEngine(app.config, app.collector.connections, events);
  }

  /** Open and accepted connections, when the HTTP engine counts them itself. */
  connectionCounts(): { active: number; total: number } | null {
    return this.engine?.connectionCounts() ?? null;
  }

  /** Which HTTP engine serves, once listening. */
  get httpEngineName(): "node" | "native" | null {
    return this.engine?.name ?? null;
  }

  /**
   * A connection leaves the HTTP engine for the native engine but still counts toward
   * `maxConnections`: false when there is no room for it (then the HTTP engine keeps it).
   */
  keepConnection(): boolean {
    // At least one connection stays for the HTTP engine (node:http reads 0 as "no limit").
    if (this.adoptedConnections + 1 >= this.app.config.maxConnections) return false;
    this.adoptedConnections++;
    this.applyConnectionLimit();
    return true;
  }

  /** A connection kept by `keepConnection` ended. */
  dropConnection(): void {
    this.adoptedConnections--;
    this.applyConnectionLimit();
  }

  /** Shut down gracefully, once; later calls get the same promise. */
  close(): Promise<void> {
    return (this.closing ??= this.shutdown());
  }

  /** The HTTP engine accepts what `maxConnections` leaves beside the connections the native engine took. */
  private applyConnectionLimit(): void {
    this.engine?.setConnectionLimit(this.app.config.maxConnections - this.adoptedConnections);
  }

  /** SIGTERM and SIGINT close the app, then end the process. The only place they are installed. */
  private installSignals(): void {
    if (!this.app.config.handleSignals) return;
    process.once("SIGTERM", this.signalHandler);
    process.once("SIGINT", this.signalHandler);
  }

  private logEngine(): void {
    const { websockets, config } = this.app;
    if (!this.app.hasWebSocketRoutes() || engineLogged) return;
    engineLogged = true;
    const reason = websockets.fallbackReason;
    if (websockets.engineName === "native") config.logger.info("catzilla: WebSocket engine: native (C core)");
    else if (reason === null) config.logger.info("catzilla: WebSocket engine: node:net");
    else {
      config.logger.info(`catzilla: WebSocket engine: node:net, because the native engine cannot load: ${reason}. ` +
        `${BUILD_HINT}; or choose node:net with engine: "node" (CATZILLA_ENGINE=node) to silence this.`);
    }
  }

  /**
   * Stop accepting, let in-flight requests and streams finish for up to `shutdownTimeoutMs`,
   * then cut what is left, stop the rooms and the broker, and run the shutdown hooks.
   */
  private async shutdown(): Promise<void> {
    const app = this.app;
    this.shuttingDown = true;
    process.off("SIGTERM", this.signalHandler);
    process.off("SIGINT", this.signalHandler);
    if (this.primary !== null) await this.primary.stop();
    const engine = this.engine;
    if (engine !== null) {
      const stopped = engine.stopAccepting();
      engine.closeIdle();
      const deadline = Date.now() + app.config.shutdownTimeoutMs;
      const websockets = app.websockets.shutdown(deadline);
      // Event streams never finish by themselves: they end now, cleanly, as WebSockets get 1001.
      for (const stream of [...app.streams]) if (stream.shutdownAtOnce === true) stream.endNow?.();
      while ((app.collector.http.active > 0 || app.streams.size > 0) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 25));
        engine.closeIdle();
      }
      for (const stream of [...app.streams]) stream.cut("shutdown");
      await websockets;
      engine.closeAll();
      await stopped;
    }
    if (this.sampler !== null) clearInterval(this.sampler);
    app.rooms.stop();
    await app.rooms.detachBroker()?.close().catch((error: unknown) => app.config.logger.error("catzilla: closing the broker failed", error));
    for (const hook of app.shutdownHooks) {
      try {
        await hook();
      } catch (error) {
        app.config.logger.error("catzilla: a shutdown hook failed", error);
      }
    }
  }
}

/** Bad listen options fail before anything starts, with the option's name. */
function checkListenOptions(options: ListenOptions): void {
  const { port, host, workers } = options;
  if (port !== undefined && (typeof port !== "number" || !Number.isInteger(port) || port < 0 || port > 65535)) {
    throw new RangeError(`Option port must be an integer in 0..65535, got ${JSON.stringify(port)}`);
  }
  if (host !== undefined && (typeof host !== "string" || host === "")) throw new TypeError(`Option host must be a non-empty string, got ${JSON.stringify(host)}`);
  if (workers !== undefined && (typeof workers !== "number" || !Number.isInteger(workers) || workers < 1)) {
    throw new RangeError(`Option workers must be a positive integer, got ${JSON.stringify(workers)}`);
  }
}

function addressOf(address: string, port: number): ListeningAddress {
  const host = address.includes(":") ? `[${address}]` : address;
  return { host: address, port, url: `http://${host}:${port}` };
}
