/**
 * The native HTTP engine: the C server (native/src/server.c) owns the listening socket and every
 * plain HTTP/1.1 connection; this module gives the app its exchange per request (an
 * IncomingRequest, a ResponseSink, the body writers) over the addon's calls. Heads arrive parsed
 * (one call per request, headers as a flat list), responses leave as bytes the C side frames and
 * writes once per connection and turn of the loop, and streamed bodies wait for the C side's
 * drain. A WebSocket handshake the app accepts leaves the C server with its descriptor, for the
 * native WebSocket engine to take as it is.
 */
import { lookup } from "node:dns/promises";
import { closeSync } from "node:fs";
import type { IncomingHttpHeaders } from "node:http";
import { STATUS_CODES } from "node:http";
import { isIP, Socket } from "node:net";
import type { BrotliCompress, Gzip } from "node:zlib";
import type {
  AbortReason, BodyOptions, BodyWriter, BodyWriters, BoundAddress, DescriptorTaker, FileRegion, HttpEngine, HttpEvents,
  IncomingRequest, RequestConnection, ResponseSink, UpgradeChannel,
} from "../../http-engine.js";
import type { ConnectionStats } from "../../metrics/stats.js";
import type { ResolvedAppOptions } from "../../options.js";
import { MAX_IN_FLIGHT_BYTES, giveSlab, slabSizeFor, takeSlab } from "../slabs.js";
import { createCompressor } from "../stream-writer.js";
import { closeDelimitedHead } from "../http-engine.js";
import { HTTP_REQUEST, HTTP_WRITE, splitFields, type HttpServerHandle, type NativeBinding } from "./binding.js";

/** Body bytes queued for a consumer that does not read before the C side stops reading. */
const BODY_HIGH_WATER = 64 * 1024;
/**
 * A streamed body's producer waits when the bytes the C side holds for the kernel and one more
 * slab would pass this: what a stream whose reader stopped holds in user space, as on node:http.
 */
const MAX_HELD_BYTES = MAX_IN_FLIGHT_BYTES;
/** Byte chunks this large are written without a copy (the C side keeps a reference). */
const EXTERNAL_MIN = 32 * 1024;
/** A fixed response's bytes never make the producer wait: no drain is asked for. */
const NO_DRAIN = 2 ** 31;
/** How often a stopped engine checks whether its last connection ended. */
const STOP_POLL_MS = 25;

/** Header fields that appear once: a repeat is dropped, as node:http drops it. */
const SINGLE_FIELDS = new Set([
  "age", "authorization", "content-length", "content-type", "etag", "expires", "from", "host", "if-modified-since",
  "if-unmodified-since", "last-modified", "location", "max-forwards", "proxy-authorization", "referer", "retry-after",
  "server", "user-agent",
]);

/**
 * The record a request's headers are kept in: no Object.prototype on its chain (a field named
 * "constructor" or "__proto__" is a field like any other), yet with V8's fast properties, which
 * an Object.create(null) record does not get (every store into one missed the inline caches).
 */
const HeaderRecord = function HeaderRecord() {} as unknown as new () => Record<string, string | string[]>;
HeaderRecord.prototype = Object.create(null) as object;

/**
 * A field name in lower case: the common ones as constants (no new string, and one V8 has
 * interned already, so storing it as a key is a cache hit), the rest lowered.
 */
function fieldName(name: string): string {
  switch (name) {
    case "Host": case "host": return "host";
    case "User-Agent": case "user-agent": return "user-agent";
    case "Accept": case "accept": return "accept";
    case "Accept-Encoding": case "accept-encoding": return "accept-encoding";
    case "Accept-Language": case "accept-language": return "accept-language";
    case "Connection": case "connection": return "connection";
    case "Content-Length": case "content-length": return "content-length";
    case "Content-Type": case "content-type": return "content-type";
    case "Cookie": case "cookie": return "cookie";
    case "Authorization": case "authorization": return "authorization";
    case "Cache-Control": case "cache-control": return "cache-control";
    case "Origin": case "origin": return "origin";
    case "Referer": case "referer": return "referer";
    case "Upgrade": case "upgrade": return "upgrade";
    case "If-None-Match": case "if-none-match": return "if-none-match";
    case "If-Modified-Since": case "if-modified-since": return "if-modified-since";
    case "Range": case "range": return "range";
    case "Transfer-Encoding": case "transfer-encoding": return "transfer-encoding";
    case "Sec-WebSocket-Key": case "sec-websocket-key": return "sec-websocket-key";
    case "Sec-WebSocket-Version": case "sec-websocket-version": return "sec-websocket-version";
    case "Sec-WebSocket-Extensions": case "sec-websocket-extensions": return "sec-websocket-extensions";
    case "Sec-WebSocket-Protocol": case "sec-websocket-protocol": return "sec-websocket-protocol";
    case "Last-Event-ID": case "last-event-id": return "last-event-id";
    default: return name.toLowerCase();
  }
}

/** The headers object node:http would make of raw headers. */
function joinHeaders(raw: readonly string[]): IncomingHttpHeaders {
  const headers = new HeaderRecord();
  for (let i = 0; i < raw.length; i += 2) {
    const name = fieldName(raw[i]!);
    const value = raw[i + 1]!;
    const seen = headers[name];
    if (seen === undefined) {
      headers[name] = name === "set-cookie" ? [value] : value;
    } else if (name === "set-cookie") {
      (seen as string[]).push(value);
    } else if (!SINGLE_FIELDS.has(name)) {
      headers[name] = `${seen as string}${name === "cookie" ? "; " : ", "}${value}`;
    }
  }
  return headers as IncomingHttpHeaders;
}

/** A connection as the requests on it see it. */
class Connection implements RequestConnection {
  destroyed = false;
  /** The exchange in flight on it. */
  current: Exchange | null = null;
  private listeners: Array<() => void> | null = null;

  constructor(readonly remoteAddress: string, readonly remotePort: number) {}

  once(_event: "close", listener: () => void): this {
    (this.listeners ??= []).push(listener);
    return this;
  }

  off(_event: "close", listener: () => void): this {
    const listeners = this.listeners;
    const at = listeners === null ? -1 : listeners.lastIndexOf(listener);
    if (at >= 0) listeners!.splice(at, 1);
    return this;
  }

  ended(): void {
    this.destroyed = true;
    const listeners = this.listeners;
    this.listeners = null;
    if (listeners !== null) for (const listener of listeners) listener();
  }
}

/** One request and its response on a native connection. */
class Exchange implements IncomingRequest, ResponseSink {
  // The request.
  readonly httpVersion: string;
  complete = false;
  private headerObject: IncomingHttpHeaders | null = null;
  private chunks: Buffer[] = [];
  private queued = 0;
  private paused = false;
  private wake: (() => void) | null = null;
  // The response.
  statusCode = 200;
  headersSent = false;
  private head: string[] | null = null;
  /** The writer of a streamed body, told when the connection ends or drains. */
  writer: NativeBodyWriter | null = null;
  /** The response ended (or the exchange was cut): nothing more is written. */
  finished = false;

  constructor(
    readonly engine: NativeHttpEngine,
    readonly id: number,
    readonly method: string,
    readonly url: string,
    minor: number,
    readonly flags: number,
    readonly rawHeaders: string[],
    readonly socket: Connection,
  ) {
    this.httpVersion = minor === 1 ? "1.1" : "1.0";
  }

  get headers(): IncomingHttpHeaders {
    return (this.headerObject ??= joinHeaders(this.rawHeaders));
  }

  /** Whether the connection may carry another request after this one. */
  get keepAlive(): boolean {
    return (this.flags & HTTP_REQUEST.keepAlive) !== 0;
  }

  // ---- the body, as it arrives ----

  /** @internal */
  body(bytes: Buffer): void {
    this.chunks.push(bytes);
    this.queued += bytes.length;
    if (this.queued > BODY_HIGH_WATER && !this.paused) {
      this.paused = true;
      this.engine.pause(this.id);
    }
    this.notify();
  }

  /** @internal */
  bodyEnd(): void {
    this.complete = true;
    this.notify();
  }

  /** @internal The connection ended. */
  ended(): void {
    this.finished = true;
    this.notify();
    this.writer?.connectionEnded();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Buffer> {
    for (;;) {
      const chunk = this.chunks.shift();
      if (chunk !== undefined) {
        this.queued -= chunk.length;
        if (this.paused && this.queued <= BODY_HIGH_WATER / 2) {
          this.paused = false;
          this.engine.resume(this.id);
        }
        yield chunk;
        continue;
      }
      // Ended without its whole body (the client left): the consumer checks `complete`.
      if (this.complete || this.socket.destroyed) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  // ---- the response ----

  /** The head is committed (as node:http's writeHead commits it); it leaves with the body. */
  writeHead(status: number, headers: string[]): this {
    this.statusCode = status;
    this.head = headers;
    this.headersSent = true;
    return this;
  }

  /** Whether the response's body is framed by its Content-Length (else chunked, or closed). */
  private framing: "length" | "chunked" | "close" | "none" = "none";
  /** Close the connection after this response. */
  private closeAfter = false;

  /** The status line and headers, with the fields the engine adds: Date, Connection, framing. */
  private serializeHead(streamed: boolean): string {
    const status = this.statusCode;
    const headers = this.head ?? [];
    // The head is text from here on: a long stream keeps none of it.
    this.head = null;
    let text = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Unknown"}\r\n`;
    let length = false;
    let date = false;
    let close = !this.keepAlive || this.engine.closing;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!;
      const value = headers[i + 1]!;
      switch (name.length) {
        case 4:
          if (name.toLowerCase() === "date") date = true;
          break;
        case 10:
          if (name.toLowerCase() === "connection") {
            if (/\bclose\b/i.test(value)) close = true;
            continue;
          }
          break;
        case 14:
          if (name.toLowerCase() === "content-length") length = true;
          break;
        case 17:
          // The engine frames bodies itself.
          if (name.toLowerCase() === "transfer-encoding") continue;
          break;
      }
      text += `${name}: ${value}\r\n`;
    }
    const bodiless = status < 200 || status === 204 || status === 304;
    if (bodiless) this.framing = "none";
    else if (length || !streamed) this.framing = "length";
    else if (this.httpVersion === "1.1") this.framing = "chunked";
    else {
      this.framing = "close";
      close = true;
    }
    if (this.framing === "chunked") text += "Transfer-Encoding: chunked\r\n";
    if (!date) text += `Date: ${httpDate()}\r\n`;
    this.closeAfter = close;
    text += close ? "Connection: close\r\n\r\n" : `Connection: keep-alive\r\nKeep-Alive: timeout=${this.engine.keepAliveSeconds}\r\n\r\n`;
    return text;
  }

  end(body?: string | Uint8Array): this {
    if (this.finished) return this;
    this.finished = true;
    this.headersSent = true;
    const head = this.serializeHead(false);
    const flags = HTTP_WRITE.end | (this.closeAfter ? HTTP_WRITE.close : 0);
    const engine = this.engine;
    if (body === undefined || this.method === "HEAD" || this.framing === "none") {
      engine.write(this.id, head, flags | HTTP_WRITE.latin1, NO_DRAIN);
    } else if (typeof body === "string" && isLatin1Safe(body)) {
      engine.write(this.id, head + body, flags | HTTP_WRITE.latin1, NO_DRAIN);
    } else {
      engine.write(this.id, head, HTTP_WRITE.latin1, NO_DRAIN);
      engine.write(this.id, body, flags | (typeof body !== "string" && body.byteLength >= EXTERNAL_MIN ? HTTP_WRITE.external : 0), NO_DRAIN);
    }
    this.engine.exchangeDone(this);
    return this;
  }

  /** @internal A streamed body begins: the head goes out now. Returns its framing. */
  startStream(): "length" | "chunked" | "close" | "none" {
    this.headersSent = true;
    const head = this.serializeHead(true);
    this.engine.write(this.id, head, HTTP_WRITE.latin1, NO_DRAIN);
    return this.framing;
  }

  /** @internal Write body bytes of a streamed response; the buffered bytes after, -1 when gone. */
  writeBody(data: string | Uint8Array | null, flags: number, drainOver = NO_DRAIN): number {
    if (this.finished) return -1;
    if (this.closeAfter) flags |= (flags & HTTP_WRITE.end) !== 0 ? HTTP_WRITE.close : 0;
    if ((flags & HTTP_WRITE.end) !== 0) {
      this.finished = true;
      this.engine.exchangeDone(this);
    }
    return this.engine.write(this.id, data, flags, drainOver);
  }

  /** @internal A region of a file as body bytes (never the response's end). */
  writeFile(region: FileRegion, flags: number, drainOver: number): number {
    if (this.finished) return -1;
    return this.engine.writeFile(this.id, region, flags, drainOver);
  }

  /** @internal Bytes of this connection the kernel did not take yet; -1 when it is gone. */
  buffered(): number {
    return this.engine.buffered(this.id);
  }

  /** @internal The framing of the body being streamed. */
  get bodyFraming(): "length" | "chunked" | "close" | "none" {
    return this.framing;
  }

  destroy(): this {
    if (!this.socket.destroyed) this.engine.destroy(this.id);
    this.finished = true;
    return this;
  }
}

/** A string whose UTF-16 code units are all ASCII, so latin1 and UTF-8 bytes agree. */
function isLatin1Safe(text: string): boolean {
  // eslint-disable-next-line no-control-regex
  return text.length < 4096 && /^[\x00-\x7f]*$/.test(text);
}

let dateText = "";
let dateSecond = -1;

/** The Date field, made once a second. */
function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}

/**
 * A streamed body on the native engine: small chunks are coalesced into a slab (from the pool
 * node:http's writer uses) that is handed to the C side when full, when the producer waits or
 * flushes, and at the end; the C side copies it (the slab goes back to the pool at once), frames
 * it as one chunk and writes what a turn of the loop produced in one write. The producer waits
 * while the connection holds so much that another slab would take it past MAX_HELD_BYTES.
 */
class NativeBodyWriter implements BodyWriter {
  bytes = 0;
  aborted: AbortReason | null = null;
  peakBufferedBytes = 0;
  shutdownAtOnce = false;
  private buffered = 0;
  private framing: "length" | "chunked" | "close" | "none" | null = null;
  private drainResolve: (() => void) | null = null;
  private idleTimer: NodeJS.Timeout | null = null;
  private pendingHead: (() => void) | null = null;
  private headTimer: NodeJS.Immediate | null = null;
  private ended = false;
  private idleFlush = false;
  private readonly compressor: Gzip | BrotliCompress | null;
  /** Small chunks are coalesced into slabs of this size (chunkSize's class, as on node:http). */
  private readonly slabSize: number;
  private readonly chunkSize: number;
  private slab: Buffer | null = null;
  private used = 0;
  /** Held bytes past which the producer waits: room for one more slab below MAX_HELD_BYTES. */
  private readonly drainOver: number;

  constructor(private readonly exchange: Exchange, private readonly options: BodyOptions) {
    exchange.writer = this;
    this.chunkSize = options.chunkSize;
    this.slabSize = slabSizeFor(options.chunkSize);
    this.drainOver = Math.max(0, MAX_HELD_BYTES - this.slabSize);
    this.compressor = options.encoding === null ? null : createCompressor(options.encoding);
    if (this.compressor !== null) {
      // Each piece the compressor gives is a flush of its own (a token stream stays live): it goes as it is.
      this.compressor.on("data", (data: Buffer) => this.write(data, 0));
      this.compressor.once("end", () => {
        this.begin();
        this.write(null, this.lastFlags());
      });
      this.compressor.once("error", () => {
        options.stats.failed++;
        this.exchange.destroy();
      });
    }
    if (exchange.socket.destroyed) queueMicrotask(() => this.markAborted("disconnect"));
  }

  get backpressure(): boolean {
    return this.buffered > this.drainOver || (this.compressor?.writableLength ?? 0) > MAX_HELD_BYTES;
  }

  /** What the connection holds now (asked of the C side: it flushes between turns of the loop). */
  get bufferedBytes(): number {
    return Math.max(0, this.exchange.buffered()) + (this.compressor?.writableLength ?? 0);
  }

  private begin(): void {
    if (this.framing !== null) return;
    this.pendingHead = null;
    this.framing = this.exchange.startStream();
  }

  private lastFlags(): number {
    return HTTP_WRITE.end | (this.framing === "chunked" ? HTTP_WRITE.last : 0) | (this.framing === "close" ? HTTP_WRITE.close : 0);
  }

  /** Hand bytes to the C side, after what this writer coalesced. */
  private write(data: string | Uint8Array | null, flags: number): void {
    if (this.used > 0) this.handOff();
    this.emit(data, flags);
  }

  /** The coalesced bytes go to the C side (which copies them); the slab goes back to the pool. */
  private handOff(): void {
    const slab = this.slab!;
    const used = this.used;
    this.slab = null;
    this.used = 0;
    this.emit(slab.subarray(0, used), 0);
    giveSlab(slab);
  }

  /** Hand bytes to the C side as they are. */
  private emit(data: string | Uint8Array | null, flags: number): void {
    this.begin();
    const exchange = this.exchange;
    if (exchange.method === "HEAD" || this.framing === "none") {
      if ((flags & HTTP_WRITE.end) !== 0) exchange.writeBody(null, HTTP_WRITE.end);
      return;
    }
    if (this.framing === "chunked" && data !== null) flags |= HTTP_WRITE.chunk;
    const buffered = exchange.writeBody(data, flags, this.drainOver);
    if (!this.took(buffered)) return;
    if (this.options.monitorMemory) {
      if (buffered > this.peakBufferedBytes) this.peakBufferedBytes = buffered;
      if (buffered > this.options.stats.peakBufferedBytes) this.options.stats.peakBufferedBytes = buffered;
    }
  }

  push(chunk: string | Uint8Array): void {
    if (this.aborted !== null || this.ended) return;
    const length = typeof chunk === "string" ? Buffer.byteLength(chunk) : chunk.byteLength;
    if (length === 0) return;
    this.bytes += length;
    this.options.stats.bytes += length;
    if (this.compressor !== null) {
      this.begin();
      this.compressor.write(chunk);
    } else if (length < this.chunkSize >> 1) {
      if (length > this.slabSize - this.used) this.handOff();
      const slab = (this.slab ??= takeSlab(this.slabSize));
      if (typeof chunk === "string") this.used += slab.write(chunk, this.used, "utf8");
      else {
        slab.set(chunk, this.used);
        this.used += length;
      }
      if (this.used >= this.chunkSize) this.handOff();
    } else {
      // A large chunk goes without a copy, as node:http writes it (the producer does not reuse
      // it while the connection holds bytes: bufferedBytes says so).
      this.write(chunk, typeof chunk === "string" || length < EXTERNAL_MIN ? 0 : HTTP_WRITE.external);
    }
  }

  pushFile(region: FileRegion): void {
    if (this.aborted !== null || this.ended || region.length === 0) return;
    if (this.compressor !== null) throw new Error("A file region cannot be compressed: push its bytes");
    this.bytes += region.length;
    this.options.stats.bytes += region.length;
    if (this.used > 0) this.handOff();
    this.begin();
    const exchange = this.exchange;
    if (exchange.method === "HEAD" || this.framing === "none") return;
    // What the C side holds of a file costs no memory: not counted as the stream's peak.
    this.took(exchange.writeFile(region, this.framing === "chunked" ? HTTP_WRITE.chunk : 0, this.drainOver));
  }

  /** After a write to the C side: the bytes it holds now, or the client is gone (-1). */
  private took(buffered: number): boolean {
    if (buffered < 0) {
      if (this.aborted === null && !this.ended) this.markAborted("disconnect");
      return false;
    }
    this.buffered = buffered;
    return true;
  }

  /** What is coalesced goes to the C side, which writes it at the end of this turn of the loop. */
  flush(): void {
    if (this.aborted !== null || this.ended || this.used === 0) return;
    this.handOff();
  }

  /** Flush once the event loop is idle: the producer waits for data, nothing may be held back. */
  flushWhenIdle(): void {
    if (this.idleFlush || this.aborted !== null || this.ended) return;
    this.idleFlush = true;
    setImmediate(() => {
      this.idleFlush = false;
      this.flush();
    });
  }

  sendHeadWhenIdle(writeHead: () => void): void {
    this.pendingHead = writeHead;
    this.headTimer ??= setImmediate(() => {
      this.headTimer = null;
      const head = this.pendingHead;
      if (head === null || this.aborted !== null || this.framing !== null) return;
      head();
      this.begin();
      this.flush();
    });
  }

  clearHead(): void {
    this.pendingHead = null;
  }

  drained(): Promise<void> {
    if (this.aborted !== null || !this.backpressure) return Promise.resolve();
    this.options.stats.backpressureEvents++;
    return new Promise((resolve) => {
      const previous = this.drainResolve;
      this.drainResolve = previous === null ? resolve : () => (previous(), resolve());
      this.idleTimer ??= setTimeout(() => {
        this.idleTimer = null;
        this.cut("idle-timeout");
      }, this.options.idleTimeoutMs);
      if (this.compressor !== null && this.buffered <= this.drainOver) this.compressor.once("drain", () => this.drain());
    });
  }

  /** @internal The C side's output went out. */
  drain(): void {
    this.buffered = 0;
    if (this.backpressure) return;
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    const resolve = this.drainResolve;
    this.drainResolve = null;
    resolve?.();
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.pendingHead = null;
    if (this.aborted !== null) return;
    if (this.compressor !== null) {
      this.compressor.end();
    } else {
      // The head and what is coalesced go first: the framing (and so the last flags) is known then.
      if (this.used > 0) this.handOff();
      this.begin();
      this.emit(null, this.lastFlags());
    }
    this.drain();
  }

  endNow(): void {
    if (this.aborted !== null || this.ended) return;
    this.end();
    this.aborted = "shutdown";
    this.options.onAbort("shutdown");
  }

  cut(reason: AbortReason, finalChunk?: string | Uint8Array): void {
    if (this.aborted !== null) return;
    if (finalChunk !== undefined) this.push(finalChunk);
    this.markAborted(reason);
    if (reason === "error" && this.compressor === null) {
      // What was produced goes out (the head first); the connection then closes without the last chunk.
      if (this.used > 0) this.handOff();
      this.begin();
      this.exchange.writeBody(null, HTTP_WRITE.end | HTTP_WRITE.close);
    } else {
      this.exchange.destroy();
    }
  }

  release(): void {
    this.dropCoalesced();
    this.pendingHead = null;
    this.exchange.writer = null;
    this.compressor?.destroy();
  }

  /** @internal */
  connectionEnded(): void {
    if (this.aborted === null && !this.ended) this.markAborted("disconnect");
    else this.drain();
  }

  /** What this writer coalesced is not sent. */
  private dropCoalesced(): void {
    if (this.slab !== null) giveSlab(this.slab);
    this.slab = null;
    this.used = 0;
  }

  private markAborted(reason: AbortReason): void {
    if (this.aborted !== null) return;
    // Kept for a cut with an error (its bytes go out first), dropped otherwise.
    if (reason !== "error") this.dropCoalesced();
    this.aborted = reason;
    this.pendingHead = null;
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    if (this.compressor !== null && reason !== "error") this.compressor.destroy();
    const resolve = this.drainResolve;
    this.drainResolve = null;
    resolve?.();
    this.options.onAbort(reason);
  }
}

/** The native engine's body writers. Its sinks are its own exchanges: it makes no others. */
const nativeBodyWriters: BodyWriters = {
  open(res: ResponseSink, options: BodyOptions): BodyWriter {
    return new NativeBodyWriter(res as Exchange, options);
  },
  // File regions go from the file to the socket in C (sendfile(2)).
  sendsFiles: true,
  /**
   * An SSE room subscriber's connection leaves the C server with its descriptor for the C stream
   * engine (close-delimited), when nothing of the response was written and its request is
   * complete (what the client sends from then on is dropped).
   */
  handOver(res, status, headers, opening, take): boolean {
    const exchange = res as Exchange;
    if (exchange.headersSent || exchange.finished || !exchange.complete || exchange.socket.destroyed) return false;
    const detached = exchange.engine.detach(exchange);
    if (detached === null) return false;
    exchange.finished = true;
    exchange.statusCode = status;
    exchange.headersSent = true;
    const [fd] = detached;
    if (take(fd, true, closeDelimitedHead(status, headers, opening))) return true;
    // Out of the C server and not taken: the connection is lost, and the response fails as if the
    // client had left (an event stream's client connects again).
    closeSync(fd);
    return false;
  },
};

const EMPTY = Buffer.alloc(0);

/**
 * A WebSocket handshake on the C server: refused with a response written like any other, or
 * switched with its descriptor going straight to the native WebSocket engine (no node:net socket
 * on the way), else to a node:net socket built on it.
 */
class NativeUpgrade implements UpgradeChannel {
  private answered = false;

  constructor(private readonly engine: NativeHttpEngine, private readonly exchange: Exchange) {}

  get remoteAddress(): string {
    return this.exchange.socket.remoteAddress;
  }

  get remotePort(): number {
    return this.exchange.socket.remotePort;
  }

  onClose(listener: () => void): void {
    this.exchange.socket.once("close", () => {
      if (!this.answered) listener();
    });
  }

  refuse(response: string): void {
    this.answered = true;
    this.exchange.writeBody(response, HTTP_WRITE.end | HTTP_WRITE.close);
  }

  switchProtocols(take: DescriptorTaker | null): { socket: Socket; rest: Buffer } | null {
    this.answered = true;
    this.exchange.finished = true;
    const detached = this.engine.detach(this.exchange);
    if (detached === null) {
      // The client left in the meantime: a socket that is closed already stands for it.
      this.exchange.destroy();
      const socket = new Socket();
      socket.destroy();
      return { socket, rest: EMPTY };
    }
    const [fd, rest] = detached;
    if (take !== null && take(fd, true, rest)) return null;
    const socket = new Socket({ fd, readable: true, writable: true, allowHalfOpen: false });
    this.engine.adoptSocket(socket);
    return { socket, rest };
  }
}

/** The HTTP engine in C. */
export class NativeHttpEngine implements HttpEngine {
  readonly name = "native";
  readonly nodeServer = null;
  handle: HttpServerHandle | null = null;
  /** Set once shutdown began: every response says `Connection: close`. */
  closing = false;
  readonly keepAliveSeconds: number;
  private readonly connections = new Map<number, Connection>();
  /** Connections the C server accepted, kept when it closes. */
  private accepted = 0;
  private stopWaiters: Array<() => void> = [];
  private stopTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly binding: NativeBinding,
    private readonly options: ResolvedAppOptions,
    private readonly stats: ConnectionStats,
    private readonly events: HttpEvents,
  ) {
    this.keepAliveSeconds = Math.max(1, Math.floor(options.keepAliveTimeoutMs / 1000));
  }

  async listen(port: number, host: string, shared = false): Promise<BoundAddress> {
    const address = isIP(host) !== 0 ? host : (await lookup(host)).address;
    const binding = this.binding;
    const handle = binding.createHttpServer({
      onRequest: (id, method, target, minor, flags, length, fields, peer, peerPort) =>
        this.request(id, method, target, minor, flags, length, splitFields(fields), peer, peerPort),
      onBody: (id, bytes) => this.connections.get(id)?.current?.body(bytes),
      onBodyEnd: (id) => this.connections.get(id)?.current?.bodyEnd(),
      onDrain: (id) => this.connections.get(id)?.current?.writer?.drain(),
      onClose: (id) => this.closed(id),
    }, {
      maxHeaderBytes: this.options.maxHeaderBytes,
      // node:http's maxHeadersCount; within maxHeaderBytes a head rarely comes near it.
      maxHeaders: 2_000,
      // The app enforces maxBodyBytes where the body is read (413 from the request); the C side
      // refuses only what no reader could take.
      maxBodyBytes: Number.MAX_SAFE_INTEGER,
      maxConnections: this.options.maxConnections,
      headersTimeoutMs: this.options.headersTimeoutMs,
      requestTimeoutMs: this.options.requestTimeoutMs,
      keepAliveTimeoutMs: this.options.keepAliveTimeoutMs,
    });
    try {
      const bound = binding.serverListen(handle, address, port, 511, shared);
      this.handle = handle;
      return { address, port: bound };
    } catch (error) {
      binding.serverClose(handle);
      throw error;
    }
  }

  private request(
    id: number, method: string, target: string, minor: number, flags: number, length: number, rawHeaders: string[],
    peer: string | undefined, port: number,
  ): void {
    let connection = this.connections.get(id);
    if (connection === undefined) {
      connection = new Connection(peer ?? "", port);
      this.connections.set(id, connection);
    }
    const exchange = new Exchange(this, id, method, target, minor, flags, rawHeaders, connection);
    connection.current = exchange;
    // A request without a body is complete as it arrives.
    if ((flags & HTTP_REQUEST.chunked) === 0 && length <= 0) exchange.complete = true;
    if ((flags & HTTP_REQUEST.upgrade) !== 0) {
      // The descriptor can leave once the C side finished parsing this read (the batch ends).
      queueMicrotask(() => this.upgrade(exchange));
      return;
    }
    this.events.request(exchange, exchange, nativeBodyWriters);
  }

  /**
   * A protocol switch (a WebSocket handshake): the connection stays in the C server (not read
   * further) until the app answers on the channel.
   */
  private upgrade(exchange: Exchange): void {
    if (this.handle === null || exchange.socket.destroyed) return;
    this.events.upgrade(exchange, new NativeUpgrade(this, exchange));
  }

  /**
   * @internal The connection leaves the C server with its descriptor and the bytes read past the
   * head; null when it cannot (it is gone, or output is queued on it), and it stays then.
   */
  detach(exchange: Exchange): [fd: number, rest: Buffer] | null {
    const detached = this.handle === null ? null : this.binding.serverDetach(this.handle, exchange.id);
    if (detached !== null) this.connections.delete(exchange.id);
    return detached;
  }

  /** @internal A descriptor that left as a node:net socket: counted as node:http counts its sockets. */
  adoptSocket(socket: Socket): void {
    this.stats.active++;
    socket.once("close", () => this.stats.active--);
  }

  /** @internal The response of an exchange ended. */
  exchangeDone(exchange: Exchange): void {
    const connection = exchange.socket;
    if (connection.current === exchange && exchange.complete) connection.current = null;
  }

  private closed(id: number): void {
    const connection = this.connections.get(id);
    if (connection === undefined) return;
    this.connections.delete(id);
    connection.current?.ended();
    connection.current = null;
    connection.ended();
    if (this.stopWaiters.length > 0) this.checkStopped();
  }

  // What exchanges call: each is a no-op (-1: gone) once the server closed.

  /** @internal */
  write(id: number, data: string | Uint8Array | null, flags: number, drainOver: number): number {
    return this.handle === null ? -1 : this.binding.serverWrite(this.handle, id, data, flags, drainOver);
  }

  /** @internal */
  writeFile(id: number, region: FileRegion, flags: number, drainOver: number): number {
    return this.handle === null ? -1 : this.binding.serverWriteFile(this.handle, id, region.fd, region.position, region.length, flags, drainOver);
  }

  /** @internal */
  buffered(id: number): number {
    return this.handle === null ? -1 : this.binding.serverBuffered(this.handle, id);
  }

  /** @internal */
  pause(id: number): void {
    if (this.handle !== null) this.binding.serverPause(this.handle, id);
  }

  /** @internal */
  resume(id: number): void {
    if (this.handle !== null) this.binding.serverResume(this.handle, id);
  }

  /** @internal */
  destroy(id: number): void {
    if (this.handle !== null) this.binding.serverDestroy(this.handle, id);
  }

  setConnectionLimit(limit: number): void {
    if (this.handle !== null) this.binding.serverSetMaxConnections(this.handle, Math.max(1, limit));
  }

  stopAccepting(): Promise<void> {
    if (this.handle === null) return Promise.resolve();
    this.closing = true;
    this.binding.serverStopAccepting(this.handle);
    return new Promise((resolve) => {
      this.stopWaiters.push(resolve);
      this.checkStopped();
    });
  }

  /** Resolve the stop once no connection is left (those without a request are not reported). */
  private checkStopped(): void {
    const handle = this.handle;
    if (handle === null || this.binding.serverStats(handle).connections === 0) {
      if (this.stopTimer !== null) clearTimeout(this.stopTimer);
      this.stopTimer = null;
      const waiters = this.stopWaiters;
      this.stopWaiters = [];
      if (handle !== null) {
        this.accepted = this.binding.serverStats(handle).accepted;
        this.binding.serverClose(handle);
        this.handle = null;
      }
      for (const resolve of waiters) resolve();
      return;
    }
    this.stopTimer ??= setTimeout(() => {
      this.stopTimer = null;
      this.checkStopped();
    }, STOP_POLL_MS);
  }

  closeIdle(): void {
    if (this.handle !== null) this.binding.serverCloseIdle(this.handle);
  }

  connectionCounts(): { active: number; total: number } {
    if (this.handle === null) return { active: 0, total: this.accepted };
    const { connections, accepted } = this.binding.serverStats(this.handle);
    return { active: connections, total: accepted };
  }

  closeAll(): void {
    if (this.handle !== null) this.binding.serverCloseAll(this.handle);
  }
}
