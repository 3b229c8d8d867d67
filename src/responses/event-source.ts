import { encodeComment, encodeEvent, type ServerSentEvent } from "../protocol/sse.js";
import type { StreamWriter } from "../node/stream-writer.js";
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

  protected override onStart(writer: StreamWriter): (() => void) | void {
    if (this.pingMs === 0) return;
    return addHeartbeat(this.pingMs, { writer, ping: encodeComment(this.pingComment), seen: writer.bytes });
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
