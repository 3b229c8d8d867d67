/**
 * The boundary between WebSocket sessions, rooms and the engine that owns the connections.
 * The node:net engine implements it in TypeScript; a native engine can implement it in C.
 * Nothing here names a node:net type.
 */

/** What a send did: written, written while over the buffer limit, not written, or too late. */
export type SendStatus = "ok" | "backpressure" | "dropped" | "closed";

/**
 * What a send does when it would take the connection's buffered bytes over `maxBufferedBytes`:
 * - `"wait"`: write it and report `"backpressure"`; the sender should `await drained()`. A
 *   sender that never waits is closed (1008) at four times the limit.
 * - `"drop"`: do not write it; report `"dropped"`.
 * - `"close"`: close the connection with 1008.
 */
export type OverLimitPolicy = "wait" | "drop" | "close";

/**
 * Why a connection ended, as its engine saw it: the TCP connection ended without a closing
 * handshake (`reset`), the peer closed first (`peer`), the server did (`server`: the app, a close
 * policy, shutdown), no answer to a ping (`ping-timeout`), no message for `idleTimeoutMs`
 * (`idle-timeout`), a limit of the server's (message size or rate, buffered bytes: `limit`), or
 * the peer broke the protocol (`protocol-error`).
 */
export type EndReason = "reset" | "peer" | "server" | "ping-timeout" | "idle-timeout" | "limit" | "protocol-error";

/** Events of connections, delivered to one shared object (no closures per connection). */
export interface TransportEvents {
  /**
   * A message: binary as bytes the receiver owns, text as bytes or already decoded (an engine
   * that decodes from its own buffer); `byteLength` is its size on the wire, uncompressed.
   */
  onMessage(connection: WebSocketTransport, data: Buffer | string, isBinary: boolean, byteLength: number): void;
  onPing(connection: WebSocketTransport, payload: Buffer): void;
  onPong(connection: WebSocketTransport, payload: Buffer): void;
  /** The buffered bytes fell below the limit again. */
  onDrain(connection: WebSocketTransport): void;
  /** The connection ended: the peer's close code (1005 none, 1006 without a close frame), and why. Once. */
  onClose(connection: WebSocketTransport, code: number, reason: string, end: EndReason): void;
}

/** Sends one encoded frame to many connections of one engine in one call (the native engine). */
export interface BulkSender {
  /**
   * Send `frame` to `connections[0..count)` (all of this sender's engine); those whose buffered
   * bytes plus `payloadBytes` would exceed `maxBufferedBytes` get nothing and are listed in
   * `over`. Connections that are closing are passed over silently.
   */
  sendToMany(
    connections: readonly WebSocketTransport[], count: number, frame: Uint8Array, payloadBytes: number, maxBufferedBytes: number,
  ): { delivered: number; over: WebSocketTransport[] };
}

/** One open WebSocket connection, as the framework sees it. */
export interface WebSocketTransport {
  /** Whatever the framework attaches (its session object). */
  user: unknown;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** Bytes written but not yet taken by the operating system. */
  readonly bufferedAmount: number;
  /** Whether messages can still be sent. */
  readonly isOpen: boolean;
  /** The negotiated extensions header value, if any. */
  readonly extensions: string | undefined;
  /**
   * The window of the server's compressor when permessage-deflate was negotiated with
   * `server_no_context_takeover` (every message compresses on its own, so one compressed frame
   * can go to every such member); `null` otherwise.
   */
  readonly sharedCompressionWindowBits: number | null;
  /** Set when the engine sends one frame to many connections in one call (room broadcasts). */
  readonly bulk: BulkSender | null;
  sendText(text: string): SendStatus;
  sendBinary(data: Uint8Array): SendStatus;
  /**
   * Send a frame encoded elsewhere (a room broadcast encodes once for every member). The same
   * buffer may go to many connections and must not change afterwards. `payloadBytes` counts
   * toward the buffer limit.
   */
  sendFrame(frame: Uint8Array, payloadBytes: number): SendStatus;
  ping(payload?: string | Uint8Array): void;
  /** Start the closing handshake. */
  close(code?: number, reason?: string): void;
  /** Drop the connection at once. */
  terminate(): void;
  /** Stop reading from the peer (inbound backpressure) / read again. */
  pause(): void;
  resume(): void;
}

/** Sends one event to many SSE streams of one engine in one call (the native engine). */
export interface StreamBulkSender {
  /**
   * Write `event` to `streams[0..count)` (all of this sender's engine); those whose buffered bytes
   * plus the event's would exceed `maxBufferedBytes` get nothing and are listed in `over`.
   */
  sendToStreams(streams: readonly EventStreamSink[], count: number, event: Uint8Array, maxBufferedBytes: number): { delivered: number; over: EventStreamSink[] };
}

/** Where a room writes an SSE member's events: node:http's stream writer, or a stream an engine owns. */
export interface EventStreamSink {
  /** Bytes not yet taken by the client's connection. */
  readonly bufferedBytes: number;
  /** Whether it still takes events. */
  readonly isOpen: boolean;
  /** Set when the engine writes one event to many streams in one call (room broadcasts). */
  readonly bulk: StreamBulkSender | null;
  write(text: string): void;
}
