import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Socket } from "node:net";
import type {
  BodyOptions, BodyWriter, BodyWriters, BoundAddress, DescriptorTaker, HttpEngine, HttpEvents, ResponseSink, UpgradeChannel,
} from "../http-engine.js";
import type { ResolvedAppOptions } from "../options.js";
import type { ConnectionStats } from "../metrics/stats.js";
import { StreamWriter } from "./stream-writer.js";
import { canHandOver, holdSocket, letGo, releaseSocket } from "./socket-handle.js";

/**
 * Size of the socket write buffer before a stream waits for 'drain'. Large enough that a
 * coalesced 64 KiB write does not stall the producer at once.
 */
const WRITE_HIGH_WATER_MARK = 256 * 1024;

/**
 * Streamed bodies on node:http. The sinks it is given are node:http's ServerResponses: this
 * engine makes no others, and an app mounted on a node:http server of the user's is handed
 * that server's.
 */
export const nodeBodyWriters: BodyWriters = {
  open(res: ResponseSink, options: BodyOptions): BodyWriter {
    return new StreamWriter(res as ServerResponse, options);
  },
  sendsFiles: false,

  handOver(res, status, headers, opening, take): boolean {
    const response = res as ServerResponse;
    const socket = response.socket;
    // Only a socket with nothing queued: the taker's head must be the first bytes of the response.
    if (socket === null || !canHandOver(socket) || socket.writableLength > 0 || socket.pending) return false;
    const { fd } = holdSocket(socket, EMPTY);
    if (!take(fd, false, closeDelimitedHead(status, headers, opening, response))) {
      releaseSocket(socket);
      return false;
    }
    // The descriptor lives on, duplicated. node:http's own listeners stay: its close handling
    // frees the request's parser.
    socket.on("error", ignore);
    socket.destroy();
    // Counted as the status it was sent with; node:http writes nothing more on this response.
    response.statusCode = status;
    return true;
  },
};

/** Header fields a close-delimited response does not carry (its framing is the connection's end). */
const FRAMING_FIELDS = new Set(["connection", "content-length", "transfer-encoding", "keep-alive"]);

const EMPTY = Buffer.alloc(0);

/**
 * The status line and headers of a response whose body another engine writes, and the first
 * bytes of that body. It has no chunked framing: the body ends with the connection (RFC 9112
 * §6.3), which the client may not use for another request. `res`: node:http's response, whose
 * headers set on it directly go too.
 */
export function closeDelimitedHead(status: number, headers: readonly string[], body: string, res?: ServerResponse): Buffer {
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Unknown"}\r\n`;
  const named = new Set<string>();
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!.toLowerCase();
    named.add(name);
    if (!FRAMING_FIELDS.has(name)) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
  }
  // Headers set on node:http's response directly (validated by it) go too, unless set above.
  for (const [name, value] of Object.entries(res?.getHeaders() ?? {})) {
    if (FRAMING_FIELDS.has(name) || named.has(name) || value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) head += `${name}: ${v}\r\n`;
  }
  if (!named.has("date")) head += `Date: ${new Date().toUTCString()}\r\n`;
  return Buffer.concat([Buffer.from(`${head}Connection: close\r\n\r\n`, "latin1"), Buffer.from(body)]);
}

/** An upgrade on node:http: the socket its 'upgrade' event gave, and the bytes read past the head. */
class SocketUpgrade implements UpgradeChannel {
  private closeListener: (() => void) | null = null;

  constructor(private readonly socket: Socket, private readonly head: Buffer, private readonly connections: ConnectionStats) {
    socket.on("error", ignore);
  }

  get remoteAddress(): string {
    return this.socket.remoteAddress ?? "";
  }

  get remotePort(): number {
    return this.socket.remotePort ?? 0;
  }

  onClose(listener: () => void): void {
    this.closeListener = listener;
    this.socket.once("close", listener);
  }

  private answered(): void {
    if (this.closeListener !== null) this.socket.off("close", this.closeListener);
    this.closeListener = null;
  }

  refuse(response: string): void {
    this.answered();
    const socket = this.socket;
    if (socket.destroyed) return;
    socket.end(response);
    setTimeout(destroySocket, REFUSAL_LINGER_MS, socket).unref();
  }

  switchProtocols(take: DescriptorTaker | null): { socket: Socket; rest: Buffer } | null {
    this.answered();
    const socket = this.socket;
    socket.off("error", ignore);
    if (take === null || !canHandOver(socket)) return { socket, rest: this.head };
    const held = holdSocket(socket, this.head);
    if (!take(held.fd, false, held.bytes)) {
      // Not taken: node:net carries on, with what was read in the meantime.
      releaseSocket(socket);
      return { socket, rest: held.bytes };
    }
    // node:net's socket goes with its listeners, and with them the close that counts it out of
    // connections.active: the taker counts the connection from now on (App.stats()).
    letGo(socket);
    this.connections.active--;
    return null;
  }
}

function destroySocket(socket: Socket): void {
  socket.destroy();
}

/** The HTTP engine on node:http: its server with the app's limits and timeouts applied. */
export class NodeHttpEngine implements HttpEngine {
  readonly name = "node";
  readonly nodeServer: Server;

  constructor(options: ResolvedAppOptions, connections: ConnectionStats, events: HttpEvents) {
    const server = (this.nodeServer = createHttpServer(options, connections, (raw, res) => events.request(raw, res, nodeBodyWriters)));
    server.on("upgrade", (raw: IncomingMessage, socket: Socket, head: Buffer) => {
      events.upgrade(raw, new SocketUpgrade(socket, head, connections));
    });
  }

  listen(port: number, host: string): Promise<BoundAddress> {
    const server = this.nodeServer;
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        const { address, port } = server.address() as AddressInfo;
        resolve({ address, port });
      });
    });
  }

  setConnectionLimit(limit: number): void {
    this.nodeServer.maxConnections = limit;
  }

  stopAccepting(): Promise<void> {
    return new Promise((resolve) => this.nodeServer.close(() => resolve()));
  }

  closeIdle(): void {
    this.nodeServer.closeIdleConnections();
  }

  closeAll(): void {
    this.nodeServer.closeAllConnections();
  }

  connectionCounts(): null {
    return null;
  }
}

function createHttpServer(
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
  // A malformed request or an over-long head gets a status instead of a silent close: also a
  // body that breaks the framing (a bad chunk size) while its response has not started.
  server.on("clientError", (error: NodeJS.ErrnoException, socket: Socket) => {
    const response = (socket as Socket & { _httpMessage?: { headersSent: boolean } | null })._httpMessage;
    if (!socket.writable || (response != null && response.headersSent)) {
      socket.destroy();
      return;
    }
    const status = error.code === "HPE_HEADER_OVERFLOW" ? "431 Request Header Fields Too Large"
      : error.code === "ERR_HTTP_REQUEST_TIMEOUT" ? "408 Request Timeout"
        : "400 Bad Request";
    refuse(socket, status);
  });
  // CONNECT (a proxy's method) is not served: 501, as the native engine answers it.
  server.on("connect", (_req: unknown, socket: Socket) => refuse(socket, "501 Not Implemented"));
  return server;
}

/**
 * How long a refused client has to read the answer and close its side; then the connection is
 * destroyed, so that one that never reads does not hold a descriptor (FIN-WAIT-2) for minutes.
 */
const REFUSAL_LINGER_MS = 2_000;

/** Answer with a status and no body, close our side, and destroy the socket after a short grace. */
function refuse(socket: Socket, status: string): void {
  socket.on("error", ignore);
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS).unref();
}

function ignore(): void {}
