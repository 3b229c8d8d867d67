/**
 * The boundary between the app's server (app/server.ts: listen, workers, signals, connection
 * accounting, shutdown) and the engine that owns the listening socket and the plain HTTP/1.1
 * connections. node:http implements it (node/http-engine.ts); a native engine can implement it
 * in C, as transport.ts lets one own WebSocket connections.
 *
 * What an engine hands the app per request is still node:http's request and response objects;
 * an engine without them gives the app its own exchange behind the same `request` call.
 */
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";

/**
 * One request as an engine hands it to the app: the head, the body as it arrives (with
 * backpressure: the engine reads on as the body is consumed), and the connection it came on.
 * node:http's IncomingMessage is one as it is; another engine gives an object of its own, made
 * from its record of the head.
 */
export interface IncomingRequest extends AsyncIterable<Buffer> {
  readonly method?: string | undefined;
  /** The request target as sent. */
  readonly url?: string | undefined;
  /** `1.1` or `1.0`. */
  readonly httpVersion: string;
  /** Names in lower case; repeated fields joined as node:http joins them. */
  readonly headers: IncomingHttpHeaders;
  /** Names and values as sent, in order: name, value, name, value, ... */
  readonly rawHeaders: readonly string[];
  /** Whether the whole body was received. */
  readonly complete: boolean;
  readonly socket: RequestConnection;
}

/** What a request knows of its connection. */
export interface RequestConnection {
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
  readonly destroyed: boolean;
  /** Called once the connection closed (the client went away, or the response ended it). */
  once(event: "close", listener: () => void): unknown;
}

/** What an engine calls on the app. */
export interface HttpEvents {
  /** A request head arrived; the body follows on `raw`. */
  request(raw: IncomingRequest, res: ServerResponse): void;
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
