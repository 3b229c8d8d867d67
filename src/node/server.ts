import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { ResolvedAppOptions } from "../options.js";
import type { ConnectionStats } from "../metrics/stats.js";

/**
 * Size of the socket write buffer before a stream waits for 'drain'. Large enough that a
 * coalesced 64 KiB write does not stall the producer at once.
 */
const WRITE_HIGH_WATER_MARK = 256 * 1024;

/** Create the node:http server with the app's limits and timeouts applied. */
export function createHttpServer(
  options: ResolvedAppOptions,
  connections: ConnectionStats,
  listener: (req: IncomingMessage, res: ServerResponse) => void,
): Server {
  const server = createServer({
    headersTimeout: options.headersTimeoutMs,
    requestTimeout: options.requestTimeoutMs,
    keepAliveTimeout: options.keepAliveTimeoutMs,
    maxHeaderSize: options.maxHeaderBytes,
    highWaterMark: WRITE_HIGH_WATER_MARK,
    noDelay: true,
    // How often node checks the header and request timeouts; its default (30 s) is too coarse.
    connectionsCheckingInterval: Math.min(1_000, options.headersTimeoutMs),
  }, listener);
  server.maxConnections = options.maxConnections;
  server.on("connection", (socket: Socket) => {
    connections.active++;
    connections.total++;
    // "close" comes once; `on` keeps the function itself, `once` a wrapper and a bound function
    // per connection (about 150 B on every idle one).
    socket.on("close", onSocketClose);
  });
  function onSocketClose(): void {
    connections.active--;
  }
  // A malformed request or an over-long head gets a status instead of a silent close.
  server.on("clientError", (error: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable || (socket as Socket & { _httpMessage?: unknown })._httpMessage) {
      socket.destroy();
      return;
    }
    const status = error.code === "HPE_HEADER_OVERFLOW" ? "431 Request Header Fields Too Large"
      : error.code === "ERR_HTTP_REQUEST_TIMEOUT" ? "408 Request Timeout"
        : "400 Bad Request";
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  });
  return server;
}
