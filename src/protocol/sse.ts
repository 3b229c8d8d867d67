/**
 * Server-Sent Events wire format (WHATWG HTML §9.2). Pure functions: events in, text out.
 */

/** One Server-Sent Event. Every field is optional; an event with no field encodes to nothing. */
export interface ServerSentEvent {
  /** Payload. Strings are split on CR, LF and CRLF into one `data:` line each. */
  data?: string;
  /** Event type; the browser dispatches it under this name (default `message`). */
  event?: string;
  /** Event id; the browser sends it back as `Last-Event-ID` when it reconnects. */
  id?: string | number;
  /** Reconnection delay the browser should use, in milliseconds. */
  retry?: number;
  /** A comment line (`: text`), ignored by clients; useful as a heartbeat. */
  comment?: string;
}

const LINE_BREAK = /\r\n|\r|\n/;

function assertSingleLine(field: string, value: string): void {
  // WHATWG §9.2.5: a line break would end the field early and let the value inject other fields.
  if (value.includes("\n") || value.includes("\r")) {
    throw new TypeError(`SSE ${field} must not contain a line break: ${JSON.stringify(value)}`);
  }
}

/**
 * Encode one event as SSE text, ending in the blank line that dispatches it.
 * A bare string is sent as `data`.
 * @throws TypeError when `event` or `id` holds a line break, `id` holds NUL, or `retry` is not a
 *   non-negative integer.
 */
export function encodeEvent(event: ServerSentEvent | string): string {
  if (typeof event === "string") return encodeData(event) + "\n";
  let out = "";
  if (event.comment !== undefined) {
    for (const line of event.comment.split(LINE_BREAK)) out += `: ${line}\n`;
  }
  if (event.event !== undefined) {
    assertSingleLine("event", event.event);
    out += `event: ${event.event}\n`;
  }
  if (event.id !== undefined) {
    const id = String(event.id);
    assertSingleLine("id", id);
    // WHATWG §9.2.6: a client ignores an id that contains NUL, which would break resumption.
    if (id.includes("\0")) throw new TypeError("SSE id must not contain NUL");
    out += `id: ${id}\n`;
  }
  if (event.retry !== undefined) {
    if (!Number.isInteger(event.retry) || event.retry < 0) {
      throw new TypeError(`SSE retry must be a non-negative integer, got ${event.retry}`);
    }
    out += `retry: ${event.retry}\n`;
  }
  if (event.data !== undefined) out += encodeData(event.data);
  return out === "" ? "" : out + "\n";
}

function encodeData(data: string): string {
  if (!data.includes("\n") && !data.includes("\r")) return `data: ${data}\n`;
  let out = "";
  for (const line of data.split(LINE_BREAK)) out += `data: ${line}\n`;
  return out;
}

/** A comment line used as heartbeat; it keeps proxies from timing the connection out. */
export function encodeComment(text: string): string {
  return encodeEvent({ comment: text });
}
