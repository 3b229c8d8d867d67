/**
 * The error catalogue. Each class has a stable `code` (never reused) and the HTTP status it maps to.
 */

/** Base class of every error the framework raises on purpose. */
export class CatzillaError extends Error {
  /** Stable machine-readable code, e.g. `CZ_BODY_TOO_LARGE`. */
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
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

/** A streaming source failed; `cause` is what it threw. */
export class StreamingError extends CatzillaError {
  constructor(cause: unknown) {
    super("CZ_STREAM_FAILED", `Streaming source failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
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
export class WebSocketDisconnect extends Error {
  /** The close code. */
  readonly code: number;
  readonly reason: string;
  /** Stable catalogue code. */
  readonly errorCode = "CZ_WS_DISCONNECT";
  constructor(code: number, reason = "") {
    super(`WebSocket closed with ${code}${reason === "" ? "" : `: ${reason}`}`);
    this.name = "WebSocketDisconnect";
    this.code = code;
    this.reason = reason;
  }
}

/** A WebSocket used the wrong way: sending before `accept()`, accepting twice, and so on. */
export class WebSocketException extends CatzillaError {
  constructor(message: string, code = "CZ_WS_MISUSE") {
    super(code, message);
  }
}

/** A `receive*({ timeout })` call got no message in time. The connection stays open. */
export class WebSocketTimeoutError extends WebSocketException {
  constructor(timeoutMs: number) {
    super(`No message within ${timeoutMs} ms`, "CZ_WS_RECEIVE_TIMEOUT");
  }
}
