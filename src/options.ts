/**
 * Server options: every limit and timeout, with the default that applies when it is not given.
 */

import type { WebSocketOptions } from "./websocket/options.js";
import { assertPositiveInteger } from "./validate.js";

/** A per-client-address request rate limit. */
export interface RateLimitOptions {
  /** Requests allowed per window for one client address. */
  requests: number;
  /** Window length in milliseconds. */
  windowMs: number;
}

/** Options of a {@link Catzilla} app. Limits apply per process. */
export interface AppOptions {
  /**
   * Time allowed for a client to send the complete request headers.
   * @default 20000
   */
  headersTimeoutMs?: number;
  /**
   * Time allowed for a client to send the complete request, headers and body.
   * @default 60000
   */
  requestTimeoutMs?: number;
  /**
   * How long an idle keep-alive connection stays open between requests.
   * @default 5000
   */
  keepAliveTimeoutMs?: number;
  /**
   * How long a streaming response may wait for a client that takes no bytes before the
   * connection is cut and the stream counts as aborted.
   * @default 60000
   */
  streamIdleTimeoutMs?: number;
  /**
   * Largest request head (request line and headers) in bytes; bigger heads get 431.
   * @default 16384
   */
  maxHeaderBytes?: number;
  /**
   * Largest request body read by `text()`, `json()`, `bytes()` or iteration; bigger bodies get 413.
   * @default 1048576
   */
  maxBodyBytes?: number;
  /**
   * Most open client connections; connections beyond it are closed as soon as they are accepted.
   * SSE room subscribers the native engine took from node:http still count.
   * @default 10000
   */
  maxConnections?: number;
  /**
   * Most concurrent streaming responses (StreamingResponse, SSE, files) per client address;
   * one more gets 429.
   * @default 64
   */
  maxStreamsPerClient?: number;
  /**
   * Most rooms (`app.rooms`) at once; creating one more throws `RoomLimitError` (503 when it
   * leaves a handler). Rooms without members and with nothing kept go away on their own.
   * @default 10000
   */
  maxRooms?: number;
  /**
   * What the histories of all rooms may hold together (characters of text, bytes of binary);
   * past it the oldest broadcasts of any room are dropped first.
   * @default 268435456 (256 MiB)
   */
  maxHistoryBytes?: number;
  /**
   * Optional request rate limit per client address; over it a request gets 429 with Retry-After.
   * @default null (no rate limit)
   */
  rateLimit?: RateLimitOptions | null;
  /**
   * Time in-flight requests and streams get to finish after shutdown begins before they are cut.
   * @default 10000
   */
  shutdownTimeoutMs?: number;
  /**
   * Whether `listen()` installs SIGTERM and SIGINT handlers that close the app gracefully.
   * @default true
   */
  handleSignals?: boolean;
  /** WebSocket limits and timers for every WebSocket route (a route can override them). */
  websocket?: WebSocketOptions;
  /**
   * Which engine owns WebSocket connections after the upgrade: `"native"` (the C core; the addon
   * must load, or the app fails at construction), `"node"` (node:net, in TypeScript), or
   * `"auto"` (native where the addon loaded, node:net otherwise). The native engine also takes
   * SSE room subscribers (`room.eventSource()`) once their headers are known. The
   * `CATZILLA_ENGINE` environment variable sets it when this option is not given.
   * @default "auto"
   */
  engine?: EngineChoice;
  /**
   * Which engine owns the listening socket and plain HTTP/1.1 connections: `"node"` (node:http),
   * `"native"` (the C server: requests parsed in C, responses written from C; the addon must
   * load, or `listen()` fails) or `"auto"` (native where the addon loaded, node:http otherwise).
   * The `CATZILLA_HTTP_ENGINE` environment variable sets it when this option is not given. With
   * `workers` > 1 every worker runs the engine chosen (on the native one each binds the port,
   * SO_REUSEPORT). `stats().httpEngine` says which serves.
   * @default "auto"
   */
  httpEngine?: HttpEngineChoice;
  /**
   * Where unhandled errors and failures of cleanup code go.
   * @default console
   */
  logger?: Logger;
}

/** The WebSocket engine to run; see {@link AppOptions.engine}. */
export type EngineChoice = "auto" | "native" | "node";

/** The HTTP engine to run; see {@link AppOptions.httpEngine}. */
export type HttpEngineChoice = "auto" | "native" | "node";

/** The logger the framework writes to; `console` fits. */
export interface Logger {
  info(message: string, ...rest: unknown[]): void;
  error(message: string, ...rest: unknown[]): void;
}

/** Options with every default filled in. */
export type ResolvedAppOptions = Required<Omit<AppOptions, "websocket">> & { websocket: WebSocketOptions | undefined };

/** Defaults of {@link AppOptions}. */
export const DEFAULTS: Readonly<Omit<ResolvedAppOptions, "logger" | "websocket">> = Object.freeze({
  headersTimeoutMs: 20_000,
  requestTimeoutMs: 60_000,
  keepAliveTimeoutMs: 5_000,
  streamIdleTimeoutMs: 60_000,
  maxHeaderBytes: 16_384,
  maxBodyBytes: 1_048_576,
  maxConnections: 10_000,
  maxStreamsPerClient: 64,
  maxRooms: 10_000,
  maxHistoryBytes: 256 * 1024 * 1024,
  rateLimit: null,
  shutdownTimeoutMs: 10_000,
  handleSignals: true,
  engine: "auto",
  httpEngine: "auto",
});

const POSITIVE_INTEGERS = [
  "headersTimeoutMs", "requestTimeoutMs", "keepAliveTimeoutMs", "streamIdleTimeoutMs",
  "maxHeaderBytes", "maxBodyBytes", "maxConnections", "maxStreamsPerClient", "maxRooms", "maxHistoryBytes", "shutdownTimeoutMs",
] as const;


/** Fill in defaults and validate; bad options fail here, at construction. */
export function resolveAppOptions(options: AppOptions = {}): ResolvedAppOptions {
  const resolved = { ...DEFAULTS, logger: console, websocket: undefined, ...stripUndefined(options) } as ResolvedAppOptions;
  for (const name of POSITIVE_INTEGERS) assertPositiveInteger(name, resolved[name]);
  if (resolved.headersTimeoutMs > resolved.requestTimeoutMs) {
    throw new RangeError(
      `Option headersTimeoutMs (${resolved.headersTimeoutMs}) must not exceed requestTimeoutMs (${resolved.requestTimeoutMs})`,
    );
  }
  if (resolved.rateLimit !== null) {
    if (typeof resolved.rateLimit !== "object") {
      throw new TypeError(`Option rateLimit must be an object or null, got ${String(resolved.rateLimit)}`);
    }
    assertPositiveInteger("rateLimit.requests", resolved.rateLimit.requests);
    assertPositiveInteger("rateLimit.windowMs", resolved.rateLimit.windowMs);
  }
  if (options.engine === undefined && process.env.CATZILLA_ENGINE !== undefined && process.env.CATZILLA_ENGINE !== "") {
    resolved.engine = process.env.CATZILLA_ENGINE as EngineChoice;
  }
  if (!["auto", "native", "node"].includes(resolved.engine)) {
    throw new TypeError(`Option engine (or CATZILLA_ENGINE) must be "auto", "native" or "node", got ${String(resolved.engine)}`);
  }
  if (options.httpEngine === undefined && process.env.CATZILLA_HTTP_ENGINE !== undefined && process.env.CATZILLA_HTTP_ENGINE !== "") {
    resolved.httpEngine = process.env.CATZILLA_HTTP_ENGINE as HttpEngineChoice;
  }
  if (!["auto", "native", "node"].includes(resolved.httpEngine)) {
    throw new TypeError(`Option httpEngine (or CATZILLA_HTTP_ENGINE) must be "auto", "native" or "node", got ${String(resolved.httpEngine)}`);
  }
  if (typeof resolved.handleSignals !== "boolean") {
    throw new TypeError(`Option handleSignals must be a boolean, got ${String(resolved.handleSignals)}`);
  }
  return resolved;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(value)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
