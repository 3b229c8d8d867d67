import type { Stats } from "./stats.js";

interface Metric {
  name: string;
  type: "counter" | "gauge";
  help: string;
  value: number;
  labels?: string;
}

/** Render statistics in the Prometheus text exposition format (version 0.0.4). */
export function renderPrometheus(stats: Stats, prefix = "catzilla"): string {
  const metrics: Metric[] = [
    { name: "uptime_seconds", type: "gauge", help: "Seconds since the app started.", value: stats.uptimeMs / 1000 },
    { name: "process_resident_memory_bytes", type: "gauge", help: "Resident set size of the process.", value: stats.memory.rssBytes },
    { name: "http_requests_total", type: "counter", help: "HTTP requests received.", value: stats.http.requests },
    { name: "http_requests_active", type: "gauge", help: "HTTP requests being handled.", value: stats.http.active },
    { name: "http_unhandled_errors_total", type: "counter", help: "Errors answered with the default 500.", value: stats.http.unhandledErrors },
    { name: "http_rate_limited_total", type: "counter", help: "Requests refused with 429.", value: stats.http.rateLimited },
    { name: "connections_active", type: "gauge", help: "Open client connections.", value: stats.connections.active },
    { name: "connections_total", type: "counter", help: "Client connections accepted.", value: stats.connections.total },
    { name: "streams_active", type: "gauge", help: "Streaming responses being sent.", value: stats.streams.active },
    { name: "streams_created_total", type: "counter", help: "Streaming responses started.", value: stats.streams.created },
    { name: "streams_completed_total", type: "counter", help: "Streaming responses sent in full.", value: stats.streams.completed },
    { name: "streams_aborted_total", type: "counter", help: "Streaming responses cut short.", value: stats.streams.aborted },
    { name: "streams_failed_total", type: "counter", help: "Streaming responses whose source threw.", value: stats.streams.failed },
    { name: "streams_bytes_total", type: "counter", help: "Body bytes sent by streams.", value: stats.streams.bytes },
    { name: "streams_backpressure_events_total", type: "counter", help: "Waits for a socket to drain.", value: stats.streams.backpressureEvents },
    { name: "streams_peak_buffered_bytes", type: "gauge", help: "Largest buffer of a monitored stream.", value: stats.streams.peakBufferedBytes },
    { name: "streams_throughput_bytes_per_second", type: "gauge", help: "Stream bytes per second over the last second.", value: stats.streams.throughputBytesPerSec },
  ];
  const ws = stats.websockets;
  metrics.push(
    { name: "websockets_active", type: "gauge", help: "Open WebSocket connections.", value: ws.active },
    { name: "websockets_opened_total", type: "counter", help: "WebSocket connections accepted.", value: ws.opened },
    { name: "websockets_closed_total", type: "counter", help: "WebSocket connections ended.", value: ws.closed },
    { name: "websockets_messages_in_total", type: "counter", help: "WebSocket messages received.", value: ws.messagesIn },
    { name: "websockets_messages_out_total", type: "counter", help: "WebSocket messages sent.", value: ws.messagesOut },
    { name: "websockets_bytes_in_total", type: "counter", help: "WebSocket payload bytes received.", value: ws.bytesIn },
    { name: "websockets_bytes_out_total", type: "counter", help: "WebSocket payload bytes sent.", value: ws.bytesOut },
    { name: "websockets_messages_dropped_total", type: "counter", help: "Sends dropped by the drop policy.", value: ws.messagesDropped },
    { name: "websockets_backpressure_events_total", type: "counter", help: "Sends made over the buffer limit.", value: ws.backpressureEvents },
    { name: "websockets_ping_timeouts_total", type: "counter", help: "Connections dropped for a missing pong.", value: ws.pingTimeouts },
    { name: "websockets_rejected_handshakes_total", type: "counter", help: "Upgrades refused with an HTTP status.", value: ws.rejectedHandshakes },
  );
  if (stats.rooms !== undefined) {
    const r = stats.rooms;
    metrics.push(
      { name: "rooms_active", type: "gauge", help: "Rooms that exist.", value: r.active },
      { name: "rooms_members", type: "gauge", help: "Room members on this process.", value: r.members },
      { name: "rooms_broadcasts_total", type: "counter", help: "Room broadcasts.", value: r.broadcasts },
      { name: "rooms_compressed_broadcasts_total", type: "counter", help: "Room broadcasts compressed once for shared-context members.", value: r.compressed },
      { name: "rooms_deliveries_total", type: "counter", help: "Messages written to room members.", value: r.deliveries },
      { name: "rooms_skipped_total", type: "counter", help: "Deliveries skipped for slow members.", value: r.skipped },
      { name: "rooms_closed_slow_total", type: "counter", help: "Members closed for being too slow.", value: r.closedSlow },
      { name: "rooms_dropped_total", type: "counter", help: "Broadcasts dropped by a room that got more than it could deliver.", value: r.dropped },
    );
  }
  for (const [code, count] of Object.entries(ws.closeCodes)) {
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
