import { test } from "node:test";
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { readdirSync } from "node:fs";
import { Catzilla } from "../../src/index.js";
import { sleep, testApp, waitFor } from "../helpers.js";
import { nativeOrSkip } from "./native-helpers.js";

type HttpEngineName = "node" | "native";

/** An app whose `/feed/{name}` is an SSE subscriber of the room `name`, on the native engine. */
async function feedServer(
  httpEngine: HttpEngineName, options: { maxStreamsPerClient?: number; shutdownTimeoutMs?: number; maxConnections?: number } = {},
): Promise<{ app: Catzilla; port: number }> {
  // Either HTTP engine hands subscribers over: node:http its socket's descriptor (duplicated), the
  // C server the descriptor itself.
  const app = testApp({ engine: "native", httpEngine, ...options });
  app.get("/feed/{name}", (req) => app.rooms.getOrCreate(req.params.name).eventSource({ pingMs: 0 }));
  const { port } = await app.listen({ port: 0, host: "127.0.0.1" });
  return { app, port };
}

interface Subscriber {
  socket: Socket;
  /** Everything received so far, head included. */
  received(): string;
  ended: Promise<void>;
}

function subscribe(port: number, path: string): Subscriber {
  const socket = connect(port, "127.0.0.1");
  let data = "";
  socket.setEncoding("latin1");
  socket.on("data", (d: string) => void (data += d));
  socket.on("error", () => undefined);
  socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
  const ended = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  return { socket, received: () => data, ended };
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const descriptors = (): number => readdirSync("/proc/self/fd").length;

for (const httpEngine of ["node", "native"] as const) {
test(`an SSE room subscriber is handed to the native engine with its headers: one descriptor each, no HTTP engine objects (${httpEngine} HTTP engine)`, async (t) => {
  if (nativeOrSkip(t) === null) return;
  const { app, port } = await feedServer(httpEngine);
  try {
    const engine = app.websockets.nativeEngine!;
    const before = descriptors();
    const subscribers = Array.from({ length: 20 }, () => subscribe(port, "/feed/news"));
    await waitFor(() => app.rooms.get("news")?.size === 20 && subscribers.every((s) => s.received().includes("\r\n\r\n")), 5_000, "20 subscribers");
    assert.equal(engine.streamCount, 20);
    // The node:net sockets are gone; the engine holds one duplicate descriptor per connection
    // (the clients, in this process too, hold the other 20).
    await waitFor(() => descriptors() - before === 40, 3_000, "one descriptor per subscriber");
    const head = subscribers[0]!.received().split("\r\n\r\n")[0]!.toLowerCase();
    assert.match(head, /^http\/1\.1 200 ok\r\n/);
    assert.match(head, /\r\ncontent-type: text\/event-stream; charset=utf-8/);
    assert.match(head, /\r\ncache-control: no-cache/);
    // The body ends with the connection: no chunked framing, no reuse for another request.
    assert.match(head, /\r\nconnection: close/);
    assert.doesNotMatch(head, /transfer-encoding/);
    assert.equal(app.stats().streams.active, 20);

    const room = app.rooms.get("news")!;
    assert.equal(room.broadcast("one").delivered, 20);
    // A broadcast is delivered at once while the turn's fan-out slice lasts; the sanitizer build
    // can spend the slice on the first one, and the second would wait for a later turn.
    await nextTurn();
    assert.equal(room.broadcast({ two: 2 }).delivered, 20);
    const body = `id: 1\ndata: one\n\nid: 2\ndata: {"two":2}\n\n`;
    await waitFor(() => subscribers.every((s) => s.received().endsWith(body)), 3_000, "both events everywhere");

    for (const s of subscribers.slice(0, 10)) s.socket.destroy();
    await waitFor(() => room.size === 10 && engine.streamCount === 10, 3_000, "the clients that left to be removed");
    assert.equal(app.stats().streams.active, 10);
    assert.equal(room.broadcast("three").delivered, 10);
    // Shutdown ends the rest.
    await app.close();
    await Promise.all(subscribers.map((s) => s.ended));
    await waitFor(() => engine.streamCount === 0, 3_000, "every stream to end");
  } finally {
    await app.close();
  }
});

test(`adopted subscribers count toward maxStreamsPerClient and end at shutdown (${httpEngine} HTTP engine)`, async (t) => {
  if (nativeOrSkip(t) === null) return;
  const { app, port } = await feedServer(httpEngine, { maxStreamsPerClient: 3, shutdownTimeoutMs: 300 });
  const subscribers = Array.from({ length: 3 }, () => subscribe(port, "/feed/capped"));
  await waitFor(() => app.rooms.get("capped")?.size === 3, 3_000, "three subscribers");
  const refused = await fetch(`http://127.0.0.1:${port}/feed/capped`);
  assert.equal(refused.status, 429);
  await refused.body?.cancel();
  const started = Date.now();
  await app.close();
  // Every stream ended by the server: the clients see the connection close.
  await Promise.all(subscribers.map((s) => s.ended));
  assert.ok(Date.now() - started < 5_000);
  await waitFor(() => app.stats().streams.active === 0, 3_000, "the streams to be counted as ended");
});

test(`adopted subscribers still count toward maxConnections (${httpEngine} HTTP engine)`, async (t) => {
  if (nativeOrSkip(t) === null) return;
  const { app, port } = await feedServer(httpEngine, { maxConnections: 4 });
  const subscribers: Subscriber[] = [];
  try {
    for (let i = 0; i < 4; i++) {
      subscribers.push(subscribe(port, "/feed/full"));
      await waitFor(() => app.rooms.get("full")?.size === i + 1, 3_000, `subscriber ${i + 1}`);
    }
    // A subscriber joins its room before its response head reaches the client (the sanitizer
    // build is slow enough to show it): wait for the four heads.
    await waitFor(() => subscribers.every((s) => s.received().includes("\r\n\r\n")), 3_000, "four response heads");
    const heads = subscribers.map((s) => s.received().split("\r\n\r\n")[0]!.toLowerCase());
    // Three went to the engine; the engine leaves the last connection of the four to the HTTP engine.
    assert.equal(app.websockets.nativeEngine!.streamCount, 3);
    assert.equal(heads.filter((h) => h.includes("connection: close")).length, 3);
    assert.equal(heads.filter((h) => h.includes("transfer-encoding: chunked")).length, 1);
    // A fifth connection is over the limit: closed as soon as it is accepted, unanswered.
    const fifth = subscribe(port, "/feed/full");
    subscribers.push(fifth);
    const closed = await Promise.race([fifth.ended.then(() => true), sleep(3_000).then(() => false)]);
    assert.ok(closed, `the fifth connection was not closed; it got ${JSON.stringify(fifth.received().slice(0, 40))}`);
    assert.equal(fifth.received(), "");
    // One leaves: there is room again.
    subscribers[0]!.socket.destroy();
    await waitFor(() => app.rooms.get("full")?.size === 3, 3_000, "the subscriber to leave");
    const sixth = subscribe(port, "/feed/full");
    subscribers.push(sixth);
    await waitFor(() => sixth.received().startsWith("HTTP/1.1 200"), 3_000, "the sixth subscriber");
  } finally {
    for (const s of subscribers) s.socket.destroy();
    await app.close();
  }
});
}
