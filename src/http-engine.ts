/**
 * The boundary between the app's server (app/server.ts: listen, workers, signals, connection
 * accounting, shutdown) and the engine that owns the listening socket and the plain HTTP/1.1
 * connections. node:http implements it (node/http-engine.ts); a native engine can implement it
 * in C, as transport.ts lets one own WebSocket connections.
 *
 * Per request an engine hands the app an exchange: the request (`IncomingRequest`), where its
 * response goes (`ResponseSink`), and how streamed bodies are written to it (`BodyWriters`).
 * node:http's IncomingMessage and ServerResponse are the first two as they are; another engine
 * gives objects of its own behind the same `request` call.
 */
import type { IncomingHttpHeaders, Server } from "node:http";
import type { Socket } from "node:net";
import type { StreamStats } from "./metrics/stats.js";

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
  /** The listener `once` added is not called after all (its request is done). */
  off(event: "close", listener: () => void): unknown;
}

/**
 * Where one response goes. node:http's ServerResponse is one as it is. A whole response is
 * `writeHead` then `end(body)`; a streamed one is `writeHead` then a body writer's bytes
 * (`BodyWriters.open`).
 */
export interface ResponseSink {
  /** The status written by `writeHead`; 200 before. */
  readonly statusCode: number;
  /** Whether the status line and headers went out: no other response can be sent then. */
  readonly headersSent: boolean;
  /** Set the status and the headers, as a flat list: name, value, name, value, ... */
  writeHead(status: number, headers: string[]): unknown;
  /** End the response, with the rest of its body. */
  end(body?: string | Uint8Array): unknown;
  /** Cut the connection: a response begun is seen incomplete. */
  destroy(): unknown;
}

/** Content codings a streamed body can be sent with. */
export type StreamEncoding = "br" | "gzip";

/** Why a stream stopped before its end. */
export type AbortReason = "disconnect" | "idle-timeout" | "shutdown" | "error";

/** How a streamed body is written. */
export interface BodyOptions {
  /** The streaming counters the writer keeps up to date. */
  stats: StreamStats;
  /** Small chunks are coalesced into writes of about this many bytes. */
  chunkSize: number;
  /** A producer waiting this long for a reader that takes nothing is cut (`idle-timeout`). */
  idleTimeoutMs: number;
  /** Keep the peak of buffered bytes (per stream and in `stats`). */
  monitorMemory: boolean;
  /** The body is compressed with this coding; null: as it is. */
  encoding: StreamEncoding | null;
  /** The stream stopped before its end: the client went away, it idled out, or it was cut. */
  onAbort(reason: AbortReason): void;
}

/**
 * Bytes [position, position + length) of a file open as descriptor `fd`, as a body chunk: an
 * engine that sends from descriptors (`BodyWriters.sendsFiles`) sends them without reading them
 * into memory (sendfile(2)). The descriptor may be closed once `pushFile` returned.
 */
export class FileRegion {
  constructor(readonly fd: number, readonly position: number, readonly length: number) {}
}

/**
 * Writes one streamed body: coalesces small chunks, tells the producer when to wait (a reader
 * slower than the producer holds a bounded amount in the server), notices the client going
 * away, and cuts the connection on failure so the client sees an incomplete body.
 */
export interface BodyWriter {
  /** Body bytes produced so far (before compression). */
  readonly bytes: number;
  /** Set once the stream stopped early; nothing is written after. */
  readonly aborted: AbortReason | null;
  /** Whether the producer should wait for `drained()` before the next chunk. */
  readonly backpressure: boolean;
  /** Bytes queued in user space, coalesced or not yet taken by the connection. */
  readonly bufferedBytes: number;
  /** Largest `bufferedBytes` seen, when memory is monitored. */
  readonly peakBufferedBytes: number;
  /** An endless stream (an event stream): shutdown ends it at once, cleanly (`endNow`). */
  shutdownAtOnce: boolean;
  push(chunk: string | Uint8Array): void;
  /** A region of a file, sent from its descriptor: only where `BodyWriters.sendsFiles`, never when compressing. */
  pushFile?(region: FileRegion): void;
  /** Write what is coalesced now. */
  flush(): void;
  /** Write what is coalesced once the event loop is idle (the producer waits for data). */
  flushWhenIdle(): void;
  /**
   * Until `clearHead()`, run `writeHead` and send the head as soon as the event loop is idle: an
   * event stream announces itself before its first event is ready.
   */
  sendHeadWhenIdle(writeHead: () => void): void;
  clearHead(): void;
  /** Resolves when the connection can take more, or the stream stopped. */
  drained(): Promise<void>;
  /** Finish the body. */
  end(): void;
  /** End cleanly now, before the producer did, and tell it to stop (shutdown). */
  endNow(): void;
  /** Stop early, after `finalChunk` if given: the client sees an incomplete body. */
  cut(reason: AbortReason, finalChunk?: string | Uint8Array): void;
  /** Let go of the response without writing to it, so another response can be sent on it. */
  release(): void;
}

/** How an engine writes streamed bodies to its responses. */
export interface BodyWriters {
  open(res: ResponseSink, options: BodyOptions): BodyWriter;
  /** Whether its writers take file regions (`pushFile`) when they do not compress. */
  readonly sendsFiles: boolean;
  /**
   * Give a response's connection to an engine that writes its body from now on (an SSE room
   * subscriber for the native stream engine): `take` is offered the connection's descriptor
   * (`owned` when it is the taker's to keep, else it keeps a duplicate) with the status line and
   * headers (close-delimited, the connection is not reused) and `opening` as the first bytes to
   * write, and answers whether it took it. False when this engine cannot give the connection (it
   * keeps serving it then), or the taker did not take it: node:http keeps serving it, the native
   * engine, which let it go already, closes it (the response then ends as if the client left).
   */
  handOver(
    res: ResponseSink, status: number, headers: readonly string[], opening: string,
    take: (fd: number, owned: boolean, head: Buffer) => boolean,
  ): boolean;
}

/** What an engine calls on the app. */
export interface HttpEvents {
  /** A request head arrived; the body follows on `raw`, the response goes to `res`. */
  request(raw: IncomingRequest, res: ResponseSink, writers: BodyWriters): void;
  /** A request asks to switch protocols (a WebSocket handshake); the app answers on `channel`. */
  upgrade(raw: IncomingRequest, channel: UpgradeChannel): void;
}

/**
 * Takes the descriptor of a connection that switched protocols (the native WebSocket engine):
 * `owned` when the descriptor is the taker's to keep and close (else it keeps a duplicate);
 * `rest` are the bytes read past the request head. False when it could not take it (the
 * descriptor is the engine's still).
 */
export type DescriptorTaker = (fd: number, owned: boolean, rest: Buffer) => boolean;

/** A connection that asked to switch protocols: the app's until it answers, once. */
export interface UpgradeChannel {
  /** The client's address and port. */
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** `listener` runs if the client leaves before the answer (once; never after the answer). */
  onClose(listener: () => void): void;
  /** Refuse: `response`, a whole HTTP/1.1 response, goes out, then the connection ends. */
  refuse(response: string): void;
  /**
   * Switch protocols: the connection leaves the HTTP engine. `take`, when given, is offered its
   * descriptor first: null when it took it (the connection is counted by the taker from then on).
   * Else a node:net socket and the bytes read past the head, for the app to write its own
   * response to and serve (counted as the engine's connection until it closes).
   */
  switchProtocols(take: DescriptorTaker | null): { socket: Socket; rest: Buffer } | null;
}

/** The address an engine bound. */
export interface BoundAddress {
  address: string;
  port: number;
}

/** An HTTP/1.1 engine, driven by the app's server. */
export interface HttpEngine {
  /** Which engine it is, for `stats()` and the log. */
  readonly name: "node" | "native";
  /**
   * Bind and start accepting. Rejects when the address cannot be bound. `shared`: other
   * processes (workers) listen on the same port, each with a socket of its own (SO_REUSEPORT);
   * an engine whose workers share one socket through node:cluster ignores it.
   */
  listen(port: number, host: string, shared?: boolean): Promise<BoundAddress>;
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
  /**
   * Open and accepted connections the engine counts itself (the native engine, in C), beside
   * those the app's connection statistics count (sockets it handed over); null when the app's
   * statistics follow all of its connections.
   */
  connectionCounts(): { active: number; total: number } | null;
  /** node:http's server, when the engine is node:http (`app.server`); null otherwise. */
  readonly nodeServer: Server | null;
}
