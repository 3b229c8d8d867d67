import { encodeComment, encodeEvent, type ServerSentEvent } from "../protocol/sse.js";
import type { StreamWriter } from "../node/stream-writer.js";
import type { Joined, Room } from "../rooms/room.js";
import type { HeadersInit } from "./headers.js";
import type { ResponseHeaders } from "./headers.js";
import { StreamingResponse, type Chunk, type StreamBody } from "./streaming.js";

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
    if (!Number.isInteger(this.pingMs) || this.pingMs < 0) {
      throw new RangeError(`Option pingMs must be a non-negative integer, got ${this.pingMs}`);
    }
    this.pingComment = options.pingComment ?? "ping";
    this.eagerHeaders = true;
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

  /** @internal The stream's writer while it streams, for room broadcasts. */
  roomWriter: StreamWriter | null = null;
  private pendingRooms: Array<[Room, string | number | undefined]> | null = null;
  private joined: Set<Room> | null = null;
  private requestLastEventId: string | undefined;

  protected override onStart(writer: StreamWriter, lastEventId: string | undefined): (() => void) | void {
    this.roomWriter = writer;
    this.requestLastEventId = lastEventId;
    const pending = this.pendingRooms;
    this.pendingRooms = null;
    if (pending !== null) for (const [room, id] of pending) this.joinRoom(room, id);
    const stopBeat = this.pingMs === 0 ? undefined
      : addHeartbeat(this.pingMs, { writer, ping: encodeComment(this.pingComment), seen: writer.bytes });
    return () => {
      stopBeat?.();
      this.roomWriter = null;
      if (this.joined !== null) for (const room of [...this.joined]) room.remove(this);
    };
  }

  /**
   * @internal Join a room (via `room.add(sse)`): now if streaming, else when the stream starts.
   * Missed broadcasts after the last id (or the request's Last-Event-ID) are written first.
   */
  joinRoom(room: Room, lastEventId: string | number | undefined): Joined {
    const writer = this.roomWriter;
    if (writer === null) {
      (this.pendingRooms ??= []).push([room, lastEventId]);
      return 0;
    }
    (this.joined ??= new Set()).add(room);
    return room.attach(this, lastEventId ?? this.requestLastEventId);
  }

  /** @internal */
  leftRoom(room: Room): void {
    this.joined?.delete(room);
  }

  /** @internal End this stream from the server side (room closed, or too slow for a room). */
  endStream(): void {
    this.roomWriter?.cut("shutdown");
  }
}

interface Heartbeat {
  writer: StreamWriter;
  ping: string;
  /** Bytes the stream had sent at the previous tick. */
  seen: number;
}

/**
 * One interval timer per heartbeat period serves every stream with that period, so an idle
 * stream costs a set entry, not a timer.
 */
const heartbeats = new Map<number, Set<Heartbeat>>();

function addHeartbeat(periodMs: number, beat: Heartbeat): () => void {
  let beats = heartbeats.get(periodMs);
  if (beats === undefined) {
    const set = (beats = new Set());
    heartbeats.set(periodMs, set);
    setInterval(() => {
      for (const b of set) beatOnce(b);
    }, periodMs).unref();
  }
  beats.add(beat);
  return () => void beats.delete(beat);
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
