// WebSocket handshakes on the native HTTP engine (the C server): the app answers while the
// connection stays in C; an accepted one goes to the WebSocket engine with its descriptor.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHook } from "node:async_hooks";
import { connect, type Socket } from "node:net";
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { Catzilla } from "../../src/index.js";
import type { EngineChoice } from "../../src/options.js";
import { clientFrame, serverTexts as texts } from "../ws-helpers.js";
import { testApp, waitFor } from "../helpers.js";
import { nativeOrSkip } from "./native-helpers.js";

/** An echo app on the C server; its WebSocket middleware waits `delayMs` before the handshake completes. */
async function echoServer(engine: EngineChoice, delayMs: number): Promise<{ app: Catzilla; port: number }> {
  const app = testApp({ httpEngine: "native", engine, websocket: { pingIntervalMs: 0 } });
  app.useWebSocket(async (_ws, next) => {
    await sleep(delayMs);
    await next();
  });
  app.websocket("/echo", { onMessage: (ws, message) => void ws.send(message) });
  const { port } = await app.listen({ port: 0, host: "127.0.0.1" });
  assert.equal(app.stats().httpEngine, "native");
  return { app, port };
}

const request = (port: number, path = "/echo") => Buffer.from(
  `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
);

/** A raw client, connected. */
function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => resolve(socket));
    socket.once("error", reject);
  });
}

/** Everything the server sends until `done` says it is complete (or it closes), within 5 s. */
function reply(socket: Socket, done: (data: Buffer) => boolean): Promise<{ data: Buffer; closed: boolean }> {
  return new Promise((resolve, reject) => {
    let data = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`incomplete reply: ${JSON.stringify(data.toString("latin1"))}`));
    }, 5_000);
    const finish = (closed: boolean): void => {
      clearTimeout(timer);
      resolve({ data, closed });
    };
    socket.on("data", (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      if (done(data)) finish(false);
    });
    socket.once("close", () => finish(true));
  });
}

/** Frames sent with the upgrade request's head, and while the middleware waits, come back in order. */
async function echoInOrder(port: number, client?: Socket): Promise<void> {
  const socket = client ?? await open(port);
  const expected = ["one", "two", "three"];
  const frames = expected.map((text) => clientFrame(0x1, text));
  const got = reply(socket, (data) => data.includes("\r\n\r\n") && texts(data).length === expected.length);
  socket.write(Buffer.concat([request(port), frames[0]!]));
  await sleep(20);
  socket.write(frames[1]!);
  await sleep(150);
  socket.write(frames[2]!);
  const { data } = await got;
  socket.destroy();
  assert.ok(data.toString("latin1").startsWith("HTTP/1.1 101 Switching Protocols\r\n"), data.toString("latin1"));
  assert.deepEqual(texts(data), expected);
}

test("a handshake accepted on the C server goes to the native WebSocket engine as a descriptor: no node:net socket is made", { timeout: 20_000 }, async (t) => {
  const binding = nativeOrSkip(t);
  if (binding === null) return;
  const { app, port } = await echoServer("native", 100);
  try {
    const adopted = binding.stats().adopted;
    const client = await open(port);
    // node:net sockets made from here on: the client's is connected already.
    let sockets = 0;
    const hook = createHook({
      init(_id, type) {
        if (type === "TCPWRAP") sockets++;
      },
    }).enable();
    try {
      await echoInOrder(port, client);
    } finally {
      hook.disable();
    }
    assert.equal(sockets, 0, "node:net sockets made for the connection");
    assert.equal(binding.stats().adopted, adopted + 1);
    await waitFor(() => app.stats().connections.active === 0, 3_000, "the connection to be counted out");
  } finally {
    await app.close();
  }
});

test("with the node:net WebSocket engine the descriptor becomes a node:net socket; the bytes read so far come first", { timeout: 20_000 }, async (t) => {
  if (nativeOrSkip(t) === null) return;
  const { app, port } = await echoServer("node", 100);
  try {
    assert.equal(app.stats().engine, "node");
    await echoInOrder(port);
    await waitFor(() => app.stats().connections.active === 0 && app.stats().websockets.active === 0, 3_000, "the connection to be counted out");
  } finally {
    await app.close();
  }
});

test("a refused handshake gets its status and body from the C server, then the connection ends", { timeout: 20_000 }, async (t) => {
  if (nativeOrSkip(t) === null) return;
  for (const engine of ["native", "node"] as const) {
    const { app, port } = await echoServer(engine, 0);
    try {
      const socket = await open(port);
      const got = reply(socket, () => false);
      socket.write(request(port, "/nowhere"));
      const { data, closed } = await got;
      const text = data.toString("latin1");
      assert.ok(text.startsWith("HTTP/1.1 404 "), text);
      assert.match(text, /No WebSocket route for this path/);
      assert.ok(closed, "the server ends the connection after a refusal");
      assert.equal(app.stats().websockets.rejectedHandshakes, 1);
      await waitFor(() => app.stats().connections.active === 0, 3_000, "the connection to be counted out");
    } finally {
      await app.close();
    }
  }
});

test("a client that leaves during the handshake ends it; nothing stays counted", { timeout: 20_000 }, async (t) => {
  if (nativeOrSkip(t) === null) return;
  const { app, port } = await echoServer("native", 300);
  let opened = 0;
  app.websocket("/counted", { onOpen: () => void opened++, onMessage() {} });
  try {
    const sockets = await Promise.all(Array.from({ length: 5 }, () => open(port)));
    for (const socket of sockets) socket.write(request(port, "/counted"));
    await waitFor(() => app.stats().connections.active === 5, 3_000, "five connections");
    for (const socket of sockets) socket.destroy();
    await waitFor(() => app.stats().connections.active === 0, 3_000, "the connections to be counted out");
    await sleep(400);
    assert.equal(opened, 0, "no handler ran for a client that left");
    assert.equal(app.stats().websockets.active, 0);
    // The server still serves.
    await echoInOrder(port);
  } finally {
    await app.close();
  }
});
