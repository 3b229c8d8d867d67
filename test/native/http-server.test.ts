/**
 * The native HTTP/1.1 server (native/src/server.c) through the addon, before the app runs on it:
 * over real sockets on 127.0.0.1, with fetch (undici, Node's own) and raw net sockets. Keep-alive, pipelined
 * requests answered in order whatever order the handler answers in, bodies in pieces, Expect:
 * 100-continue, refusals with their status (the handler never sees them), the timeouts, a slow
 * reader's backpressure, and a client that goes away mid-response.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nativeOrSkip } from "./native-helpers.js";
import { HTTP_END, HTTP_REQUEST, HTTP_WRITE, splitFields, type HttpServerHandle, type HttpServerOptions, type NativeBinding } from "../../src/node/native/binding.js";

interface SeenRequest {
  id: number;
  method: string;
  target: string;
  minor: number;
  flags: number;
  headers: string[];
  body: Buffer[];
  ended: Promise<void>;
}

/** A server whose handler the test gives; it records what the server reported. */
class Harness {
  readonly handle: HttpServerHandle;
  readonly requests: SeenRequest[] = [];
  readonly closes: Array<{ id: number; end: string }> = [];
  readonly drains = new Map<number, () => void>();
  private readonly bodyEnds = new Map<number, () => void>();
  port = 0;

  constructor(readonly binding: NativeBinding, options: HttpServerOptions, onRequest: (req: SeenRequest, h: Harness) => void) {
    this.handle = binding.createHttpServer({
      onRequest: (id, method, target, minor, flags, _length, fields) => {
        const headers = splitFields(fields);
        let resolve!: () => void;
        const ended = new Promise<void>((r) => (resolve = r));
        this.bodyEnds.set(id, resolve);
        const req: SeenRequest = { id, method, target, minor, flags, headers, body: [], ended };
        this.requests.push(req);
        onRequest(req, this);
      },
      onBody: (id, bytes) => this.requests.findLast((r) => r.id === id)?.body.push(bytes),
      onBodyEnd: (id) => this.bodyEnds.get(id)?.(),
      onDrain: (id) => this.drains.get(id)?.(),
      onClose: (id, end) => this.closes.push({ id, end: HTTP_END[end]! }),
    }, options);
    this.port = binding.serverListen(this.handle, "127.0.0.1", 0, 511, false);
  }

  /** A whole response: head and body in one write. */
  respond(id: number, status: number, body: string, headers: string[] = [], flags = 0): number {
    let head = `HTTP/1.1 ${status} X\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`;
    for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
    return this.binding.serverWrite(this.handle, id, `${head}\r\n${body}`, HTTP_WRITE.end | flags, 1 << 30);
  }

  close(): void {
    this.binding.serverClose(this.handle);
  }
}

/** Raw bytes in, everything the server sent until it closed (or `until` matched) out. */
function exchange(port: number, chunks: Array<string | Buffer>, options: { until?: RegExp; gapMs?: number } = {}): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let text = "";
    let done = false;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      socket.destroy();
      resolve({ text, closed });
    };
    socket.on("data", (d: Buffer) => {
      text += d.toString("latin1");
      if (options.until?.test(text)) finish(false);
    });
    socket.on("close", () => finish(true));
    socket.on("error", reject);
    socket.once("connect", async () => {
      for (const chunk of chunks) {
        socket.write(chunk);
        if (options.gapMs !== undefined) await new Promise((r) => setTimeout(r, options.gapMs));
      }
    });
  });
}

function statusLines(text: string): string[] {
  return text.match(/HTTP\/1\.1 \d{3}[^\r]*/g) ?? [];
}

test("keep-alive: requests one after another on one connection get their responses, and it stays open", { timeout: 10_000 }, async (t) => {
  const binding = nativeOrSkip(t);
  if (binding === null) return;
  const h = new Harness(binding, {}, (req, h) => h.respond(req.id, 200, `hello ${req.target}`, ["Content-Type", "text/plain"]));
  try {
    const res = await fetch(`http://127.0.0.1:${h.port}/fetched`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/plain");
    assert.equal(await res.text(), "hello /fetched");
    // Each request is sent once the response to the one before it arrived.
    const socket = connect(h.port, "127.0.0.1");
    await new Promise((resolve) => socket.once("connect", resolve));
    for (const path of ["/a", "/b", "/c"]) {
      const answer = new Promise<string>((resolve) => socket.once("data", (d: Buffer) => resolve(d.toString("latin1"))));
      socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
      assert.ok((await answer).endsWith(`\r\n\r\nhello ${path}`));
    }
    assert.ok(!socket.destroyed && socket.readyState === "open");
    socket.destroy();
    assert.equal(binding.serverStats(h.handle).requests, 4);
    assert.deepEqual(h.requests.slice(1).map((r) => [r.method, r.target, r.minor, (r.flags & HTTP_REQUEST.keepAlive) !== 0]), [
      ["GET", "/a", 1, true], ["GET", "/b", 1, true], ["GET", "/c", 1, true],
    ]);
    assert.equal(new Set(h.requests.slice(1).map((r) => r.id)).size, 1, "one connection");
  } finally {
    h.close();
  }
});

test("pipelined requests are answered in order, whichever the handler answers first", { timeout: 10_000 }, async (t) => {
  const binding = nativeOrSkip(t);
  if (binding === null) return;
  const h = new Harness(binding, {}, (req, h) => {
    // The first is answered late; the next ones at once as they are reported.
    if (req.target === "/1") setTimeout(() => h.respond(req.id, 200, "one"), 50);
    else h.respond(req.id, 200, req.target === "/2" ? "two" : "three");
  });
  try {
    const pipeline = "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\nGET /3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    const { text, closed } = await exchange(h.port, [pipeline]);
    assert.ok(closed, "Connection: close ends the connection after its response");
    const bodies = text.split("\r\n\r\n").slice(1).map((part) => part.split("HTTP/1.1")[0]);
    assert.deepEqual(bodies, ["one", "two", "three"]);
    // The second was not even parsed before the first was answered.
    assert.equal(h.requests.length, 3);
  } finally {
    h.close();
  }
});

test("a chunked body in pieces arrives whole, in order, and its end is reported", { timeout: 10_000 }, async (t) => {
  const binding = nativeOrSkip(t);
  if (binding === null) return;
  const h = new Harness(binding, {}, (req, h) => {
    void req.ended.then(() => h.respond(req.id, 200, `got ${Buffer.concat(req.body).toString()}`, [], HTTP_WRITE.close));
  });
  try {
    const { text } = await exchange(h.port, [
      "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", "lo\r\n", "6\r\n world\r\n0\r\n\r\n",
    ], { gapMs: 20 });
    assert.match(text, /^HTTP\/1\.1 200/);
    assert.ok(text.endsWith("got hello world"), text);
    assert.equal(h.requests[0]!.flags & HTTP_REQUEST.chunked, HTTP_REQUEST.chunked);
  } finally {
    h.close();
  }
});

test("Expect: 100-continue gets its interim response before the client sends the body", { timeout: 10_000 }, async (t) => {
  const binding = nativeOrSkip(t);
  if (binding === null) return;
  const h = new Harness(binding, {}, (req, h) => {
    void req.ended.then(() => h.respond(req.id, 201, Buffer.concat(req.body).toString(), [], HTTP_WRITE.close));
  });
  try {
    const text = await new Promise<string>((resolve, reject) => {
      const socket: Socket = connect(h.port, "127.0.0.1", () => {
        socket.write("PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
      });
      let got = "";
      socket.on("data", (d: Buffer) => {
        got += d.toString("latin1");
        if (got === "HTTP/1.1 100 Continue\r\n\r\n") socket.write("data");
      });
      socket.on("close", () => resolve(got));
      socket.on("error", reject);
    });
    assert.ok(text.startsWith("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201"), text);
    assert.ok(text.endsWith("\r\n\r\ndata"), text);
  } finally {
    h.close();
  }
});

test("malformed and oversized requests are refused with their status; the handler never sees them", { timeout: 10_000 }, async (t) => {
  const binding = nativeOrSkip(t);
  if (binding === null) return;
  const h = new Harness(binding, { maxHeaderBytes: 1024 }, (req, h) => h.respond(req.id, 200, "ok"));
  try {
    const cases: Array<[string, string]> = [
      ["GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", "400 Bad Request"],
      ["GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", "400 Bad Request"],
      [`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(2000)}\r\n\r\n`, "431 Request Header Fields Too Large"],
      ["GET / HTTP/3.0\r\nHost: x\r\n\r\n", "505 HTTP Version Not Supported"],
      ["GET / HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\n\r\n", "417 Expectation Failed"],
    ];
    for (const [input, status] of cases) {
      const { text, closed } = await exchange(h.port, [input]);
      assert.equal(text, `HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`, input);
      assert.ok(closed);
    }
    assert.equal(h.requests.length, 0);
    // A refusal after a good request: the good one is answered first, then the refusal.
    const { text } = await exchange(h.port, ["GET /ok HTTP/1.1\r\nHost: x\r\n\r\nGET /\x01 HTTP/1.1\r\n\r\n"]);
    assert.deepEqual(statusLines(text), ["HTTP/1.1 200 X", "HTTP/1.1 400 Bad Request"]);
    assert.equal(h.requests.length, 1);
  } finally {
    h.close();
  }
});

test("timeouts: an idle keep-alive connection is closed, a head that does not end gets 408", { timeout: 10_000 }, async (t) => {
  const binding = nativeOrSkip(t);
  if (binding === null) return;
  const h = new Harness(binding, { keepAliveTimeoutMs: 200, headersTimeoutMs: 300 }, (req, h) => h.respond(req.id, 200, "ok"));
  try {
    const started = Date.now();
    const idle = await exchange(h.port, ["GET / HTTP/1.1\r\nHost: x\r\n\r\n"]);
    assert.ok(idle.closed);
    assert.deepEqual(statusLines(idle.text), ["HTTP/1.1 200 X"]);
    assert.ok(Date.now() - started >= 150, "not closed before its keep-alive timeout");
    const slow = await exchange(h.port, ["GET / HTTP/1.1\r\nHost: x\r\n"]);
    assert.equal(slow.text, "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    assert.equal(h.requests.length, 1);
    // The keep-alive connection that had a request is reported closed by the timeout.
    assert.deepEqual(h.closes.map((c) => c.end), ["timeout"]);
  } finally {
    h.close();
  }
});

for (const [how, extra] of [["copied", 0], ["kept by reference", HTTP_WRITE.external]] as const) test(`a slow reader: writes (${how}) past the threshold wait for drain, and every byte arrives in order`, { timeout: 20_000 }, async (t) => {
  const binding = nativeOrSkip(t);
  if (binding === null) return;
  const CHUNK = 64 * 1024;
  const CHUNKS = 256; // 16 MiB: more than the socket buffers hold
  const DRAIN_OVER = 256 * 1024;
  let peakBuffered = 0;
  let waits = 0;
  const h = new Harness(binding, {}, (req, h) => {
    const b = h.binding;
    b.serverWrite(h.handle, req.id, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP_WRITE.latin1, DRAIN_OVER);
    let sent = 0;
    const pump = (): void => {
      while (sent < CHUNKS) {
        const chunk = Buffer.alloc(CHUNK, sent % 251);
        sent++;
        const last = sent === CHUNKS;
        const buffered = b.serverWrite(h.handle, req.id, chunk, extra | HTTP_WRITE.chunk | (last ? HTTP_WRITE.last | HTTP_WRITE.end : 0), DRAIN_OVER);
        assert.ok(buffered >= 0);
        peakBuffered = Math.max(peakBuffered, buffered);
        if (!last && buffered > DRAIN_OVER) {
          waits++;
          h.drains.set(req.id, pump);
          return;
        }
      }
    };
    pump();
  });
  try {
    const res = await fetch(`http://127.0.0.1:${h.port}/big`);
    let index = 0;
    let offset = 0;
    for await (const bytes of res.body as AsyncIterable<Uint8Array>) {
      for (let i = 0; i < bytes.length; i += 4096) {
        assert.equal(bytes[i], Math.floor((offset + i) / CHUNK) % 251);
      }
      offset += bytes.length;
      index++;
      if (index % 32 === 0) await new Promise((r) => setTimeout(r, 5)); // a reader slower than the server
    }
    assert.equal(offset, CHUNK * CHUNKS);
    assert.ok(waits > 0, "the writer waited for drain");
    assert.ok(peakBuffered <= DRAIN_OVER + CHUNK + 16, `buffered at most one chunk past the threshold, was ${peakBuffered}`);
  } finally {
    h.close();
  }
});

for (const [how, spliceLoopback] of [["sendfile", 1], ["copied from the file", 0]] as const) test(`file regions (${how}) to a slow reader: chunked between other chunks, every byte in order`, { timeout: 20_000 }, async (t) => {
  const binding = nativeOrSkip(t);
  if (binding === null) return;
  const dir = mkdtempSync(join(tmpdir(), "catzilla-regions-"));
  const file = join(dir, "data.bin");
  // Each 4 KiB block holds its own index: a byte out of place says where it came from.
  const BLOCKS = 2048; // 8 MiB
  const content = Buffer.alloc(BLOCKS * 4096);
  for (let i = 0; i < BLOCKS; i++) content.fill(i % 251, i * 4096, (i + 1) * 4096);
  writeFileSync(file, content);
  const fd = openSync(file, "r");
  const REGION = 1024 * 1024;
  let waits = 0;
  const h = new Harness(binding, { spliceLoopback }, (req, h) => {
    const b = h.binding;
    b.serverWrite(h.handle, req.id, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP_WRITE.latin1, 0);
    let at = 0;
    const pump = (): void => {
      while (at < content.length) {
        // A marker chunk, then the next region (skipping the first 100 bytes of the file).
        b.serverWrite(h.handle, req.id, `[${at}]`, HTTP_WRITE.chunk, 1 << 30);
        const start = Math.max(at, 100);
        const length = Math.min(REGION, content.length - start);
        at = start + length;
        const last = at === content.length;
        const buffered = b.serverWriteFile(h.handle, req.id, fd, start, length, HTTP_WRITE.chunk | (last ? HTTP_WRITE.last | HTTP_WRITE.end : 0), 256 * 1024);
        assert.ok(buffered >= 0);
        if (!last && buffered > 256 * 1024) {
          waits++;
          h.drains.set(req.id, pump);
          return;
        }
      }
    };
    pump();
    // The server keeps its own descriptor: the caller's may go at once.
  });
  try {
    const res = await fetch(`http://127.0.0.1:${h.port}/file`);
    const parts: Buffer[] = [];
    let index = 0;
    for await (const bytes of res.body as AsyncIterable<Uint8Array>) {
      parts.push(Buffer.from(bytes));
      if (++index % 16 === 0) await new Promise((r) => setTimeout(r, 5)); // a reader slower than the server
    }
    const body = Buffer.concat(parts);
    let expected = "";
    const pieces: Buffer[] = [];
    for (let at = 0; at < content.length;) {
      pieces.push(Buffer.from(`[${at}]`));
      const start = Math.max(at, 100);
      const end = Math.min(start + REGION, content.length);
      pieces.push(content.subarray(start, end));
      at = end;
    }
    expected = Buffer.concat(pieces).toString("latin1");
    assert.equal(body.length, expected.length);
    assert.ok(body.toString("latin1") === expected, "the body is the markers and the file's regions, in order");
    assert.ok(waits > 0, "the writer waited for drain");
  } finally {
    closeSync(fd);
    h.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a client that goes away mid-response is reported closed by the peer", { timeout: 10_000 }, async (t) => {
  const binding = nativeOrSkip(t);
  if (binding === null) return;
  let closedId = -1;
  const h = new Harness(binding, {}, (req, h) => {
    closedId = req.id;
    h.binding.serverWrite(h.handle, req.id, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP_WRITE.latin1, 1 << 20);
    h.binding.serverWrite(h.handle, req.id, "first", HTTP_WRITE.chunk, 1 << 20);
  });
  try {
    await exchange(h.port, ["GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"], { until: /first\r\n$/ });
    for (let i = 0; i < 100 && h.closes.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(h.closes, [{ id: closedId, end: "peer" }]);
    // Its writes after that find no connection.
    assert.equal(binding.serverWrite(h.handle, closedId, "late", HTTP_WRITE.chunk, 0), -1);
  } finally {
    h.close();
  }
});
