/**
 * Requests for the HTTP/1.1 parser's differential test: valid ones (pipelined, chunked, forms of
 * the target, header shapes) and the shapes request smuggling and parser confusion are made of.
 * `stricter` marks inputs node:http accepts and the native parser refuses on purpose (the reason
 * says why); every other case must get the same verdict from both.
 */
export interface Case {
  name: string;
  bytes: Buffer;
  stricter?: string;
}

const b = (text: string): Buffer => Buffer.from(text, "latin1");
const get = (extra = ""): string => `GET / HTTP/1.1\r\nHost: a\r\n${extra}\r\n`;

export const corpus: Case[] = [
  // Valid requests.
  { name: "simple GET", bytes: b("GET /hello?x=1&y=%20 HTTP/1.1\r\nHost: example.com\r\n\r\n") },
  { name: "pipelined GET, POST with Content-Length, chunked POST, close", bytes: b(
    "GET /a HTTP/1.1\r\nHost: a\r\n\r\n" +
    "POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" +
    "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nA;name=val;q=\"x y\"\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n" +
    "GET /d HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n") },
  { name: "HTTP/1.0 without Host", bytes: b("GET / HTTP/1.0\r\n\r\n") },
  { name: "HTTP/1.0 keep-alive, then another", bytes: b("GET /1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.0\r\n\r\n") },
  { name: "header shapes: OWS, empty value, tab, obs-text", bytes: b(get("X-A:   spaced   \r\nX-Empty:\r\nX-Tab:\ta\tb\t\r\nX-Latin: caf\xe9\r\n")) },
  { name: "absolute-form target", bytes: b("GET http://example.com/x?y HTTP/1.1\r\nHost: example.com\r\n\r\n") },
  { name: "asterisk-form OPTIONS", bytes: b("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n") },
  { name: "empty lines before the request line", bytes: b("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n") },
  { name: "chunked: upper-case hex, empty trailers", bytes: b("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n") },
  { name: "Transfer-Encoding value in another case", bytes: b("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n") },
  { name: "Content-Length: 0 and leading zeros", bytes: b("POST /0 HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\nPOST /1 HTTP/1.1\r\nHost: a\r\nContent-Length: 003\r\n\r\nabc") },
  { name: "Expect: 100-continue", bytes: b("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi") },
  { name: "a WebSocket upgrade", bytes: b("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n") },
  { name: "many headers", bytes: b(get(Array.from({ length: 90 }, (_, i) => `X-H${i}: ${i}\r\n`).join(""))) },
  { name: "methods: DELETE, PATCH, PUT", bytes: b("DELETE /x HTTP/1.1\r\nHost: a\r\n\r\nPATCH /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nxPUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n") },
  { name: "a head under the size limit", bytes: b(get(`X-Big: ${"v".repeat(12_000)}\r\n`)) },

  // Framing: Content-Length and Transfer-Encoding.
  { name: "Content-Length and Transfer-Encoding", bytes: b("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n") },
  { name: "Transfer-Encoding and Content-Length", bytes: b("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n") },
  { name: "two Content-Lengths, different", bytes: b("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd") },
  { name: "two Content-Lengths, the same", bytes: b("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc") },
  { name: "Content-Length list", bytes: b("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc") },
  { name: "Content-Length with a sign", bytes: b("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc") },
  { name: "Content-Length negative", bytes: b("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n") },
  { name: "Content-Length hex", bytes: b("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x3\r\n\r\nabc") },
  { name: "Content-Length with a space inside", bytes: b("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n") },
  { name: "Transfer-Encoding: identity", bytes: b("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n") },
  { name: "Transfer-Encoding: chunked, identity", bytes: b("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n") },
  { name: "Transfer-Encoding: xchunked", bytes: b("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n") },
  { name: "Transfer-Encoding: chunked twice", bytes: b("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n") },
  { name: "Transfer-Encoding: gzip, chunked", bytes: b("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"), stricter: "a transfer coding the server cannot decode is refused (501, RFC 9112 §6.1) instead of handing the application coded bytes" },
  { name: "Transfer-Encoding in HTTP/1.0", bytes: b("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), stricter: "RFC 9112 §6.1: the framing of an HTTP/1.0 message with Transfer-Encoding is faulty" },

  // Chunks.
  { name: "chunk size not hex", bytes: b("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n") },
  { name: "chunk size overflows", bytes: b("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\n") },
  { name: "chunk size with a space", bytes: b("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n") },
  { name: "chunk data without CRLF", bytes: b("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n") },
  { name: "chunk size line with a bare LF", bytes: b("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n") },
  { name: "chunk extension with a control character", bytes: b("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;a=\x01\r\nabc\r\n0\r\n\r\n") },
  { name: "trailer with obs-fold", bytes: b("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: a\r\n b\r\n\r\n") },

  // Line endings and characters.
  { name: "bare LF line endings", bytes: b("GET / HTTP/1.1\nHost: a\n\n") },
  { name: "bare CR in a header value", bytes: b(get("X-A: a\rb\r\n")) },
  { name: "bare CR in the request line", bytes: b("GET /\r HTTP/1.1\r\nHost: a\r\n\r\n") },
  { name: "obs-fold", bytes: b(get("X-A: a\r\n folded\r\n")) },
  { name: "space before the colon", bytes: b("GET / HTTP/1.1\r\nHost : a\r\n\r\n") },
  { name: "header name with a non-token character", bytes: b(get("X@A: a\r\n")) },
  { name: "NUL in a header value", bytes: b(get("X-A: a\x00b\r\n")) },
  { name: "DEL in a header value", bytes: b(get("X-A: a\x7fb\r\n")) },
  { name: "a line that is only a colon", bytes: b(get(": a\r\n")) },
  { name: "whitespace before the first header", bytes: b("GET / HTTP/1.1\r\n Host: a\r\n\r\n") },

  // The request line.
  { name: "lower-case method", bytes: b("get / HTTP/1.1\r\nHost: a\r\n\r\n") },
  { name: "unknown method", bytes: b("FOO / HTTP/1.1\r\nHost: a\r\n\r\n") },
  { name: "method with a non-token character", bytes: b("G@T / HTTP/1.1\r\nHost: a\r\n\r\n") },
  { name: "two spaces after the method", bytes: b("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), stricter: "RFC 9112 §3: one SP between the parts of the request line; parsers that disagree on extra whitespace split a request line differently" },
  { name: "no HTTP version", bytes: b("GET /\r\nHost: a\r\n\r\n"), stricter: "an HTTP/0.9 request line: the server speaks HTTP/1.0 and 1.1 only (node:http takes it as 0.9, headers and all)" },
  { name: "space after the version", bytes: b("GET / HTTP/1.1 \r\nHost: a\r\n\r\n") },
  { name: "lower-case http", bytes: b("GET / http/1.1\r\nHost: a\r\n\r\n") },
  { name: "HTTP/1.2", bytes: b("GET / HTTP/1.2\r\nHost: a\r\n\r\n") },
  { name: "HTTP/2.0", bytes: b("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), stricter: "505: another major version in HTTP/1.1 framing is not HTTP/2 (node:http hands it to the app as 2.0)" },
  { name: "control character in the target", bytes: b("GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n") },
  { name: "non-ASCII byte in the target", bytes: b("GET /caf\xe9 HTTP/1.1\r\nHost: a\r\n\r\n") },
  { name: "CONNECT", bytes: b("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"), stricter: "the server is no proxy: 501, where node:http hands the socket to a 'connect' listener or drops it" },

  // Host.
  { name: "HTTP/1.1 without Host", bytes: b("GET / HTTP/1.1\r\n\r\n") },
  { name: "two Host headers", bytes: b("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), stricter: "RFC 9112 §3.2: more than one Host is answered with 400 (the app did so already; now the parser does)" },

  // Expectations and sizes.
  { name: "an expectation other than 100-continue", bytes: b(get("Expect: something\r\n")) },
  { name: "a head over the size limit", bytes: b(get(`X-Big: ${"v".repeat(20_000)}\r\n`)) },
];
