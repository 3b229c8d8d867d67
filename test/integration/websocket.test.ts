import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { constants, deflateRawSync, inflateRawSync } from "node:zlib";
import { connect as connectRaw } from "node:net";
import WS from "ws";
import {
  CatzillaError, HTTPError, WebSocketDisconnect, WebSocketException, WebSocketInvalidJSONError, WebSocketTimeoutError, type Dependency, type WebSocket,
} from "../../src/index.js";
import { serve, sleep, testApp, waitFor, type Served } from "../helpers.js";
import { clientFrame, connectWs, rawWebSocket } from "../ws-helpers.js";

const open = (url: string, options?: WS.ClientOptions, protocols?: string[]): Promise<WS> => connectWs(url, protocols, options);

function closed(ws: WS): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() })));
}

function nextMessage(ws: WS): Promise<{ data: string; isBinary: boolean }> {
  return new Promise((resolve) => ws.once("message", (data, isBinary) => resolve({ data: isBinary ? (data as Buffer).toString("hex") : String(data), isBinary })));
}

describe("WebSocket over real sockets", () => {
  let served: Served;
  let url: string;
  const log: string[] = [];
  const app = testApp({ websocket: { maxMessageBytes: 256 * 1024, pingIntervalMs: 0 } });
  const resource: Dependency<string> = async function* () {
    log.push("dep open");
    try {
      yield "db";
    } finally {
      log.push("dep closed");
    }
  };

  app.websocket("/echo", async (ws) => {
    await ws.accept();
    for await (const message of ws) ws.send(message);
  });
  // Answers every binary message with its SHA-256 and keeps the first four; "check" asks for theirs again.
  const kept: Buffer[] = [];
  const sha256 = (data: Buffer): string => createHash("sha256").update(data).digest("hex");
  app.websocket("/keep", {
    onMessage: (ws, message) => {
      if (typeof message === "string") return void ws.sendText(kept.map(sha256).join(","));
      if (kept.length < 4) kept.push(message);
      ws.sendText(sha256(message));
    },
  });
  // Keeps every binary message whose first byte is 1; a text message asks for their digests.
  const held: Buffer[] = [];
  app.websocket("/hold", {
    onMessage: (ws, message) => {
      if (typeof message === "string") return void ws.sendText(held.map(sha256).join(","));
      if (message[0] === 1) held.push(message);
      ws.sendText(sha256(message));
    },
  });
  app.websocket("/events", {
    onOpen: (ws) => void ws.sendText(`hello ${ws.id}`),
    onMessage: (ws, message, isBinary) => {
      if (message === "headers") return void ws.sendJson({ token: ws.headers["x-token"], key: ws.headers["sec-websocket-key"] ?? null });
      ws.send(isBinary ? message : `got ${message}`);
    },
  });
  // Without the upgrade request after onOpen: what handlers need later is copied into ws.state.
  app.websocket("/lean/{room}", {
    onOpen: (ws) => {
      ws.state.room = ws.params.room;
      ws.state.q = ws.query.get("q");
    },
    onMessage: (ws, message) => {
      if (message === "request") return void ws.sendText(ws.request.path);
      ws.sendJson({ room: ws.state.room, q: ws.state.q, local: ws.client.host === "127.0.0.1" });
    },
  }, { keepRequest: false });
  app.websocket("/rooms/{room}/{n:int}", async (ws) => {
    await ws.accept();
    ws.sendJson({ room: ws.params.room, n: ws.params.n, q: ws.query.get("q"), sub: ws.subprotocol ?? null });
    await ws.receive().catch(() => undefined);
  }, { subprotocols: ["v2", "v1"] });
  app.websocket("/disconnect", async (ws) => {
    await ws.accept();
    try {
      await ws.receiveText();
    } catch (error) {
      log.push(error instanceof WebSocketDisconnect ? `disconnect ${error.code} ${error.reason}` : `other ${error}`);
    }
  });
  app.websocket("/timeout", async (ws) => {
    await ws.accept();
    try {
      await ws.receiveText({ timeout: 50 });
    } catch (error) {
      ws.sendText(error instanceof WebSocketTimeoutError ? "timed out" : "wrong error");
    }
    ws.sendText(`still open: ${ws.readyState}`);
    await ws.receive().catch(() => undefined);
  });
  app.websocket("/server-closes", async (ws) => {
    await ws.accept();
    ws.close(4100, "done here");
  });
  app.websocket("/json", async (ws) => {
    await ws.accept();
    const value = await ws.receiveJson<{ a: number }>();
    ws.sendJson({ doubled: value.a * 2 });
    const bytes = await ws.receiveBytes();
    ws.sendBytes(Buffer.concat([bytes, bytes]));
  });
  app.websocket("/deps", async (ws, { db }) => {
    await ws.accept();
    ws.sendText(db);
    await ws.receive().catch(() => undefined);
  }, { dependencies: { db: resource } });
  app.websocket("/never-accepts", async () => {
    await sleep(5_000);
  }, { handshakeTimeoutMs: 100 });
  app.websocket("/fails", async (ws) => {
    await ws.accept();
    throw new Error("handler bug");
  });
  app.websocket("/raises/{when}", async (ws) => {
    if (ws.params.when === "after") await ws.accept();
    throw new WebSocketException("No such room", "APP_NO_ROOM", 4404);
  });
  app.websocket("/raises-in-event", {
    onMessage: async () => {
      await sleep(1);
      throw new WebSocketException("Not allowed here", "APP_NOT_ALLOWED", 4403);
    },
  });
  app.websocket("/deflate", async (ws) => {
    await ws.accept();
    for await (const message of ws) ws.send(message);
  }, { perMessageDeflate: { threshold: 16 }, maxMessageBytes: 1024 * 1024 });
  // Answers with a large compressible message and closes at once: the close must not overtake it.
  app.websocket("/send-close", {
    onMessage: (ws, message) => {
      ws.send(String(message).repeat(20_000));
      ws.close(4001, "done");
    },
  }, { perMessageDeflate: { threshold: 0 } });
  app.websocket("/deflate-stored", {
    onMessage: (ws, message) => void ws.send(message),
  }, { perMessageDeflate: { threshold: 0, level: 0 } });
  app.websocket("/guarded", async (ws) => {
    await ws.accept();
    ws.sendText(`user ${ws.state.user}`);
    await ws.receive().catch(() => undefined);
  }, { origins: ["https://good.example"] });
  app.websocket("/rate", async (ws) => {
    await ws.accept();
    for await (const message of ws) void message;
  }, { maxMessagesPerSecond: 5 });
  app.websocket("/idle", async (ws) => {
    await ws.accept();
    for await (const message of ws) void message;
  }, { idleTimeoutMs: 150 });

  app.useWebSocket(async (ws, next) => {
    if (ws.path === "/guarded") {
      const token = ws.query.get("token");
      if (token === null) return ws.close(4001, "Authentication required");
      if (token === "bad") throw new HTTPError(401, "Bad token");
      ws.state.user = token;
    }
    await next();
  });

  before(async () => {
    served = await serve(app);
    url = `ws://127.0.0.1:${served.port}`;
  });
  after(() => served.close());

  test("pull-style echo of text and binary, all payload lengths", async () => {
    const ws = await open(`${url}/echo`);
    for (const size of [0, 125, 126, 65535, 65536, 200_000]) {
      const reply = nextMessage(ws);
      ws.send(Buffer.alloc(size, 7));
      const { data, isBinary } = await reply;
      assert.equal(isBinary, true);
      assert.equal(data.length, size * 2);
    }
    const text = nextMessage(ws);
    ws.send("héllo wörld €");
    assert.deepEqual(await text, { data: "héllo wörld €", isBinary: false });
    const bye = closed(ws);
    ws.close(1000, "bye");
    assert.equal((await bye).code, 1000);
  });

  test("large messages arrive whole, and a message a handler keeps stays as it was while many more arrive", async () => {
    const ws = await open(`${url}/keep`);
    const replies: string[] = [];
    ws.on("message", (data) => replies.push(String(data)));
    const sent: string[] = [];
    // 1,200 messages of 16–96 KiB (about 65 MB): the engine reuses what earlier ones arrived in.
    for (let batch = 0; batch < 24; batch++) {
      for (let i = 0; i < 50; i++) {
        const message = randomBytes(16 * 1024 + ((batch * 50 + i) * 1237) % (80 * 1024));
        sent.push(createHash("sha256").update(message).digest("hex"));
        ws.send(message);
      }
      await waitFor(() => replies.length === sent.length, 10_000);
    }
    assert.deepEqual(replies, sent);
    ws.send("check");
    await waitFor(() => replies.length === sent.length + 1, 5_000);
    assert.equal(replies.at(-1), sent.slice(0, 4).join(","));
    ws.close();
  });

  test("a message that arrives in pieces and is kept by a handler stays as it was while many more arrive", async () => {
    const client = await rawWebSocket(served.port, "/hold");
    const keep = (size: number): Buffer => Buffer.concat([Buffer.from([1]), randomBytes(size - 1)]);
    // One frame written in three pieces, apart (so it is read in pieces), and a message of two frames.
    const single = keep(200_000);
    const frame = clientFrame(0x2, single);
    for (const [from, to] of [[0, 1_000], [1_000, 120_000], [120_000, frame.length]]) {
      client.write(frame.subarray(from, to));
      await sleep(30);
    }
    const split = keep(150_000);
    client.write(clientFrame(0x2, split.subarray(0, 70_000), { fin: false }));
    await sleep(30);
    client.write(clientFrame(0x0, split.subarray(70_000)));
    // Then many more, of the same sizes, in pieces too: buffers let go of would be reused for them.
    const others: Buffer[] = [];
    for (let i = 0; i < 40; i++) {
      const other = randomBytes(i % 2 === 0 ? 200_000 : 150_000);
      other[0] = 0;
      others.push(other);
      const bytes = clientFrame(0x2, other);
      client.write(bytes.subarray(0, 50_000));
      await sleep(2);
      client.write(bytes.subarray(50_000));
    }
    await waitFor(() => client.frames.length === 42, 10_000, "a digest for every message");
    assert.deepEqual(client.frames.map((f) => f.payload.toString()), [single, split, ...others].map(sha256));
    client.write(clientFrame(0x1, "check"));
    await waitFor(() => client.frames.length === 43, 5_000, "the kept messages' digests");
    assert.equal(client.frames[42]!.payload.toString(), [single, split].map(sha256).join(","));
    client.socket.destroy();
  });

  test("event-style handlers; the request's headers stay but the handshake's key", async () => {
    const ws = new WS(`${url}/events`, { headers: { "X-Token": "t0k3n" } });
    const greeting = nextMessage(ws);
    await new Promise((resolve) => ws.once("open", resolve));
    assert.match((await greeting).data, /^hello [0-9a-z]+$/);
    const reply = nextMessage(ws);
    ws.send("ping");
    assert.equal((await reply).data, "got ping");
    const headers = nextMessage(ws);
    ws.send("headers");
    assert.deepEqual(JSON.parse((await headers).data), { token: "t0k3n", key: null });
    ws.close();
  });

  test("keepRequest: false: what onOpen copied stays, the request is gone after onOpen (1011 when read)", async () => {
    const ws = await open(`${url}/lean/lobby?q=x`);
    const reply = nextMessage(ws);
    ws.send("state");
    assert.deepEqual(JSON.parse((await reply).data), { room: "lobby", q: "x", local: true });
    const end = closed(ws);
    ws.send("request");
    assert.equal((await end).code, 1011);
  });

  test("path params, query and subprotocol chosen by the server's preference", async () => {
    const ws = new WS(`${url}/rooms/lobby/7?q=x`, ["v1", "v2"]);
    const message = nextMessage(ws);
    await new Promise((resolve) => ws.once("open", resolve));
    assert.equal(ws.protocol, "v2");
    assert.deepEqual(JSON.parse((await message).data), { room: "lobby", n: 7, q: "x", sub: "v2" });
    ws.close();
  });

  test("receive raises WebSocketDisconnect with the peer's code and reason", async () => {
    log.length = 0;
    const ws = await open(`${url}/disconnect`);
    ws.close(4321, "leaving");
    await waitFor(() => log.length > 0);
    assert.deepEqual(log, ["disconnect 4321 leaving"]);
  });

  test("receive with a timeout leaves the connection open", async () => {
    const ws = new WS(`${url}/timeout`);
    const messages: string[] = [];
    ws.on("message", (d) => messages.push(String(d)));
    await waitFor(() => messages.length === 2);
    assert.deepEqual(messages, ["timed out", "still open: 1"]);
    ws.close();
  });

  test("a server close reaches the client with its code and the TCP connection ends", async () => {
    const ws = new WS(`${url}/server-closes`);
    assert.deepEqual(await closed(ws), { code: 4100, reason: "done here" });
  });

  test("JSON and bytes helpers", async () => {
    const ws = await open(`${url}/json`);
    const first = nextMessage(ws);
    ws.send(JSON.stringify({ a: 21 }));
    assert.deepEqual(JSON.parse((await first).data), { doubled: 42 });
    const second = nextMessage(ws);
    ws.send(Buffer.from([1, 2]));
    assert.equal((await second).data, "01020102");
    ws.close();
  });

  test("dependencies of a WebSocket route live as long as the handler", async () => {
    log.length = 0;
    const ws = new WS(`${url}/deps`);
    assert.equal((await nextMessage(ws)).data, "db");
    assert.deepEqual(log, ["dep open"]);
    ws.close();
    await waitFor(() => log.includes("dep closed"));
  });

  test("handshake refusals: no route 404, bad version 426, bad key 400, timeout 408", async () => {
    assert.match((await rawWebSocket(served.port, "/nowhere")).head, /^HTTP\/1\.1 404/);
    const version = await rawWebSocket(served.port, "/echo", { "Sec-WebSocket-Version": "8" });
    assert.match(version.head, /^HTTP\/1\.1 426/);
    assert.match(version.head, /Sec-WebSocket-Version: 13/);
    assert.match((await rawWebSocket(served.port, "/echo", { "Sec-WebSocket-Key": "not-a-key" })).head, /^HTTP\/1\.1 400/);
    assert.match((await rawWebSocket(served.port, "/echo", { Upgrade: "" , Connection: "Upgrade" })).head, /^HTTP\/1\.1 /);
    assert.match((await rawWebSocket(served.port, "/never-accepts")).head, /^HTTP\/1\.1 408/);
  });

  test("middleware: close with 4001 before accept, reject with an HTTP status, or pass with state", async () => {
    const anonymous = new WS(`${url}/guarded`, { origin: "https://good.example" });
    assert.deepEqual(await closed(anonymous), { code: 4001, reason: "Authentication required" });
    const bad = await rawWebSocket(served.port, "/guarded?token=bad", { Origin: "https://good.example" });
    assert.match(bad.head, /^HTTP\/1\.1 401/);
    const good = new WS(`${url}/guarded?token=ann`, { origin: "https://good.example" });
    assert.equal((await nextMessage(good)).data, "user ann");
    good.close();
    const wrongOrigin = await rawWebSocket(served.port, "/guarded?token=ann", { Origin: "https://evil.example" });
    assert.match(wrongOrigin.head, /^HTTP\/1\.1 403/);
  });

  test("an error in a handler after accept closes with 1011", async () => {
    const ws = new WS(`${url}/fails`);
    assert.equal((await closed(ws)).code, 1011);
  });

  test("a WebSocketException closes with its own close code and reason, and is not logged as unhandled", async () => {
    const logged = app.errors.length;
    for (const path of ["/raises/after", "/raises/before"]) {
      assert.deepEqual(await closed(new WS(`${url}${path}`)), { code: 4404, reason: "No such room" }, path);
    }
    const ws = await open(`${url}/raises-in-event`);
    ws.send("x");
    assert.deepEqual(await closed(ws), { code: 4403, reason: "Not allowed here" });
    assert.equal(app.errors.length, logged);
    assert.throws(() => new WebSocketException("x", "APP", 1005), /closeCode/);
  });

  test("invalid JSON from the client for receiveJson() closes with 1007: the client's fault, not a server error", async () => {
    const logged = app.errors.length;
    const ws = await open(`${url}/json`);
    ws.send("{not json");
    assert.deepEqual(await closed(ws), { code: 1007, reason: "Message is not valid JSON" });
    assert.equal(app.errors.length, logged);
  });

  test("WebSocketDisconnect is a CatzillaError: code is the close code, errorCode the catalogue's", () => {
    const error = new WebSocketDisconnect(1001, "going");
    assert.ok(error instanceof CatzillaError);
    assert.equal(error.code, 1001);
    assert.equal(error.errorCode, "CZ_WS_DISCONNECT");
    assert.equal(error.name, "WebSocketDisconnect");
    assert.equal(new WebSocketInvalidJSONError(new SyntaxError("x")).errorCode, "CZ_WS_INVALID_JSON");
  });

  const violations: Array<[string, Buffer, number]> = [
    ["unmasked frame", clientFrame(0x1, "hi", { mask: false }), 1002],
    ["reserved opcode", clientFrame(0x3, "x"), 1002],
    ["RSV2 set", clientFrame(0x1, "x", { rsv2: true }), 1002],
    ["RSV1 without deflate", clientFrame(0x1, "x", { rsv1: true }), 1002],
    ["continuation without start", clientFrame(0x0, "x"), 1002],
    ["fragmented ping", clientFrame(0x9, "x", { fin: false }), 1002],
    ["invalid UTF-8", clientFrame(0x1, Buffer.from([0xce, 0xba, 0xed, 0xa0, 0x80])), 1007],
    ["invalid close code", clientFrame(0x8, Buffer.from([0x03, 0xed])), 1002],
    ["message over maxMessageBytes", clientFrame(0x2, Buffer.alloc(300 * 1024)), 1009],
  ];
  for (const [name, frame, code] of violations) {
    test(`protocol violation over a raw socket: ${name} → ${code}`, async () => {
      const client = await rawWebSocket(served.port, "/echo");
      assert.match(client.head, /^HTTP\/1\.1 101/);
      client.write(frame);
      assert.equal((await client.closeFrame()).code, code);
      await client.closed;
    });
  }

  test("fragments with a ping in between are reassembled; the ping gets its pong", async () => {
    const client = await rawWebSocket(served.port, "/echo");
    client.write(Buffer.concat([clientFrame(0x1, "Hel", { fin: false }), clientFrame(0x9, "are you there"), clientFrame(0x0, "lo")]));
    await waitFor(() => client.frames.length >= 2);
    assert.deepEqual(client.frames.map((f) => [f.opcode, f.payload.toString()]), [[0xa, "are you there"], [0x1, "Hello"]]);
    client.socket.destroy();
  });

  test("a close frame is echoed and the server closes the TCP connection", async () => {
    const client = await rawWebSocket(served.port, "/echo");
    client.write(clientFrame(0x8, Buffer.from([0x0f, 0xa0, 0x68, 0x69])));
    assert.equal((await client.closeFrame()).code, 4000);
    await client.closed;
  });

  test("permessage-deflate: negotiated, compressed both ways", async () => {
    const ws = await open(`${url}/deflate`, { perMessageDeflate: { threshold: 0 } });
    assert.match(ws.extensions, /permessage-deflate/);
    const text = "compress me ".repeat(5_000);
    const reply = nextMessage(ws);
    ws.send(text);
    assert.equal((await reply).data, text);
    const small = nextMessage(ws);
    ws.send("tiny");
    assert.equal((await small).data, "tiny");
    ws.close();
  });

  test("permessage-deflate: large messages (inflated and compressed on the thread pool) keep their order with the small ones around them", async () => {
    // Without context takeover both ways, every message is compressed (and inflated) on its own.
    const client = await rawWebSocket(served.port, "/deflate", {
      "Sec-WebSocket-Extensions": "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
    });
    assert.match(client.head, /permessage-deflate/i);
    const large = "compress me ".repeat(75_000); // 900 KB of text: 256 KiB and more inflated
    const random = randomBytes(500_000); // hardly compresses
    const sent: Array<string | Buffer> = ["first", large, "second", random, "third", large.slice(0, 70_000), "fourth"];
    const frame = (m: string | Buffer): Buffer => {
      const compressed = deflateRawSync(m, { finishFlush: constants.Z_SYNC_FLUSH });
      return clientFrame(typeof m === "string" ? 0x1 : 0x2, compressed.subarray(0, compressed.length - 4), { rsv1: true });
    };
    // One write: the server reads them all at once, and must not hand "second" over before the large one.
    client.write(Buffer.concat(sent.map(frame)));
    await waitFor(() => client.frames.length === sent.length, 10_000, "every echo");
    const tail = Buffer.from([0x00, 0x00, 0xff, 0xff]);
    const replies = client.frames.map((f) => (f.rsv1 ? inflateRawSync(Buffer.concat([f.payload, tail]), { finishFlush: constants.Z_SYNC_FLUSH }) : f.payload));
    assert.deepEqual(replies.map(sha256), sent.map((m) => sha256(Buffer.from(m))));
    assert.ok(client.frames[1]!.rsv1 && client.frames[3]!.rsv1, "the large echoes are compressed");
    client.socket.destroy();
  });

  test("permessage-deflate: a close right after a large compressed send comes after it", async () => {
    const ws = await open(`${url}/send-close`, { perMessageDeflate: { threshold: 0 } });
    const got: string[] = [];
    ws.on("message", (data) => got.push(String(data)));
    const end = closed(ws);
    ws.send("news! ");
    assert.deepEqual(await end, { code: 4001, reason: "done" });
    assert.deepEqual(got, ["news! ".repeat(20_000)]);
  });

  test("permessage-deflate: the server compresses at the route's level (0 stores, the default 6 compresses)", async () => {
    const offer = { "Sec-WebSocket-Extensions": "permessage-deflate; server_no_context_takeover; client_no_context_takeover" };
    const tail = Buffer.from([0x00, 0x00, 0xff, 0xff]);
    const sizes: Record<string, number[]> = {};
    for (const path of ["/deflate-stored", "/deflate"]) {
      const client = await rawWebSocket(served.port, path, offer);
      // A small message (compressed on the loop) and one of 100 KB (on the thread pool, native engine).
      for (const text of ["a".repeat(10_000), "b".repeat(100_000)]) {
        const compressed = deflateRawSync(text, { finishFlush: constants.Z_SYNC_FLUSH });
        client.write(clientFrame(0x1, compressed.subarray(0, compressed.length - 4), { rsv1: true }));
        await waitFor(() => client.frames.length === (sizes[path]?.length ?? 0) + 1, 5_000, `the echo from ${path}`);
        const frame = client.frames.at(-1)!;
        assert.equal(frame.rsv1, true);
        assert.equal(inflateRawSync(Buffer.concat([frame.payload, tail]), { finishFlush: constants.Z_SYNC_FLUSH }).toString(), text);
        (sizes[path] ??= []).push(frame.payload.length);
      }
      client.socket.destroy();
    }
    assert.ok(sizes["/deflate-stored"]!.every((n, i) => n >= [10_000, 100_000][i]!), `stored: ${sizes["/deflate-stored"]}`);
    assert.ok(sizes["/deflate"]!.every((n, i) => n < [10_000, 100_000][i]! / 20), `compressed: ${sizes["/deflate"]}`);
  });

  test("permessage-deflate: invalid UTF-8 found past the first 256 KiB inflated closes with 1007", async () => {
    const client = await rawWebSocket(served.port, "/deflate", { "Sec-WebSocket-Extensions": "permessage-deflate" });
    const text = Buffer.concat([Buffer.alloc(400 * 1024, "a"), Buffer.from([0xff])]);
    const compressed = deflateRawSync(text, { finishFlush: constants.Z_SYNC_FLUSH });
    client.write(clientFrame(0x1, compressed.subarray(0, compressed.length - 4), { rsv1: true }));
    assert.equal((await client.closeFrame(5_000)).code, 1007);
    await client.closed;
  });

  test("permessage-deflate: a client that leaves while its large message is inflated and echoed does no harm", async () => {
    for (let i = 0; i < 5; i++) {
      const ws = await open(`${url}/deflate`, { perMessageDeflate: { threshold: 0 } });
      ws.send("compress me ".repeat(80_000));
      await sleep(i);
      ws.terminate();
    }
    const ws = await open(`${url}/deflate`, { perMessageDeflate: { threshold: 0 } });
    const reply = nextMessage(ws);
    ws.send("still here");
    assert.equal((await reply).data, "still here");
    ws.close();
  });

  test("a compression bomb is stopped at maxMessageBytes with 1009", async () => {
    const client = await rawWebSocket(served.port, "/deflate", { "Sec-WebSocket-Extensions": "permessage-deflate" });
    assert.match(client.head, /permessage-deflate/i);
    const bomb = deflateRawSync(Buffer.alloc(64 * 1024 * 1024), { finishFlush: constants.Z_SYNC_FLUSH });
    assert.ok(bomb.length < 200 * 1024, `bomb is ${bomb.length} bytes`);
    const rssBefore = process.memoryUsage().rss;
    client.write(clientFrame(0x2, bomb.subarray(0, bomb.length - 4), { rsv1: true }));
    assert.equal((await client.closeFrame(10_000)).code, 1009);
    assert.ok(process.memoryUsage().rss - rssBefore < 48 * 1024 * 1024);
  });

  test("a message rate over maxMessagesPerSecond closes with 1008", async () => {
    const ws = await open(`${url}/rate`);
    const end = closed(ws);
    for (let i = 0; i < 10; i++) ws.send(`m${i}`);
    assert.equal((await end).code, 1008);
  });

  test("a connection idle past idleTimeoutMs is closed with 1001", async () => {
    const ws = await open(`${url}/idle`);
    assert.equal((await closed(ws)).code, 1001);
  });

  test("statistics count connections, messages and close codes", () => {
    const stats = app.stats().websockets;
    assert.ok(stats.opened >= 10);
    assert.ok(stats.messagesIn > 0 && stats.messagesOut > 0);
    assert.ok(stats.closeCodes["1002"]! >= 5);
    assert.ok(stats.closeCodes["1009"]! >= 1);
    assert.ok(stats.rejectedHandshakes >= 4);
  });
});

describe("WebSocket limits and lifecycle", () => {
  test("endReason tells why a connection ended: peer, server, reset, limit, protocol error, idle and ping timeouts, shutdown", { timeout: 30_000 }, async () => {
    const app = testApp({ websocket: { maxMessageBytes: 1024 } });
    const ended = new Map<string, string | null>();
    const route = (path: string, options: Parameters<typeof app.websocket>[2] = {}, onOpen?: (ws: any) => void): void => {
      app.websocket(path, {
        onOpen: (ws) => onOpen?.(ws),
        onClose: (ws) => void ended.set(path, ws.endReason),
      }, options);
    };
    route("/peer");
    route("/server", {}, (ws) => ws.close(4000, "bye"));
    route("/reset");
    route("/limit");
    route("/protocol");
    route("/idle", { idleTimeoutMs: 200 });
    route("/ping", { pingIntervalMs: 100 });
    route("/shutdown");
    const served = await serve(app);
    const url = (path: string): string => `ws://127.0.0.1:${served.port}${path}`;
    try {
      const peer = await open(url("/peer"));
      peer.close(1000);
      const server = await open(url("/server"));
      const reset = await open(url("/reset"));
      reset.terminate();
      const limit = await open(url("/limit"));
      limit.send("x".repeat(2048));
      const protocol = await rawWebSocket(served.port, "/protocol");
      protocol.write(clientFrame(0x1, "unmasked", { mask: false }));
      const idle = await open(url("/idle"));
      const ping = await rawWebSocket(served.port, "/ping");
      await waitFor(() => ["/peer", "/server", "/reset", "/limit", "/protocol", "/idle", "/ping"].every((p) => ended.has(p)), 10_000, "every end");
      await open(url("/shutdown"));
      await served.close();
      await waitFor(() => ended.has("/shutdown"), 5_000, "the shutdown's end");
      assert.deepEqual(Object.fromEntries(ended), {
        "/peer": "peer", "/server": "server", "/reset": "reset", "/limit": "limit", "/protocol": "protocol-error",
        "/idle": "idle-timeout", "/ping": "ping-timeout", "/shutdown": "shutdown",
      });
      for (const client of [server, idle]) client.terminate();
      ping.socket.destroy();
      protocol.socket.destroy();
    } finally {
      await served.close().catch(() => undefined);
    }
  });

  test("a peer that never answers pings is dropped", async () => {
    const app = testApp({ websocket: { pingIntervalMs: 100 } });
    app.websocket("/x", async (ws) => {
      await ws.accept();
      for await (const message of ws) void message;
    });
    const served = await serve(app);
    try {
      const client = await rawWebSocket(served.port, "/x");
      // This client reads but never answers: no pong.
      await client.closed;
      assert.ok(client.frames.some((f) => f.opcode === 0x9), "the server pinged");
      await waitFor(() => app.stats().websockets.pingTimeouts === 1);
      // A client that answers pings stays.
      const ws = await open(`ws://127.0.0.1:${served.port}/x`);
      await sleep(400);
      assert.equal(ws.readyState, WS.OPEN);
      ws.close();
    } finally {
      await served.close();
    }
  });

  test("a client that pings and never reads cannot grow the server's output past maxBufferedBytes", { timeout: 30_000 }, async () => {
    const app = testApp({ websocket: { maxBufferedBytes: 64 * 1024, pingIntervalMs: 0 } });
    let server: WebSocket<any, any> | null = null;
    app.websocket("/pinged", async (ws) => {
      await ws.accept();
      server = ws;
      for await (const message of ws) ws.send(message);
    });
    const served = await serve(app);
    try {
      const socket = connectRaw(served.port, "127.0.0.1");
      socket.on("error", () => undefined);
      socket.write(`GET /pinged HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
      await new Promise((resolve) => socket.once("data", resolve));
      socket.pause();
      await waitFor(() => server !== null, 3_000, "the session");
      // 60,000 pings of 125 bytes: 7.6 MB of pongs if every one were answered.
      const ping = clientFrame(0x9, Buffer.alloc(125, 0x70));
      const burst = Buffer.concat(Array.from({ length: 1_000 }, () => ping));
      let peak = 0;
      for (let i = 0; i < 60; i++) {
        if (!socket.write(burst)) await new Promise((resolve) => socket.once("drain", resolve));
        peak = Math.max(peak, server!.bufferedAmount);
      }
      await sleep(200);
      peak = Math.max(peak, server!.bufferedAmount);
      assert.ok(peak <= 64 * 1024 + 256, `the server held ${peak} bytes for a client that never read`);
      assert.equal(server!.readyState, 1, "the connection stays open");
    } finally {
      await served.close();
    }
  });

  test("a client that stops reading is closed with 1008 under the close policy, skipped under drop", async () => {
    for (const policy of ["close", "drop"] as const) {
      const app = testApp({ websocket: { maxBufferedBytes: 256 * 1024, overLimitPolicy: policy, pingIntervalMs: 0 } });
      const statuses = new Map<string, number>();
      app.websocket("/flood", async (ws) => {
        await ws.accept();
        const block = Buffer.alloc(16 * 1024, 1);
        for (let i = 0; i < 2_000 && ws.readyState === 1; i++) {
          const status = ws.sendBytes(block);
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
          if (i % 50 === 0) await sleep(1);
        }
        await ws.receive().catch(() => undefined);
      });
      const served = await serve(app);
      try {
        const client = await rawWebSocket(served.port, "/flood");
        client.socket.pause();
        const rssBefore = process.memoryUsage().rss;
        if (policy === "close") {
          await waitFor(() => app.stats().websockets.closeCodes["1006"] === 1 || statuses.get("closed")! > 0 || app.stats().websockets.active === 0, 10_000, "the flood to close");
          assert.ok((statuses.get("ok") ?? 0) * 16 * 1024 <= 8 * 1024 * 1024, "bounded before closing");
        } else {
          await waitFor(() => (statuses.get("dropped") ?? 0) > 100, 10_000, "drops");
          assert.ok(app.stats().websockets.messagesDropped > 100);
        }
        assert.ok(process.memoryUsage().rss - rssBefore < 64 * 1024 * 1024);
        client.socket.destroy();
      } finally {
        await served.close();
      }
    }
  });

  test("a handler that does not keep up stops the socket being read; every message arrives, in order, once it reads again", async () => {
    const app = testApp({ websocket: { maxQueuedMessages: 4, maxMessageBytes: 128 * 1024, pingIntervalMs: 0 } });
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    app.websocket("/slow", async (ws) => {
      await ws.accept();
      await released;
      const digest = createHash("sha256");
      for (let i = 0; i < 256; i++) digest.update(await ws.receiveBytes());
      ws.sendText(digest.digest("hex"));
      await ws.receive().catch(() => undefined);
    });
    const served = await serve(app);
    try {
      const client = await open(`ws://127.0.0.1:${served.port}/slow`);
      const expected = createHash("sha256");
      for (let i = 0; i < 256; i++) {
        const message = randomBytes(64 * 1024);
        expected.update(message);
        client.send(message);
      }
      // 16 MiB is more than the kernel's buffers on both sides hold: the rest waits in the client.
      await sleep(300);
      const waiting = client.bufferedAmount;
      const reply = nextMessage(client);
      release();
      assert.ok(waiting > 0, "the server stopped reading");
      const digest = await Promise.race([reply.then((r) => r.data), sleep(10_000).then(() => "no reply within 10 s")]);
      assert.equal(digest, expected.digest("hex"));
      client.close();
    } finally {
      release();
      await served.close();
    }
  });

  test("onDrain comes as soon as a send over maxBufferedBytes has gone out", async () => {
    // Heartbeats off and no close timer close by: nothing else happens on the connection that could carry the event.
    const app = testApp({ websocket: { maxBufferedBytes: 64 * 1024, pingIntervalMs: 0, closeTimeoutMs: 60_000 } });
    app.websocket("/big", {
      onMessage: (ws) => void ws.sendText(`${ws.sendBytes(Buffer.alloc(100 * 1024))}`),
      onDrain: (ws) => void ws.sendText("drained"),
    });
    const served = await serve(app);
    try {
      const client = await open(`ws://127.0.0.1:${served.port}/big`);
      const texts: string[] = [];
      client.on("message", (data, isBinary) => void (isBinary || texts.push(String(data))));
      const started = Date.now();
      client.send("go");
      await waitFor(() => texts.includes("drained"), 5_000, "onDrain");
      assert.equal(texts[0], "backpressure");
      assert.ok(Date.now() - started < 500, `onDrain after ${Date.now() - started} ms`);
      client.close();
    } finally {
      await served.close();
    }
  });

  test("short sends to a client that stops reading: ok, then backpressure at maxBufferedBytes, then closed", async () => {
    const app = testApp({ websocket: { maxBufferedBytes: 64 * 1024, overLimitPolicy: "wait", pingIntervalMs: 0 } });
    let statuses: string[] = [];
    let bufferedAtFirstBackpressure = -1;
    app.websocket("/burst", {
      onMessage(ws) {
        // One handler call, no await: nothing drains in between.
        for (let i = 0; i < 2_000; i++) {
          const status = ws.sendText("x".repeat(1_000));
          if (status === "backpressure" && bufferedAtFirstBackpressure < 0) bufferedAtFirstBackpressure = ws.bufferedAmount;
          statuses.push(status);
        }
      },
    });
    const served = await serve(app);
    try {
      const client = await rawWebSocket(served.port, "/burst");
      client.socket.pause();
      // Let the kernel's buffers fill first, so that the engine has to keep what follows.
      client.socket.write(clientFrame(0x1, Buffer.from("go")));
      await waitFor(() => statuses.length === 2_000, 5_000, "the burst");
      const order = statuses.map((s) => s[0]).join("").replace(/(.)\1*/g, "$1");
      // ok…, backpressure… (over 64 KiB), closed… (over four times that: 1008).
      assert.equal(order, "obc", `statuses in order: ${order}`);
      assert.ok(bufferedAtFirstBackpressure > 64 * 1024, `buffered ${bufferedAtFirstBackpressure}`);
      statuses = [];
      client.socket.destroy();
    } finally {
      await served.close();
    }
  });

  test("connections per client address are capped with 429", async () => {
    const app = testApp({ websocket: { maxConnectionsPerClient: 2, pingIntervalMs: 0 } });
    app.websocket("/x", async (ws) => {
      await ws.accept();
      await ws.receive().catch(() => undefined);
    });
    const served = await serve(app);
    try {
      const a = await open(`ws://127.0.0.1:${served.port}/x`);
      const b = await open(`ws://127.0.0.1:${served.port}/x`);
      assert.match((await rawWebSocket(served.port, "/x")).head, /^HTTP\/1\.1 429/);
      a.close();
      b.close();
    } finally {
      await served.close();
    }
  });

  test("graceful shutdown closes every connection with 1001", async () => {
    const app = testApp({ websocket: { pingIntervalMs: 0 } });
    app.websocket("/x", { onMessage: () => undefined });
    const served = await serve(app);
    const clients = await Promise.all([1, 2, 3].map(() => open(`ws://127.0.0.1:${served.port}/x`)));
    const codes = Promise.all(clients.map(closed));
    await served.close();
    assert.deepEqual((await codes).map((c) => c.code), [1001, 1001, 1001]);
  });

  test("a slow upgrade request (slowloris) is cut by headersTimeoutMs", async () => {
    const app = testApp({ headersTimeoutMs: 300, requestTimeoutMs: 600 });
    app.websocket("/x", { onMessage: () => undefined });
    const served = await serve(app);
    try {
      const { connect } = await import("node:net");
      const socket = connect(served.port, "127.0.0.1");
      socket.write("GET /x HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n");
      let response = "";
      socket.on("data", (d: Buffer) => (response += d.toString("latin1")));
      const started = Date.now();
      await new Promise((resolve) => socket.once("close", resolve));
      assert.match(response, /^HTTP\/1\.1 408/);
      assert.ok(Date.now() - started < 3_000);
    } finally {
      await served.close();
    }
  });

  test("bad WebSocket options fail at construction", () => {
    assert.throws(() => testApp({ websocket: { maxMessageBytes: 0 } }), /websocket.maxMessageBytes/);
    assert.throws(() => testApp({ websocket: { overLimitPolicy: "later" as never } }), /overLimitPolicy/);
    assert.throws(() => testApp({ websocket: { keepRequest: "no" as never } }), /keepRequest/);
    assert.throws(() => testApp({ websocket: { perMessageDeflate: { level: 10 } } }), /perMessageDeflate\.level/);
  });
});
