import type { AbortReason, BodyWriters, ResponseSink } from "../http-engine.js";
import type { Request } from "../request/request.js";
import type { Logger } from "../options.js";
import type { StatsCollector } from "../metrics/stats.js";
import type { NativeEngine } from "../node/native/connection.js";
import { ResponseHeaders, type HeadersInit } from "./headers.js";

/** What a response needs from the app while it is sent. @internal */
export interface SendContext {
  req: Request<unknown>;
  res: ResponseSink;
  /** How the engine that made `res` writes streamed bodies to it. */
  writers: BodyWriters;
  host: ResponseHost;
}

/** The app services available to responses while they are sent. @internal */
export interface ResponseHost {
  readonly stats: StatsCollector;
  readonly logger: Logger;
  readonly streamIdleTimeoutMs: number;
  /** Claim one concurrent stream for a client address; false when the per-client cap is reached. */
  acquireStream(address: string): boolean;
  releaseStream(address: string): void;
  /** Streams in flight, cut when the shutdown deadline passes. */
  trackStream(stream: TrackedStream): void;
  untrackStream(stream: TrackedStream): void;
  /** The native engine's response streams, when it runs: SSE room subscribers are handed to it. */
  readonly nativeStreams: NativeEngine | null;
  /**
   * A connection leaves node:http for the native engine but still counts toward `maxConnections`:
   * false when there is no room for it (then node:http keeps it).
   */
  keepConnection(): boolean;
  /** A connection kept by `keepConnection` ended. */
  dropConnection(): void;
}

/** A stream the app can cut at shutdown. Not exported by the package. */
export interface TrackedStream {
  cut(reason: AbortReason): void;
  /**
   * An endless stream (an event stream): when shutdown begins it ends at once, cleanly (its
   * client reconnects, to another server), instead of holding shutdown until its deadline.
   */
  readonly shutdownAtOnce?: boolean;
  /** End cleanly now (streams with `shutdownAtOnce`). */
  endNow?(): void;
}

/** Options common to every response. */
export interface ResponseInit {
  /** @default 200 */
  status?: number;
  headers?: HeadersInit;
}

/**
 * A response with a body held in memory. Subclasses stream their body instead.
 * @example return new Response("created", { status: 201, headers: { "X-Id": "7" } });
 */
export class Response {
  status: number;
  /** The body; `null` for none. */
  body: string | Uint8Array | null;
  private headerMap: ResponseHeaders | null = null;
  /** The headers given to the constructor, until the header map is made from them. */
  private headersInit: HeadersInit | undefined;
  private readonly defaultType: string | null;

  /**
   * @param defaultType - Content-Type used when the headers do not name one; by default
   *   text/plain for a string body and application/octet-stream for bytes.
   */
  constructor(body: string | Uint8Array | null = null, init: ResponseInit = {}, defaultType?: string) {
    this.status = init.status ?? 200;
    if (!Number.isInteger(this.status) || this.status < 100 || this.status > 999) {
      throw new RangeError(`Response status must be an integer in 100..999, got ${this.status}`);
    }
    this.body = body;
    this.headersInit = init.headers;
    this.defaultType = defaultType
      ?? (body === null ? null : typeof body === "string" ? "text/plain; charset=utf-8" : "application/octet-stream");
    // Headers given by the caller are validated now, where the mistake is made.
    if (init.headers !== undefined) void this.headers;
  }

  /** Response headers; created on first use, so responses that never touch them cost nothing. */
  get headers(): ResponseHeaders {
    if (this.headerMap === null) {
      this.headerMap = new ResponseHeaders(this.headersInit);
      this.headersInit = undefined;
      if (this.defaultType !== null) this.headerMap.setDefault("Content-Type", this.defaultType);
    }
    return this.headerMap;
  }

  /** Let go of the headers once they are sent (a response kept after that keeps less). @internal */
  protected releaseHeaders(): void {
    this.headerMap = null;
    this.headersInit = undefined;
  }

  /** Write the response. Resolves when the body is handed to the socket or the client is gone. @internal */
  send(ctx: SendContext): void | Promise<void> {
    const { res } = ctx;
    const body = this.body;
    const status = this.status;
    const bodyless = body === null || status === 204 || status === 304 || status < 200;
    let headers: string[];
    if (this.headerMap === null) {
      headers = this.defaultType === null || bodyless ? [] : ["Content-Type", this.defaultType];
    } else {
      headers = this.headerMap.toFlatArray();
    }
    if (bodyless) {
      if (status !== 204 && status !== 304 && status >= 200) headers.push("Content-Length", "0");
      res.writeHead(status, headers);
      res.end();
      return;
    }
    if (this.headerMap === null || !this.headerMap.has("content-length")) {
      headers.push("Content-Length", String(typeof body === "string" ? Buffer.byteLength(body) : body.byteLength));
    }
    res.writeHead(status, headers);
    res.end(body);
  }

  /** Cookie helper: append a Set-Cookie header (RFC 6265 §4.1). */
  setCookie(name: string, value: string, options: CookieOptions = {}): this {
    let cookie = `${name}=${encodeURIComponent(value)}`;
    if (options.maxAge !== undefined) cookie += `; Max-Age=${Math.floor(options.maxAge)}`;
    if (options.expires !== undefined) cookie += `; Expires=${options.expires.toUTCString()}`;
    cookie += `; Path=${options.path ?? "/"}`;
    if (options.domain !== undefined) cookie += `; Domain=${options.domain}`;
    if (options.secure) cookie += "; Secure";
    if (options.httpOnly ?? true) cookie += "; HttpOnly";
    if (options.sameSite !== undefined) cookie += `; SameSite=${options.sameSite}`;
    this.headers.append("Set-Cookie", cookie);
    return this;
  }
}

/** Attributes of a cookie set with {@link Response.setCookie}. */
export interface CookieOptions {
  maxAge?: number;
  expires?: Date;
  /** @default "/" */
  path?: string;
  domain?: string;
  secure?: boolean;
  /** @default true */
  httpOnly?: boolean;
  sameSite?: "Strict" | "Lax" | "None";
}

/** A `text/plain` response. */
export class TextResponse extends Response {
  constructor(text: string, init?: ResponseInit) {
    super(text, init);
  }
}

/** A `text/html` response. */
export class HTMLResponse extends Response {
  constructor(html: string, init?: ResponseInit) {
    super(html, init, "text/html; charset=utf-8");
  }
}

/** A JSON response; the value is serialised with `JSON.stringify`. */
export class JSONResponse extends Response {
  constructor(value: unknown, init?: ResponseInit) {
    super(JSON.stringify(value) ?? "null", init, "application/json");
  }
}

/** A redirect, 307 by default (the method and body are kept). */
export class RedirectResponse extends Response {
  constructor(location: string, init: ResponseInit & { status?: 301 | 302 | 303 | 307 | 308 } = {}) {
    super(null, { ...init, status: init.status ?? 307 });
    this.headers.set("Location", encodeURI(decodeURISafe(location)));
  }
}

function decodeURISafe(text: string): string {
  try {
    return decodeURI(text);
  } catch {
    return text;
  }
}
