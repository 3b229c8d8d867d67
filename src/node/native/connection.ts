import { CloseCode } from "../../protocol/websocket/constants.js";
import type { BulkSender, EventStreamSink, SendStatus, StreamBulkSender, TransportEvents, WebSocketTransport } from "../../transport.js";
import type { ConnectionOptions } from "../websocket/connection.js";
import type { DeflateParams } from "../../protocol/websocket/extensions.js";
import type { Logger } from "../../options.js";
import { END_REASONS, RECORD_FIELDS, RecordKind, SLOT_MASK, STATE_CLOSED, type NativeBinding, type NativeEngineStats, type NativeHandlers } from "./binding.js";
import { intern } from "../../intern.js";

const STATUS: readonly SendStatus[] = ["ok", "backpressure", "dropped", "closed"];
const POLICY = { wait: 0, drop: 1, close: 2 } as const;
const EMPTY = Buffer.alloc(0);
/** Sends up to this many bytes (UTF-16 units × 3 for text) are queued; longer ones go at once. */
const QUEUE_ENTRY_MAX = 4096;

/**
 * The native engine in the process: connections adopted by their descriptor after the upgrade,
 * owned by C from then on. One per process (the addon keeps one engine per Node.js environment);
 * events go to the connection's own `TransportEvents`.
 */
export class NativeEngine implements NativeHandlers, BulkSender, StreamBulkSender {
  /** Connections and streams by slot (`id & SLOT_MASK`): the engine reuses slots, so this stays dense. */
  private readonly bySlot: Array<NativeConnection | NativeStream | undefined> = [];
  private connectionCount = 0;
  private streamTotal = 0;
  /** What connections of one route and one negotiation share. */
  private readonly kinds = new WeakMap<TransportEvents, Map<string, ConnectionKind>>();
  private readonly streamProfiles = new Map<string, number>();
  private readonly profiles = new WeakMap<ConnectionOptions, number>();
  private readonly inbox: Buffer;
  private readonly records: Uint32Array;
  /** @internal Where connections write short texts before `sendOutbox`. */
  readonly outbox: Buffer;
  /** @internal Texts up to this many UTF-16 units always fit the outbox as UTF-8. */
  readonly outboxChars: number;
  private readonly outboxWords: Uint32Array;
  /** @internal Buffered bytes (or STATE_CLOSED) by connection slot, kept by the engine. */
  readonly state: Uint32Array;
  /** Bytes of sends queued in the outbox: they reach the engine in one call. */
  private queued = 0;
  /** @internal Counts the queue's flushes: what a connection queued belongs to the current one. */
  epoch = 0;
  private inBatch = false;
  private flushScheduled = false;
  private readonly flushLater = (): void => {
    this.flushScheduled = false;
    this.flushQueue();
  };

  constructor(readonly binding: NativeBinding) {
    const blocks = binding.init(this);
    this.inbox = blocks.inbox;
    this.records = new Uint32Array(blocks.records.buffer, blocks.records.byteOffset, blocks.records.byteLength >> 2);
    this.outbox = blocks.outbox;
    this.outboxWords = new Uint32Array(blocks.outbox.buffer, blocks.outbox.byteOffset, blocks.outbox.byteLength >> 2);
    this.outboxChars = Math.floor(blocks.outbox.length / 3);
    this.state = new Uint32Array(blocks.state.buffer, blocks.state.byteOffset, blocks.state.byteLength >> 2);
  }

  /**
   * @internal Queue a short send: the sends of a batch of events (or of one turn of microtasks)
   * reach the engine in one call. Only while the connection is open and stays within its
   * `maxBufferedBytes` with everything queued, so that "ok" is the send's true status; false
   * otherwise, and the caller sends directly (after `flushQueue`, to keep the order).
   */
  enqueue(connection: NativeConnection, data: string | Uint8Array): boolean {
    const bound = typeof data === "string" ? data.length * 3 : data.byteLength;
    if (bound > QUEUE_ENTRY_MAX) return false;
    if (this.queued + 8 + bound + 3 > this.outbox.length) this.flushQueue();
    if (connection.epoch !== this.epoch) {
      connection.epoch = this.epoch;
      connection.queuedBytes = 0;
    }
    const buffered = this.buffered(connection.id);
    if (buffered < 0 || buffered + connection.queuedBytes + bound > connection.maxBufferedBytes) return false;
    const at = this.queued;
    let length: number;
    if (typeof data === "string") {
      length = this.outbox.write(data, at + 8, "utf8");
    } else {
      length = data.byteLength;
      this.outbox.set(data, at + 8);
    }
    this.outboxWords[at >> 2] = connection.id;
    this.outboxWords[(at >> 2) + 1] = length * 2 + (typeof data === "string" ? 0 : 1);
    this.queued = at + 8 + ((length + 3) & ~3);
    connection.queuedBytes += length;
    if (!this.inBatch && !this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(this.flushLater);
    }
    return true;
  }

  /**
   * @internal A connection's or stream's bytes not yet taken by the kernel, or -1 once it takes no
   * more sends: read from the block the engine keeps, without a call.
   */
  buffered(id: number): number {
    const buffered = this.state[id & SLOT_MASK]!;
    return buffered === STATE_CLOSED ? -1 : buffered;
  }

  /** @internal Hand the queued sends to the engine; anything else the engine is told comes after. */
  flushQueue(): void {
    if (this.queued === 0) return;
    const bytes = this.queued;
    this.queued = 0;
    this.epoch++;
    this.binding.sendQueued(bytes);
  }

  /**
   * Take over the descriptor of an upgraded connection: a duplicate of it, or, when `owned`, the
   * descriptor itself (the native HTTP server let it go; the engine closes it from now on).
   * `first` (the 101 response) is written first, `head` is parsed first. Null when the engine
   * cannot take it (the descriptor is the caller's still).
   */
  adoptDescriptor(
    fd: number, owned: boolean, options: ConnectionOptions, events: TransportEvents, first: Uint8Array, head: Uint8Array,
    deflate: DeflateParams | null, extensions: string | undefined, logger: Logger, address: string, port: number,
  ): NativeConnection | null {
    const deflateBits = deflate === null ? 0
      : Number(deflate.serverNoContextTakeover) | Number(deflate.clientNoContextTakeover) << 1 |
        deflate.serverMaxWindowBits << 8 | deflate.clientMaxWindowBits << 16 | options.compressionLevel << 24;
    let id: number;
    try {
      id = this.binding.adopt(fd, this.profile(options), first, head, deflateBits, deflate === null ? 0 : options.compressionThreshold, owned ? 1 : 0);
    } catch (error) {
      this.failures++;
      if (this.failures === 1) logger.error("catzilla: the native engine could not adopt a connection; node:net serves it", error);
      return null;
    }
    const connection = new NativeConnection(this.kind(options, events, deflate, extensions), id, intern(address), port);
    this.bySlot[id & SLOT_MASK] = connection;
    this.connectionCount++;
    return connection;
  }

  /**
   * Take over an HTTP connection whose response is a stream the server only writes to (an SSE
   * room subscriber), by its descriptor (a duplicate of it, or, when `owned`, the descriptor
   * itself): `head` (the response's status line and headers) goes first, what the client sends
   * from then on is dropped, and the end is reported to `owner.streamEnded` with 1006 (client
   * gone) or the code of `end()`. Null when the engine cannot take it (no descriptor left to
   * duplicate, say); the descriptor is the caller's still then.
   */
  adoptStream(fd: number, owned: boolean, head: Uint8Array, profile: StreamProfile, owner: StreamOwner): NativeStream | null {
    let id: number;
    try {
      id = this.binding.adopt(fd, this.streamProfile(profile), head, EMPTY, 0, 0, owned ? 1 : 0);
    } catch {
      this.failures++;
      return null;
    }
    const stream = new NativeStream(this, id, owner);
    this.bySlot[id & SLOT_MASK] = stream;
    this.streamTotal++;
    return stream;
  }

  /** Connections the engine could not adopt (node:net served them). */
  failures = 0;
  private ids = new Uint32Array(1024);
  private readonly result = new Uint32Array(2);

  sendToMany(
    connections: readonly WebSocketTransport[], count: number, frame: Uint8Array, payloadBytes: number, maxBufferedBytes: number,
  ): { delivered: number; over: WebSocketTransport[] } {
    return this.broadcast(NativeConnection, connections as readonly NativeConnection[], count, frame, payloadBytes, maxBufferedBytes);
  }

  /** The same bytes to many streams in one call; those over `maxBufferedBytes` get nothing and are returned. */
  /** Streams are this engine's (`bulk` of its NativeStreams); their counter counts what they got. */
  sendToStreams(streams: readonly EventStreamSink[], count: number, bytes: Uint8Array, maxBufferedBytes: number): { delivered: number; over: NativeStream[] } {
    const result = this.broadcast(NativeStream, streams as readonly NativeStream[], count, bytes, bytes.length, maxBufferedBytes);
    const counter = (streams[0] as NativeStream | undefined)?.counter ?? null;
    if (counter !== null) counter.bytes += bytes.length * result.delivered;
    return result;
  }

  private broadcast<T extends NativeConnection | NativeStream>(
    type: abstract new (...args: never[]) => T, members: readonly T[], count: number, bytes: Uint8Array, payloadBytes: number, maxBufferedBytes: number,
  ): { delivered: number; over: T[] } {
    this.flushQueue();
    if (this.ids.length < count) this.ids = new Uint32Array(Math.max(count, this.ids.length * 2));
    const ids = this.ids;
    for (let i = 0; i < count; i++) ids[i] = members[i]!.id;
    this.binding.broadcast(ids, count, bytes, payloadBytes, maxBufferedBytes, this.result);
    const over: T[] = [];
    for (let i = 0; i < this.result[1]!; i++) {
      const member = this.find(ids[i]!);
      if (member instanceof type) over.push(member);
    }
    return { delivered: this.result[0]!, over };
  }

  stats(): NativeEngineStats {
    return this.binding.stats();
  }

  /** WebSocket connections the engine owns. */
  get size(): number {
    return this.connectionCount;
  }

  /** Response streams the engine owns. */
  get streamCount(): number {
    return this.streamTotal;
  }

  private streamProfile(profile: StreamProfile): number {
    const key = `${profile.heartbeatMs}/${profile.closeMs}/${Buffer.from(profile.heartbeat).toString("base64")}`;
    let index = this.streamProfiles.get(key);
    if (index === undefined) {
      index = this.binding.streamProfile(Number.MAX_SAFE_INTEGER, profile.heartbeatMs, profile.closeMs, profile.heartbeat);
      this.streamProfiles.set(key, index);
    }
    return index;
  }

  private kind(options: ConnectionOptions, events: TransportEvents, deflate: DeflateParams | null, extensions: string | undefined): ConnectionKind {
    const bits = deflate !== null && deflate.serverNoContextTakeover ? deflate.serverMaxWindowBits : null;
    const key = `${this.profile(options)}/${bits}/${extensions ?? ""}`;
    let kinds = this.kinds.get(events);
    if (kinds === undefined) this.kinds.set(events, (kinds = new Map()));
    let kind = kinds.get(key);
    if (kind === undefined) {
      kind = { engine: this, events, extensions, sharedCompressionWindowBits: bits, maxBufferedBytes: options.maxBufferedBytes };
      kinds.set(key, kind);
    }
    return kind;
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

  onBatch(count: number): void {
    // What the handlers send while the batch is dispatched leaves in one call at its end.
    this.inBatch = true;
    try {
      this.dispatchBatch(count);
    } finally {
      this.inBatch = false;
      this.flushQueue();
    }
  }

  private dispatchBatch(count: number): void {
    const { records } = this;
    for (let i = 0; i < count; i++) {
      const at = i * RECORD_FIELDS;
      const connection = this.find(records[at + 1]!);
      if (connection === undefined) continue;
      if (connection instanceof NativeStream) {
        if (records[at] === RecordKind.Close) this.endStream(connection, records[at + 4]!);
        continue;
      }
      const offset = records[at + 2]!;
      const length = records[at + 3]!;
      try {
        this.dispatch(connection, records[at]!, offset, length, records[at + 4]!);
      } catch (error) {
        // Handlers catch their own errors; anything else surfaces as uncaught, after the batch.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }

  /** The connection or stream with this id, while the engine has it. */
  private find(id: number): NativeConnection | NativeStream | undefined {
    const found = this.bySlot[id & SLOT_MASK];
    return found !== undefined && found.id === id ? found : undefined;
  }

  private forget(id: number): void {
    this.bySlot[id & SLOT_MASK] = undefined;
  }

  /** @internal Whether the engine still has this connection or stream (it let go once it reported the end). */
  holds(member: NativeConnection | NativeStream): boolean {
    return this.bySlot[member.id & SLOT_MASK] === member;
  }

  private endStream(stream: NativeStream, code: number): void {
    this.forget(stream.id);
    this.streamTotal--;
    try {
      stream.owner.streamEnded(code === 0 ? CloseCode.Abnormal : code);
    } catch (error) {
      queueMicrotask(() => {
        throw error;
      });
    }
  }

  onLarge(id: number, data: Buffer, isBinary: boolean): void {
    const connection = this.find(id);
    if (connection instanceof NativeConnection) connection.kind.events.onMessage(connection, data, isBinary, data.length);
  }

  private dispatch(connection: NativeConnection, kind: number, offset: number, length: number, code: number): void {
    const { inbox } = this;
    const events = connection.kind.events;
    switch (kind) {
      case RecordKind.Text:
        events.onMessage(connection, inbox.toString("utf8", offset, offset + length), false, length);
        return;
      case RecordKind.Binary:
        events.onMessage(connection, copyOf(inbox, offset, length), true, length);
        return;
      case RecordKind.Ping:
        events.onPing(connection, copyOf(inbox, offset, length));
        return;
      case RecordKind.Pong:
        events.onPong(connection, copyOf(inbox, offset, length));
        return;
      case RecordKind.Drain:
        events.onDrain(connection);
        return;
      case RecordKind.Close:
        this.forget(connection.id);
        this.connectionCount--;
        events.onClose(connection, (code & 0xffff) === 0 ? CloseCode.Abnormal : code & 0xffff, inbox.toString("utf8", offset, offset + length),
          END_REASONS[code >>> 16] ?? "reset");
        return;
    }
  }
}

/** Bytes of the inbox the receiver may keep. */
function copyOf(inbox: Buffer, offset: number, length: number): Buffer {
  const copy = Buffer.allocUnsafe(length);
  // Short payloads (most messages) copy faster byte by byte than through Buffer#copy's checks.
  if (length <= 64) for (let i = 0; i < length; i++) copy[i] = inbox[offset + i]!;
  else inbox.copy(copy, 0, offset, offset + length);
  return copy;
}

/**
 * What the connections of one route share, per negotiated extensions: one object for them all,
 * so that a connection keeps only what is its own. Not exported by the package.
 */
export interface ConnectionKind {
  readonly engine: NativeEngine;
  readonly events: TransportEvents;
  readonly extensions: string | undefined;
  readonly sharedCompressionWindowBits: number | null;
  readonly maxBufferedBytes: number;
}

/** A WebSocket connection owned by the native engine, as the framework sees it. */
export class NativeConnection implements WebSocketTransport {
  user: unknown = null;
  /** @internal Bytes queued in the engine's current flush (see `NativeEngine.enqueue`). */
  queuedBytes = 0;
  /** @internal The flush `queuedBytes` belongs to. */
  epoch = -1;

  constructor(
    /** @internal */
    readonly kind: ConnectionKind,
    readonly id: number,
    readonly remoteAddress: string,
    readonly remotePort: number,
  ) {}

  private get engine(): NativeEngine {
    return this.kind.engine;
  }

  /** @internal Whether the engine reported the end. */
  get finished(): boolean {
    return !this.kind.engine.holds(this);
  }

  /** @internal */
  get maxBufferedBytes(): number {
    return this.kind.maxBufferedBytes;
  }

  get extensions(): string | undefined {
    return this.kind.extensions;
  }

  get sharedCompressionWindowBits(): number | null {
    return this.kind.sharedCompressionWindowBits;
  }

  /** The engine: it sends to many of its connections in one call. */
  get bulk(): BulkSender {
    return this.engine;
  }

  /** The addon, once the sends queued before (to any connection) went out: order is kept. */
  private get binding(): NativeBinding {
    const engine = this.engine;
    engine.flushQueue();
    return engine.binding;
  }

  get bufferedAmount(): number {
    if (this.finished) return 0;
    return Math.max(0, this.engine.buffered(this.id)) + (this.epoch === this.engine.epoch ? this.queuedBytes : 0);
  }

  get isOpen(): boolean {
    return !this.finished && this.engine.buffered(this.id) >= 0;
  }

  sendText(text: string): SendStatus {
    if (this.finished) return "closed";
    const engine = this.engine;
    if (engine.enqueue(this, text)) return "ok";
    const binding = this.binding;
    // Short texts are encoded by V8 straight into the shared outbox: one call with three numbers.
    if (text.length <= engine.outboxChars) return STATUS[binding.sendOutbox(this.id, 0, engine.outbox.write(text, 0, "utf8"))]!;
    return STATUS[binding.sendText(this.id, text)]!;
  }

  sendBinary(data: Uint8Array): SendStatus {
    if (this.finished) return "closed";
    const engine = this.engine;
    if (engine.enqueue(this, data)) return "ok";
    const binding = this.binding;
    // Short payloads go through the shared outbox too: a call with numbers only. Longer ones are
    // read by the addon where they are (copying them into the outbox would cost a copy).
    if (data.byteLength <= QUEUE_ENTRY_MAX) {
      engine.outbox.set(data, 0);
      return STATUS[binding.sendOutbox(this.id, 1, data.byteLength)]!;
    }
    return STATUS[binding.sendBinary(this.id, data)]!;
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

/**
 * A response stream owned by the engine: an SSE subscriber after its headers. Writes go out as
 * they are (the response has no chunked framing: it ends when the connection does).
 */
export class NativeStream implements EventStreamSink {
  /** Where the bytes written are counted, if anywhere. */
  counter: { bytes: number } | null = null;

  /** Room broadcasts reach every stream of the engine in one call. */
  get bulk(): StreamBulkSender {
    return this.engine;
  }

  constructor(
    /** @internal */
    readonly engine: NativeEngine,
    readonly id: number,
    /** @internal */
    readonly owner: StreamOwner,
  ) {}

  /** @internal Whether the engine reported the end. */
  get finished(): boolean {
    return !this.engine.holds(this);
  }

  /** Bytes not yet taken by the kernel. */
  get bufferedBytes(): number {
    return this.finished ? 0 : Math.max(0, this.engine.buffered(this.id));
  }

  /** Whether it still takes writes. */
  get isOpen(): boolean {
    return !this.finished && this.engine.buffered(this.id) >= 0;
  }

  write(data: string | Uint8Array): void {
    if (this.finished) return;
    const bytes = typeof data === "string" ? Buffer.from(data) : data;
    if (this.engine.binding.sendFrame(this.id, bytes, bytes.length) <= 1 && this.counter !== null) this.counter.bytes += bytes.length;
  }

  /** End the response: what is queued goes out, then the connection closes; the owner gets `code`. */
  end(code: number = CloseCode.Normal): void {
    if (!this.finished) this.engine.binding.close(this.id, code, "");
  }
}

/** Who hears of an adopted stream's end (an object, not a closure: it costs nothing per stream). */
export interface StreamOwner {
  streamEnded(code: number): void;
}

/** What adopted response streams share: the engine's heartbeat and timers. */
export interface StreamProfile {
  /** Written when the stream was quiet this long; 0: never. */
  heartbeatMs: number;
  /** At most 64 bytes. */
  heartbeat: Uint8Array;
  /** How long the client has to close after the server ended the stream. */
  closeMs: number;
}
