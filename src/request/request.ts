import { IncomingMessage, type IncomingHttpHeaders } from "node:http";
import type { IncomingRequest } from "../http-engine.js";
import { intern } from "../intern.js";
import { BodyTooLargeError, ClientDisconnectError, HTTPError, InvalidJSONError } from "../errors.js";

/** The address of the peer of a connection. */
export interface ClientAddress {
  host: string;
  port: number;
}

/** Params of a request before routing. */
const NO_PARAMS = Object.freeze({});
/** What `valid` holds on a route without schemas. */
const NOTHING_VALIDATED = Object.freeze({});

/**
 * An incoming HTTP request. Query, cookies and the full URL are parsed on first use.
 * @typeParam P - the path params, inferred from the route pattern.
 * @typeParam V - what the route's schemas validated, by input (`req.valid.query`, `req.valid.body`).
 */
export class Request<P = Record<string, string | number>, V = {}> {
  /** Request headers, names in lower case. */
  readonly headers: IncomingHttpHeaders;
  /** Request method, upper case. */
  readonly method: string;
  /** Path, still percent-encoded, without the query string. */
  readonly path: string;
  /** Path params decoded and converted per the route pattern. */
  params: P;
  /**
   * The inputs the route's schemas validated, as the schemas output them: `params`, `query`,
   * `headers`, `body` (WebSocket routes: no body). Set before the dependencies and the handler run.
   */
  valid: V;
  private stateValue: Record<string, unknown> | undefined;
  private readonly rawQuery: string;
  private readonly maxBodyBytes: number;
  private queryCache: URLSearchParams | undefined;
  private cookieCache: Record<string, string> | undefined;
  private bodyCache: Promise<Buffer> | undefined;
  private bodyTaken = false;
  private abortController: AbortController | undefined;
  private incoming: IncomingRequest | null;
  /** The client's address once the node:http request is let go (two fields, not an object). */
  private clientHost = "";
  private clientPort = 0;

  constructor(raw: IncomingRequest, maxBodyBytes: number) {
    this.incoming = raw;
    this.headers = raw.headers;
    this.method = raw.method ?? "GET";
    const url = raw.url ?? "/";
    const q = url.indexOf("?");
    this.path = q < 0 ? url : url.slice(0, q);
    this.rawQuery = q < 0 ? "" : url.slice(q + 1);
    this.params = NO_PARAMS as P;
    this.valid = NOTHING_VALIDATED as V;
    this.maxBodyBytes = maxBodyBytes;
  }

  /** Per-request storage for middleware and handlers (made on first use). */
  get state(): Record<string, unknown> {
    return (this.stateValue ??= {});
  }

  /**
   * The node:http request, for what this class does not cover (on the node:http engine).
   * @throws Error for the upgrade request of a WebSocket after `accept()`, which lets it go, and
   * for a request another engine parsed.
   */
  get raw(): IncomingMessage {
    const incoming = this.source;
    if (!(incoming instanceof IncomingMessage)) throw new Error("This request did not come through node:http: it has no IncomingMessage");
    return incoming;
  }

  /** The request as its engine handed it over. @internal */
  get source(): IncomingRequest {
    if (this.incoming === null) throw new Error("The upgrade request is not kept after the WebSocket handshake");
    return this.incoming;
  }

  /** The client's address, without making an object. @internal */
  get remoteAddress(): string {
    return this.incoming === null ? this.clientHost : (this.incoming.socket.remoteAddress ?? "");
  }

  /**
   * Let go of the node:http request, keeping headers (but the Sec-WebSocket-Key, a nonce of the
   * handshake), path, query and client address. A WebSocket does this at accept, so an open
   * connection does not hold the request's objects.
   * @internal
   */
  detach(): void {
    const incoming = this.incoming;
    if (incoming === null) return;
    const socket = incoming.socket;
    this.clientHost = intern(socket.remoteAddress ?? "");
    this.clientPort = socket.remotePort ?? 0;
    this.httpVersionCache = intern(incoming.httpVersion);
    (this as { path: string }).path = intern(this.path);
    // The values most connections share (Upgrade, the Host, the extensions offered) are kept once.
    // The key served the handshake only and is every connection's own: it is not kept.
    const headers: IncomingHttpHeaders = {};
    for (const name in this.headers) {
      if (name === "sec-websocket-key") continue;
      const value = this.headers[name];
      headers[name] = typeof value === "string" ? intern(value) : value;
    }
    (this as { headers: IncomingHttpHeaders }).headers = headers;
    this.incoming = null;
  }

  private httpVersionCache = "1.1";

  /** One header value; repeated headers are joined with ", " (Set-Cookie excepted by node:http). */
  header(name: string): string | undefined {
    const value = this.headers[name.toLowerCase()];
    // node:http's record inherits Object.prototype: "constructor" is not a field there either.
    return typeof value === "string" ? value : Array.isArray(value) ? value.join(", ") : undefined;
  }

  /** The query string parameters. */
  get query(): URLSearchParams {
    return (this.queryCache ??= new URLSearchParams(this.rawQuery));
  }

  /** The full request URL, built from the Host header. */
  get url(): URL {
    const host = this.headers.host ?? "localhost";
    const target = this.incoming?.url ?? (this.rawQuery === "" ? this.path : `${this.path}?${this.rawQuery}`);
    return new URL(target, `http://${host}`);
  }

  /** Cookies sent by the client (RFC 6265 §5.4), values percent-decoded when possible. */
  get cookies(): Record<string, string> {
    return (this.cookieCache ??= parseCookies(this.headers.cookie));
  }

  /** The client's address as the socket sees it. */
  get client(): ClientAddress {
    if (this.incoming === null) return { host: this.clientHost, port: this.clientPort };
    const socket = this.incoming.socket;
    return { host: socket.remoteAddress ?? "", port: socket.remotePort ?? 0 };
  }

  /** HTTP version as sent by the client, e.g. `1.1`. */
  get httpVersion(): string {
    return this.incoming?.httpVersion ?? this.httpVersionCache;
  }

  /** The `Last-Event-ID` header a reconnecting EventSource client sends, if any. */
  get lastEventId(): string | undefined {
    return this.header("last-event-id");
  }

  /** An AbortSignal that fires when the client disconnects before the response is complete. */
  get signal(): AbortSignal {
    if (this.abortController === undefined) {
      const controller = (this.abortController = new AbortController());
      const socket = this.source.socket;
      // Once the response is done the signal never fires.
      if (!this.responded) {
        if (socket.destroyed) controller.abort(new ClientDisconnectError());
        else {
          const listener = (): void => controller.abort(new ClientDisconnectError());
          this.closeListener = listener;
          socket.once("close", listener);
        }
      }
    }
    return this.abortController.signal;
  }

  /** What `signal` listens to on the connection until the response is done. */
  private closeListener: (() => void) | null = null;
  private responded = false;

  /**
   * @internal The response is done (sent, streamed to its end, or cut): a keep-alive connection
   * that closes later is no disconnect of this request, and it keeps no listener of it.
   */
  responseDone(): void {
    this.responded = true;
    const listener = this.closeListener;
    if (listener === null) return;
    this.closeListener = null;
    this.incoming?.socket.off("close", listener);
  }

  /**
   * The body as an async iterable of chunks, checked against `maxBodyBytes` as it arrives.
   * It can be consumed once, and not together with `bytes()`, `text()` or `json()`.
   * @throws BodyTooLargeError (413) when the body exceeds the limit.
   */
  async *stream(): AsyncGenerator<Buffer, void, undefined> {
    if (this.bodyTaken) throw new HTTPError(500, "The request body was already consumed");
    this.bodyTaken = true;
    const limit = this.maxBodyBytes;
    const declared = Number(this.headers["content-length"]);
    if (declared > limit) throw new BodyTooLargeError(limit);
    let received = 0;
    for await (const chunk of this.source) {
      received += chunk.length;
      if (received > limit) throw new BodyTooLargeError(limit);
      yield chunk;
    }
    if (!this.source.complete) throw new ClientDisconnectError();
  }

  /** The whole body as bytes. */
  bytes(): Promise<Buffer> {
    return (this.bodyCache ??= this.collect());
  }

  /** The whole body decoded as UTF-8. */
  async text(): Promise<string> {
    return (await this.bytes()).toString("utf8");
  }

  /**
   * The body parsed as JSON.
   * @throws InvalidJSONError (400) when it does not parse.
   */
  async json<T = unknown>(): Promise<T> {
    const text = await this.text();
    try {
      return JSON.parse(text) as T;
    } catch (error) {
      throw new InvalidJSONError(error);
    }
  }

  private async collect(): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of this.stream()) chunks.push(chunk);
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  }

  /** Whether the body was read (fully or partly) by the handler. @internal */
  get bodyConsumed(): boolean {
    return this.bodyTaken;
  }
}

/** Parse a Cookie header into name → value; the first occurrence of a name wins. */
export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  if (header === undefined) return out;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    if (name === "" || name in out) continue;
    let value = part.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    try {
      out[name] = decodeURIComponent(value);
    } catch {
      out[name] = value;
    }
  }
  return out;
}
