/**
 * Counters of the framework. Increments are plain field updates; nothing is computed until read.
 */

/** Streaming statistics, as `app.stats().streams`. */
export interface StreamStats {
  /** Streams (StreamingResponse, SSE, file bodies) being sent now. */
  active: number;
  /** Streams started since the app started. */
  created: number;
  /** Streams that sent their whole body. */
  completed: number;
  /** Streams cut short: client gone, write timeout, source error or shutdown deadline. */
  aborted: number;
  /** Of the aborted streams, those whose source threw. */
  failed: number;
  /** Body bytes handed to sockets by streams. */
  bytes: number;
  /** Times a stream had to wait for a socket to drain. */
  backpressureEvents: number;
  /** Largest number of bytes one stream held buffered, over streams with `monitorMemory`. */
  peakBufferedBytes: number;
  /** Stream body bytes per second over the last full second. */
  throughputBytesPerSec: number;
}

/** HTTP statistics, as `app.stats().http`. */
export interface HttpStats {
  /** Requests received. */
  requests: number;
  /** Requests being handled now. */
  active: number;
  /** Responses by status class. */
  responses: { "1xx": number; "2xx": number; "3xx": number; "4xx": number; "5xx": number };
  /** Errors that reached the default 500 handler. */
  unhandledErrors: number;
  /** Requests refused with 429 by the rate limit or the per-client stream cap. */
  rateLimited: number;
}

/** WebSocket statistics, as `app.stats().websockets`. */
export interface WebSocketStats {
  /** Open WebSocket connections. */
  active: number;
  opened: number;
  closed: number;
  /** Close codes seen at the end of connections (the peer's, or 1006), by code. */
  closeCodes: Record<string, number>;
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
  /** Sends not written because of the `drop` policy. */
  messagesDropped: number;
  /** Sends made while over `maxBufferedBytes`. */
  backpressureEvents: number;
  /** Connections dropped because a ping got no answer. */
  pingTimeouts: number;
  /** Upgrade requests refused with an HTTP status. */
  rejectedHandshakes: number;
}

/** Connection statistics, as `app.stats().connections`. */
export interface ConnectionStats {
  active: number;
  total: number;
}

/** Memory of the process, as `app.stats().memory`. */
export interface MemoryStats {
  rssBytes: number;
  heapUsedBytes: number;
  externalBytes: number;
}

/** Counters of a room, as `room.stats`. */
export interface RoomStats {
  broadcasts: number;
  /** Broadcasts also sent compressed (once per window size) to members that share a context. */
  compressed: number;
  /** Messages written to members. */
  deliveries: number;
  /** Deliveries skipped for slow members. */
  skipped: number;
  /** Members closed for being too slow. */
  closedSlow: number;
  /** Broadcasts no member here got: the room's queue was over `maxQueuedBytes`, or one waited longer than `maxQueueMs`. */
  dropped: number;
}

/** The counters of every room of a registry together, and what only the registry counts. */
export interface RoomTotals extends RoomStats {
  /** Broadcasts that could not be handed to the broker (it was unreachable). */
  brokerFailures: number;
  /** Broadcasts received from other processes through the broker. */
  remoteBroadcasts: number;
}

/** Room statistics, as `app.stats().rooms`. */
export interface RoomsStats extends RoomTotals {
  /** Rooms that exist now. */
  active: number;
  /** Members on this process, over all rooms. */
  members: number;
}

/** Everything `app.stats()` returns. */
export interface Stats {
  /** The process these counters belong to (each worker of `listen({ workers })` has its own). */
  pid: number;
  /** The engine that owns WebSocket connections: `"native"` (the C core) or `"node"` (node:net). */
  engine?: "native" | "node";
  /** The engine that owns HTTP/1.1 connections, once the app listens: `"native"` (the C server) or `"node"` (node:http). */
  httpEngine?: "native" | "node";
  rooms?: RoomsStats;
  uptimeMs: number;
  memory: MemoryStats;
  http: HttpStats;
  streams: StreamStats;
  websockets: WebSocketStats;
  connections: ConnectionStats;
}

/** The live counters an app keeps. Not exported by the package. */
export class StatsCollector {
  readonly startedAt = Date.now();
  readonly http: HttpStats = {
    requests: 0,
    active: 0,
    responses: { "1xx": 0, "2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0 },
    unhandledErrors: 0,
    rateLimited: 0,
  };
  readonly streams: StreamStats = {
    active: 0, created: 0, completed: 0, aborted: 0, failed: 0, bytes: 0,
    backpressureEvents: 0, peakBufferedBytes: 0, throughputBytesPerSec: 0,
  };
  readonly websockets: WebSocketStats = {
    active: 0, opened: 0, closed: 0, closeCodes: {}, messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0,
    messagesDropped: 0, backpressureEvents: 0, pingTimeouts: 0, rejectedHandshakes: 0,
  };
  readonly connections: ConnectionStats = { active: 0, total: 0 };
  private lastBytes = 0;
  private lastSampleAt = Date.now();

  /** Count a response by its status class. */
  countResponse(status: number): void {
    // A literal key per class: a key made per response had to be looked up in V8's string table.
    const responses = this.http.responses;
    if (status >= 200 && status < 300) responses["2xx"]++;
    else if (status >= 300 && status < 400) responses["3xx"]++;
    else if (status >= 400 && status < 500) responses["4xx"]++;
    else if (status >= 100 && status < 200) responses["1xx"]++;
    else responses["5xx"]++;
  }

  /** Take the once-per-second throughput sample. */
  sample(now = Date.now()): void {
    const elapsed = now - this.lastSampleAt;
    if (elapsed <= 0) return;
    this.streams.throughputBytesPerSec = Math.round(((this.streams.bytes - this.lastBytes) * 1000) / elapsed);
    this.lastBytes = this.streams.bytes;
    this.lastSampleAt = now;
  }

  /** A copy of the counters. */
  snapshot(): Stats {
    const memory = process.memoryUsage();
    return {
      pid: process.pid,
      uptimeMs: Date.now() - this.startedAt,
      memory: { rssBytes: memory.rss, heapUsedBytes: memory.heapUsed, externalBytes: memory.external },
      http: { ...this.http, responses: { ...this.http.responses } },
      streams: { ...this.streams },
      websockets: { ...this.websockets, closeCodes: { ...this.websockets.closeCodes } },
      connections: { ...this.connections },
    };
  }
}
