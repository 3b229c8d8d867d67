import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { EventSource } from "eventsource";
import WS from "ws";
import { connect as connectRaw } from "node:net";
import { RoomLimitError, type WebSocket } from "../../src/index.js";
import { serve, sleep, testApp, waitFor, type Served } from "../helpers.js";
import { connectWs, rawWebSocket } from "../ws-helpers.js";

const connect = (url: string): Promise<WS> => connectWs(url);

describe("rooms on one process", () => {
  let served: Served;
  let base: string;
  const app = testApp({ websocket: { pingIntervalMs: 0 } });
  const sessions = new Map<string, WebSocket>();

  app.websocket("/chat/{room}", {
    onOpen(ws) {
      const lastId = ws.query.get("lastId");
      const replay = app.rooms.getOrCreate(ws.params.room, { history: ws.params.room.startsWith("h-") ? { maxMessages: 5 } : null })
        .add(ws, lastId === null ? {} : { lastEventId: lastId });
      if (replay === "resync") ws.sendText("RESYNC");
      const name = ws.query.get("name");
      if (name !== null) sessions.set(name, ws);
    },
    onMessage(ws, message) {
      const room = app.rooms.getOrCreate(ws.params.room);
      if (ws.query.get("except") === "me") room.broadcast(message, { except: ws });
      else room.broadcast(message);
    },
  });
  app.get("/live/{room}", (req) => app.rooms.getOrCreate(req.params.room, { history: { maxMessages: 3 } }).eventSource({ pingMs: 0 }));
  app.get("/beat/{room}", (req) => app.rooms.getOrCreate(req.params.room).eventSource({ pingMs: 100, pingComment: "beat" }));
  app.room("/global-events", {
    onConnect: (ws, room) => void room.broadcast(`joined ${ws.query.get("name")}`),
    onMessage: (ws, message, room) => void room.broadcast(`${ws.query.get("name")}: ${message}`),
    onDisconnect: (ws, room) => void room.broadcast(`left ${ws.query.get("name")}`),
  });

  before(async () => {
    served = await serve(app);
    base = `ws://127.0.0.1:${served.port}`;
  });
  after(() => served.close());

  test("100 members all receive every broadcast in publish order, encoded once", async () => {
    const clients = await Promise.all(Array.from({ length: 100 }, () => connect(`${base}/chat/lobby`)));
    const received = clients.map(() => [] as string[]);
    clients.forEach((c, i) => c.on("message", (d) => received[i]!.push(String(d))));
    const room = app.rooms.get("lobby")!;
    assert.equal(room.size, 100);
    const before = room.stats.deliveries;
    for (let i = 0; i < 50; i++) {
      const result = room.broadcast(`msg ${i}`);
      // Past the turn's fan-out slice a broadcast waits for the next turn, still in order.
      if (!result.queued) assert.equal(result.delivered, 100);
      assert.equal(result.id, i + 1);
    }
    await waitFor(() => received.every((r) => r.length === 50), 5_000, "all deliveries");
    assert.equal(room.stats.deliveries - before, 5000);
    const expected = Array.from({ length: 50 }, (_, i) => `msg ${i}`);
    for (const r of received) assert.deepEqual(r, expected);
    for (const c of clients) c.close();
    await waitFor(() => app.rooms.get("lobby") === undefined, 3_000, "the empty room to go");
  });

  test("a member's message reaches everyone, the sender too, with its type; except leaves one out", async () => {
    const a = await connect(`${base}/chat/r1`);
    const b = await connect(`${base}/chat/r1?except=me`);
    const got = { a: [] as string[], b: [] as string[] };
    a.on("message", (d, isBinary) => got.a.push(isBinary ? `bin ${(d as Buffer).length}` : String(d)));
    b.on("message", (d, isBinary) => got.b.push(isBinary ? `bin ${(d as Buffer).length}` : String(d)));
    a.send("from a");
    a.send(Buffer.alloc(3));
    await waitFor(() => got.a.length === 2 && got.b.length === 2);
    b.send("from b");
    await waitFor(() => got.a.length === 3);
    await sleep(50);
    assert.deepEqual(got, { a: ["from a", "bin 3", "from b"], b: ["from a", "bin 3"] });
    a.close();
    b.close();
  });

  test("a disconnect removes membership", async () => {
    const a = await connect(`${base}/chat/r2?name=stay`);
    const b = await connect(`${base}/chat/r2`);
    const room = app.rooms.get("r2")!;
    assert.equal(room.size, 2);
    b.terminate();
    await waitFor(() => room.size === 1);
    assert.ok(room.has(sessions.get("stay")!));
    a.close();
  });

  test("a member that stops reading is skipped while the others keep receiving", async () => {
    const slow = await rawWebSocket(served.port, "/chat/r3");
    slow.socket.pause();
    const fast = await connect(`${base}/chat/r3`);
    let fastCount = 0;
    fast.on("message", () => fastCount++);
    await waitFor(() => app.rooms.get("r3")?.size === 2);
    const room = app.rooms.get("r3")!;
    const block = Buffer.alloc(32 * 1024, 1);
    let skipped = 0;
    for (let i = 0; i < 300; i++) {
      skipped += room.broadcast(block).skipped;
      if (i % 20 === 0) await sleep(1);
    }
    await waitFor(() => fastCount === 300, 10_000, "the fast member to get everything");
    // What waited for a later turn is counted when it is delivered.
    assert.ok(room.stats.skipped > 100, `skipped ${room.stats.skipped}`);
    assert.ok(room.stats.skipped >= skipped);
    assert.equal(room.stats.dropped, 0);
    slow.socket.destroy();
    fast.close();
  });

  test("with the close policy a slow member is closed with 1013", async () => {
    const room = app.rooms.getOrCreate("r4", { slowMemberPolicy: "close", maxBufferedBytes: 64 * 1024 });
    const slow = await rawWebSocket(served.port, "/chat/r4");
    slow.socket.pause();
    await waitFor(() => room.size === 1);
    const block = Buffer.alloc(32 * 1024, 1);
    let closed = 0;
    for (let i = 0; i < 200 && closed === 0; i++) {
      closed += room.broadcast(block).closed;
      await sleep(1);
    }
    assert.equal(closed, 1);
    slow.socket.resume();
    assert.equal((await slow.closeFrame(5_000)).code, 1013);
  });

  test("a quiet SSE subscriber gets heartbeats, and its stream ends when the room closes", async () => {
    const res = await fetch(`${served.url}/beat/quiet`);
    assert.equal(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = "";
    const readUntil = async (wanted: string): Promise<void> => {
      const deadline = sleep(2_000).then(() => {
        throw new Error(`no ${JSON.stringify(wanted)} within 2 s; got ${JSON.stringify(text)}`);
      });
      while (!text.includes(wanted)) text += decoder.decode((await Promise.race([reader.read(), deadline])).value);
    };
    await readUntil(": beat\n\n");
    await waitFor(() => app.rooms.get("quiet")?.size === 1);
    const room = app.rooms.get("quiet")!;
    room.broadcast("hello");
    await readUntil("data: hello\n\n");
    room.close();
    // The body ends (or the connection is cut): either way the client's EventSource reconnects.
    const outcome = await Promise.race([
      (async () => {
        for (;;) {
          try {
            if ((await reader.read()).done) return "ended";
          } catch {
            return "cut";
          }
        }
      })(),
      sleep(3_000).then(() => "still open after 3 s"),
    ]);
    assert.notEqual(outcome, "still open after 3 s");
    await waitFor(() => room.size === 0, 3_000, "the ended subscriber to leave");
  });

  test("a slow SSE subscriber is skipped, and ended under the close policy", async () => {
    for (const policy of ["skip", "close"] as const) {
      const name = `slow-sse-${policy}`;
      const room = app.rooms.getOrCreate(name, { slowMemberPolicy: policy, maxBufferedBytes: 64 * 1024 });
      const socket = connectRaw(served.port);
      socket.write(`GET /beat/${name} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
      await waitFor(() => room.size === 1, 3_000, "the subscriber to join");
      socket.pause();
      const block = "x".repeat(32 * 1024);
      let over = 0;
      for (let i = 0; i < 400 && over === 0; i++) {
        const result = room.broadcast(block);
        over += policy === "skip" ? result.skipped : result.closed;
        await sleep(1);
      }
      assert.equal(over, 1, `${policy}: the slow member was ${policy === "skip" ? "skipped" : "closed"}`);
      if (policy === "skip") {
        assert.equal(room.size, 1);
        socket.destroy();
      } else {
        // What was accepted before still arrives, then the stream ends.
        let received = 0;
        socket.on("data", (d: Buffer) => void (received += d.length));
        const closed = new Promise((resolve) => socket.once("close", resolve));
        socket.resume();
        await closed;
        assert.ok(received > 64 * 1024, `received ${received}`);
      }
      await waitFor(() => room.size === 0, 5_000, `${policy}: the member to leave`);
    }
  });

  test("SSE subscribers are members too and resume after Last-Event-ID", async () => {
    const room = app.rooms.getOrCreate("game", { history: { maxMessages: 3 } });
    const ws = await connect(`${base}/chat/game`);
    const wsGot: string[] = [];
    ws.on("message", (d) => wsGot.push(String(d)));
    const source = new EventSource(`${served.url}/live/game`);
    const sseGot: Array<[string, string]> = [];
    source.onmessage = (e) => sseGot.push([e.lastEventId, e.data]);
    await waitFor(() => room.size === 2, 3_000, "the SSE subscriber to join");
    room.broadcast("goal");
    room.broadcast({ score: [1, 0] });
    await waitFor(() => sseGot.length === 2 && wsGot.length === 2);
    assert.deepEqual(wsGot, ["goal", '{"score":[1,0]}']);
    assert.deepEqual(sseGot, [[String(room.lastEventId - 1), "goal"], [String(room.lastEventId), '{"score":[1,0]}']]);
    source.close();
    await waitFor(() => room.size === 1);
    const last = room.lastEventId;
    room.broadcast("missed 1");
    room.broadcast("missed 2");
    // A client that saw `last` gets what followed, in order, before live messages.
    const res = await fetch(`${served.url}/live/game`, { headers: { "Last-Event-ID": String(last) } });
    const reader = res.body!.getReader();
    let text = "";
    while (!text.includes("missed 2")) text += new TextDecoder().decode((await reader.read()).value);
    // The stream opens with a comment (its first bytes at once), then the missed events.
    assert.equal(text, `: open\n\nid: ${last + 1}\ndata: missed 1\n\nid: ${last + 2}\ndata: missed 2\n\n`);
    await reader.cancel();
    // Too old for the history of 3: a resync event.
    const old = await fetch(`${served.url}/live/game`, { headers: { "Last-Event-ID": "0" } });
    const oldReader = old.body!.getReader();
    let first = "";
    while (!first.includes("resync")) first += new TextDecoder().decode((await oldReader.read()).value);
    assert.equal(first, `: open\n\nevent: resync\ndata: ${room.lastEventId}\n\n`);
    await oldReader.cancel();
    ws.close();
  });

  test("WebSocket members resume from a last id, or are told to resync", async () => {
    const room = app.rooms.getOrCreate("h-feed", { history: { maxMessages: 5 } });
    const first = await connect(`${base}/chat/h-feed`);
    for (let i = 1; i <= 4; i++) room.broadcast(`m${i}`);
    const resumed = new WS(`${base}/chat/h-feed?lastId=2`);
    const got: string[] = [];
    resumed.on("message", (d) => got.push(String(d)));
    await waitFor(() => got.length === 2);
    room.broadcast("m5");
    await waitFor(() => got.length === 3);
    assert.deepEqual(got, ["m3", "m4", "m5"]);
    for (let i = 6; i <= 12; i++) room.broadcast(`m${i}`);
    const tooOld = new WS(`${base}/chat/h-feed?lastId=1`);
    const oldGot: string[] = [];
    tooOld.on("message", (d) => oldGot.push(String(d)));
    await waitFor(() => oldGot.length === 1);
    assert.deepEqual(oldGot, ["RESYNC"]);
    for (const c of [first, resumed, tooOld]) c.close();
  });

  test("event-style rooms: connect, message and disconnect handlers get the room", async () => {
    const ann = await connect(`${base}/global-events?name=ann`);
    const seen: string[] = [];
    ann.on("message", (d) => seen.push(String(d)));
    const bob = await connect(`${base}/global-events?name=bob`);
    await waitFor(() => seen.includes("joined bob"));
    bob.send("hi all");
    await waitFor(() => seen.includes("bob: hi all"));
    bob.close();
    await waitFor(() => seen.includes("left bob"));
    assert.deepEqual(seen, ["joined bob", "bob: hi all", "left bob"]);
    ann.close();
    await waitFor(() => app.rooms.get("/global-events") === undefined);
  });

  test("a large broadcast is compressed once for members without context takeover, in publish order", async () => {
    const { inflateRawSync, constants: zlibConstants } = await import("node:zlib");
    const app2 = testApp({ websocket: { pingIntervalMs: 0 } });
    app2.websocket("/c/{room}", {
      onOpen: (ws) => void app2.rooms.getOrCreate(ws.params.room).add(ws),
    }, { perMessageDeflate: { serverNoContextTakeover: true, threshold: 1_000_000 } });
    const served2 = await serve(app2);
    try {
      const shared = await rawWebSocket(served2.port, "/c/news", { "Sec-WebSocket-Extensions": "permessage-deflate; server_no_context_takeover" });
      assert.match(shared.head, /server_no_context_takeover/);
      const plain = await rawWebSocket(served2.port, "/c/news");
      const viaWs = await connectWs(`ws://127.0.0.1:${served2.port}/c/news`, undefined, { perMessageDeflate: { serverNoContextTakeover: true } });
      const wsGot: string[] = [];
      viaWs.on("message", (d) => wsGot.push(String(d)));
      await waitFor(() => app2.rooms.get("news")?.size === 3);
      const room = app2.rooms.get("news")!;
      const big = "breaking news ".repeat(2_000);
      const first = room.broadcast(big);
      const second = room.broadcast("small, after the big one");
      assert.equal(first.queued, true);
      assert.equal(second.queued, true, "a later broadcast waits behind the compression");
      await waitFor(() => shared.frames.length === 2 && plain.frames.length === 2 && wsGot.length === 2, 5_000, "all deliveries");
      // The shared-context member got the big one compressed (RSV1), the other member uncompressed.
      assert.equal(shared.frames[0]!.rsv1, true);
      const inflated = inflateRawSync(Buffer.concat([shared.frames[0]!.payload, Buffer.from([0, 0, 0xff, 0xff])]), { finishFlush: zlibConstants.Z_SYNC_FLUSH }).toString();
      assert.equal(inflated, big);
      assert.ok(shared.frames[0]!.payload.length < big.length / 10);
      assert.equal(plain.frames[0]!.rsv1, false);
      assert.equal(plain.frames[0]!.payload.toString(), big);
      // Publish order holds for everybody.
      assert.equal(shared.frames[1]!.payload.toString(), "small, after the big one");
      assert.equal(plain.frames[1]!.payload.toString(), "small, after the big one");
      assert.deepEqual(wsGot, [big, "small, after the big one"]);
      assert.equal(room.stats.compressed, 1);
      assert.equal(room.stats.deliveries, 6);
      shared.socket.destroy();
      plain.socket.destroy();
      viaWs.close();
    } finally {
      await served2.close();
    }
  });

  test("a room compresses broadcasts at its compressionLevel (0 stores); a bad level fails at creation", async () => {
    const app2 = testApp({ websocket: { pingIntervalMs: 0 } });
    app2.websocket("/c/{room}", {
      onOpen: (ws) => void app2.rooms.getOrCreate(ws.params.room, { compressionLevel: 0 }).add(ws),
    }, { perMessageDeflate: { serverNoContextTakeover: true } });
    assert.throws(() => app2.rooms.getOrCreate("bad", { compressionLevel: 12 }), /compressionLevel/);
    const served2 = await serve(app2);
    try {
      const shared = await rawWebSocket(served2.port, "/c/stored", { "Sec-WebSocket-Extensions": "permessage-deflate; server_no_context_takeover" });
      await waitFor(() => app2.rooms.get("stored")?.size === 1);
      const big = "breaking news ".repeat(2_000);
      app2.rooms.get("stored")!.broadcast(big);
      await waitFor(() => shared.frames.length === 1, 5_000, "the broadcast");
      assert.equal(shared.frames[0]!.rsv1, true);
      assert.ok(shared.frames[0]!.payload.length >= big.length, "stored, not compressed");
      shared.socket.destroy();
    } finally {
      await served2.close();
    }
  });

  test("room statistics", () => {
    const stats = app.stats().rooms!;
    assert.ok(stats.broadcasts > 300);
    assert.ok(stats.deliveries > 5000);
    assert.ok(stats.skipped > 100);
    // The slow WebSocket member and the slow SSE subscriber under the close policy.
    assert.equal(stats.closedSlow, 2);
  });
});

describe("rooms are bounded", () => {
  test("history ages out untouched, and a room left with no member and nothing kept goes away", { timeout: 20_000 }, async () => {
    const app = testApp();
    const feed = app.rooms.getOrCreate("aging", { history: { maxMessages: 100, maxAgeMs: 200 } });
    for (let i = 0; i < 3; i++) feed.broadcast(`event ${i}`);
    assert.equal((feed.since(0) as unknown[]).length, 3);
    // Nobody touches it: the registry's sweep drops what aged out, then the room.
    await waitFor(() => app.rooms.get("aging") === undefined, 10_000, "the aged room to go");
    // Held by the app, it comes back when a member joins it again.
    app.get("/aging", () => feed.eventSource());
    const served = await serve(app);
    try {
      const controller = new AbortController();
      const res = await fetch(`${served.url}/aging`, { signal: controller.signal });
      await res.body!.getReader().read();
      assert.equal(app.rooms.get("aging"), feed);
      controller.abort();
    } finally {
      await served.close();
    }
    app.rooms.stop();
  });

  test("a feed a subscriber joined and left with nothing broadcast goes away at once; 2,000 distinct feeds leave no room", async () => {
    const app = testApp();
    app.get("/feed/{name}", (req) => app.rooms.getOrCreate(`feed:${req.params.name}`, { history: { maxMessages: 100, maxAgeMs: 300_000 } }).eventSource());
    const served = await serve(app);
    try {
      for (let batch = 0; batch < 20; batch++) {
        await Promise.all(Array.from({ length: 100 }, async (_, i) => {
          const controller = new AbortController();
          const res = await fetch(`${served.url}/feed/f${batch * 100 + i}`, { signal: controller.signal });
          await res.body!.getReader().read();
          controller.abort();
        }));
      }
      await waitFor(() => app.rooms.size === 0, 5_000, "the feeds to go");
    } finally {
      await served.close();
    }
  });

  test("maxRooms: one room more is refused with RoomLimitError (503 from a handler); history keeps at most maxBytes", async () => {
    const app = testApp({ maxRooms: 3 });
    for (const name of ["a", "b", "c"]) app.rooms.getOrCreate(name, { keepWhenEmpty: true });
    assert.throws(() => app.rooms.getOrCreate("d"), (error: unknown) => error instanceof RoomLimitError && error.status === 503);
    app.get("/join/{name}", (req) => void app.rooms.getOrCreate(req.params.name));
    const served = await serve(app);
    try {
      assert.equal((await fetch(`${served.url}/join/e`)).status, 503);
      assert.equal((await fetch(`${served.url}/join/a`)).status, 204);
    } finally {
      await served.close();
    }
    app.rooms.delete("c");
    const big = app.rooms.getOrCreate("big", { history: { maxMessages: 100, maxBytes: 1024 * 1024 } });
    for (let i = 0; i < 10; i++) big.broadcast("x".repeat(300 * 1024));
    // Ids 1..10: three of 300 KiB fit in 1 MiB, so it reaches back to 8.
    assert.equal((big.since(7) as unknown[]).length, 3);
    assert.equal(big.since(6), "resync");
    big.broadcast("y".repeat(2 * 1024 * 1024));
    assert.equal((big.since(10) as unknown[]).length, 1, "the newest is kept even when larger");
    assert.equal(big.since(9), "resync");
    assert.throws(() => app.rooms.getOrCreate("bad", { history: { maxMessages: 1, maxAgeMs: 0 } }), /history\.maxAgeMs/);
    app.rooms.stop();
  });

  test("maxHistoryBytes bounds all histories together: the oldest broadcasts of any room go first", () => {
    const app = testApp({ maxHistoryBytes: 1024 * 1024 });
    const feeds = Array.from({ length: 5 }, (_, i) => app.rooms.getOrCreate(`feed-${i}`, { history: { maxMessages: 100 } }));
    for (let round = 0; round < 2; round++) for (const feed of feeds) feed.broadcast("z".repeat(300 * 1024));
    // 3 MiB broadcast, 1 MiB kept: the three newest (feed-2, feed-3, feed-4 of the second round).
    const kept = feeds.map((feed) => {
      const entries = feed.since(0);
      return entries === "resync" ? (feed.since(1) === "resync" ? 0 : 1) : entries.length;
    });
    assert.deepEqual(kept, [0, 0, 1, 1, 1]);
    app.rooms.stop();
  });
});

describe("rooms across servers", () => {
  test("with a shared broker a broadcast on any server reaches every member exactly once", async () => {
    const { MemoryBus } = await import("../../src/index.js");
    const bus = new MemoryBus();
    const servers: Served[] = [];
    for (let i = 0; i < 3; i++) {
      const app = testApp({ websocket: { pingIntervalMs: 0 } });
      app.websocket("/room/{name}", {
        onOpen: (ws) => void app.rooms.getOrCreate(ws.params.name).add(ws),
        onMessage: (ws, message) => void app.rooms.getOrCreate(ws.params.name).broadcast(message),
      });
      const { url, port } = await app.listen({ port: 0, host: "127.0.0.1", broker: bus.broker() });
      servers.push({ app, url, port, close: () => app.close() });
    }
    try {
      // Two clients on each server.
      const clients = await Promise.all(servers.flatMap((s) => [0, 1].map(() => connect(`ws://127.0.0.1:${s.port}/room/match`))));
      const got = clients.map(() => [] as string[]);
      clients.forEach((c, i) => c.on("message", (d) => got[i]!.push(String(d))));
      await waitFor(() => servers.every((s) => s.app.rooms.get("match")?.size === 2));
      clients[0]!.send("from server 0");
      clients[2]!.send("from server 1");
      clients[5]!.send("from server 2");
      await waitFor(() => got.every((g) => g.length === 3), 5_000, "every member to get 3 messages");
      await sleep(100);
      for (const g of got) assert.deepEqual([...g].sort(), ["from server 0", "from server 1", "from server 2"]);
      assert.ok(servers.every((s) => s.app.stats().rooms!.remoteBroadcasts === 2));
      // The member count across servers, reported through the broker once a second.
      const rooms = servers.map((s) => s.app.rooms.get("match")!);
      const counts = async () => Promise.all(rooms.map((room) => room.count()));
      let seen: number[] = [];
      await waitFor(() => {
        void counts().then((c) => (seen = c));
        return seen.length === 3 && seen.every((c) => c === 6);
      }, 5_000, "every server to count 6 members");
      clients[0]!.close();
      clients[1]!.close();
      // Server 0's room empties: it says so at once, the others count 4.
      await waitFor(() => {
        void counts().then((c) => (seen = c));
        return seen[1] === 4 && seen[2] === 4;
      }, 5_000, "the others to count 4");
      for (const c of clients) c.close();
    } finally {
      for (const s of servers) await s.close();
    }
  });
});
