import type { Stats } from "./stats.js";

interface Metric {
  name: string;
  type: "counter" | "gauge";
  help: string;
  value: number;
  labels?: string;
}

/** One series: where its value is in `Stats` (a dotted path), its name (after the prefix), its type and help. */
type Series = readonly [path: string, name: string, type: "counter" | "gauge", help: string];

/**
 * Every number of `Stats` and the series it is exported as (`pid` and `engine` describe the
 * process; `http.responses` and `websockets.closeCodes` are labelled families, below). A test
 * checks that no number of `app.stats()` is left out.
 */
export const SERIES: readonly Series[] = [
  ["uptimeMs", "uptime_seconds", "gauge", "Seconds since the app started."],
  ["memory.rssBytes", "process_resident_memory_bytes", "gauge", "Resident set size of the process."],
  ["memory.heapUsedBytes", "process_heap_used_bytes", "gauge", "V8 heap in use."],
  ["memory.externalBytes", "process_external_memory_bytes", "gauge", "Memory of Buffers and other objects outside V8's heap."],
  ["http.requests", "http_requests_total", "counter", "HTTP requests received."],
  ["http.active", "http_requests_active", "gauge", "HTTP requests being handled."],
  ["http.unhandledErrors", "http_unhandled_errors_total", "counter", "Errors answered with the default 500."],
  ["http.rateLimited", "http_rate_limited_total", "counter", "Requests refused with 429."],
  ["connections.active", "connections_active", "gauge", "Open client connections."],
  ["connections.total", "connections_total", "counter", "Client connections accepted."],
  ["streams.active", "streams_active", "gauge", "Streaming responses being sent."],
  ["streams.created", "streams_created_total", "counter", "Streaming responses started."],
  ["streams.completed", "streams_completed_total", "counter", "Streaming responses sent in full."],
  ["streams.aborted", "streams_aborted_total", "counter", "Streaming responses cut short."],
  ["streams.failed", "streams_failed_total", "counter", "Streaming responses whose source threw."],
  ["streams.bytes", "streams_bytes_total", "counter", "Body bytes sent by streams."],
  ["streams.backpressureEvents", "streams_backpressure_events_total", "counter", "Waits for a socket to drain."],
  ["streams.peakBufferedBytes", "streams_peak_buffered_bytes", "gauge", "Largest buffer of a monitored stream."],
  ["streams.throughputBytesPerSec", "streams_throughput_bytes_per_second", "gauge", "Stream bytes per second over the last second."],
  ["websockets.active", "websockets_active", "gauge", "Open WebSocket connections."],
  ["websockets.opened", "websockets_opened_total", "counter", "WebSocket connections accepted."],
  ["websockets.closed", "websockets_closed_total", "counter", "WebSocket connections ended."],
  ["websockets.messagesIn", "websockets_messages_in_total", "counter", "WebSocket messages received."],
  ["websockets.messagesOut", "websockets_messages_out_total", "counter", "WebSocket messages sent."],
  ["websockets.bytesIn", "websockets_bytes_in_total", "counter", "WebSocket payload bytes received."],
  ["websockets.bytesOut", "websockets_bytes_out_total", "counter", "WebSocket payload bytes sent."],
  ["websockets.messagesDropped", "websockets_messages_dropped_total", "counter", "Sends dropped by the drop policy."],
  ["websockets.backpressureEvents", "websockets_backpressure_events_total", "counter", "Sends made over the buffer limit."],
  ["websockets.pingTimeouts", "websockets_ping_timeouts_total", "counter", "Connections dropped for a missing pong."],
  ["websockets.rejectedHandshakes", "websockets_rejected_handshakes_total", "counter", "Upgrades refused with an HTTP status."],
  ["rooms.active", "rooms_active", "gauge", "Rooms that exist."],
  ["rooms.members", "rooms_members", "gauge", "Room members on this process."],
  ["rooms.broadcasts", "rooms_broadcasts_total", "counter", "Room broadcasts."],
  ["rooms.compressed", "rooms_compressed_broadcasts_total", "counter", "Room broadcasts compressed once for shared-context members."],
  ["rooms.deliveries", "rooms_deliveries_total", "counter", "Messages written to room members."],
  ["rooms.skipped", "rooms_skipped_total", "counter", "Deliveries skipped for slow members."],
  ["rooms.closedSlow", "rooms_closed_slow_total", "counter", "Members closed for being too slow."],
  ["rooms.dropped", "rooms_dropped_total", "counter", "Broadcasts dropped by a room that got more than it could deliver."],
  ["rooms.brokerFailures", "rooms_broker_failures_total", "counter", "Broadcasts that could not be handed to the broker."],
  ["rooms.remoteBroadcasts", "rooms_remote_broadcasts_total", "counter", "Broadcasts received from other processes through the broker."],
];

function valueAt(stats: Stats, path: string): number | undefined {
  let value: unknown = stats;
  for (const key of path.split(".")) value = (value as Record<string, unknown> | undefined)?.[key];
  return typeof value === "number" ? value : undefined;
}

/** Render statistics in the Prometheus text exposition format (version 0.0.4). */
export function renderPrometheus(stats: Stats, prefix = "catzilla"): string {
  const metrics: Metric[] = [];
  for (const [path, name, type, help] of SERIES) {
    const value = valueAt(stats, path);
    if (value !== undefined) metrics.push({ name, type, help, value: path === "uptimeMs" ? value / 1000 : value });
  }
  for (const [code, count] of Object.entries(stats.websockets.closeCodes)) {
    metrics.push({ name: "websockets_close_codes_total", type: "counter", help: "Close codes at the end of connections.", value: count, labels: `code="${code}"` });
  }
  for (const [cls, count] of Object.entries(stats.http.responses)) {
    metrics.push({ name: "http_responses_total", type: "counter", help: "HTTP responses by status class.", value: count, labels: `class="${cls}"` });
  }
  let out = "";
  let previous = "";
  for (const m of metrics) {
    const name = `${prefix}_${m.name}`;
    if (name !== previous) out += `# HELP ${name} ${m.help}\n# TYPE ${name} ${m.type}\n`;
    previous = name;
    out += `${name}${m.labels === undefined ? "" : `{${m.labels}}`} ${m.value}\n`;
  }
  return out;
}
