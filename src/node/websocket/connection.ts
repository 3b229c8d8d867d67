import type { Socket } from "node:net";
import { CloseCode } from "../../protocol/websocket/constants.js";
import { WebSocketProtocol, type ProtocolError, type ProtocolHandler, type ProtocolOptions } from "../../protocol/websocket/protocol.js";
import type { DeflateParams } from "../../protocol/websocket/extensions.js";
import type { EndReason, OverLimitPolicy, SendStatus, TransportEvents, WebSocketTransport } from "../../transport.js";
import { InflateLimitError, PerMessageDeflate } from "./deflate.js";
import { intern } from "../../intern.js";
import { MESSAGE_RATE_WINDOW_MS, WAIT_POLICY_CLOSE_FACTOR } from "../policy.js";

/** Limits and timers of WebSocket connections; resolved once per app, shared by all. */
export interface ConnectionOptions {
  maxMessageBytes: number;
  maxFrameBytes: number;
  maxBufferedBytes: number;
  overLimitPolicy: OverLimitPolicy;
  /** Close (1001) a connection that sent no message for this long; 0 for never. */
  idleTimeoutMs: number;
  /** Ping a connection that was quiet this long; one that does not answer within as long again is dropped. 0 for never. */
  pingIntervalMs: number;
  closeTimeoutMs: number;
  /** Messages per second a connection may send; over it: 1008. 0 for no limit. */
  maxMessagesPerSecond: number;
  /** Messages smaller than this are sent uncompressed even when permessage-deflate is on. */
  compressionThreshold: number;
  /** zlib level of the messages sent compressed (0–9). */
  compressionLevel: number;
}

/** A message waiting behind one being compressed; `payload` is null while compressing. */
interface QueuedMessage {
  isBinary: boolean;
  payload: string | Uint8Array | null;
  /** Deflated (RSV1). */
  compressed: boolean;
  /** A whole frame made by a room (`sendFrame`), written as it is. */
  prepared: boolean;
  length: number;
}

const kConnection = Symbol("catzilla.connection");
type SocketWithConnection = Socket & { [kConnection]?: NodeConnection };

// Shared socket listeners: the connection is found on the socket, so there is no closure per connection.
function onSocketData(this: SocketWithConnection, data: Buffer): void {
  this[kConnection]?.handleData(data);
}
function onSocketDrain(this: SocketWithConnection): void {
  this[kConnection]?.handleDrain();
}
function onSocketClose(this: SocketWithConnection): void {
  this[kConnection]?.handleSocketClose();
}
function onSocketError(this: SocketWithConnection): void {
  // 'close' follows; the error itself (a reset, usually) needs no report.
}
function onSocketEnd(this: SocketWithConnection): void {
  this[kConnection]?.handleEnd();
}

/** Sockets corked during this turn of the event loop; one immediate uncorks them all. */
let corked: Socket[] = [];
let uncorkScheduled = false;
function uncorkAll(): void {
  uncorkScheduled = false;
  const sockets = corked;
  corked = [];
  for (const socket of sockets) {
    (socket as SocketWithConnection)[kConnection]?.markUncorked();
    socket.uncork();
  }
}

/** The sweep: pings, dead peers and idle connections, for every connection of an engine at once. */
export class ConnectionRegistry {
  readonly connections = new Set<NodeConnection>();
  private timer: NodeJS.Timeout | null = null;
  private period = Infinity;

  add(connection: NodeConnection, options: ConnectionOptions): void {
    this.connections.add(connection);
    const periods = [options.pingIntervalMs, options.idleTimeoutMs].filter((p) => p > 0);
    if (periods.length === 0) return;
    // A quarter of the shortest period keeps the timing within 25 % of what was asked.
    const period = Math.max(50, Math.min(...periods) / 4);
    if (period >= this.period) return;
    this.period = period;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = setInterval(() => this.sweep(), period);
    this.timer.unref();
  }

  delete(connection: NodeConnection): void {
    this.connections.delete(connection);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.period = Infinity;
  }

  private sweep(): void {
    const now = Date.now();
    for (const connection of this.connections) connection.tick(now);
  }
}

/** The protocol options of a route's connections, with and without compression: two objects per route. */
const protocolOptionsOf = new WeakMap<ConnectionOptions, [ProtocolOptions, ProtocolOptions]>();

function protocolOptions(options: ConnectionOptions, compression: boolean): ProtocolOptions {
  let pair = protocolOptionsOf.get(options);
  if (pair === undefined) {
    const base = { maxMessageBytes: options.maxMessageBytes, maxFrameBytes: options.maxFrameBytes, isServer: true };
    pair = [{ ...base, compression: false }, { ...base, compression: true }];
    protocolOptionsOf.set(options, pair);
  }
  return pair[compression ? 1 : 0];
}

/**
 * A WebSocket connection on a node:net socket: reads feed the protocol, sends are framed and
 * corked so that everything written in one turn of the event loop leaves in one system call.
 */
export class NodeConnection implements WebSocketTransport, ProtocolHandler {
  user: unknown = null;
  readonly bulk = null;
  readonly sharedCompressionWindowBits: number | null;
  readonly remoteAddress: string;
  readonly remotePort: number;
  private readonly protocol: WebSocketProtocol;
  private deflate: PerMessageDeflate | null;
  /** Messages waiting behind one being compressed, to keep their order. */
  private sendQueue: QueuedMessage[] | null = null;
  private queuedBytes = 0;
  private pendingClose: [number, string] | null = null;
  private lastReceivedAt: number;
  private lastMessageAt: number;
  private pingSentAt = 0;
  private rateWindowStartedAt = 0;
  private rateCount = 0;
  private closeTimer: NodeJS.Timeout | null = null;
  private finished = false;
  private isCorked = false;
  private wasOverLimit = false;
  private peerCode: number = CloseCode.Abnormal;
  private peerReason = "";
  /** Why it ends, once the first cause is known (reported as "reset" when none is). */
  private endReason: EndReason | null = null;

  constructor(
    private readonly socket: Socket,
    private readonly registry: ConnectionRegistry,
    private readonly options: ConnectionOptions,
    private readonly events: TransportEvents,
    deflate: DeflateParams | null,
    readonly extensions: string | undefined,
  ) {
    this.remoteAddress = intern(socket.remoteAddress ?? "");
    this.remotePort = socket.remotePort ?? 0;
    this.protocol = new WebSocketProtocol(this, protocolOptions(options, deflate !== null));
    this.deflate = deflate === null ? null : new PerMessageDeflate(deflate, options.maxMessageBytes, options.compressionLevel);
    this.sharedCompressionWindowBits = deflate !== null && deflate.serverNoContextTakeover ? deflate.serverMaxWindowBits : null;
    this.lastReceivedAt = this.lastMessageAt = Date.now();
    const s = socket as SocketWithConnection;
    s[kConnection] = this;
    socket.setNoDelay(true);
    socket.setTimeout(0);
    socket.on("drain", onSocketDrain);
    socket.on("close", onSocketClose);
    socket.on("error", onSocketError);
    socket.on("end", onSocketEnd);
    registry.add(this, options);
  }

  /**
   * Start reading: first the bytes that arrived with the upgrade request (after its head), then
   * the socket. On the next tick, so that the session is open before its first message.
   */
  start(head: Buffer): void {
    process.nextTick(startReading, this, head);
  }

  /** @internal */
  startReading(head: Buffer): void {
    if (this.finished) return;
    if (head.length > 0) this.handleData(head);
    if (!this.finished) this.socket.on("data", onSocketData);
  }

  get bufferedAmount(): number {
    return this.socket.writableLength + this.queuedBytes;
  }

  get isOpen(): boolean {
    return !this.finished && !this.protocol.closeSent && this.pendingClose === null && !this.socket.destroyed;
  }

  sendText(text: string): SendStatus {
    return this.send(false, text);
  }

  sendBinary(data: Uint8Array): SendStatus {
    return this.send(true, data);
  }

  sendFrame(frame: Uint8Array, payloadBytes: number): SendStatus {
    if (!this.isOpen) return "closed";
    const status = this.admit(payloadBytes);
    if (status === "dropped" || status === "closed") return status;
    if (this.sendQueue !== null) {
      this.sendQueue.push({ isBinary: true, payload: frame, compressed: false, prepared: true, length: payloadBytes });
      this.queuedBytes += payloadBytes;
      return status;
    }
    // A broadcast reaches each member once per publish: a direct write (one system call, no
    // cork and no writev) is the cheapest way out. Inside a read the socket is corked already
    // and the frame joins the batch.
    this.put(frame);
    return status;
  }

  ping(payload: string | Uint8Array = ""): void {
    if (!this.isOpen) return;
    this.cork();
    this.protocol.sendPing(payload);
  }

  close(code: number = CloseCode.Normal, reason = ""): void {
    if (this.finished || this.protocol.closeSent) return;
    this.endReason ??= "server";
    if (this.sendQueue !== null) {
      // Messages still being compressed go first.
      this.pendingClose = [code, reason];
      return;
    }
    this.cork();
    this.protocol.sendClose(code, reason);
    if (this.protocol.closeReceived) this.endSocket();
    else this.closeTimer = setTimeout(() => this.terminate(), this.options.closeTimeoutMs);
  }

  terminate(): void {
    this.endReason ??= "server";
    this.socket.destroy();
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    if (!this.finished) this.socket.resume();
  }

  // ProtocolHandler

  canAnswerPing(): boolean {
    return this.bufferedAmount <= this.options.maxBufferedBytes;
  }

  write(data: Uint8Array): void {
    this.cork();
    this.put(data);
  }

  /**
   * Over the limit, a write tells when it is out: node:net emits "drain" only past the socket's
   * high-water mark (256 KiB), and a smaller `maxBufferedBytes` would never hear of it.
   */
  private put(data: Uint8Array): void {
    if (this.wasOverLimit) this.socket.write(data, () => this.handleDrain());
    else this.socket.write(data);
  }

  onMessage(data: Buffer, isBinary: boolean): void {
    if (this.options.maxMessagesPerSecond > 0 && !this.countMessage()) return;
    this.lastMessageAt = this.lastReceivedAt;
    this.events.onMessage(this, data, isBinary, data.length);
  }

  onPing(payload: Buffer): void {
    this.events.onPing(this, payload);
  }

  onPong(payload: Buffer): void {
    this.pingSentAt = 0;
    this.events.onPong(this, payload);
  }

  onClose(code: number, reason: string): void {
    this.endReason ??= "peer";
    this.peerCode = code;
    this.peerReason = reason;
    // RFC 6455 §7.1.1: once both close frames passed, the server closes the TCP connection.
    this.endSocket();
    this.finish();
  }

  onError(code: number, reason: string, error: ProtocolError): void {
    this.endReason ??= error === "frame-too-large" || error === "message-too-large" ? "limit" : "protocol-error";
    this.peerCode = code;
    this.peerReason = reason;
    this.endSocket();
    this.finish();
  }

  onCompressedMessage(payload: Buffer[]): void {
    this.pause();
    this.deflate!.decompress(payload, (error, data) => {
      if (this.finished) return;
      this.resume();
      if (error === null) this.protocol.completeInflate(data);
      else this.protocol.failInflate(error instanceof InflateLimitError ? "message-too-large" : "invalid-compressed-data");
    });
  }

  // Socket events

  /** @internal */
  handleData(data: Buffer): void {
    this.lastReceivedAt = Date.now();
    // Replies written while handling this read go out together.
    this.cork();
    this.protocol.receiveData(data);
  }

  /** @internal */
  handleDrain(): void {
    if (this.wasOverLimit && !this.finished && this.socket.writableLength < this.options.maxBufferedBytes) {
      this.wasOverLimit = false;
      this.events.onDrain(this);
    }
  }

  /** @internal */
  handleEnd(): void {
    // The peer half-closed without a close frame; finish our side.
    if (!this.protocol.closeReceived) this.socket.end();
  }

  /** @internal */
  handleSocketClose(): void {
    this.finish();
  }

  /** @internal */
  markUncorked(): void {
    this.isCorked = false;
  }

  /** @internal Called by the registry's sweep. */
  tick(now: number): void {
    if (this.finished) return;
    const { pingIntervalMs, idleTimeoutMs } = this.options;
    if (idleTimeoutMs > 0 && now - this.lastMessageAt >= idleTimeoutMs) {
      this.endReason ??= "idle-timeout";
      this.close(CloseCode.GoingAway, "Idle timeout");
      return;
    }
    if (pingIntervalMs <= 0) return;
    if (this.pingSentAt !== 0) {
      // Dead-peer detection: no pong (nor any byte) within an interval of the ping.
      if (now - this.pingSentAt >= pingIntervalMs && this.lastReceivedAt < this.pingSentAt) {
        this.peerCode = CloseCode.Abnormal;
        this.peerReason = "Ping timeout";
        this.endReason ??= "ping-timeout";
        this.terminate();
      } else if (this.lastReceivedAt >= this.pingSentAt) {
        this.pingSentAt = 0;
      }
      return;
    }
    if (now - this.lastReceivedAt >= pingIntervalMs) {
      this.pingSentAt = now;
      this.ping();
    }
  }

  private send(isBinary: boolean, data: string | Uint8Array): SendStatus {
    if (!this.isOpen) return "closed";
    const length = typeof data === "string" ? Buffer.byteLength(data) : data.byteLength;
    const status = this.admit(length);
    if (status === "dropped" || status === "closed") return status;
    if (this.deflate !== null && length >= this.options.compressionThreshold) {
      const job: QueuedMessage = { isBinary, payload: null, compressed: true, prepared: false, length };
      (this.sendQueue ??= []).push(job);
      this.queuedBytes += length;
      this.deflate.compress(typeof data === "string" ? Buffer.from(data) : data, (_error, payload) => {
        job.payload = payload;
        this.drainQueue();
      });
      return status;
    }
    if (this.sendQueue !== null) {
      // Behind a message being compressed: keep the order, with a copy of bytes the caller may reuse.
      this.sendQueue.push({ isBinary, payload: typeof data === "string" ? data : Buffer.from(data), compressed: false, prepared: false, length });
      this.queuedBytes += length;
      return status;
    }
    // Inside a cork: a large payload and its header leave in one writev, without a copy.
    this.cork();
    this.protocol.sendMessage(isBinary, data, false);
    return status;
  }

  /** Write queued messages in order, up to the first one still being compressed. */
  private drainQueue(): void {
    const queue = this.sendQueue;
    if (queue === null) return;
    while (queue.length > 0 && queue[0]!.payload !== null) {
      const { isBinary, payload, compressed, prepared, length } = queue.shift()!;
      this.queuedBytes -= length;
      if (this.finished || this.socket.destroyed) continue;
      this.cork();
      if (!prepared) this.protocol.sendMessage(isBinary, payload!, compressed);
      else if (!this.protocol.closeSent) this.put(payload as Uint8Array);
    }
    if (queue.length > 0) return;
    this.sendQueue = null;
    if (this.pendingClose !== null) {
      const [code, reason] = this.pendingClose;
      this.pendingClose = null;
      this.close(code, reason);
    }
  }

  /** Apply the over-limit policy to a send of `length` bytes. */
  private admit(length: number): SendStatus {
    const buffered = this.bufferedAmount + length;
    const limit = this.options.maxBufferedBytes;
    if (buffered <= limit) return "ok";
    switch (this.options.overLimitPolicy) {
      case "drop":
        this.wasOverLimit = true;
        return "dropped";
      case "close":
        this.endReason ??= "limit";
        this.close(CloseCode.PolicyViolation, "Send buffer limit exceeded");
        return "closed";
      case "wait":
        if (buffered > limit * WAIT_POLICY_CLOSE_FACTOR) {
          this.endReason ??= "limit";
        this.close(CloseCode.PolicyViolation, "Send buffer limit exceeded");
          return "closed";
        }
        this.wasOverLimit = true;
        return "backpressure";
    }
  }

  private countMessage(): boolean {
    const now = this.lastReceivedAt;
    if (now - this.rateWindowStartedAt >= MESSAGE_RATE_WINDOW_MS) {
      this.rateWindowStartedAt = now;
      this.rateCount = 0;
    }
    if (++this.rateCount <= this.options.maxMessagesPerSecond) return true;
    this.endReason ??= "limit";
    this.close(CloseCode.PolicyViolation, "Message rate limit exceeded");
    return false;
  }

  private cork(): void {
    if (this.isCorked) return;
    this.isCorked = true;
    this.socket.cork();
    corked.push(this.socket);
    if (!uncorkScheduled) {
      uncorkScheduled = true;
      setImmediate(uncorkAll);
    }
  }

  private endSocket(): void {
    if (this.closeTimer !== null) clearTimeout(this.closeTimer);
    this.closeTimer = null;
    if (this.socket.destroyed) return;
    this.socket.end();
    // A peer that never closes its side is dropped after the close timeout.
    setTimeout(destroyLater, this.options.closeTimeoutMs, this.socket).unref();
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.closeTimer !== null) clearTimeout(this.closeTimer);
    this.closeTimer = null;
    this.registry.delete(this);
    this.deflate?.close();
    this.deflate = null;
    this.events.onClose(this, this.peerCode, this.peerReason, this.endReason ?? "reset");
  }
}

function startReading(connection: NodeConnection, head: Buffer): void {
  connection.startReading(head);
}

function destroyLater(socket: Socket): void {
  socket.destroy();
}
