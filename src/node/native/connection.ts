import type { Socket } from "node:net";
import { CloseCode } from "../../protocol/websocket/constants.js";
import type { SendStatus, TransportEvents, WebSocketTransport } from "../../transport.js";
import type { ConnectionOptions } from "../websocket/connection.js";
import type { NativeBinding, NativeEngineStats, NativeHandlers } from "./binding.js";

const STATUS: readonly SendStatus[] = ["ok", "backpressure", "dropped", "closed"];
const POLICY = { wait: 0, drop: 1, close: 2 } as const;
const EMPTY = Buffer.alloc(0);

type SocketInternals = Socket & { _handle?: { fd?: number; readStop?: () => number } | null; encrypted?: boolean };

/**
 * The native engine in the process: connections adopted from node:net sockets after the upgrade,
 * owned by C from then on. One per process (the addon keeps one engine per Node.js environment);
 * events go to the connection's own `TransportEvents`.
 */
export class NativeEngine implements NativeHandlers {
  private readonly connections = new Map<number, NativeConnection>();
  private readonly profiles = new WeakMap<ConnectionOptions, number>();

  constructor(readonly binding: NativeBinding) {
    binding.init(this);
  }

  /** Whether a socket can be handed over: a plain TCP socket with a file descriptor. */
  static canAdopt(socket: Socket): boolean {
    const s = socket as SocketInternals;
    return s.encrypted !== true && typeof s._handle?.fd === "number" && s._handle.fd >= 0 && !socket.destroyed;
  }

  /**
   * Take over an upgraded socket: `first` (the 101 response) is written by the engine, `head` and
   * whatever the socket read since are parsed first. The node:net socket is destroyed; its
   * descriptor lives on, duplicated, in C.
   */
  adopt(socket: Socket, options: ConnectionOptions, events: TransportEvents, first: Uint8Array, head: Buffer): NativeConnection {
    const s = socket as SocketInternals;
    const handle = s._handle!;
    handle.readStop?.();
    const pending: Buffer[] = head.length > 0 ? [head] : [];
    while (socket.readableLength > 0) {
      const chunk = socket.read() as Buffer | null;
      if (chunk === null) break;
      pending.push(chunk);
    }
    const id = this.binding.adopt(handle.fd!, this.profile(options), first, pending.length === 1 ? pending[0]! : pending.length === 0 ? EMPTY : Buffer.concat(pending));
    const connection = new NativeConnection(this.binding, id, socket.remoteAddress ?? "", socket.remotePort ?? 0, events);
    this.connections.set(id, connection);
    socket.removeAllListeners();
    socket.on("error", ignore);
    socket.destroy();
    return connection;
  }

  stats(): NativeEngineStats {
    return this.binding.stats();
  }

  get size(): number {
    return this.connections.size;
  }

  private profile(options: ConnectionOptions): number {
    let index = this.profiles.get(options);
    if (index === undefined) {
      index = this.binding.profile(
        options.maxMessageBytes, options.maxFrameBytes, options.maxBufferedBytes, options.idleTimeoutMs,
        options.pingIntervalMs, options.closeTimeoutMs, options.maxMessagesPerSecond, POLICY[options.overLimitPolicy],
      );
      this.profiles.set(options, index);
    }
    return index;
  }

  // NativeHandlers: the addon's events, by connection id.

  onMessage(id: number, data: Buffer, isBinary: boolean): void {
    const connection = this.connections.get(id);
    if (connection !== undefined) connection.events.onMessage(connection, data, isBinary);
  }

  onPing(id: number, payload: Buffer): void {
    const connection = this.connections.get(id);
    if (connection !== undefined) connection.events.onPing(connection, payload);
  }

  onPong(id: number, payload: Buffer): void {
    const connection = this.connections.get(id);
    if (connection !== undefined) connection.events.onPong(connection, payload);
  }

  onDrain(id: number): void {
    const connection = this.connections.get(id);
    if (connection !== undefined) connection.events.onDrain(connection);
  }

  onClose(id: number, code: number, reason: string): void {
    const connection = this.connections.get(id);
    if (connection === undefined) return;
    this.connections.delete(id);
    connection.finished = true;
    connection.events.onClose(connection, code === 0 ? CloseCode.Abnormal : code, reason);
  }
}

/** A WebSocket connection owned by the native engine, as the framework sees it. */
export class NativeConnection implements WebSocketTransport {
  user: unknown = null;
  readonly extensions = undefined;
  readonly sharedCompressionWindowBits = null;
  /** @internal Set when the engine reported the end. */
  finished = false;

  constructor(
    private readonly binding: NativeBinding,
    readonly id: number,
    readonly remoteAddress: string,
    readonly remotePort: number,
    /** @internal */
    readonly events: TransportEvents,
  ) {}

  get bufferedAmount(): number {
    return this.finished ? 0 : Math.max(0, this.binding.buffered(this.id));
  }

  get isOpen(): boolean {
    return !this.finished && this.binding.isOpen(this.id);
  }

  sendText(text: string): SendStatus {
    return this.finished ? "closed" : STATUS[this.binding.sendText(this.id, text)]!;
  }

  sendBinary(data: Uint8Array): SendStatus {
    return this.finished ? "closed" : STATUS[this.binding.sendBinary(this.id, data)]!;
  }

  sendFrame(frame: Uint8Array, payloadBytes: number): SendStatus {
    return this.finished ? "closed" : STATUS[this.binding.sendFrame(this.id, frame, payloadBytes)]!;
  }

  ping(payload: string | Uint8Array = EMPTY): void {
    if (!this.finished) this.binding.ping(this.id, payload);
  }

  close(code: number = CloseCode.Normal, reason = ""): void {
    if (!this.finished) this.binding.close(this.id, code, reason);
  }

  terminate(): void {
    if (!this.finished) this.binding.terminate(this.id);
  }

  pause(): void {
    if (!this.finished) this.binding.pause(this.id);
  }

  resume(): void {
    if (!this.finished) this.binding.resume(this.id);
  }
}

function ignore(): void {}
