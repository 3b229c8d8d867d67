import { TooManyRequestsError } from "../errors.js";
import type { BodyWriter } from "../http-engine.js";
import { encodeComment, encodeEvent, type ServerSentEvent } from "../protocol/sse.js";
import type { NativeEngine, NativeStream } from "../node/native/connection.js";
import { Room } from "../rooms/room.js";
import { roomsOf, withRoom, withoutRoom, type Joined, type MemberRoom, type Memberships } from "../rooms/member.js";
import type { EventStreamSink } from "../transport.js";
import type { HeadersInit, ResponseHeaders } from "./headers.js";
import type { ResponseHost, SendContext } from "./response.js";
import { StreamingResponse, type Chunk, type StreamBody, type StreamController } from "./streaming.js";
import { intern } from "../intern.js";
import { assertNonNegativeInteger } from "../validate.js";

/** An SSE member served by node:http: events go through its stream writer. @internal */
export class WriterSink implements EventStreamSink {
  /** Each stream is written on its own. */
  readonly bulk = null;

  constructor(private readonly writer: BodyWriter) {}

  get bufferedBytes(): number {
    return this.writer.bufferedBytes;
  }

  get isOpen(): boolean {
    return this.writer.aborted === null;
  }

  write(text: string): void {
    this.writer.push(text);
    this.writer.flush();
  }

  cut(): void {
    this.writer.cut("shutdown");
  }
}

/** The native engine's heartbeat is at most this long (`pingComment` longer: node:http serves the stream). */
const MAX_NATIVE_HEARTBEAT = 64;
/** How long a client has to close its side after the server ended an adopted stream. */
const END_GRACE_MS = 2_000;
const NO_HEARTBEAT = new Uint8Array(0);
/**
 * What an event stream whose first event is not ready at once starts with: a comment, so that the
 * client sees body bytes at once (Firefox fires `open` only then) and a proxy forwards the head.
 */
const OPENING = encodeComment("open");

/** An item an SSE producer yields: an event object, or a string sent as `data`. */
export type EventItem = ServerSentEvent | string;

/** Options of {@link EventSourceResponse}. */
export interface EventSourceOptions {
  /** @default 200 */
  status?: number;
  headers?: HeadersInit;
  /**
   * Interval of heartbeat comments in milliseconds, sent while no event is written, so that
   * proxies and clients keep the connection. `0` turns heartbeats off.
   * @default 15000
   */
  pingMs?: number;
  /** Text of the heartbeat comment. @default "ping" */
  pingComment?: string;
  /**
   * Called when the producer throws after the stream started. The event it returns (for example
   * `{ event: "error", data: "..." }`) is sent before the connection is cut; the client's
   * EventSource then reconnects with its Last-Event-ID.
   */
  onError?: (error: unknown) => EventItem | void;
  /** @see StreamingOptions.monitorMemory */
  monitorMemory?: boolean;
  /** @see StreamingOptions.chunkSize @default 65536 */
  chunkSize?: number;
  /** @see StreamingOptions.compress @default false */
  compress?: boolean;
}

/**
 * Server-Sent Events (text/event-stream). The producer yields events; each is encoded and sent
 * as soon as the producer waits for the next one.
 *
 * @example
 * app.get("/ticks", (req) => new EventSourceResponse(async function* (stream) {
 *   let id = Number(stream.lastEventId ?? 0);
 *   while (!stream.signal.aborted) { yield { id: ++id, data: `tick-${id}` }; await sleep(1000); }
 * }));
 */
export class EventSourceResponse extends StreamingResponse<EventItem> {
  readonly pingMs: number;
  readonly pingComment: string;

  constructor(source: StreamBody<EventItem>, options: EventSourceOptions = {}) {
    const onError = options.onError;
    super(source, {
      status: options.status ?? 200,
      headers: options.headers ?? {},
      mediaType: "text/event-stream; charset=utf-8",
      monitorMemory: options.monitorMemory ?? false,
      compress: options.compress ?? false,
      chunkSize: options.chunkSize ?? 65536,
      ...(onError === undefined ? {} : {
        onError: (error: unknown): Chunk | void => {
          const event = onError(error);
          return event === undefined ? undefined : encodeEvent(event);
        },
      }),
    });
    this.pingMs = options.pingMs ?? 15_000;
    assertNonNegativeInteger("pingMs", this.pingMs);
    this.pingComment = options.pingComment ?? "ping";
    this.opening = OPENING;
  }

  protected override encode(item: EventItem): Chunk {
    return encodeEvent(item);
  }

  protected override finalHeaders(first: Chunk | undefined): ResponseHeaders {
    const headers = super.finalHeaders(first);
    headers.setDefault("Cache-Control", "no-cache");
    // Tells nginx-style proxies not to buffer the stream.
    headers.setDefault("X-Accel-Buffering", "no");
    return headers;
  }

  /** What it is to a room it joins. */
  readonly memberKind = "sse";
  /** @internal Where room broadcasts go while it streams. */
  roomSink: WriterSink | NativeStream | null = null;
  /** @internal Set by `room.eventSource()`: the stream carries room broadcasts only. */
  roomOnly = false;
  private pendingRooms: Array<[MemberRoom, string | number | undefined]> | null = null;
  private joined: Memberships<MemberRoom> = null;
  private requestLastEventId: string | undefined;

  /** @internal */
  override send(ctx: SendContext): Promise<void> {
    const engine = ctx.host.nativeStreams;
    if (this.roomOnly && engine !== null && !this.compress && ctx.req.method === "GET") return this.sendToRoom(ctx, engine);
    return super.send(ctx);
  }

  private async sendToRoom(ctx: SendContext, engine: NativeEngine): Promise<void> {
    // The native HTTP engine lets a connection go once the read that brought its request is
    // parsed: after this turn of microtasks.
    await Promise.resolve();
    if (!this.handOver(ctx, engine)) await super.send(ctx);
  }

  /**
   * A room-only subscriber goes to the native engine with its headers: node:http's objects for
   * the connection go, the room writes to it from C, heartbeats come from C. False when the engine
   * cannot take this connection (node:http serves it then).
   */
  private handOver({ req, res, writers, host }: SendContext, engine: NativeEngine): boolean {
    const heartbeat = this.pingMs === 0 ? NO_HEARTBEAT : Buffer.from(encodeComment(this.pingComment));
    if (heartbeat.length > MAX_NATIVE_HEARTBEAT) return false;
    const address = intern(req.remoteAddress);
    if (!host.acquireStream(address)) {
      host.stats.http.rateLimited++;
      throw new TooManyRequestsError("Too many concurrent streams from this client", 1);
    }
    if (!host.keepConnection()) {
      host.releaseStream(address);
      return false;
    }
    const profile = { heartbeatMs: this.pingMs, heartbeat, closeMs: END_GRACE_MS };
    let stream = null as NativeStream | null;
    writers.handOver(res, this.status, this.finalHeaders(undefined).toFlatArray(), OPENING, (fd, owned, head) => {
      stream = engine.adoptStream(fd, owned, head, profile, this);
      return stream !== null;
    });
    if (stream === null) {
      host.dropConnection();
      host.releaseStream(address);
      return false;
    }
    // What an idle subscriber keeps is this object and the engine's: the headers went out.
    this.releaseHeaders();
    this.host = host;
    this.address = address;
    stream.counter = host.stats.streams;
    host.stats.streams.active++;
    host.stats.streams.created++;
    host.trackStream(this);
    this.started(stream, req.lastEventId);
    return true;
  }

  /** Set while the native engine owns the stream, with the client's address. */
  private host: ResponseHost | null = null;
  private address = "";

  /** @internal The native engine ended the stream: the client left, or the server ended it. */
  streamEnded(): void {
    const host = this.host;
    if (host === null) return;
    this.host = null;
    const stats = host.stats.streams;
    // Either way it stopped before an end of its own, as on node:http.
    stats.active--;
    stats.aborted++;
    host.releaseStream(this.address);
    host.dropConnection();
    host.untrackStream(this);
    this.stopped();
  }

  /** @internal Shutdown: end an adopted stream. */
  cut(): void {
    this.endStream();
  }

  /** @internal An adopted event stream ends at once when shutdown begins. */
  readonly shutdownAtOnce = true;

  /** @internal */
  endNow(): void {
    this.endStream();
  }

  /** The heartbeat of a stream this response writes itself, while it runs. */
  private beat: Heartbeat | null = null;

  protected override onStart(writer: BodyWriter, lastEventId: string | undefined): void {
    writer.shutdownAtOnce = true;
    // The head went to the engine; an event stream (never sent twice) keeps no header map.
    this.releaseHeaders();
    this.started(new WriterSink(writer), lastEventId);
    if (this.pingMs > 0) this.beat = addHeartbeat(this.pingMs, writer, this.pingComment);
  }

  protected override onStop(): void {
    if (this.beat !== null) removeHeartbeat(this.pingMs, this.beat);
    this.beat = null;
    this.stopped();
  }

  private started(sink: WriterSink | NativeStream, lastEventId: string | undefined): void {
    this.roomSink = sink;
    this.requestLastEventId = lastEventId;
    const pending = this.pendingRooms;
    this.pendingRooms = null;
    if (pending !== null) for (const [room, id] of pending) this.joinRoom(room, id);
  }

  private stopped(): void {
    this.roomSink = null;
    for (const room of roomsOf(this.joined)) room.remove(this);
  }

  /**
   * @internal Join a room (via `room.add(sse)`): now if streaming, else when the stream starts.
   * Missed broadcasts after the last id (or the request's Last-Event-ID) are written first.
   */
  joinRoom(room: MemberRoom, lastEventId: string | number | undefined): Joined {
    if (this.roomSink === null) {
      (this.pendingRooms ??= []).push([room, lastEventId]);
      return 0;
    }
    this.joined = withRoom(this.joined, room);
    return room.attach(this, lastEventId ?? this.requestLastEventId);
  }

  /** @internal */
  leftRoom(room: MemberRoom): void {
    this.joined = withoutRoom(this.joined, room);
  }

  /** @internal End this stream from the server side (room closed, or too slow for a room). */
  endStream(): void {
    const sink = this.roomSink;
    if (sink instanceof WriterSink) sink.cut();
    else sink?.end();
  }
}

interface Heartbeat {
  writer: BodyWriter;
  ping: string;
  /** Bytes the stream had sent at the previous tick. */
  seen: number;
}

/**
 * One interval timer per heartbeat period serves every stream with that period, so an idle
 * stream costs a set entry, not a timer.
 */
const heartbeats = new Map<number, Set<Heartbeat>>();
/** Heartbeat comments by text: streams with the same comment share the string. */
const pings = new Map<string, string>();

function addHeartbeat(periodMs: number, writer: BodyWriter, comment: string): Heartbeat {
  let beats = heartbeats.get(periodMs);
  if (beats === undefined) {
    const set = (beats = new Set());
    heartbeats.set(periodMs, set);
    setInterval(() => {
      for (const b of set) beatOnce(b);
    }, periodMs).unref();
  }
  let ping = pings.get(comment);
  if (ping === undefined) {
    ping = encodeComment(comment);
    if (pings.size < 64) pings.set(comment, ping);
  }
  const beat = { writer, ping, seen: writer.bytes };
  beats.add(beat);
  return beat;
}

function removeHeartbeat(periodMs: number, beat: Heartbeat): void {
  heartbeats.get(periodMs)?.delete(beat);
}

function beatOnce(beat: Heartbeat): void {
  const { writer } = beat;
  // Only a quiet stream needs a heartbeat; a client that takes no bytes gets no more of them
  // (the stream idle timeout deals with it).
  if (writer.bytes === beat.seen && !writer.backpressure) {
    writer.push(beat.ping);
    writer.flush();
  }
  beat.seen = writer.bytes;
}

/** Encode a JSON value as an SSE event; `data` is the JSON text. */
export function jsonEvent(value: unknown, fields: Omit<ServerSentEvent, "data"> = {}): ServerSentEvent {
  return { ...fields, data: JSON.stringify(value) };
}

// A room's SSE members are made here, beside the response they are: rooms know members only
// through rooms/member.ts.
declare module "../rooms/room.js" {
  interface Room {
    /**
     * An SSE response that is a member of this room: it receives every broadcast (`id:` is the
     * broadcast id) until the client leaves, and on reconnect gets what it missed after its
     * Last-Event-ID (or an `event: resync` when the history does not reach back).
     * @example app.get("/live/{game}", (req) => app.rooms.getOrCreate(req.params.game).eventSource());
     */
    eventSource(options?: EventSourceOptions): EventSourceResponse;
  }
}

Room.prototype.eventSource = function eventSource(this: Room, options: EventSourceOptions = {}): EventSourceResponse {
  const response = new EventSourceResponse(untilClientLeaves, options);
  response.roomOnly = true;
  this.add(response);
  return response;
};

/** The producer of a room-only SSE subscriber: nothing of its own until the client leaves. */
async function* untilClientLeaves(stream: StreamController): AsyncGenerator<EventItem> {
  if (!stream.signal.aborted) await new Promise((resolve) => stream.signal.addEventListener("abort", resolve, { once: true }));
}
