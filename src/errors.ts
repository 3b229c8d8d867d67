/**
 * The error catalogue. Each class has a stable `code` (never reused) and the HTTP status it maps to.
 */
import { isSendableCloseCode } from "./protocol/websocket/constants.js";

/** Base class of every error the framework raises on purpose. */
export class CatzillaError<Code extends string | number = string> extends Error {
  /**
   * Stable machine-readable code, e.g. `CZ_BODY_TOO_LARGE`. On {@link WebSocketDisconnect} it is
   * the close code (as in Starlette), and the catalogue code is `errorCode`.
   */
  readonly code: Code;
  constructor(code: Code, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }

  /** The catalogue code (`CZ_…`), on every error alike. */
  get errorCode(): string {
    return String(this.code);
  }
}

/**
 * Raise from a handler, middleware or dependency to answer with an HTTP status.
 * The response body is JSON `{ "detail": ... }`.
 * @example throw new HTTPError(404, "No such user");
 */
export class HTTPError extends CatzillaError {
  readonly status: number;
  readonly detail: unknown;
  readonly headers: Record<string, string> | undefined;
  constructor(status: number, detail?: unknown, headers?: Record<string, string>) {
    if (!Number.isInteger(status) || status < 400 || status > 599) {
      throw new RangeError(`HTTPError status must be an integer in 400..599, got ${status}`);
    }
    super("CZ_HTTP_ERROR", typeof detail === "string" ? detail : `HTTP ${status}`);
    this.status = status;
    this.detail = detail ?? statusText(status);
    this.headers = headers;
  }
}

/** The request body exceeded `maxBodyBytes` (413). */
export class BodyTooLargeError extends HTTPError {
  override readonly code = "CZ_BODY_TOO_LARGE";
  constructor(limit: number) {
    super(413, `Request body exceeds ${limit} bytes`);
  }
}

/** The request body is not valid JSON (400). */
export class InvalidJSONError extends HTTPError {
  override readonly code = "CZ_INVALID_JSON";
  constructor(cause: unknown) {
    super(400, "Request body is not valid JSON");
    this.cause = cause;
  }
}

/** A client went over a per-address limit (429 with Retry-After). */
export class TooManyRequestsError extends HTTPError {
  override readonly code = "CZ_TOO_MANY_REQUESTS";
  constructor(detail: string, retryAfterSeconds: number) {
    super(429, detail, { "Retry-After": String(Math.max(1, Math.ceil(retryAfterSeconds))) });
  }
}

/** A room could not be created: the app holds `maxRooms` rooms already (503). */
export class RoomLimitError extends HTTPError {
  override readonly code = "CZ_ROOM_LIMIT";
  constructor(limit: number) {
    super(503, `Too many rooms (maxRooms is ${limit})`);
  }
}

/** A streaming source failed; `cause` is what it threw. */
export class StreamingError extends CatzillaError {
  constructor(cause: unknown) {
    super("CZ_STREAM_FAILED", `Streaming source failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/**
 * A handler (or middleware) returned something that is not a response: a generator, a Map, a
 * function, a Promise inside the value, ... Answered with 500 and logged with the request.
 */
export class InvalidResponseError extends CatzillaError {
  constructor(what: string, hint: string) {
    super("CZ_INVALID_RESPONSE", `The handler returned ${what}, which is not a response${hint === "" ? "" : `: ${hint}`}`);
  }
}

/** The request body could not be read because the client went away mid-body. */
export class ClientDisconnectError extends CatzillaError {
  constructor() {
    super("CZ_CLIENT_DISCONNECT", "Client disconnected");
  }
}

const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
  405: "Method Not Allowed", 406: "Not Acceptable", 408: "Request Timeout", 409: "Conflict",
  410: "Gone", 411: "Length Required", 412: "Precondition Failed", 413: "Content Too Large",
  415: "Unsupported Media Type", 416: "Range Not Satisfiable", 422: "Unprocessable Content",
  429: "Too Many Requests", 500: "Internal Server Error", 501: "Not Implemented",
  502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
};

/** The reason phrase of a status code, or `HTTP <status>` for one without a listed phrase. */
export function statusText(status: number): string {
  return STATUS_TEXT[status] ?? `HTTP ${status}`;
}

/**
 * Raised from `receive*()` when the connection is closed: by the peer (its close code, 1005 for
 * none, 1006 without a close frame), by a protocol violation (the code sent) or by the server.
 * Like Starlette's, `code` is the close code; the catalogue code is `errorCode`.
 */
export class WebSocketDisconnect extends CatzillaError<number> {
  readonly reason: string;
  constructor(code: number, reason = "") {
    super(code, `WebSocket closed with ${code}${reason === "" ? "" : `: ${reason}`}`);
    this.reason = reason;
  }

  /** Stable catalogue code (`code` is the close code). */
  override get errorCode(): string {
    return "CZ_WS_DISCONNECT";
  }
}

/**
 * A WebSocket used the wrong way (sending before `accept()`, accepting twice, ...), or raised by a
 * handler to close the connection with `closeCode` and the message as reason, as Starlette's
 * `WebSocketException(code, reason)` does. One that leaves a handler closes the connection with
 * its close code; with 1011 (the default) it is also logged as an unhandled error.
 * @example throw new WebSocketException("Unknown room", "APP_UNKNOWN_ROOM", 4404);
 */
export class WebSocketException extends CatzillaError {
  /** The close code a connection gets when this error leaves its handler. */
  readonly closeCode: number;
  constructor(message: string, code = "CZ_WS_MISUSE", closeCode = 1011) {
    super(code, message);
    if (!isSendableCloseCode(closeCode)) {
      throw new RangeError(`WebSocketException closeCode must be a close code an endpoint may send (1000-1003, 1007-1014, 3000-4999), got ${closeCode}`);
    }
    this.closeCode = closeCode;
  }
}

/** A message `receiveJson()` got is not valid JSON: the client's fault, so the connection closes with 1007. */
export class WebSocketInvalidJSONError extends WebSocketException {
  constructor(cause: unknown) {
    super("Message is not valid JSON", "CZ_WS_INVALID_JSON", 1007);
    this.cause = cause;
  }
}

/**
 * A message did not match its schema (`receiveJson({ schema })`, a route's `schema.message`): the
 * connection closes with 1007 and the first issue as reason. `issues` lists every one.
 */
export class WebSocketValidationError extends WebSocketException {
  constructor(readonly issues: readonly ValidationIssue[]) {
    super(`Invalid message: ${summarizeIssues(issues)}`, "CZ_WS_INVALID_MESSAGE", 1007);
  }
}

/** One validation issue, in the shape FastAPI answers with. */
export interface ValidationIssue {
  /** Where: the input (`"path"`, `"query"`, `"header"`, `"body"`, `"message"`), then the keys down to the value. */
  loc: Array<string | number>;
  /** The schema library's message. */
  msg: string;
  /** The library's issue code where it gives one (zod `code`, valibot `type`), else `"invalid"`. */
  type: string;
}

/**
 * A request did not match its route's schemas: answered with 422 and
 * `{"detail": [{"loc": [...], "msg": "...", "type": "..."}, ...]}`, every issue of every input.
 * On a WebSocket route the upgrade is refused with the same status and body.
 */
export class RequestValidationError extends HTTPError {
  override readonly code = "CZ_VALIDATION_FAILED";
  declare readonly detail: ValidationIssue[];
  constructor(readonly issues: ValidationIssue[]) {
    super(422, issues);
    this.message = `Request validation failed: ${summarizeIssues(issues)}`;
  }
}

/** The first issue in one line (and how many more), for a close reason or a log line. */
function summarizeIssues(issues: readonly ValidationIssue[]): string {
  const first = issues[0];
  if (first === undefined) return "";
  const where = first.loc.slice(1).join(".");
  const text = where === "" ? first.msg : `${where}: ${first.msg}`;
  return issues.length === 1 ? text : `${text} (and ${issues.length - 1} more)`;
}

/** A `receive*({ timeout })` call got no message in time. The connection stays open. */
export class WebSocketTimeoutError extends WebSocketException {
  constructor(timeoutMs: number) {
    super(`No message within ${timeoutMs} ms`, "CZ_WS_RECEIVE_TIMEOUT");
  }
}
