/**
 * The opening handshake, server side (RFC 6455 §4.2): validating the client's request and
 * writing the 101 response. SHA-1 for the accept key is the transport's job.
 */

/** The GUID of RFC 6455 §1.3, appended to the key before hashing. */
export const WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** Request headers as node:http delivers them: lower-case names. */
export type RequestHeaders = Record<string, string | string[] | undefined>;

/** A valid opening handshake, or why it is refused. */
export type HandshakeCheck =
  | { ok: true; key: string; protocols: string[]; extensions: string | undefined; origin: string | undefined }
  | { ok: false; status: number; reason: string; headers?: Record<string, string> };

const KEY = /^[A-Za-z0-9+/]{21}[AQgw]==$/;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function header(headers: RequestHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(", ") : value;
}

/** Whether a comma-separated header holds a token, case-insensitively (RFC 9110 §5.6.1). */
export function hasToken(value: string | undefined, token: string): boolean {
  if (value === undefined) return false;
  for (const part of value.split(",")) if (part.trim().toLowerCase() === token) return true;
  return false;
}

/** Parse `Sec-WebSocket-Protocol`: the client's subprotocols in its order of preference. */
export function parseProtocols(value: string | undefined): string[] | null {
  if (value === undefined) return [];
  const protocols: string[] = [];
  for (const part of value.split(",")) {
    const protocol = part.trim();
    if (protocol === "") continue;
    if (!TOKEN.test(protocol) || protocols.includes(protocol)) return null;
    protocols.push(protocol);
  }
  return protocols;
}

/** Validate an upgrade request (RFC 6455 §4.2.1). */
export function checkHandshake(method: string, httpVersion: string, headers: RequestHeaders): HandshakeCheck {
  if (method !== "GET") return { ok: false, status: 400, reason: "A WebSocket handshake must use GET" };
  const [major, minor] = httpVersion.split(".").map(Number);
  if (major! < 1 || (major === 1 && minor! < 1)) {
    return { ok: false, status: 400, reason: "A WebSocket handshake needs HTTP/1.1" };
  }
  if (!hasToken(header(headers, "upgrade"), "websocket")) {
    return { ok: false, status: 400, reason: "Missing Upgrade: websocket" };
  }
  if (!hasToken(header(headers, "connection"), "upgrade")) {
    return { ok: false, status: 400, reason: "Missing Connection: Upgrade" };
  }
  const version = header(headers, "sec-websocket-version");
  if (version?.trim() !== "13") {
    // §4.2.2: answer an unsupported version with the versions we speak.
    return { ok: false, status: 426, reason: "Unsupported WebSocket version", headers: { "Sec-WebSocket-Version": "13" } };
  }
  const key = header(headers, "sec-websocket-key")?.trim();
  // §4.1: the key is 16 random bytes in base64, 24 characters.
  if (key === undefined || !KEY.test(key)) return { ok: false, status: 400, reason: "Invalid Sec-WebSocket-Key" };
  const protocols = parseProtocols(header(headers, "sec-websocket-protocol"));
  if (protocols === null) return { ok: false, status: 400, reason: "Invalid Sec-WebSocket-Protocol" };
  return { ok: true, key, protocols, extensions: header(headers, "sec-websocket-extensions"), origin: header(headers, "origin") };
}

/** Pick the subprotocol: the first of the server's preference that the client offered. */
export function selectProtocol(offered: readonly string[], supported: readonly string[]): string | undefined {
  for (const protocol of supported) if (offered.includes(protocol)) return protocol;
  return undefined;
}

/** The 101 response head. Extra headers must already be valid. */
export function acceptResponse(
  acceptKey: string,
  protocol: string | undefined,
  extensions: string | undefined,
  extra: Iterable<readonly [string, string]> = [],
): string {
  let head = `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey}\r\n`;
  if (protocol !== undefined) head += `Sec-WebSocket-Protocol: ${protocol}\r\n`;
  if (extensions !== undefined) head += `Sec-WebSocket-Extensions: ${extensions}\r\n`;
  for (const [name, value] of extra) head += `${name}: ${value}\r\n`;
  return head + "\r\n";
}

/** A plain HTTP response that refuses the upgrade and closes the connection. */
export function rejectResponse(status: number, detail: unknown, statusText: string, headers: Record<string, string> = {}): string {
  let body: string;
  try {
    body = JSON.stringify({ detail });
  } catch {
    // A detail that does not serialise (a BigInt, a cycle): the status's own words.
    body = JSON.stringify({ detail: statusText });
  }
  let head = `HTTP/1.1 ${status} ${statusText}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`;
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
  return `${head}\r\n${body}`;
}
