import { test } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:net";
import { randomBytes } from "node:crypto";
import { readdirSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { Catzilla } from "../../src/index.js";
import { clientFrame, connectWs, serverTexts as texts } from "../ws-helpers.js";
import { testApp, waitFor } from "../helpers.js";
import { nativeOrSkip } from "./native-helpers.js";

/** An echo app on the native engine whose middleware takes `delayMs` before the handshake completes. */
async function echoServer(delayMs: number): Promise<{ app: Catzilla; port: number }> {
  const app = testApp({ engine: "native", websocket: { pingIntervalMs: 0 } });
  app.useWebSocket(async (_ws, next) => {
    await sleep(delayMs);
    await next();
  });
  app.websocket("/echo", { onMessage: (ws, message) => void ws.send(message) });
  const { port } = await app.listen({ port: 0, host: "127.0.0.1" });
  return { app, port };
}

/** Send the upgrade request and frames in the given writes; resolve once `done` says the reply is complete. */
function exchange(port: number, writes: Array<{ data: Buffer; delayMs: number }>, done: (reply: Buffer) => boolean): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let reply = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`incomplete reply: ${JSON.stringify(reply.toString("latin1"))}`));
    }, 5_000);
    socket.on("data", (d: Buffer) => {
      reply = Buffer.concat([reply, d]);
      if (!done(reply)) return;
      clearTimeout(timer);
      socket.destroy();
      resolve(reply);
    });
    socket.on("error", reject);
    void (async () => {
      for (const { data, delayMs } of writes) {
        if (delayMs > 0) await sleep(delayMs);
        if (!socket.destroyed) socket.write(data);
      }
    })();
  });
}

const request = (port: number) => Buffer.from(
  `GET /echo HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
);

test("hand-over: frames sent with the upgrade request, and during the handshake, reach the native engine in order", async (t) => {
  if (nativeOrSkip(t) === null) return;
  const { app, port } = await echoServer(100);
  try {
    const expected = ["one", "two", "three", "four"];
    const frames = expected.map((s) => clientFrame(0x1, s));
    // In the request's packet (the upgrade's head), then while the middleware waits (read by
    // node:net before the hand-over), then after it.
    const reply = await exchange(port, [
      { data: Buffer.concat([request(port), frames[0]!]), delayMs: 0 },
      { data: frames[1]!, delayMs: 20 },
      { data: frames[2]!, delayMs: 20 },
      { data: frames[3]!, delayMs: 150 },
    ], (r) => r.includes("\r\n\r\n") && texts(r).length === expected.length);
    assert.ok(reply.toString("latin1").startsWith("HTTP/1.1 101 Switching Protocols\r\n"));
    assert.deepEqual(texts(reply), expected);
    assert.equal(app.stats().engine, "native");
  } finally {
    await app.close();
  }
});

test("hand-over: the node:net socket is gone, one descriptor per connection stays", async (t) => {
  const binding = nativeOrSkip(t);
  if (binding === null) return;
  const { app, port } = await echoServer(0);
  const descriptors = () => readdirSync("/proc/self/fd").length;
  try {
    const before = descriptors();
    const adopted = binding.stats().adopted;
    const clients = await Promise.all(Array.from({ length: 20 }, () => connectWs(`ws://127.0.0.1:${port}/echo`)));
    await waitFor(() => binding.stats().adopted === adopted + 20, 3_000, "20 adoptions");
    await sleep(50);
    // Each connection: the client's socket and the server's one duplicated descriptor.
    assert.equal(descriptors() - before, 40);
    const replies = await Promise.all(clients.map((c, i) => new Promise<string>((resolve) => {
      c.once("message", (d) => resolve(String(d)));
      c.send(`hi ${i}`);
    })));
    assert.deepEqual(replies, clients.map((_, i) => `hi ${i}`));
    for (const c of clients) c.close();
    await waitFor(() => binding.stats().connections === 0, 3_000, "the connections to end");
    await waitFor(() => descriptors() === before, 3_000, "the descriptors to be released");
  } finally {
    await app.close();
  }
});

test("hand-over: a connection the native engine cannot adopt is served by node:net, bytes read so far included", async (t) => {
  const binding = nativeOrSkip(t);
  if (binding === null) return;
  const { app, port } = await echoServer(50);
  const adopt = binding.adopt;
  binding.adopt = () => {
    throw new Error("EMFILE: too many open files");
  };
  try {
    const expected = ["one", "two"];
    const frames = expected.map((s) => clientFrame(0x1, s));
    const reply = await exchange(port, [
      { data: Buffer.concat([request(port), frames[0]!]), delayMs: 0 },
      { data: frames[1]!, delayMs: 10 },
    ], (r) => r.includes("\r\n\r\n") && texts(r).length === expected.length);
    assert.deepEqual(texts(reply), expected);
    assert.match(String((app as unknown as { errors: unknown[] }).errors[0] ?? ""), /EMFILE/);
  } finally {
    binding.adopt = adopt;
    await app.close();
  }
});
