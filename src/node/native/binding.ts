/**
 * The native engine's addon, loaded once: the binary the package ships for this platform
 * (prebuilds/<platform>-<arch>[-musl]/catzilla.node, built from native/ at pack time), else one
 * built here from source (build/Release/catzilla.node, by the install script or
 * `npm rebuild catzilla`). Everything that calls it goes through this typed surface.
 */
import { existsSync } from "node:fs";
import type { EndReason } from "../../transport.js";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

/**
 * Events the addon reports, to one object: a batch of records at a time (one call per read or
 * loop callback, not per message), and messages too large for the inbox one by one.
 */
export interface NativeHandlers {
  /** `count` records are in `records` (RECORD_FIELDS uint32s each), their payloads in `inbox`. */
  onBatch(count: number): void;
  onLarge(id: number, data: Buffer, isBinary: boolean): void;
}

/** The blocks shared with the addon. */
export interface NativeBlocks {
  /** Payloads of the current batch. */
  inbox: Buffer;
  /** Records of the current batch: kind, id, offset, length, code. */
  records: Buffer;
  /** Where short sends are written (then `sendOutbox`, or queued for `sendQueued`). */
  outbox: Buffer;
  /**
   * By connection slot (`id & SLOT_MASK`), uint32: the connection's buffered bytes, or
   * STATE_CLOSED once it takes no more sends. Kept by the engine, read without a call.
   */
  state: Buffer;
}

/** Slot of a connection id; the state of a closed connection (native/src/engine.h has both). */
export const SLOT_MASK = (1 << 22) - 1;
export const STATE_CLOSED = 0xffffffff;

/** Fields per record, and the kinds of records (native/src/addon.c has the same numbers). */
export const RECORD_FIELDS = 5;
/** A close record's code field holds why the connection ended above its 16 bits: CZ_END_* of native/src/engine.h, in this order. */
export const END_REASONS: readonly EndReason[] = ["reset", "peer", "server", "ping-timeout", "idle-timeout", "limit", "protocol-error"];
export const RecordKind = { Text: 0, Binary: 1, Ping: 2, Pong: 3, Drain: 4, Close: 5 } as const;

/** Counters of the native engine. */
export interface NativeEngineStats {
  connections: number;
  adopted: number;
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
  writes: number;
  /** Bytes of one connection's struct in C (buffers come on top while they hold data). */
  connectionBytes: number;
  /** Bytes of an adopted response stream's struct in C (no frame parser). */
  streamBytes: number;
}

/** The addon's functions. Statuses: 0 ok, 1 backpressure, 2 dropped, 3 closed. */
export interface NativeBinding {
  init(handlers: NativeHandlers): NativeBlocks;
  profile(maxMessage: number, maxFrame: number, maxBuffered: number, idleMs: number, pingMs: number, closeMs: number, maxPerSecond: number, policy: number): number;
  /**
   * The profile of response streams (SSE after their headers): output over `maxBuffered` × 4 ends
   * the stream; a stream quiet for `heartbeatMs` gets `heartbeat` (at most 64 bytes; 0: none);
   * after the server ends one, the client has `closeMs` to close its side.
   */
  streamProfile(maxBuffered: number, heartbeatMs: number, closeMs: number, heartbeat: Uint8Array): number;
  /**
   * `deflate`: 0 without permessage-deflate, else serverNoContextTakeover | clientNoContextTakeover << 1
   * | serverMaxWindowBits << 8 | clientMaxWindowBits << 16 | level << 24 (zlib's, 0–9); `threshold`:
   * smaller messages go uncompressed; `owned` 1: the engine takes `fd` itself, not a duplicate
   * (it stays the caller's when adopt throws).
   */
  adopt(fd: number, profile: number, first: Uint8Array, head: Uint8Array, deflate: number, threshold: number, owned?: number): number;
  sendText(id: number, text: string): number;
  /** Send the first `length` bytes of the outbox as one message. */
  sendOutbox(id: number, binary: number, length: number): number;
  sendBinary(id: number, data: Uint8Array): number;
  /** Send what was queued in the first `bytes` of the outbox: entries [id u32][length << 1 | binary u32][payload padded to 4]. */
  sendQueued(bytes: number): void;
  sendFrame(id: number, frame: Uint8Array, payloadBytes: number): number;
  /** `frame` to `ids[0..count)`; `result` gets [delivered, over] and the ids over the limit go to the start of `ids`. */
  broadcast(ids: Uint32Array, count: number, frame: Uint8Array, payloadBytes: number, maxBuffered: number, result: Uint32Array): void;
  ping(id: number, payload: string | Uint8Array): void;
  close(id: number, code: number, reason: string): void;
  terminate(id: number): void;
  pause(id: number): void;
  resume(id: number): void;
  stats(): NativeEngineStats;
  /** The frame parser alone, fed chunk by chunk (tests compare it with the TypeScript codec). */
  parse(chunks: readonly Uint8Array[], maxMessage: number, maxFrame: number): Array<[string, ...unknown[]]>;
  /** The HTTP/1.1 request parser alone, fed chunk by chunk (tests compare it with node:http's). */
  parseHttp(chunks: readonly Uint8Array[], maxHeadBytes: number, maxHeaders: number, maxBodyBytes: number): Array<[string, ...unknown[]]>;

  /** The native HTTP/1.1 server (native/src/server.h): its handle; the `server*` functions take it. */
  createHttpServer(handlers: HttpServerHandlers, options: HttpServerOptions): HttpServerHandle;
  /** Bind and listen; the bound port. Throws an error with the errno's code (EADDRINUSE, ...). */
  serverListen(server: HttpServerHandle, host: string, port: number, backlog: number, reusePort: boolean): number;
  /**
   * Write bytes of connection `id`'s current response (HTTP_WRITE flags); the connection's
   * buffered bytes after it, or -1 when the connection is gone or its response ended. Over
   * `drainOver` buffered bytes, `onDrain` reports when they are all out.
   */
  serverWrite(server: HttpServerHandle, id: number, data: string | Uint8Array | null, flags: number, drainOver: number): number;
  /**
   * As serverWrite, with bytes [offset, offset + length) of the file open as `fd` (the server
   * keeps a duplicate of the descriptor and sends them with sendfile(2)).
   */
  serverWriteFile(server: HttpServerHandle, id: number, fd: number, offset: number, length: number, flags: number, drainOver: number): number;
  /**
   * A protocol switch: the connection's descriptor leaves the server (which forgets it without a
   * report), with the bytes read past the request head. Null when the connection is gone.
   */
  serverDetach(server: HttpServerHandle, id: number): [fd: number, rest: Buffer] | null;
  /** Bytes a connection holds that the kernel did not take yet; -1 when it is gone. */
  serverBuffered(server: HttpServerHandle, id: number): number;
  serverDestroy(server: HttpServerHandle, id: number): void;
  serverPause(server: HttpServerHandle, id: number): void;
  serverResume(server: HttpServerHandle, id: number): void;
  serverStopAccepting(server: HttpServerHandle): void;
  serverCloseIdle(server: HttpServerHandle): void;
  serverCloseAll(server: HttpServerHandle): void;
  serverSetMaxConnections(server: HttpServerHandle, max: number): void;
  serverStats(server: HttpServerHandle): HttpServerStats;
  /** Cut every connection and free the server; the handle is dead after. */
  serverClose(server: HttpServerHandle): void;
}

/** A native HTTP server, as the addon hands it out. */
export type HttpServerHandle = number & { readonly __nativeHttpServer: unique symbol };

/** Flags of `serverWrite` (native/src/server.h, server_binding.c). */
export const HTTP_WRITE = {
  /** Frame the bytes as one chunk. */
  chunk: 1,
  /** The last chunk after the bytes. */
  last: 2,
  /** The response is complete. */
  end: 4,
  /** Close the connection once the output went out. */
  close: 8,
  /** A string is latin1 (a head), not UTF-8. */
  latin1: 256,
  /**
   * Bytes the server keeps a reference to instead of copying: the caller leaves them unchanged
   * until the connection's buffered bytes say they went (as after a node:net write).
   */
  external: 512,
} as const;

/** Bits of onRequest's `flags`. */
export const HTTP_REQUEST = { keepAlive: 1, upgrade: 2, expectContinue: 4, chunked: 8 } as const;

/** Why a connection ended, as onClose reports it (CZ_SERVER_END_*). */
export const HTTP_END = ["peer", "server", "timeout", "refused"] as const;

/** The raw headers (name, value, ...) of onRequest's `fields`. */
export function splitFields(fields: string): string[] {
  return fields === "" ? [] : fields.split("\n");
}

export interface HttpServerHandlers {
  /**
   * A request head; `contentLength` is -1 when there is none. `fields`: "name\nvalue\nname\nvalue..."
   * in the order they came ("" for none; no name or value holds a LF).
   * `peer` and `port` come with a connection's first request only (undefined and 0 after it).
   */
  onRequest(
    id: number, method: string, target: string, minor: number, flags: number, contentLength: number,
    fields: string, peer: string | undefined, port: number,
  ): void;
  onBody(id: number, bytes: Buffer): void;
  onBodyEnd(id: number): void;
  onDrain(id: number): void;
  /** A connection that had a request ended; `end` indexes HTTP_END. */
  onClose(id: number, end: number): void;
}

export interface HttpServerOptions {
  maxHeaderBytes?: number;
  maxHeaders?: number;
  maxBodyBytes?: number;
  maxConnections?: number;
  headersTimeoutMs?: number;
  requestTimeoutMs?: number;
  keepAliveTimeoutMs?: number;
  /** Bytes read ahead while a response is in flight (pipelined requests); then reading waits. */
  maxPipelinedBytes?: number;
  /**
   * File regions to peers on this host go by sendfile(2) as to any other (1); by default (0) they
   * are read into the server's scratch buffer and sent from it, which is faster over loopback.
   */
  spliceLoopback?: number;
}

export interface HttpServerStats {
  accepted: number;
  connections: number;
  requests: number;
  refused: number;
  bytesIn: number;
  bytesOut: number;
  writes: number;
}

const packageRoot = fileURLToPath(new URL("../../../", import.meta.url));

/** Whether this Linux runs musl (Alpine) rather than glibc: its Node.js reports no glibc version. */
function isMusl(): boolean {
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return report?.header?.glibcVersionRuntime === undefined;
}

/** The name of this platform's prebuilt binary, as scripts/prebuild.mjs names it: linux-x64, linux-arm64, linux-x64-musl. */
export function platformName(): string {
  return `${process.platform}-${process.arch}${process.platform === "linux" && isMusl() ? "-musl" : ""}`;
}

/** Where the addon may be, in the order they are tried; `CATZILLA_ADDON` names the only one (the tests' sanitizer build). */
export function addonCandidates(): string[] {
  if (process.env.CATZILLA_ADDON) return [process.env.CATZILLA_ADDON];
  return [`${packageRoot}prebuilds/${platformName()}/catzilla.node`, `${packageRoot}build/Release/catzilla.node`];
}

/** The addon that was loaded, or null. */
export let addonPath: string | null = null;

let loaded: { binding: NativeBinding } | { error: Error } | null = null;

/**
 * The addon, or why it cannot be loaded: not Linux, no binary for this platform and none built
 * here, or a binary that failed to load (with the loader's error).
 */
export function loadBinding(): { binding: NativeBinding } | { error: Error } {
  if (loaded !== null) return loaded;
  if (process.platform !== "linux") {
    loaded = { error: new Error(`the native engine runs on Linux (it uses epoll), not on ${process.platform}`) };
    return loaded;
  }
  const failures: string[] = [];
  for (const path of addonCandidates()) {
    if (!existsSync(path)) continue;
    try {
      loaded = { binding: createRequire(import.meta.url)(path) as NativeBinding };
      addonPath = path;
      return loaded;
    } catch (error) {
      failures.push(`${path} failed to load: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  loaded = {
    error: new Error(failures.length > 0
      ? failures.join("; ")
      : `the package has no binary for ${platformName()} and none was built here (the install script was skipped, or had no C compiler)`),
  };
  return loaded;
}
