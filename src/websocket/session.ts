import type { IncomingHttpHeaders } from "node:http";
import { WebSocketDisconnect, WebSocketException, WebSocketInvalidJSONError, WebSocketTimeoutError, WebSocketValidationError } from "../errors.js";
import type { InferOutput, StandardSchemaV1 } from "../request/standard-schema.js";
import { validateValue, type ValueCheck } from "../request/validation.js";
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

/** Options of `receiveJson()`. */
export interface ReceiveJsonOptions<S extends StandardSchemaV1 | undefined = undefined> extends ReceiveOptions {
  /**
   * A Standard Schema the message must match (else WebSocketValidationError, which closes with
   * 1007 if left unhandled); by default the route's `schema.message`, if it has one.
   */
  schema?: S;
}

/** What the engine behind a session does for it before and at accept. Not exported by the package. */
export interface SessionHost {
  readonly stats: StatsCollector;
  accept(ws: WebSocket<any, any>, options: AcceptOptions): WebSocketTransport;
  reject(ws: WebSocket<any, any>, status: number, detail: unknown, headers?: Record<string, string>): void;
  /** `close()` before accept: the handshake completes, then the connection closes with this. */
  closeBeforeAccept(ws: WebSocket<any, any>, code: number, reason: string): void;
}

/** What the sessions of one route share: one object, not three fields per connection. Not exported by the package. */
export interface SessionRoute {
  readonly host: SessionHost;
  readonly options: ResolvedWebSocketOptions;
  /** The route's event-style handlers; null for a handler that pulls messages. */
  readonly listener: WebSocketListener<any, any, any> | null;
  /** The route's schema of messages, or null. */
  readonly message: StandardSchemaV1 | null;
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
 * @typeParam V - what the route's schemas validated of the upgrade request (`ws.valid.query`).
 */
export class WebSocket<P = Record<string, string | number>, V = {}> {
  private readonly serial: number;
  private requestValue: Request<P, V> | null;
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

  constructor(request: Request<P, V>, route: SessionRoute) {
    this.serial = ++nextId;
    this.requestValue = request;
    this.route = route;
  }

  /**
   * The upgrade request (headers, query, cookies, params, client).
   * @throws WebSocketException after `onOpen` on an event-style route with `keepRequest: false`.
   */
  get request(): Request<P, V> {
    const request = this.requestValue;
    if (request === null) {
      throw new WebSocketException("The upgrade request is not kept after onOpen on this route (keepRequest: false); copy what handlers need into ws.state in onOpen");
    }
    return request;
  }

  /** What the route's schemas validated of the upgrade request: `params`, `query`, `headers`. */
  get valid(): V {
    return this.request.valid;
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
  get listener(): WebSocketListener<P, V, unknown> | null {
    return this.route.listener;
  }

  /** @internal The route's schema of messages, or null. */
  get messageSchema(): StandardSchemaV1 | null {
    return this.route.message;
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
    this.refuse(status, detail);
  }

  /** @internal reject() with any JSON detail (a list of validation issues) and headers. */
  refuse(status: number, detail: unknown, headers?: Record<string, string>): void {
    if (this.readyStateValue !== ReadyState.Connecting) throw new WebSocketException("reject() is only possible before accept()");
    this.readyStateValue = ReadyState.Closed;
    this.ending = { code: 0, reason: typeof detail === "string" ? detail : "" };
    this.route.host.reject(this, status, detail, headers);
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
   * The next message parsed as JSON (text or UTF-8 bytes), validated by `options.schema` or the
   * route's `schema.message` when there is one.
   * @throws WebSocketInvalidJSONError when it does not parse, WebSocketValidationError when it does
   * not match the schema; left unhandled, either closes the connection with 1007.
   */
  receiveJson<S extends StandardSchemaV1>(options: ReceiveJsonOptions<S> & { schema: S }): Promise<InferOutput<S>>;
  receiveJson<T = unknown>(options?: ReceiveJsonOptions): Promise<T>;
  async receiveJson(options?: ReceiveJsonOptions<StandardSchemaV1 | undefined>): Promise<unknown> {
    const message = await this.receive(options);
    const value = parseJsonMessage(message);
    const schema = options?.schema ?? this.route.message;
    if (schema === null) return value;
    const result = await validateValue(schema, "message", value);
    if (!result.ok) throw new WebSocketValidationError(result.issues);
    return result.value;
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

/**
 * Event-style handlers: no promise chain and no queue per connection.
 * @typeParam M - what `onMessage` gets: the message, or the output of the route's `schema.message`.
 */
export interface WebSocketListener<P = Record<string, string | number>, V = {}, M = Message> {
  /** After accept. */
  onOpen?(ws: WebSocket<P, V>): void;
  /**
   * Every message: text as a string, binary as a Buffer; with a `schema.message`, the validated
   * JSON value (a message that fails closes the connection with 1007 and never gets here).
   */
  onMessage?(ws: WebSocket<P, V>, message: M, isBinary: boolean): void;
  /** The send buffer fell below the limit again. */
  onDrain?(ws: WebSocket<P, V>): void;
  /** The connection ended, with the peer's close code (1005 none, 1006 abnormal). */
  onClose?(ws: WebSocket<P, V>, code: number, reason: string): void;
}

function parseJsonMessage(message: Message): unknown {
  try {
    return JSON.parse(typeof message === "string" ? message : message.toString("utf8"));
  } catch (error) {
    throw new WebSocketInvalidJSONError(error);
  }
}

/** Messages of event-style sessions whose schema answered with a promise, in order. */
const pendingMessages = new WeakMap<WebSocket<any, any>, Promise<void>>();

/**
 * Parse and validate a message for an event-style route with a message schema, then hand it to
 * `onMessage`; one that fails closes the connection with 1007. An asynchronous schema keeps the
 * messages of a connection in order.
 */
function deliverValidated(
  session: WebSocket<any, any>,
  listener: WebSocketListener<any, any, unknown>,
  message: Message,
  isBinary: boolean,
  schema: StandardSchemaV1,
  onError: (error: unknown) => void,
): void {
  const handle = (result: ValueCheck): void => {
    if (!result.ok) {
      failSession(session, new WebSocketValidationError(result.issues), onError);
      return;
    }
    if (session.readyState !== ReadyState.Open) return;
    const returned = listener.onMessage?.(session, result.value, isBinary) as unknown;
    if (returned instanceof Promise) returned.catch((error: unknown) => failSession(session, error, onError));
  };
  const run = (): void | Promise<void> => {
    const result = validateValue(schema, "message", parseJsonMessage(message));
    return result instanceof Promise ? result.then(handle) : handle(result);
  };
  const failed = (error: unknown): void => failSession(session, error, onError);
  const track = (pending: Promise<void>): void => {
    const next: Promise<void> = pending.catch(failed).finally(() => {
      if (pendingMessages.get(session) === next) pendingMessages.delete(session);
    });
    pendingMessages.set(session, next);
  };
  const before = pendingMessages.get(session);
  if (before !== undefined) {
    track(before.then(run));
    return;
  }
  let outcome: void | Promise<void>;
  try {
    outcome = run();
  } catch (error) {
    failed(error);
    return;
  }
  if (outcome instanceof Promise) track(outcome);
}

/**
 * An error left a handler of an open connection: a {@link WebSocketException} closes it with its
 * own close code and its message as reason (one with 1011 is logged too, as is anything else,
 * which closes with 1011). @internal
 */
export function failSession(session: WebSocket<any, any>, error: unknown, log: (error: unknown) => void): void {
  if (error instanceof WebSocketDisconnect) return;
  if (error instanceof WebSocketException && error.closeCode !== CloseCode.InternalError) {
    session.close(error.closeCode, error.message);
    return;
  }
  log(error);
  session.close(CloseCode.InternalError, "Internal error");
}

/** Delivers transport events to sessions; one object for all connections. @internal */
export function sessionEvents(stats: StatsCollector, onError: (error: unknown) => void, onEnded: (ws: WebSocket<any, any>) => void): TransportEvents {
  const ws = stats.websockets;
  return {
    onMessage(connection, data, isBinary, byteLength) {
      const session = connection.user as WebSocket<any, any>;
      ws.messagesIn++;
      ws.bytesIn += byteLength;
      const message: Message = typeof data === "string" ? data : isBinary ? data : data.toString("utf8");
      const listener = session.listener;
      if (listener === null) {
        session.deliver(message);
        return;
      }
      const schema = session.messageSchema;
      if (schema !== null) {
        deliverValidated(session, listener, message, isBinary, schema, onError);
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
      const session = connection.user as WebSocket<any, any>;
      session.releaseDrainWaiters();
      try {
        session.listener?.onDrain?.(session);
      } catch (error) {
        onError(error);
      }
    },
    onClose(connection, code, reason, end) {
      const session = connection.user as WebSocket<any, any>;
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
