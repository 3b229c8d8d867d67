import { constants, createDeflateRaw, createInflateRaw, deflateRaw, type DeflateRaw, type InflateRaw } from "node:zlib";
import type { DeflateParams } from "../../protocol/websocket/extensions.js";

/** RFC 7692 §7.2.1: the empty stored block every flushed message ends with, stripped on the wire. */
const TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/** A flushed message as it goes on the wire: without the trailer (RFC 7692 §7.2.1). */
function withoutTrailer(payload: Buffer): Buffer {
  return payload.length >= 4 && payload.subarray(payload.length - 4).equals(TRAILER) ? payload.subarray(0, payload.length - 4) : payload;
}

/**
 * One message compressed on its own, as a connection without context takeover sends it (RFC 7692
 * §7.2.1), on the libuv thread pool: the payload of a frame with RSV1 set. One result serves
 * every such connection with this window (room broadcasts).
 */
export function compressMessage(data: Uint8Array, windowBits: number, level: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    deflateRaw(data, { windowBits, level, finishFlush: constants.Z_SYNC_FLUSH }, (error, output) => {
      if (error !== null) reject(error);
      else resolve(withoutTrailer(output));
    });
  });
}

/** Thrown into the callback when an inflated message goes over the limit. */
export class InflateLimitError extends Error {}

type Job = () => void;

/**
 * permessage-deflate for one connection on node:zlib. Work runs on the libuv thread pool, never
 * on the event loop; jobs of a direction run one at a time, in order. The zlib streams are made
 * on first use, so a connection that never sends a compressed message costs nothing here.
 */
export class PerMessageDeflate {
  private deflate: DeflateRaw | null = null;
  private inflate: InflateRaw | null = null;
  private readonly compressJobs: Job[] = [];
  private readonly inflateJobs: Job[] = [];
  private compressing = false;
  private inflating = false;
  private closed = false;

  constructor(readonly params: DeflateParams, private readonly maxMessageBytes: number, private readonly level: number) {}

  /** Compress one message; the callback gets the payload of a frame with RSV1 set. */
  compress(data: Uint8Array, callback: (error: Error | null, payload: Buffer) => void): void {
    this.compressJobs.push(() => {
      const deflate = (this.deflate ??= createDeflateRaw({
        windowBits: this.params.serverMaxWindowBits,
        memLevel: 8,
        level: this.level,
      }));
      const out: Buffer[] = [];
      let length = 0;
      const onData = (chunk: Buffer): void => {
        out.push(chunk);
        length += chunk.length;
      };
      deflate.on("data", onData);
      deflate.write(data);
      deflate.flush(constants.Z_SYNC_FLUSH, () => {
        deflate.off("data", onData);
        if (this.closed) return;
        const payload = withoutTrailer(out.length === 1 ? out[0]! : Buffer.concat(out, length));
        if (this.params.serverNoContextTakeover) deflate.reset();
        callback(null, payload);
        this.next("compress");
      });
    });
    if (!this.compressing) this.next("compress");
  }

  /**
   * Inflate one message from its frames. Output is counted as it is produced; past
   * `maxMessageBytes` the work stops and the callback gets an {@link InflateLimitError}.
   */
  decompress(parts: Buffer[], callback: (error: Error | null, data: Buffer) => void): void {
    this.inflateJobs.push(() => {
      const inflate = (this.inflate ??= createInflateRaw({ windowBits: this.params.clientMaxWindowBits }));
      const out: Buffer[] = [];
      let length = 0;
      let failed = false;
      const fail = (error: Error): void => {
        if (failed) return;
        failed = true;
        // The stream is dropped with what it holds; the connection closes on this error anyway.
        inflate.off("data", onData);
        inflate.destroy();
        this.inflate = null;
        callback(error, Buffer.alloc(0));
      };
      const onData = (chunk: Buffer): void => {
        length += chunk.length;
        if (length > this.maxMessageBytes) fail(new InflateLimitError(`Inflated message exceeds ${this.maxMessageBytes} bytes`));
        else out.push(chunk);
      };
      inflate.on("data", onData);
      inflate.once("error", fail);
      for (const part of parts) inflate.write(part);
      inflate.write(TRAILER);
      inflate.flush(() => {
        if (failed || this.closed) return;
        inflate.off("data", onData);
        inflate.off("error", fail);
        if (this.params.clientNoContextTakeover) inflate.reset();
        callback(null, out.length === 1 ? out[0]! : Buffer.concat(out, length));
        this.next("inflate");
      });
    });
    if (!this.inflating) this.next("inflate");
  }

  /** Free the zlib streams. */
  close(): void {
    this.closed = true;
    this.compressJobs.length = 0;
    this.inflateJobs.length = 0;
    this.deflate?.destroy();
    this.inflate?.destroy();
    this.deflate = null;
    this.inflate = null;
  }

  private next(direction: "compress" | "inflate"): void {
    const jobs = direction === "compress" ? this.compressJobs : this.inflateJobs;
    const job = jobs.shift();
    if (direction === "compress") this.compressing = job !== undefined;
    else this.inflating = job !== undefined;
    job?.();
  }
}
