import type { IncomingHttpHeaders } from "node:http";
import { WebSocketDisconnect, WebSocketException, WebSocketInvalidJSONError, WebSocketTimeoutError } from "../errors.js";
import { CloseCode, ReadyState, isSendableCloseCode } from "../protocol/websocket/constants.js";
import type { Request, ClientAddress } from "../request/request.js";
import type { EndReason, SendStatus, TransportEvents, WebSocketTransport } from "../transport.js";
import type { ResolvedWebSocketOptions } from "./options.js";
import type { StatsCollector } from "../metrics/stats.js";
import type { Room } from "../rooms/room.js";
import { roomsOf, withRoom, withoutRoom, type MemberRoom, type Memberships } from "../rooms/member.js";

/** A received message: text as a string, binary as a Buffer. */
export type Message = string | Buffer;

/** Options of `accept()`. */
export interface AcceptOptions {
  /** The subprotocol to answer with; it must be one the client offered. */
  subprotocol?: string;
  /** Extra headers of the 101 response. */
  headers?: Record<string, string>;
}

/** Options of the `receive*()` calls. */
export interface ReceiveOptions {
  /** Give up after this many milliseconds with a {@link WebSocketTimeoutError}; the connection stays open. */
  timeout?: number;
}

/** What the engine behind a session does for it before and at accept. Not exported by the package. */
export interface SessionHost {
  readonly stats: StatsCollector;
  accept(ws: WebSocket<any>, options: AcceptOptions): WebSocketTransport;
  reject(ws: WebSocket<any>, status: number, detail: string): void;
  /** `close()` before accept: the handshake completes, then the connection closes with this. */
  closeBeforeAccept(ws: WebSocket<any>, code: number, reason: string): void;
}

/** What the sessions of one route share: one object, not three fields per connection. Not exported by the package. */
export interface SessionRoute {
  readonly host: SessionHost;
  readonly options: ResolvedWebSocketOptions;
  /** The route's event-style handlers; null for a handler that pulls messages. */
  readonly listener: WebSocketListener<any> | null;
}

let nextId = 0;
const EMPTY_ROOMS: ReadonlySet<Room> = new Set();

interface Waiter {
  resolve(message: Message): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout | null;
}

/** What a pull-style session keeps of messages: made at the first receive or message. */
interface Inbox {
  queue: Message[];
  waiter: Waiter | null;
}

/**
 * One WebSocket connection, as a handler sees it. Pull style: `await ws.receiveText()`,
 * `for await (const msg of ws)`. Event style: the route's `onMessage` gets every message and no
 * queue is kept.
 * @typeParam P - the path params, inferred from the route pattern.
 */
export class WebSocket<P = Record<string, string | number>> {
  private readonly serial: number;
  private requestValue: Request<P> | null;
  /** The subprotocol chosen at accept. */
  subprotocol: string | undefined = undefined;
  private stateValue: Record<string, unknown> | null = null;
  /** @internal */
  transport: WebSocketTransport | null = null;
  private readonly route: SessionRoute;
  private readyStateValue: ReadyState = ReadyState.Connecting;
  private inbox: Inbox | null = null;
  private drainWaiters: Array<() => void> | null = null;
  /** Code and reason once the connection ended (or the detail of a refused handshake, code 0). */
  private ending: { code: number; reason: string; end?: EndReason } | null = null;
  private closedForShutdown = false;
  private joined: Memberships<Room> = null;
  /** What it is to a room it joins. */
  readonly memberKind = "websocket";

  constructor(request: Request<P>, route: SessionRoute) {
    this.serial = ++nextId;
    this.requestValue = request;
    this.route = route;
  }

  /**
   * The upgrade request (headers, query, cookies, params, client).
   * @throws WebSocketException after `onOpen` on an event-style route with `keepRequest: false`.
   */
  get request(): Request<P> {
    const request = this.requestValue;
    if (request === null) {
      throw new WebSocketException("The upgrade request is not kept after onOpen on this route (keepRequest: false); copy what handlers need into ws.state in onOpen");
    }
    return request;
  }

  /** @internal The route does not keep the upgrade request after onOpen. */
  releaseRequest(): void {
    this.requestValue = null;
  }

  /** @internal */
  get options(): ResolvedWebSocketOptions {
    return this.route.options;
  }

  /** @internal The route's event-style handlers: messages go there instead of the queue. */
  get listener(): WebSocketListener<P> | null {
    return this.route.listener;
  }

  /** The close code the connection ended with (1005 none, 1006 abnormal); 0 while open. */
  get closeCode(): number {
    return this.ending?.code ?? 0;
  }
  /** The close reason the connection ended with (after `reject()`, its detail). */
  get closeReason(): string {
    return this.ending?.reason ?? "";
  }

  /**
   * Why the connection ended (null while it is open, or after `reject()`): as its engine saw it
   * (transport.ts, `EndReason`), and `"shutdown"` when the server closed it to shut down.
   */
  get endReason(): EndReason | "shutdown" | null {
    const end = this.ending?.end ?? null;
    return end === "server" && this.closedForShutdown ? "shutdown" : end;
  }

  /** @internal The app shuts down: 1001 to the client. */
  closeForShutdown(): void {
    this.closedForShutdown = true;
    this.close(CloseCode.GoingAway, "Server shutting down");
  }

  /** A process-unique id. */
  get id(): string {
    return this.serial.toString(36);
  }
  /** Per-connection storage for middleware and handlers (made on first use). */
  get state(): Record<string, unknown> {
    return (this.stateValue ??= {});
  }
  get headers(): IncomingHttpHeaders {
    return this.request.headers;
  }
  get query(): URLSearchParams {
    return this.request.query;
  }
  get params(): P {
    return this.request.params;
  }
  get cookies(): Record<string, string> {
    return this.request.cookies;
  }
  get client(): ClientAddress {
    const transport = this.transport;
    return transport === null ? this.request.client : { host: transport.remoteAddress, port: transport.remotePort };
  }
  get path(): string {
    return this.request.path;
  }
  /** 0 connecting, 1 open, 2 closing, 3 closed. */
  get readyState(): ReadyState {
    return this.readyStateValue;
  }
  /** Bytes sent but not yet taken by the operating system. */
  get bufferedAmount(): number {
    return this.transport?.bufferedAmount ?? 0;
  }

  /**
   * Complete the handshake (101 Switching Protocols).
   * @throws WebSocketException when called twice or after close.
   */
  async accept(options: AcceptOptions = {}): Promise<void> {
    if (this.readyStateValue !== ReadyState.Connecting) throw new WebSocketException("accept() called on a WebSocket that is not connecting");
    this.transport = this.route.host.accept(this, options);
    this.readyStateValue = ReadyState.Open;
  }

  /**
   * Refuse the handshake with an HTTP status (before accept only).
   * @throws WebSocketException after accept.
   */
  reject(status: number, detail = ""): void {
    if (this.readyStateValue !== ReadyState.Connecting) throw new WebSocketException("reject() is only possible before accept()");
    this.readyStateValue = ReadyState.Closed;
    this.ending = { code: 0, reason: detail };
    this.route.host.reject(this, status, detail);
  }

  /** The next message, text or bytes. @throws WebSocketDisconnect, WebSocketTimeoutError */
  receive(options: ReceiveOptions = {}): Promise<Message> {
    this.assertAccepted("receive");
    const inbox = (this.inbox ??= { queue: [], waiter: null });
    const queue = inbox.queue;
    if (queue.length > 0) {
      const message = queue.shift()!;
      if (queue.length === this.options.maxQueuedMessages >> 1) this.transport!.resume();
      return Promise.resolve(message);
    }
    if (this.readyStateValue === ReadyState.Closed) return Promise.reject(this.disconnect());
    if (inbox.waiter !== null) return Promise.reject(new WebSocketException("receive() called while another receive() is waiting"));
    return new Promise<Message>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, timer: null };
      if (options.timeout !== undefined) {
        waiter.timer = setTimeout(() => {
          if (inbox.waiter === waiter) inbox.waiter = null;
          reject(new WebSocketTimeoutError(options.timeout!));
        }, options.timeout);
      }
      inbox.waiter = waiter;
    });
  }

  /** The next message, which must be text. @throws WebSocketException for a binary message. */
  async receiveText(options?: ReceiveOptions): Promise<string> {
    const message = await this.receive(options);
    if (typeof message !== "string") throw new WebSocketException("Expected a text message, got binary");
    return message;
  }

  /** The next message, which must be binary. @throws WebSocketException for a text message. */
  async receiveBytes(options?: ReceiveOptions): Promise<Buffer> {
    const message = await this.receive(options);
    if (typeof message === "string") throw new WebSocketException("Expected a binary message, got text");
    return message;
  }

  /** Same as {@link receiveBytes}. */
  receiveBinary(options?: ReceiveOptions): Promise<Buffer> {
    return this.receiveBytes(options);
  }

  /**
   * The next message parsed as JSON (text or UTF-8 bytes).
   * @throws WebSocketInvalidJSONError when it does not parse; left unhandled, it closes the connection with 1007.
   */
  async receiveJson<T = unknown>(options?: ReceiveOptions): Promise<T> {
    const message = await this.receive(options);
    try {
      return JSON.parse(typeof message === "string" ? message : message.toString("utf8")) as T;
    } catch (error) {
      throw new WebSocketInvalidJSONError(error);
    }
  }

  /** Messages until the connection closes; the loop then ends without an error. */
  async *[Symbol.asyncIterator](): AsyncGenerator<Message, void, undefined> {
    for (;;) {
      try {
        yield await this.receive();
      } catch (error) {
        if (error instanceof WebSocketDisconnect) return;
        throw error;
      }
    }
  }

  /** Send text or bytes. */
  send(data: string | Uint8Array): SendStatus {
    return typeof data === "string" ? this.sendText(data) : this.sendBytes(data);
  }

  sendText(text: string): SendStatus {
    const transport = this.assertOpen("sendText");
    if (transport === null) return "closed";
    const status = transport.sendText(text);
    this.countSent(status, Buffer.byteLength(text));
    return status;
  }

  sendBytes(data: Uint8Array): SendStatus {
    const transport = this.assertOpen("sendBytes");
    if (transport === null) return "closed";
    const status = transport.sendBinary(data);
    this.countSent(status, data.byteLength);
    return status;
  }

  /** Same as {@link sendBytes}. */
  sendBinary(data: Uint8Array): SendStatus {
    return this.sendBytes(data);
  }

  /** Send a value as JSON text. */
  sendJson(value: unknown): SendStatus {
    return this.sendText(JSON.stringify(value));
  }

  ping(payload: string | Uint8Array = ""): void {
    this.assertOpen("ping")?.ping(payload);
  }

  /**
   * Resolves when the send buffer is below `maxBufferedBytes` (at once when it is), or when the
   * connection closed.
   */
  drained(): Promise<void> {
    const transport = this.transport;
    if (transport === null || !transport.isOpen || transport.bufferedAmount < this.options.maxBufferedBytes) return Promise.resolve();
    return new Promise((resolve) => (this.drainWaiters ??= []).push(resolve));
  }

  /**
   * Close with a code (1000, or 3000–4999 for applications) and a reason. Before accept, the
   * handshake is completed first so that the client sees the code (browsers do not show HTTP
   * statuses of a refused upgrade); use `reject()` for an HTTP status.
   */
  close(code: number = CloseCode.Normal, reason = ""): void {
    if (!isSendableCloseCode(code)) throw new RangeError(`Close code ${code} cannot be sent`);
    if (this.readyStateValue === ReadyState.Connecting) {
      this.route.host.closeBeforeAccept(this, code, reason);
      return;
    }
    if (this.readyStateValue !== ReadyState.Open) return;
    this.readyStateValue = ReadyState.Closing;
    this.transport!.close(code, reason);
  }

  /** @internal A message arrived. */
  deliver(message: Message): void {
    const inbox = (this.inbox ??= { queue: [], waiter: null });
    const waiter = inbox.waiter;
    if (waiter !== null) {
      inbox.waiter = null;
      if (waiter.timer !== null) clearTimeout(waiter.timer);
      waiter.resolve(message);
      return;
    }
    const queue = inbox.queue;
    queue.push(message);
    // Inbound backpressure: a handler that does not keep up stops the socket being read.
    if (queue.length === this.options.maxQueuedMessages) this.transport!.pause();
  }

  /** Rooms this connection is a member of. */
  get rooms(): ReadonlySet<Room> {
    const joined = this.joined;
    return joined === null ? EMPTY_ROOMS : joined instanceof Set ? joined : new Set([joined]);
  }

  /** @internal */
  joinedRoom(room: MemberRoom): void {
    this.joined = withRoom(this.joined, room as Room);
  }

  /** @internal */
  leftRoom(room: MemberRoom): void {
    this.joined = withoutRoom(this.joined, room as Room);
  }

  /** @internal The connection ended. */
  ended(code: number, reason: string, end: EndReason): void {
    this.readyStateValue = ReadyState.Closed;
    this.ending = { code, reason, end };
    for (const room of roomsOf(this.joined)) room.remove(this);
    const inbox = this.inbox;
    const waiter = inbox === null ? null : inbox.waiter;
    if (waiter !== null) {
      inbox!.waiter = null;
      if (waiter.timer !== null) clearTimeout(waiter.timer);
      waiter.reject(this.disconnect());
    }
    this.releaseDrainWaiters();
  }

  /** @internal */
  releaseDrainWaiters(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = null;
    if (waiters !== null) for (const resolve of waiters) resolve();
  }

  /** The error receives end with once the connection is over (a refused handshake: 1008). */
  private disconnect(): WebSocketDisconnect {
    return new WebSocketDisconnect(this.closeCode === 0 ? CloseCode.PolicyViolation : this.closeCode, this.closeReason);
  }

  private countSent(status: SendStatus, bytes: number): void {
    const ws = this.route.host.stats.websockets;
    if (status === "ok" || status === "backpressure") {
      ws.messagesOut++;
      ws.bytesOut += bytes;
      if (status === "backpressure") ws.backpressureEvents++;
    } else if (status === "dropped") {
      ws.messagesDropped++;
    }
  }

  private assertAccepted(what: string): void {
    if (this.readyStateValue === ReadyState.Connecting) throw new WebSocketException(`${what}() called before accept()`);
  }

  /** The transport to send with; its sends answer "closed" themselves once it is closed. */
  private assertOpen(what: string): WebSocketTransport | null {
    this.assertAccepted(what);
    return this.transport;
  }
}

/** Event-style handlers: no promise chain and no queue per connection. */
export interface WebSocketListener<P = Record<string, string | number>> {
  /** After accept. */
  onOpen?(ws: WebSocket<P>): void;
  /** Every message: text as a string, binary as a Buffer. */
  onMessage?(ws: WebSocket<P>, message: Message, isBinary: boolean): void;
  /** The send buffer fell below the limit again. */
  onDrain?(ws: WebSocket<P>): void;
  /** The connection ended, with the peer's close code (1005 none, 1006 abnormal). */
  onClose?(ws: WebSocket<P>, code: number, reason: string): void;
}

/**
 * An error left a handler of an open connection: a {@link WebSocketException} closes it with its
 * own close code and its message as reason (one with 1011 is logged too, as is anything else,
 * which closes with 1011). @internal
 */
export function failSession(session: WebSocket<any>, error: unknown, log: (error: unknown) => void): void {
  if (error instanceof WebSocketDisconnect) return;
  if (error instanceof WebSocketException && error.closeCode !== CloseCode.InternalError) {
    session.close(error.closeCode, error.message);
    return;
  }
  log(error);
  session.close(CloseCode.InternalError, "Internal error");
}

/** Delivers transport events to sessions; one object for all connections. @internal */
export function sessionEvents(stats: StatsCollector, onError: (error: unknown) => void, onEnded: (ws: WebSocket<any>) => void): TransportEvents {
  const ws = stats.websockets;
  return {
    onMessage(connection, data, isBinary, byteLength) {
      const session = connection.user as WebSocket<any>;
      ws.messagesIn++;
      ws.bytesIn += byteLength;
      const message: Message = typeof data === "string" ? data : isBinary ? data : data.toString("utf8");
      const listener = session.listener;
      if (listener === null) {
        session.deliver(message);
        return;
      }
      try {
        const result = listener.onMessage?.(session, message, isBinary) as unknown;
        // An async handler's failure ends the connection the same way (never an unhandled rejection).
        if (result instanceof Promise) result.catch((error: unknown) => failSession(session, error, onError));
      } catch (error) {
        failSession(session, error, onError);
      }
    },
    onPing() {},
    onPong() {},
    onDrain(connection) {
      const session = connection.user as WebSocket<any>;
      session.releaseDrainWaiters();
      try {
        session.listener?.onDrain?.(session);
      } catch (error) {
        onError(error);
      }
    },
    onClose(connection, code, reason, end) {
      const session = connection.user as WebSocket<any>;
      session.ended(code, reason, end);
      onEnded(session);
      try {
        session.listener?.onClose?.(session, code, reason);
      } catch (error) {
        onError(error);
      }
    },
  };
}
