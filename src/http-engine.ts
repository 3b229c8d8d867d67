/**
 * The boundary between the app's server (app/server.ts: listen, workers, signals, connection
 * accounting, shutdown) and the engine that owns the listening socket and the plain HTTP/1.1
 * connections. node:http implements it (node/http-engine.ts); a native engine can implement it
 * in C, as transport.ts lets one own WebSocket connections.
 *
 * What an engine hands the app per request is still node:http's request and response objects;
 * an engine without them gives the app its own exchange behind the same `request` call.
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";

/** What an engine calls on the app. */
export interface HttpEvents {
  /** A request head arrived; the body follows on `raw`. */
  request(raw: IncomingMessage, res: ServerResponse): void;
  /** A request asks to switch protocols (a WebSocket handshake); the socket is the app's now. */
  upgrade(raw: IncomingMessage, socket: Socket, head: Buffer): void;
}

/** The address an engine bound. */
export interface BoundAddress {
  address: string;
  port: number;
}

/** An HTTP/1.1 engine, driven by the app's server. */
export interface HttpEngine {
  /** Which engine it is, for `stats()` and the log. */
  readonly name: "node";
  /** Bind and start accepting. Rejects when the address cannot be bound. */
  listen(port: number, host: string): Promise<BoundAddress>;
  /**
   * The most connections the engine may hold: the app's `maxConnections` less the connections
   * another engine took over from it. At least 1.
   */
  setConnectionLimit(limit: number): void;
  /** Stop accepting. Resolves once every connection the engine holds has ended. */
  stopAccepting(): Promise<void>;
  /** End the keep-alive connections that wait for their next request. */
  closeIdle(): void;
  /** Cut every connection left. */
  closeAll(): void;
  /** node:http's server, when the engine is node:http (`app.server`); null otherwise. */
  readonly nodeServer: Server | null;
}
