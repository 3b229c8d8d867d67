/**
 * The native HTTP/1.1 request parser against node:http's, on a corpus of valid requests and of
 * request-smuggling shapes (test/native/http-corpus.ts): the same requests accepted with the same
 * fields, the same refused with the same status, and where the native parser is stricter on
 * purpose, node:http accepting and the native parser refusing. Every split of an input gives the
 * same events as the whole.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { connect, type AddressInfo, type Socket } from "node:net";
import { corpus } from "./http-corpus.js";
import { nativeOrSkip } from "./native-helpers.js";
import type { NativeBinding } from "../../src/node/native/binding.js";

/** What a parser made of one connection's bytes. */
interface Verdict {
  requests: Array<{ method: string; target: string; version: string; headers: string[]; body: string }>;
  /** The status it refused with, "upgrade" where the protocol switched, or null. */
  outcome: number | "upgrade" | null;
}

const MAX_HEAD = 16 * 1024; // node:http's maxHeaderSize
const MAX_HEADERS = 2_000;

let server: Server;
let port = 0;
/** What node:http saw on each connection, by the client's local port. */
const seen = new Map<number, Verdict>();

function verdictOf(socket: Socket): Verdict {
  const key = socket.remotePort ?? 0;
  let verdict = seen.get(key);
  if (verdict === undefined) seen.set(key, (verdict = { requests: [], outcome: null }));
  return verdict;
}

function record(req: IncomingMessage, body: string): void {
  verdictOf(req.socket).requests.push({ method: req.method ?? "", target: req.url ?? "", version: req.httpVersion, headers: req.rawHeaders, body });
}

before(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (d: Buffer) => chunks.push(d));
    req.on("end", () => {
      record(req, Buffer.concat(chunks).toString("latin1"));
      res.end("ok");
    });
  });
  server.on("clientError", (error: NodeJS.ErrnoException, socket: Socket) => {
    // The statuses node:http's own clientError handling answers with.
    const status = error.code === "HPE_HEADER_OVERFLOW" ? 431 : error.code === "HPE_CHUNK_EXTENSIONS_OVERFLOW" ? 413 : 400;
    verdictOf(socket).outcome = status;
    socket.destroy();
  });
  server.on("checkExpectation", (req, res) => {
    verdictOf(req.socket).outcome = 417;
    res.writeHead(417).end();
    req.socket.destroy();
  });
  server.on("upgrade", (req: IncomingMessage, socket: Socket) => {
    record(req, "");
    verdictOf(socket).outcome = "upgrade";
    socket.destroy();
  });
  server.on("connect", (req: IncomingMessage, socket: Socket) => {
    record(req, "");
    verdictOf(socket).outcome = "upgrade";
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
});

after(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** Send the bytes to node:http on one connection, end it, and take what the server saw. */
function nodeVerdict(bytes: Buffer): Promise<Verdict> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error("node:http did not finish with the connection in time"));
    }, 5_000);
    let key = 0;
    socket.on("connect", () => {
      key = socket.localPort ?? 0;
      socket.end(bytes);
    });
    const received: Buffer[] = [];
    socket.on("data", (d: Buffer) => received.push(d));
    socket.on("error", () => undefined);
    socket.on("close", () => {
      clearTimeout(timer);
      // The server may see the end after the client does: give it a turn.
      setTimeout(() => {
        const verdict = seen.get(key) ?? { requests: [], outcome: null };
        seen.delete(key);
        // A refusal node:http answers itself, before any event (a missing Host): its status line.
        if (verdict.outcome === null) {
          for (const [, status] of Buffer.concat(received).toString("latin1").matchAll(/HTTP\/1\.[01] (\d{3}) /g)) {
            if (status !== "200" && status !== "100") verdict.outcome = Number(status);
          }
        }
        resolve(verdict);
      }, 20);
    });
  });
}

function nativeVerdict(binding: NativeBinding, chunks: Buffer[]): Verdict {
  const verdict: Verdict = { requests: [], outcome: null };
  let head: Verdict["requests"][number] | null = null;
  for (const event of binding.parseHttp(chunks, MAX_HEAD, MAX_HEADERS, Number.MAX_VALUE)) {
    const [kind, ...rest] = event;
    if (kind === "head") {
      const [method, target, minor, headers, , upgrade] = rest as [string, string, number, string[], boolean, boolean];
      head = { method, target, version: `1.${minor}`, headers, body: "" };
      if (upgrade) verdict.requests.push(head);
    } else if (kind === "end") {
      head!.body = (rest[0] as Buffer).toString("latin1");
      verdict.requests.push(head!);
    } else if (kind === "error") {
      verdict.outcome = rest[0] as number;
    } else if (kind === "upgraded") {
      verdict.outcome = "upgrade";
    }
  }
  return verdict;
}

for (const item of corpus) {
  test(`http parser vs node:http: ${item.name}`, { timeout: 20_000 }, async (t) => {
    const binding = nativeOrSkip(t);
    if (binding === null) return;
    const theirs = await nodeVerdict(item.bytes);
    const ours = nativeVerdict(binding, [item.bytes]);
    if (item.stricter !== undefined) {
      assert.notEqual(typeof theirs.outcome, "number", `node:http accepts this (${JSON.stringify(theirs)})`);
      assert.equal(typeof ours.outcome, "number", `the native parser refuses this: ${item.stricter}`);
      assert.ok((ours.outcome as number) >= 400);
    } else {
      assert.deepEqual(ours, theirs);
    }
    // Any split of the input, and byte by byte, gives the same events.
    const whole = JSON.stringify(binding.parseHttp([item.bytes], MAX_HEAD, MAX_HEADERS, Number.MAX_VALUE));
    const step = Math.max(1, Math.floor(item.bytes.length / 200));
    for (let at = 0; at <= item.bytes.length; at += step) {
      const split: string = JSON.stringify(binding.parseHttp([item.bytes.subarray(0, at), item.bytes.subarray(at)], MAX_HEAD, MAX_HEADERS, Number.MAX_VALUE));
      assert.equal(split, whole, `split at ${at}`);
    }
    if (item.bytes.length <= 4_096) {
      const bytes = [...item.bytes].map((byte) => Buffer.from([byte]));
      assert.equal(JSON.stringify(binding.parseHttp(bytes, MAX_HEAD, MAX_HEADERS, Number.MAX_VALUE)), whole, "byte by byte");
    }
  });
}

test("http parser limits: header count (431), a declared or chunked body over the limit (413), the head size (431)", (t) => {
  const binding = nativeOrSkip(t);
  if (binding === null) return;
  const outcome = (text: string, maxHead = MAX_HEAD, maxHeaders = MAX_HEADERS, maxBody = 1_000): unknown =>
    binding.parseHttp([Buffer.from(text, "latin1")], maxHead, maxHeaders, maxBody).at(-1);
  const headers = Array.from({ length: 5 }, (_, i) => `X-${i}: ${i}\r\n`).join("");
  assert.deepEqual(outcome(`GET / HTTP/1.1\r\nHost: a\r\n${headers}\r\n`, MAX_HEAD, 5), ["error", 431, "Too many header fields"]);
  assert.equal((outcome(`GET / HTTP/1.1\r\nHost: a\r\n${headers}\r\n`, MAX_HEAD, 6) as unknown[])[0], "end");
  assert.deepEqual(outcome("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n"), ["error", 413, "Content Too Large"]);
  assert.deepEqual(outcome("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1f4\r\n" + "x".repeat(500) + "\r\n1f5\r\n"), ["error", 413, "Content Too Large"]);
  assert.deepEqual(outcome(`GET / HTTP/1.1\r\nHost: a\r\nX: ${"v".repeat(100)}\r\n\r\n`, 64), ["error", 431, "Request Header Fields Too Large"]);
  // A head that never ends is refused at the limit, not buffered without bound.
  assert.deepEqual(outcome(`GET / HTTP/1.1\r\nHost: a\r\nX: ${"v".repeat(100)}`, 64), ["error", 431, "Request Header Fields Too Large"]);
  // After Connection: close nothing more is read; after an upgrade the rest is the new protocol's.
  assert.deepEqual(outcome("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /next HTTP/1.1\r\n"), ["closed", 20]);
  assert.deepEqual(outcome("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x80"), ["upgraded", 2]);
});
