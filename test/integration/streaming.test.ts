import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { Readable } from "node:stream";
import { StreamingError, StreamingResponse, type Dependency, type StreamController } from "../../src/index.js";
import { decodeChunked, rawExchange, serve, sleep, splitResponse, testApp, waitFor, type Served } from "../helpers.js";

describe("StreamingResponse over a socket", () => {
  let served: Served;
  const app = testApp({ maxStreamsPerClient: 4 });
  const log: string[] = [];
  const resource: Dependency<string> = function* () {
    log.push("dep open");
    try {
      yield "handle";
    } finally {
      log.push("dep closed");
    }
  };

  app.get("/three", () => new StreamingResponse(["a", "bb", "ccc"]));
  app.get("/tiny", () => new StreamingResponse(function* () {
    for (let i = 0; i < 10_000; i++) yield "x";
  }()));
  app.get("/tokens", () => new StreamingResponse(async function* () {
    for (const token of ["Hel", "lo", " wor", "ld"]) {
      yield token;
      await sleep(300);
    }
  }()));
  app.get("/bytes", () => new StreamingResponse([new Uint8Array([1, 2]), Buffer.from([3])]));
  app.get("/readable", () => new StreamingResponse(Readable.from(["r1", "r2"]), { mediaType: "text/csv" }));
  app.get("/web", () => new StreamingResponse(new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode("web1"));
      controller.enqueue(new TextEncoder().encode("web2"));
      controller.close();
    },
  })));
  app.get("/fail-early", () => new StreamingResponse(async function* () {
    throw new Error("no data today");
  }()));
  app.get("/fail-late", () => new StreamingResponse(function* () {
    yield "part1;";
    yield "part2;";
    throw new Error("broke mid-stream");
  }(), { onError: () => "ERROR" }));
  app.get("/endless", (_req, deps) => new StreamingResponse(async function* () {
    try {
      for (let i = 0; ; i++) {
        yield `${deps.res}-${i}\n`;
        await sleep(5);
      }
    } finally {
      log.push("finally");
    }
  }()), { dependencies: { res: resource } });
  app.get("/controller", () => new StreamingResponse(async function* (stream) {
    const block = Buffer.alloc(64 * 1024, "z");
    let waits = 0;
    for (let i = 0; i < 64; i++) {
      if (stream.backpressure) {
        waits++;
        await stream.drained();
      }
      yield block;
    }
    log.push(`bytesSent>0:${stream.bytesSent > 0} aborted:${stream.signal.aborted} waits>=0:${waits >= 0}`);
  }, { monitorMemory: true }));
  app.get("/held", () => new StreamingResponse(async function* (stream) {
    yield "open\n";
    await new Promise((resolve) => stream.signal.addEventListener("abort", resolve));
  }));

  before(async () => {
    served = await serve(app);
  });
  after(() => served.close());

  test("chunked framing is byte-exact and small chunks are coalesced", async () => {
    const { data } = await rawExchange(served.port, "GET /three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    const { head, body } = splitResponse(data);
    assert.match(head, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(head, /\r\nTransfer-Encoding: chunked/i);
    assert.match(head, /\r\nContent-Type: text\/plain; charset=utf-8/i);
    assert.equal(body.toString("latin1"), "6\r\nabbccc\r\n0\r\n\r\n");
  });

  test("ten thousand one-byte chunks leave in a few writes", async () => {
    const { data } = await rawExchange(served.port, "GET /tiny HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    const { chunks, complete } = decodeChunked(splitResponse(data).body);
    assert.equal(complete, true);
    assert.equal(Buffer.concat(chunks).toString(), "x".repeat(10_000));
    assert.ok(chunks.length <= 2, `expected the chunks coalesced, got ${chunks.length} wire chunks`);
  });

  test("a chunk is not held back while the producer waits", async () => {
    const started = Date.now();
    const res = await fetch(`${served.url}/tokens`);
    const reader = res.body!.getReader();
    const first = await reader.read();
    const firstAt = Date.now() - started;
    assert.equal(new TextDecoder().decode(first.value), "Hel");
    // The producer sleeps 300 ms after each token; the first token must not wait for the second.
    assert.ok(firstAt < 250, `first token after ${firstAt} ms`);
    let rest = "";
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value);
    assert.equal(rest, "lo world");
  });

  test("bytes, Node Readables and web ReadableStreams are sources", async () => {
    const bytes = await fetch(`${served.url}/bytes`);
    assert.equal(bytes.headers.get("content-type"), "application/octet-stream");
    assert.deepEqual(new Uint8Array(await bytes.arrayBuffer()), new Uint8Array([1, 2, 3]));
    const readable = await fetch(`${served.url}/readable`);
    assert.equal(readable.headers.get("content-type"), "text/csv");
    assert.equal(await readable.text(), "r1r2");
    assert.equal(await (await fetch(`${served.url}/web`)).text(), "web1web2");
  });

  test("a source that fails before the first byte gives a 500", async () => {
    const res = await fetch(`${served.url}/fail-early`);
    assert.equal(res.status, 500);
    assert.deepEqual(await res.json(), { detail: "Internal Server Error" });
  });

  test("a source that fails mid-stream cuts the connection without a terminating chunk", async () => {
    const before = app.stats().streams.failed;
    const { data, closed } = await rawExchange(served.port, "GET /fail-late HTTP/1.1\r\nHost: x\r\n\r\n");
    assert.equal(closed, true);
    const { chunks, complete } = decodeChunked(splitResponse(data).body);
    assert.equal(complete, false);
    assert.equal(Buffer.concat(chunks).toString(), "part1;part2;ERROR");
    assert.equal(app.stats().streams.failed, before + 1);
    // fetch reports the incomplete body as an error.
    const res = await fetch(`${served.url}/fail-late`);
    await assert.rejects(res.text());
  });

  test("a client disconnect runs the source's finally, counts as aborted and closes dependencies", async () => {
    log.length = 0;
    const before = app.stats().streams.aborted;
    const controller = new AbortController();
    const res = await fetch(`${served.url}/endless`, { signal: controller.signal });
    const reader = res.body!.getReader();
    const first = await reader.read();
    assert.match(new TextDecoder().decode(first.value), /^handle-0/);
    controller.abort();
    await waitFor(() => log.includes("dep closed"), 3_000, "dependency cleanup");
    assert.deepEqual(log, ["dep open", "finally", "dep closed"]);
    assert.equal(app.stats().streams.aborted, before + 1);
    assert.equal(app.stats().streams.active, 0);
  });

  test("the controller exposes backpressure, drained() and records peak buffered bytes", async () => {
    log.length = 0;
    const res = await fetch(`${served.url}/controller`);
    assert.equal((await res.arrayBuffer()).byteLength, 64 * 64 * 1024);
    await waitFor(() => log.length === 1);
    assert.equal(log[0], "bytesSent>0:true aborted:false waits>=0:true");
    assert.ok(app.stats().streams.peakBufferedBytes > 0);
  });

  test("HEAD gets the headers of the stream and no body", async () => {
    const { data } = await rawExchange(served.port, "HEAD /three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    const { head, body } = splitResponse(data);
    assert.match(head, /^HTTP\/1\.1 200/);
    assert.match(head, /content-type: text\/plain/i);
    assert.equal(body.length, 0);
  });

  test("HEAD closes a generator source after its first chunk", async () => {
    log.length = 0;
    const { data } = await rawExchange(served.port, "HEAD /endless HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    const { head, body } = splitResponse(data);
    assert.match(head, /^HTTP\/1\.1 200/);
    assert.equal(body.length, 0);
    await waitFor(() => log.includes("dep closed"), 3_000, "dependency cleanup");
    assert.deepEqual(log, ["dep open", "finally", "dep closed"]);
  });

  test("HTTP/1.0 clients get a close-delimited body", async () => {
    const { data, closed } = await rawExchange(served.port, "GET /three HTTP/1.0\r\n\r\n");
    const { head, body } = splitResponse(data);
    assert.equal(closed, true);
    assert.doesNotMatch(head, /transfer-encoding/i);
    assert.equal(body.toString(), "abbccc");
  });

  test("concurrent streams per client address are capped with 429", async () => {
    const sockets = [];
    try {
      for (let i = 0; i < 4; i++) {
        const socket = connect(served.port, "127.0.0.1");
        socket.write("GET /held HTTP/1.1\r\nHost: x\r\n\r\n");
        await new Promise((resolve) => socket.once("data", resolve));
        sockets.push(socket);
      }
      const res = await fetch(`${served.url}/held`);
      assert.equal(res.status, 429);
      assert.ok(res.headers.get("retry-after"));
    } finally {
      for (const socket of sockets) socket.destroy();
    }
    await waitFor(() => app.stats().streams.active === 0, 3_000, "held streams to end");
    const again = await fetch(`${served.url}/three`);
    assert.equal(again.status, 200);
    await again.text();
  });
});

describe("streams and slow clients", () => {
  test("a client that stops reading is cut after streamIdleTimeoutMs", async () => {
    const app = testApp({ streamIdleTimeoutMs: 300 });
    let finallyRan = false;
    app.get("/big", () => new StreamingResponse(function* () {
      try {
        const block = Buffer.alloc(256 * 1024, "b");
        for (;;) yield block;
      } finally {
        finallyRan = true;
      }
    }()));
    const served = await serve(app);
    try {
      const socket = connect(served.port, "127.0.0.1");
      socket.write("GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
      await new Promise((resolve) => socket.once("data", resolve));
      socket.pause();
      await waitFor(() => app.stats().streams.aborted === 1, 5_000, "the idle stream to be cut");
      assert.equal(finallyRan, true);
      assert.equal(app.stats().streams.active, 0);
      socket.destroy();
    } finally {
      await served.close();
    }
  });

  test("the source is pulled only as fast as a slow reader takes bytes", async () => {
    const app = testApp();
    let produced = 0;
    app.get("/huge", () => new StreamingResponse(function* () {
      const block = Buffer.alloc(64 * 1024, "h");
      // 64 GiB if nothing stopped it.
      for (let i = 0; i < 1_000_000; i++) {
        produced += block.length;
        yield block;
      }
    }()));
    const served = await serve(app);
    try {
      const socket = connect(served.port, "127.0.0.1");
      socket.write("GET /huge HTTP/1.1\r\nHost: x\r\n\r\n");
      let received = 0;
      socket.on("data", (d: Buffer) => {
        received += d.length;
        // Read at about 1 MiB/s: 64 KiB, then a pause of 62 ms.
        socket.pause();
        setTimeout(() => socket.resume(), Math.round((d.length / (1024 * 1024)) * 1000));
      });
      const rssBefore = process.memoryUsage().rss;
      await sleep(2_000);
      const rssAfter = process.memoryUsage().rss;
      socket.destroy();
      assert.ok(received > 512 * 1024, `received ${received}`);
      // What the server produced beyond what the client took is bounded by socket buffers.
      assert.ok(produced - received < 16 * 1024 * 1024, `produced ${produced}, received ${received}`);
      assert.ok(rssAfter - rssBefore < 64 * 1024 * 1024, `RSS grew by ${rssAfter - rssBefore}`);
    } finally {
      await served.close();
    }
  });
});

describe("paused readers", () => {
  test("a stream whose reader stopped holds at most one chunk (64 KiB + 2 KiB) in user space, whatever chunkSize", { timeout: 30_000 }, async () => {
    const app = testApp({ maxStreamsPerClient: 100 });
    const controllers: StreamController[] = [];
    app.get("/paused", (req) => new StreamingResponse(function* (stream) {
      controllers.push(stream);
      const row = Buffer.alloc(1024, "r");
      for (;;) yield row;
    }, { chunkSize: Number(req.query.get("chunkSize")) }));
    const served = await serve(app);
    const sockets: Socket[] = [];
    try {
      for (const chunkSize of [65536, 16384, 8192, 1024]) {
        controllers.length = 0;
        for (let i = 0; i < 20; i++) {
          const socket = connect(served.port, "127.0.0.1");
          sockets.push(socket);
          socket.write(`GET /paused?chunkSize=${chunkSize} HTTP/1.1\r\nHost: x\r\n\r\n`);
          await new Promise((resolve) => socket.once("data", resolve));
          socket.pause();
        }
        // Until every stream waits: nothing sent for 300 ms.
        let last = "";
        let stableSince = Date.now();
        await waitFor(() => {
          const now = controllers.map((c) => c.bytesSent).join();
          if (now !== last) [last, stableSince] = [now, Date.now()];
          return Date.now() - stableSince > 300;
        }, 20_000, "the paused streams to wait");
        for (const c of controllers) {
          assert.ok(c.backpressure, `chunkSize ${chunkSize}: a paused stream waits on backpressure`);
          assert.ok(c.bufferedBytes <= 64 * 1024 + 2 * 1024, `chunkSize ${chunkSize}: a paused stream holds ${c.bufferedBytes} bytes`);
        }
        for (const socket of sockets.splice(0)) socket.destroy();
        await waitFor(() => app.stats().streams.active === 0, 5_000, "the streams to end");
      }
    } finally {
      for (const socket of sockets) socket.destroy();
      await served.close();
    }
  });
});

describe("StreamingResponse without a server", () => {
  test("text() and bytes() consume the source", async () => {
    assert.equal(await new StreamingResponse(["a", "b"]).text(), "ab");
    const bytes = await new StreamingResponse(async function* () {
      yield new Uint8Array([1]);
      yield "2";
    }()).bytes();
    assert.deepEqual([...bytes], [1, 0x32]);
  });

  test("a failing source raises StreamingError with the cause", async () => {
    const response = new StreamingResponse(function* () {
      yield "x";
      throw new Error("source broke");
    }());
    await assert.rejects(response.text(), (error: unknown) =>
      error instanceof StreamingError && (error.cause as Error).message === "source broke");
  });

  test("bad chunk sizes are refused", () => {
    assert.throws(() => new StreamingResponse([], { chunkSize: 0 }), /chunkSize/);
  });
});

describe("compressed streams", () => {
  test("gzip and brotli are negotiated and each chunk is flushed at once", async () => {
    const { gunzipSync, brotliDecompressSync } = await import("node:zlib");
    const app = testApp();
    let release: () => void = () => undefined;
    app.get("/z", () => new StreamingResponse(async function* () {
      yield "first line\n";
      await new Promise<void>((resolve) => (release = resolve));
      yield "second line\n".repeat(1000);
    }(), { compress: true, mediaType: "text/plain" }));
    app.get("/plain", () => new StreamingResponse(["uncompressed"], { compress: true }));
    const served = await serve(app);
    try {
      for (const [accept, coding, decode] of [
        ["gzip, deflate", "gzip", gunzipSync],
        ["gzip;q=0.5, br", "br", brotliDecompressSync],
      ] as const) {
        const socket = connect(served.port, "127.0.0.1");
        socket.write(`GET /z HTTP/1.1\r\nHost: x\r\nAccept-Encoding: ${accept}\r\nConnection: close\r\n\r\n`);
        const chunks: Buffer[] = [];
        socket.on("data", (d: Buffer) => chunks.push(d));
        // The first line must be readable before the producer continues.
        await waitFor(() => {
          const data = Buffer.concat(chunks);
          const end = data.indexOf("\r\n\r\n");
          if (end < 0) return false;
          const { chunks: body } = decodeChunked(data.subarray(end + 4));
          try {
            return decode(Buffer.concat(body), { finishFlush: (coding === "gzip" ? 2 : 1) }).toString() === "first line\n";
          } catch {
            return false;
          }
        }, 3_000, `the first ${coding} chunk`);
        release();
        await new Promise((resolve) => socket.once("close", resolve));
        const { head, body } = splitResponse(Buffer.concat(chunks));
        assert.match(head, new RegExp(`content-encoding: ${coding}`, "i"));
        assert.match(head, /vary: accept-encoding/i);
        const decoded = decode(Buffer.concat(decodeChunked(body).chunks)).toString();
        assert.equal(decoded, "first line\n" + "second line\n".repeat(1000));
      }
      const plain = await rawExchange(served.port, "GET /plain HTTP/1.1\r\nHost: x\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n");
      const { head, body } = splitResponse(plain.data);
      assert.doesNotMatch(head, /content-encoding/i);
      assert.equal(Buffer.concat(decodeChunked(body).chunks).toString(), "uncompressed");
    } finally {
      await served.close();
    }
  });
});
