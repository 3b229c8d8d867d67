import type { ServerResponse } from "node:http";
import type { Writable } from "node:stream";
import { constants as zlibConstants, createBrotliCompress, createGzip, type BrotliCompress, type Gzip } from "node:zlib";
import type { AbortReason, BodyOptions, BodyWriter, StreamEncoding } from "../http-engine.js";
import type { StreamStats } from "../metrics/stats.js";
import { MAX_IN_FLIGHT_BYTES, giveSlab, slabSizeFor, takeSlab } from "./slabs.js";

/** A compressor for a streamed body: every write is flushed through, so streaming is not delayed. */
export function createCompressor(encoding: StreamEncoding): Gzip | BrotliCompress {
  return encoding === "gzip"
    ? createGzip({ flush: zlibConstants.Z_SYNC_FLUSH, level: 6 })
    : createBrotliCompress({
      flush: zlibConstants.BROTLI_OPERATION_FLUSH,
      params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 4 },
    });
}

/**
 * Writers with coalesced bytes (or headers) to send once the event loop is idle. One immediate
 * serves every stream of a loop turn, instead of one timer per stream and chunk.
 */
let idleQueue: StreamWriter[] = [];
let idleScheduled = false;

function runIdleQueue(): void {
  idleScheduled = false;
  const queue = idleQueue;
  idleQueue = [];
  for (const writer of queue) writer.runIdle();
}

/** Bytes a socket must take within this long after a cut before it is destroyed. */
const CUT_GRACE_MS = 2_000;

/**
 * Writes a streaming body to a node:http response: coalesces small chunks into reused slabs,
 * waits for 'drain' instead of buffering, detects the client going away, and cuts the connection
 * on failure so the client sees an incomplete body.
 */
export class StreamWriter implements BodyWriter {
  /** Body bytes handed to the socket. */
  bytes = 0;
  /** Set once the stream stopped early; nothing is written after. */
  aborted: AbortReason | null = null;
  /** Largest `writableLength` seen, when monitoring is on. */
  peakBufferedBytes = 0;
  /** Set for event streams: shutdown ends them at once (`endNow`). */
  shutdownAtOnce = false;
  private slab: Buffer | null = null;
  private used = 0;
  private drainResolve: (() => void) | null = null;
  private idleTimer: NodeJS.Timeout | null = null;
  private idleQueued = false;
  private ended = false;
  /** Sends the headers of an eager stream whose first chunk is not ready yet. */
  private pendingHead: (() => void) | null = null;
  private readonly slabSize: number;
  /** Bytes handed to the socket (slabs, whole; large chunks) whose writes did not complete yet. */
  private inFlight = 0;
  /** Where body bytes go: the response itself, or a compressor piped into it. */
  private readonly out: Writable;
  private readonly compressor: Gzip | BrotliCompress | null;
  private readonly stats: StreamStats;
  private readonly chunkSize: number;
  private readonly idleTimeoutMs: number;
  private readonly monitorMemory: boolean;
  private readonly onAbort: (reason: AbortReason) => void;

  constructor(private readonly res: ServerResponse, options: BodyOptions) {
    const { chunkSize, encoding } = options;
    this.stats = options.stats;
    this.chunkSize = chunkSize;
    this.idleTimeoutMs = options.idleTimeoutMs;
    this.monitorMemory = options.monitorMemory;
    this.onAbort = options.onAbort;
    this.slabSize = slabSizeFor(chunkSize);
    this.compressor = encoding === null ? null : createCompressor(encoding);
    this.out = this.compressor ?? res;
    if (this.compressor !== null) this.pipeCompressor(this.compressor);
    this.out.on("drain", this.handleDrain);
    res.on("close", this.handleClose);
    // The client may be gone before the stream starts; 'close' will not fire again then.
    if (res.destroyed) queueMicrotask(() => this.markAborted("disconnect"));
  }

  /** Let go of the response without writing, so another response can be sent on it. */
  release(): void {
    this.detach();
    this.out.off("drain", this.handleDrain);
    this.res.off("close", this.handleClose);
    this.compressor?.destroy();
    if (this.slab !== null) giveSlab(this.slab);
    this.slab = null;
    this.used = 0;
  }

  /**
   * Whether the producer should wait: another slab would take the bytes in flight past
   * MAX_IN_FLIGHT_BYTES. A paused reader so holds at most that in the server (or one chunk of
   * the source's when it is larger) plus chunk framing; the kernel's socket buffers hold the rest.
   */
  get backpressure(): boolean {
    return this.inFlight > 0 && this.inFlight + this.slabSize > MAX_IN_FLIGHT_BYTES;
  }

  /** Bytes queued in user space: coalesced but unsent, plus what the socket still holds. */
  get bufferedBytes(): number {
    return this.used + this.res.writableLength + (this.compressor?.writableLength ?? 0);
  }

  /** Add a chunk. Small chunks are copied into the current slab; large ones are written as they are. */
  push(chunk: string | Uint8Array): void {
    if (this.aborted !== null) return;
    let length: number;
    if (typeof chunk === "string") {
      if (chunk.length === 0) return;
      // A UTF-16 code unit takes at most 3 bytes in UTF-8: when that fits, copy without measuring.
      if (chunk.length * 3 <= this.chunkSize - this.used) {
        this.copy(chunk);
        return;
      }
      length = Buffer.byteLength(chunk);
    } else {
      length = chunk.byteLength;
      if (length === 0) return;
    }
    if (length >= this.chunkSize >> 1) {
      this.flush();
      this.writeRaw(chunk, length);
      return;
    }
    if (length > this.chunkSize - this.used) this.flush();
    this.copy(chunk);
  }

  /** Write what is coalesced now. */
  flush(): void {
    if (this.used === 0 || this.aborted !== null) return;
    const slab = this.slab!;
    this.inFlight += slab.length;
    this.out.write(this.takePending(), () => {
      giveSlab(slab);
      this.written(slab.length);
    });
    if (this.monitorMemory) this.sampleMemory();
  }

  /**
   * Flush once the event loop is idle: the producer is waiting for data, so nothing coalesced may
   * be held back (token streams must not gain latency).
   */
  flushWhenIdle(): void {
    if (this.idleQueued || this.aborted !== null || (this.used === 0 && this.pendingHead === null)) return;
    this.idleQueued = true;
    idleQueue.push(this);
    if (!idleScheduled) {
      idleScheduled = true;
      setImmediate(runIdleQueue);
    }
  }

  /**
   * Until `clearHead()`, send headers with `writeHead` as soon as the event loop is idle: an event
   * stream announces itself even when its first event is not ready yet.
   */
  sendHeadWhenIdle(writeHead: () => void): void {
    this.pendingHead = writeHead;
    this.flushWhenIdle();
  }

  /** The headers were written with the first chunk; no idle header write is needed. */
  clearHead(): void {
    this.pendingHead = null;
  }

  /** @internal Called from the shared idle queue. */
  runIdle(): void {
    this.idleQueued = false;
    if (this.aborted !== null || this.ended) return;
    const head = this.pendingHead;
    this.pendingHead = null;
    if (head !== null) {
      head();
      if (this.used === 0) this.res.flushHeaders();
    }
    if (this.used > 0) this.flush();
  }

  /** Resolves when the socket can take more; at once when it can already, or when the stream stopped. */
  drained(): Promise<void> {
    if (this.aborted !== null || !this.backpressure) return Promise.resolve();
    this.stats.backpressureEvents++;
    if (this.monitorMemory) this.sampleMemory();
    return new Promise((resolve) => {
      const previous = this.drainResolve;
      this.drainResolve = previous === null ? resolve : () => (previous(), resolve());
      this.idleTimer ??= setTimeout(this.handleIdleTimeout, this.idleTimeoutMs);
    });
  }

  /** Finish the body: the last coalesced bytes and the terminating chunk leave in one write. */
  end(): void {
    this.ended = true;
    this.detach();
    if (this.aborted !== null) return;
    if (this.used > 0) {
      const slab = this.slab!;
      this.out.end(this.takePending(), () => giveSlab(slab));
    } else {
      this.out.end();
    }
  }

  /**
   * End cleanly now, before the producer did: what was produced and the terminating chunk go
   * out, nothing more is written, and the producer is told to stop (its signal fires, its
   * `finally` runs), as on an abort.
   */
  endNow(): void {
    if (this.aborted !== null || this.ended) return;
    this.end();
    this.aborted = "shutdown";
    this.onAbort("shutdown");
  }

  /**
   * Stop early: what was produced is flushed, then the connection is closed without the
   * terminating chunk, so the client sees an incomplete body.
   */
  cut(reason: AbortReason, finalChunk?: string | Uint8Array): void {
    if (this.aborted !== null) return;
    if (finalChunk !== undefined) this.push(finalChunk);
    this.flush();
    this.markAborted(reason);
    const socket = this.res.socket;
    if (socket === null || socket.destroyed) return;
    if (reason === "idle-timeout" || reason === "shutdown" || reason === "disconnect") {
      socket.destroy();
      return;
    }
    const close = (): void => {
      this.compressor?.destroy();
      socket.end();
      setTimeout(() => socket.destroy(), CUT_GRACE_MS).unref();
    };
    if (this.compressor === null) close();
    else this.compressor.flush(close);
  }

  /** Copy a chunk that fits into the current slab; flush when the slab reached `chunkSize`. */
  private copy(chunk: string | Uint8Array): void {
    const slab = (this.slab ??= takeSlab(this.slabSize));
    if (typeof chunk === "string") {
      this.used += slab.write(chunk, this.used, "utf8");
    } else {
      slab.set(chunk, this.used);
      this.used += chunk.byteLength;
    }
    if (this.used >= this.chunkSize) this.flush();
  }

  /** The coalesced bytes as a view of the slab, counted as sent; the slab leaves the writer. */
  private takePending(): Buffer {
    const data = this.slab!.subarray(0, this.used);
    this.count(this.used);
    this.slab = null;
    this.used = 0;
    return data;
  }

  private writeRaw(chunk: string | Uint8Array, length: number): void {
    this.count(length);
    this.inFlight += length;
    this.out.write(chunk, () => this.written(length));
    if (this.monitorMemory) this.sampleMemory();
  }

  /** A write of `length` bytes in flight reached the kernel (or the compressor): a waiting producer may go on. */
  private written(length: number): void {
    this.inFlight -= length;
    if (this.drainResolve !== null && !this.backpressure) this.handleDrain();
  }

  /** Count body bytes as the producer made them (before compression). */
  private count(length: number): void {
    this.bytes += length;
    this.stats.bytes += length;
  }

  private pipeCompressor(compressor: Gzip | BrotliCompress): void {
    const res = this.res;
    // The same rule as for the producer: compressed bytes the kernel did not take yet stop the
    // compressor, whose input then waits (and with it the producer).
    const resume = (): void => {
      if (res.writableLength === 0) compressor.resume();
    };
    compressor.on("data", (data: Buffer) => {
      res.write(data, resume);
      if (res.writableLength > 0) compressor.pause();
    });
    res.on("drain", resume);
    compressor.once("end", () => {
      if (this.aborted === null) res.end();
    });
    compressor.once("error", (error) => {
      this.stats.failed++;
      res.destroy(error);
    });
  }

  private sampleMemory(): void {
    const buffered = this.bufferedBytes;
    if (buffered > this.peakBufferedBytes) this.peakBufferedBytes = buffered;
    if (buffered > this.stats.peakBufferedBytes) this.stats.peakBufferedBytes = buffered;
  }

  private markAborted(reason: AbortReason): void {
    if (this.aborted !== null) return;
    this.aborted = reason;
    if (this.slab !== null) giveSlab(this.slab);
    this.slab = null;
    this.used = 0;
    this.detach();
    if (this.compressor !== null && reason !== "error") this.compressor.destroy();
    this.onAbort(reason);
  }

  private detach(): void {
    this.pendingHead = null;
    this.handleDrain();
  }

  /** The socket took its bytes (or the stream stopped): wake whoever waits in `drained()`. */
  private readonly handleDrain = (): void => {
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    const resolve = this.drainResolve;
    this.drainResolve = null;
    resolve?.();
  };

  private readonly handleClose = (): void => {
    if (!this.res.writableFinished) this.markAborted("disconnect");
    else this.detach();
  };

  private readonly handleIdleTimeout = (): void => {
    this.idleTimer = null;
    this.cut("idle-timeout");
  };
}
