import { Readable } from "node:stream";
import { StreamingError, TooManyRequestsError } from "../errors.js";
import { FileRegion, type AbortReason, type BodyWriter, type StreamEncoding } from "../http-engine.js";
import { negotiateEncoding } from "../protocol/encoding.js";
import { assertPositiveInteger } from "../validate.js";
import { ResponseHeaders, type HeadersInit } from "./headers.js";
import { Response, type SendContext } from "./response.js";

/** A body chunk: text is sent as UTF-8. */
export type Chunk = string | Uint8Array;

/** Anything a streaming body can be pulled from. */
export type ChunkSource<T = Chunk> =
  | Iterable<T>
  | AsyncIterable<T>
  | ReadableStream<T>
  | NodeJS.ReadableStream;

/**
 * What a producer function receives: backpressure state, a way to wait for the socket, and a
 * signal that fires when the client goes away.
 */
export interface StreamController {
  /** Fires when the stream stops early: client disconnect, write timeout, shutdown. */
  readonly signal: AbortSignal;
  /** Whether the socket is over its high-water mark right now. */
  readonly backpressure: boolean;
  /** Resolves when the socket can take more bytes (at once when it already can). */
  drained(): Promise<void>;
  /** Body bytes sent so far. */
  readonly bytesSent: number;
  /** Bytes written but not yet taken by the operating system. */
  readonly bufferedBytes: number;
  /** The `Last-Event-ID` the client sent, for SSE producers resuming a stream. */
  readonly lastEventId: string | undefined;
  /** Same as `backpressure`; the name the original plan uses. */
  checkBackpressure(): boolean;
  /** Same as `drained()`; the name the original plan uses. */
  waitForDrain(): Promise<void>;
}

/** A source, or a function that receives the controller and returns a source. */
export type StreamBody<T = Chunk> = ChunkSource<T> | ((stream: StreamController) => ChunkSource<T>);

/** Options of {@link StreamingResponse}. */
export interface StreamingOptions {
  /** @default 200 */
  status?: number;
  headers?: HeadersInit;
  /**
   * Content-Type. When absent it is taken from the first chunk: text/plain for strings,
   * application/octet-stream for bytes.
   */
  mediaType?: string;
  /**
   * Small chunks are coalesced up to this many bytes per socket write. A chunk is never held
   * back while the producer is waiting for data.
   * @default 65536
   */
  chunkSize?: number;
  /** Record the stream's peak buffered bytes in statistics (`streams.peakBufferedBytes`). */
  monitorMemory?: boolean;
  /**
   * Compress with brotli or gzip when the client's Accept-Encoding allows it. Every coalesced
   * write is flushed through the compressor, so streaming is not delayed.
   * @default false
   */
  compress?: boolean;
  /**
   * Called once when the source throws after the first byte was sent. What it returns (a last
   * chunk, for example an SSE error event) is written before the connection is cut.
   */
  onError?: (error: unknown) => Chunk | void;
}

/** Outcome of sending a stream. */
type Outcome = "completed" | "aborted" | "failed";

interface PullIterator<T> {
  readonly isSync: boolean;
  next(): IteratorResult<T> | Promise<IteratorResult<T>>;
  /** Close the source; resolves once its cleanup (the generator's `finally`) has run. */
  return(): Promise<void>;
}

/**
 * How long a stream that ended early waits for its source's cleanup before dependencies are
 * closed anyway. An async generator stuck in an `await` only runs its `finally` when that await
 * settles; producers should watch `stream.signal`.
 */
const SOURCE_CLEANUP_GRACE_MS = 5_000;

/** `chunkSize` when none is given: small chunks are coalesced into writes of 64 KiB. */
const DEFAULT_CHUNK_SIZE = 64 * 1024;

/**
 * A stream's pump runs this long at most before it lets the event loop's other work run (other
 * requests, WebSocket messages, timers, signals). A socket that a fast reader empties at once
 * reports its drain in the same turn of the loop (write callbacks run on the next tick), so
 * neither backpressure nor a drain is a yield: only time is.
 */
const SLICE_MS = 1;
/** The clock is read every this many chunks (and after every wait for a drain). */
const SLICE_CHECK_CHUNKS = 16;

/**
 * A response whose body is pulled from a generator, iterable, Node Readable or web ReadableStream,
 * only as fast as the client takes it.
 *
 * @example
 * app.get("/export.csv", () => new StreamingResponse(function* () {
 *   for (const u of users()) yield `${u.id},${u.name}\n`;
 * }(), { mediaType: "text/csv" }));
 */
export class StreamingResponse<T = Chunk> extends Response {
  readonly source: StreamBody<T>;
  readonly mediaType: string | undefined;
  readonly chunkSize: number;
  readonly monitorMemory: boolean;
  readonly compress: boolean;
  readonly onError: ((error: unknown) => Chunk | void) | undefined;
  /** Bytes sent by the last `send`; for tests and logging. */
  bytesSent = 0;
  /**
   * A chunk that opens the body at once when the producer's first chunk is not ready at once:
   * headers and this chunk go out as soon as the producer waits (an event stream announces
   * itself; some clients open it only on its first body byte). Null: the headers wait for the
   * first chunk. @internal
   */
  protected opening: Chunk | null = null;

  constructor(source: StreamBody<T>, options: StreamingOptions = {}) {
    super(null, { status: options.status ?? 200, headers: options.headers ?? {} });
    this.source = source;
    this.mediaType = options.mediaType;
    this.chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
    assertPositiveInteger("chunkSize", this.chunkSize);
    this.monitorMemory = options.monitorMemory ?? false;
    this.compress = options.compress ?? false;
    this.onError = options.onError;
    if (this.mediaType !== undefined) this.headers.set("Content-Type", this.mediaType);
  }

  /**
   * Turn one value of the source into body bytes. Subclasses encode their own item types (a file
   * response gives file regions where the engine sends from descriptors).
   */
  protected encode(value: T): Chunk | FileRegion {
    if (typeof value === "string" || value instanceof Uint8Array) return value;
    throw new TypeError(`A stream chunk must be a string or Uint8Array, got ${typeof value}`);
  }

  /** Headers added just before they are sent, once the first chunk is known. @internal */
  protected finalHeaders(first: Chunk | FileRegion | undefined): ResponseHeaders {
    if (!this.headers.has("content-type")) {
      this.headers.set("Content-Type", typeof first === "string" || first === undefined
        ? "text/plain; charset=utf-8" : "application/octet-stream");
    }
    return this.headers;
  }

  /** A controller for a producer function. @internal */
  protected makeController(lastEventId: string | undefined): ControllerImpl {
    return new ControllerImpl(lastEventId);
  }

  /** The source to pull from; a producer function is called with the controller. @internal */
  protected produce(controller: StreamController): ChunkSource<T> {
    return typeof this.source === "function" ? this.source(controller) : this.source;
  }

  private open(controller: StreamController): PullIterator<T> {
    return toPullIterator<T>(this.produce(controller));
  }

  /** Called once headers are written. @internal */
  protected onStart(_writer: BodyWriter, _lastEventId: string | undefined): void {}

  /** Called when a stream that started stops, however it ends. @internal */
  protected onStop(): void {}

  /** @internal */
  override async send(ctx: SendContext): Promise<void> {
    const { req, res, host } = ctx;
    const address = req.remoteAddress;
    if (!host.acquireStream(address)) {
      host.stats.http.rateLimited++;
      throw new TooManyRequestsError("Too many concurrent streams from this client", 1);
    }
    const stats = host.stats;
    stats.streams.active++;
    stats.streams.created++;
    let finished = false;
    let iterator: PullIterator<T> | null = null;
    let started = false;
    let resolveDone!: () => void;
    const done = new Promise<void>((resolve) => (resolveDone = resolve));
    const finish = (outcome: Outcome): void => {
      if (finished) return;
      finished = true;
      if (started) this.onStop();
      stats.streams.active--;
      if (outcome === "completed") stats.streams.completed++;
      else stats.streams.aborted++;
      if (outcome === "failed") stats.streams.failed++;
      this.bytesSent = writer.bytes;
      host.releaseStream(address);
      host.untrackStream(writer);
      if (iterator === null || outcome === "completed") {
        resolveDone();
        return;
      }
      const timer = setTimeout(resolveDone, SOURCE_CLEANUP_GRACE_MS);
      void iterator.return().then(() => {
        clearTimeout(timer);
        resolveDone();
      });
    };
    const controller = this.makeController(req.lastEventId);
    let encoding: StreamEncoding | null = null;
    if (this.compress) {
      this.headers.append("Vary", "Accept-Encoding");
      if (req.method !== "HEAD" && !this.headers.has("content-encoding")) {
        encoding = negotiateEncoding(req.header("accept-encoding"));
        if (encoding !== null) {
          this.headers.set("Content-Encoding", encoding);
          this.headers.delete("Content-Length");
        }
      }
    }
    const writer = ctx.writers.open(res, {
      stats: stats.streams,
      chunkSize: this.chunkSize,
      idleTimeoutMs: host.streamIdleTimeoutMs,
      monitorMemory: this.monitorMemory,
      encoding,
      onAbort: (reason: AbortReason) => {
        controller.abort(reason);
        finish("aborted");
      },
    });
    controller.attach(writer);
    host.trackStream(writer);
    const writeHead = (first: Chunk | FileRegion | undefined, opening?: Chunk): void => {
      res.writeHead(this.status, this.finalHeaders(first).toFlatArray());
      if (opening !== undefined) writer.push(opening);
      started = true;
      this.onStart(writer, req.lastEventId);
    };

    // Until the first chunk exists nothing is sent, so a failure still becomes an error response.
    let first: Chunk | FileRegion | undefined;
    let ended = false;
    try {
      iterator = this.open(controller);
      for (;;) {
        let step: IteratorResult<T>;
        if (iterator.isSync) {
          step = iterator.next() as IteratorResult<T>;
        } else if (this.opening !== null && !res.headersSent) {
          const opening = this.opening;
          writer.sendHeadWhenIdle(() => writeHead(undefined, opening));
          step = await iterator.next();
          writer.clearHead();
        } else {
          step = await iterator.next();
        }
        if (finished) return done;
        if (step.done) {
          ended = true;
          break;
        }
        const chunk = this.encode(step.value);
        if (sizeOf(chunk) > 0) {
          first = chunk;
          break;
        }
      }
    } catch (error) {
      if (!res.headersSent) {
        writer.release();
        finish("failed");
        throw error;
      }
      this.fail(error, writer, host, finish);
      return done;
    }
    if (!res.headersSent) writeHead(first);
    if (req.method === "HEAD") {
      writer.end();
      // The body is not wanted: close the source before its dependencies.
      if (!ended) await iterator!.return();
      finish("completed");
      return done;
    }
    if (first !== undefined) put(writer, first);
    if (ended) {
      writer.end();
      finish("completed");
      return done;
    }
    void this.pump(iterator!, writer, host, finish, () => finished);
    return done;
  }

  private fail(error: unknown, writer: BodyWriter, host: SendContext["host"], finish: (outcome: Outcome) => void): void {
    let last: Chunk | void = undefined;
    if (this.onError === undefined) {
      host.logger.error("catzilla: streaming source failed after the first byte", error);
    } else {
      try {
        last = this.onError(error);
      } catch (handlerError) {
        host.logger.error("catzilla: a stream onError handler threw", handlerError);
      }
    }
    finish("failed");
    writer.cut("error", last === undefined ? undefined : last);
  }

  private async pump(
    iterator: PullIterator<T>,
    writer: BodyWriter,
    host: SendContext["host"],
    finish: (outcome: Outcome) => void,
    isFinished: () => boolean,
  ): Promise<void> {
    let chunks = 0;
    let sliceStart = performance.now();
    try {
      for (;;) {
        let check = ++chunks % SLICE_CHECK_CHUNKS === 0;
        if (writer.backpressure) {
          await writer.drained();
          if (isFinished()) return;
          check = true;
        }
        if (check && performance.now() - sliceStart >= SLICE_MS) {
          await new Promise<void>((resolve) => setImmediate(resolve));
          if (isFinished()) return;
          sliceStart = performance.now();
        }
        let step: IteratorResult<T>;
        if (iterator.isSync) {
          step = iterator.next() as IteratorResult<T>;
        } else {
          writer.flushWhenIdle();
          step = await iterator.next();
          if (isFinished()) return;
        }
        if (step.done) break;
        put(writer, this.encode(step.value));
      }
    } catch (error) {
      if (!isFinished()) this.fail(error, writer, host, finish);
      return;
    }
    writer.end();
    finish("completed");
  }

  /** Consume the whole body without a server (for unit tests), as bytes. @throws StreamingError */
  async bytes(): Promise<Buffer> {
    const parts: Buffer[] = [];
    const controller = this.makeController(undefined);
    let iterator: PullIterator<T>;
    try {
      iterator = this.open(controller);
      for (;;) {
        const step = iterator.isSync ? (iterator.next() as IteratorResult<T>) : await iterator.next();
        if (step.done) break;
        const chunk = this.encode(step.value);
        if (chunk instanceof FileRegion) throw new TypeError("A file region is sent by the engine, not read here");
        parts.push(typeof chunk === "string" ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      }
    } catch (error) {
      throw new StreamingError(error);
    }
    return Buffer.concat(parts);
  }

  /** Consume the whole body without a server (for unit tests), as UTF-8 text. @throws StreamingError */
  async text(): Promise<string> {
    return (await this.bytes()).toString("utf8");
  }
}

/** The controller handed to producers. @internal */
export class ControllerImpl implements StreamController {
  private abortController: AbortController | undefined;
  private abortedWith: AbortReason | undefined;
  private writer: BodyWriter | null = null;
  constructor(readonly lastEventId: string | undefined) {}

  /** @internal */
  attach(writer: BodyWriter): void {
    this.writer = writer;
  }

  get signal(): AbortSignal {
    if (this.abortController === undefined) {
      this.abortController = new AbortController();
      if (this.abortedWith !== undefined) this.abortController.abort(this.abortedWith);
    }
    return this.abortController.signal;
  }

  get backpressure(): boolean {
    return this.writer?.backpressure ?? false;
  }

  get bytesSent(): number {
    return this.writer?.bytes ?? 0;
  }

  get bufferedBytes(): number {
    return this.writer?.bufferedBytes ?? 0;
  }

  drained(): Promise<void> {
    return this.writer?.drained() ?? Promise.resolve();
  }

  checkBackpressure(): boolean {
    return this.backpressure;
  }

  waitForDrain(): Promise<void> {
    return this.drained();
  }

  /** @internal */
  abort(reason: AbortReason): void {
    if (this.abortedWith !== undefined) return;
    this.abortedWith = reason;
    this.abortController?.abort(reason);
  }
}

function toPullIterator<T>(source: ChunkSource<T>): PullIterator<T> {
  if (typeof source === "string" || source instanceof Uint8Array) {
    return fromSync([source as unknown as T][Symbol.iterator]());
  }
  if (source !== null && typeof source === "object") {
    if (Symbol.asyncIterator in source) {
      return fromAsync((source as AsyncIterable<T>)[Symbol.asyncIterator]());
    }
    if (Symbol.iterator in source) return fromSync((source as Iterable<T>)[Symbol.iterator]());
    if (typeof (source as ReadableStream<T>).getReader === "function") {
      return fromAsync(Readable.fromWeb(source as never)[Symbol.asyncIterator]() as AsyncIterator<T>);
    }
  }
  throw new TypeError("A stream source must be an iterable, async iterable, Node Readable or ReadableStream");
}

// Classes, not object literals with closures: a long stream keeps one small object per source.
function fromSync<T>(it: Iterator<T>): PullIterator<T> {
  return new SyncPull(it);
}

function fromAsync<T>(it: AsyncIterator<T>): PullIterator<T> {
  return new AsyncPull(it);
}

class SyncPull<T> implements PullIterator<T> {
  readonly isSync = true;
  constructor(private readonly it: Iterator<T>) {}

  next(): IteratorResult<T> {
    return this.it.next();
  }

  async return(): Promise<void> {
    try {
      this.it.return?.();
    } catch {
      // The source's own cleanup failed; the stream is over either way.
    }
  }
}

class AsyncPull<T> implements PullIterator<T> {
  readonly isSync = false;
  constructor(private readonly it: AsyncIterator<T>) {}

  next(): Promise<IteratorResult<T>> {
    return this.it.next();
  }

  async return(): Promise<void> {
    try {
      await this.it.return?.();
    } catch {
      // As above.
    }
  }
}

function sizeOf(chunk: Chunk | FileRegion): number {
  return typeof chunk === "string" ? chunk.length : chunk instanceof FileRegion ? chunk.length : chunk.byteLength;
}

/** A chunk to the writer: a file region goes from its descriptor. */
function put(writer: BodyWriter, chunk: Chunk | FileRegion): void {
  if (chunk instanceof FileRegion) writer.pushFile!(chunk);
  else writer.push(chunk);
}
