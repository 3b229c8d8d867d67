import { open, type FileHandle } from "node:fs/promises";
import type { Stats as FileStats } from "node:fs";
import { randomBytes } from "node:crypto";
import { HTTPError } from "../errors.js";
import { contentDisposition, contentTypeFor } from "../protocol/mime.js";
import { evaluatePreconditions, httpDate, ifRangeHolds, parseRange, type ByteRange, type Validators } from "../protocol/range.js";
import type { HeadersInit } from "./headers.js";
import { Response, type SendContext } from "./response.js";
import { StreamingResponse, type Chunk, type StreamController } from "./streaming.js";
import { FileRegion } from "../http-engine.js";

/** Options of {@link FileResponse}. */
export interface FileResponseOptions {
  /** @default 200 */
  status?: number;
  headers?: HeadersInit;
  /** Content-Type; taken from `filename`, or else the path, when absent. */
  mediaType?: string;
  /** Sets `Content-Disposition` with this download name (RFC 6266, `filename*` for non-ASCII names). */
  filename?: string;
  /** Disposition type used with `filename`. @default "attachment" */
  disposition?: "attachment" | "inline";
  /**
   * Most ranges honoured in one request; a request for more gets the whole file (RFC 9110 §14.2
   * lets a server ignore many small ranges).
   * @default 16
   */
  maxRanges?: number;
  /**
   * Bytes read from the file per read.
   * @default 524288
   */
  readSize?: number;
}

interface Part {
  header: string | null;
  start: number;
  end: number;
}

/**
 * A file from disk with Range (single, suffix, open-ended, multipart/byteranges), If-Range,
 * ETag, Last-Modified, 304/412 preconditions and HEAD. The body streams with backpressure.
 *
 * @example app.get("/download/{id}", (req) => new FileResponse(pathFor(req.params.id), { filename: "report.pdf" }));
 */
export class FileResponse extends StreamingResponse<Chunk | FileRegion> {
  readonly path: string;
  readonly filename: string | undefined;
  readonly disposition: "attachment" | "inline";
  readonly maxRanges: number;
  readonly readSize: number;
  private handle: FileHandle | null = null;
  private parts: Part[] = [];
  /** The engine sends the file's bytes from its descriptor (sendfile); they are not read here. */
  private regions = false;

  constructor(path: string, options: FileResponseOptions = {}) {
    super([], {
      status: options.status ?? 200,
      headers: options.headers ?? {},
      ...(options.mediaType === undefined ? {} : { mediaType: options.mediaType }),
    });
    this.path = path;
    this.filename = options.filename;
    this.disposition = options.disposition ?? "attachment";
    this.maxRanges = options.maxRanges ?? 16;
    this.readSize = options.readSize ?? 512 * 1024;
  }

  /** @internal */
  override async send(ctx: SendContext): Promise<void> {
    const { req, res } = ctx;
    let handle: FileHandle;
    let stat: FileStats;
    try {
      handle = await open(this.path, "r");
    } catch (error) {
      throw fileError(error);
    }
    let started = false;
    try {
      stat = await handle.stat();
      if (!stat.isFile()) throw new HTTPError(404);
      const size = stat.size;
      const validators: Validators = {
        etag: `"${size.toString(16)}-${Math.floor(stat.mtimeMs).toString(16)}"`,
        lastModified: stat.mtimeMs,
      };
      const h = this.headers;
      h.setDefault("Content-Type", contentTypeFor(this.filename ?? this.path));
      h.set("Accept-Ranges", "bytes");
      h.set("ETag", validators.etag!);
      h.set("Last-Modified", httpDate(stat.mtimeMs));
      if (this.filename !== undefined) h.set("Content-Disposition", contentDisposition(this.filename, this.disposition));

      const headers = req.headers;
      const precondition = evaluatePreconditions(headers, validators, req.method);
      if (precondition !== 0) {
        const response = new Response(null, { status: precondition });
        for (const name of ["ETag", "Last-Modified", "Cache-Control", "Vary"]) {
          const value = h.get(name);
          if (value !== undefined) response.headers.set(name, value);
        }
        return response.send(ctx);
      }

      let ranges: ByteRange[] | null = null;
      const canRange = this.status === 200 && (req.method === "GET" || req.method === "HEAD");
      if (canRange && ifRangeHolds(req.header("if-range"), validators)) {
        const result = parseRange(headers.range, size);
        if (result.type === "unsatisfiable") {
          const response = new Response(null, { status: 416, headers: { "Content-Range": `bytes */${size}` } });
          return response.send(ctx);
        }
        if (result.type === "ranges" && result.ranges.length <= this.maxRanges) ranges = result.ranges;
      }

      let length: number;
      if (ranges === null) {
        this.parts = size === 0 ? [] : [{ header: null, start: 0, end: size - 1 }];
        length = size;
      } else if (ranges.length === 1) {
        const { start, end } = ranges[0]!;
        this.status = 206;
        h.set("Content-Range", `bytes ${start}-${end}/${size}`);
        this.parts = [{ header: null, start, end }];
        length = end - start + 1;
      } else {
        // RFC 9110 §14.6: multipart/byteranges, CRLF delimited, no top-level Content-Range.
        const boundary = randomBytes(12).toString("hex");
        const partType = h.get("Content-Type")!;
        this.status = 206;
        h.set("Content-Type", `multipart/byteranges; boundary=${boundary}`);
        this.parts = [];
        length = 0;
        for (const { start, end } of ranges) {
          const header = `${this.parts.length === 0 ? "" : "\r\n"}--${boundary}\r\nContent-Type: ${partType}\r\nContent-Range: bytes ${start}-${end}/${size}\r\n\r\n`;
          this.parts.push({ header, start, end });
          length += Buffer.byteLength(header) + end - start + 1;
        }
        const closing = `\r\n--${boundary}--\r\n`;
        this.parts.push({ header: closing, start: 0, end: -1 });
        length += closing.length;
      }
      h.set("Content-Length", String(length));
      if (req.method === "HEAD" || length === 0) {
        res.writeHead(this.status, h.toFlatArray());
        res.end();
        return;
      }
      this.handle = handle;
      this.regions = ctx.writers.sendsFiles && !this.compress;
      started = true;
      await super.send(ctx);
    } finally {
      // The body generator owns the handle once it runs; otherwise it is closed here.
      if (!started || this.handle !== null) await handle.close().catch(() => undefined);
    }
  }

  protected override produce(controller: StreamController): AsyncGenerator<Chunk | FileRegion> {
    const handle = this.handle!;
    this.handle = null;
    return this.regions ? fileRegions(handle, this.parts, this.readSize) : readParts(handle, this.parts, this.readSize, controller);
  }

  protected override encode(value: Chunk | FileRegion): Chunk | FileRegion {
    return value instanceof FileRegion ? value : super.encode(value);
  }
}

/**
 * Read byte ranges of an open file. With a controller the read buffer is reused once the socket
 * has taken all previous bytes; without one every chunk is a fresh buffer.
 */
async function* readParts(handle: FileHandle, parts: Part[], readSize: number, controller?: StreamController): AsyncGenerator<Chunk> {
  let buffer: Buffer | null = null;
  try {
    for (const part of parts) {
      if (part.header !== null) yield part.header;
      let position = part.start;
      while (position <= part.end) {
        const want = Math.min(readSize, part.end - position + 1);
        if (buffer === null || controller === undefined || controller.bufferedBytes > 0) {
          buffer = Buffer.allocUnsafeSlow(Math.min(readSize, Math.max(want, 64 * 1024)));
        }
        const { bytesRead } = await handle.read(buffer, 0, Math.min(want, buffer.length), position);
        if (bytesRead === 0) throw new Error(`File ended early at byte ${position}; it changed while being sent`);
        position += bytesRead;
        yield buffer.subarray(0, bytesRead);
      }
    }
  } finally {
    await handle.close();
  }
}

/**
 * Byte ranges of an open file as regions of its descriptor, `readSize` bytes each (each waits for
 * the one before to go out, so a reader that stops is timed out as with reads).
 */
async function* fileRegions(handle: FileHandle, parts: Part[], readSize: number): AsyncGenerator<Chunk | FileRegion> {
  try {
    for (const part of parts) {
      if (part.header !== null) yield part.header;
      for (let position = part.start; position <= part.end; position += readSize) {
        yield new FileRegion(handle.fd, position, Math.min(readSize, part.end - position + 1));
      }
    }
  } finally {
    await handle.close();
  }
}

/**
 * Stream bytes `start` through `end` (inclusive) of a file, for handlers that build their own
 * responses. The file is closed when the stream ends or is abandoned.
 * @example return new StreamingResponse(streamFileRange(path, 0, 1023), { mediaType: "video/mp4" });
 */
export async function* streamFileRange(path: string, start: number, end: number, readSize = 512 * 1024): AsyncGenerator<Buffer> {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
    throw new RangeError(`Invalid byte range ${start}-${end}`);
  }
  const handle = await open(path, "r").catch((error: unknown) => { throw fileError(error); });
  for await (const chunk of readParts(handle, [{ header: null, start, end }], readSize)) yield chunk as Buffer;
}

function fileError(error: unknown): unknown {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "ENOENT" || code === "ENOTDIR" || code === "EISDIR") return new HTTPError(404);
  if (code === "EACCES" || code === "EPERM") return new HTTPError(403);
  return error;
}
