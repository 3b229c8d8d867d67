import { test } from "node:test";
import assert from "node:assert/strict";
import { TestClient } from "catzilla/testing";
import { WebSocketDisconnect, WebSocketTimeoutError, type Request, type Resolve } from "../../src/index.js";
import { testApp } from "../helpers.js";

test("TestClient drives HTTP and WebSocket routes over real sockets", async () => {
  const app = testApp();
  app.get("/hello", () => "Hello, World!");
  app.websocket("/echo", async (ws) => {
    await ws.accept();
    for await (const message of ws) ws.send(message);
  }, { subprotocols: ["json"] });
  app.websocket("/bye", async (ws) => {
    await ws.accept();
    ws.sendText("bye");
    ws.close(4000, "done");
  });
  const client = new TestClient(app);
  try {
    assert.equal(await (await client.get("/hello")).text(), "Hello, World!");
    const ws = await client.websocket("/echo", { subprotocols: ["json"] });
    assert.equal(ws.subprotocol, "json");
    assert.equal(ws.isConnected, true);
    ws.sendText("hi");
    assert.equal(await ws.receiveText({ timeout: 1000 }), "hi");
    ws.sendBytes(Buffer.from([1, 2, 3]));
    assert.deepEqual([...(await ws.receiveBytes())], [1, 2, 3]);
    ws.sendJson({ a: 1 });
    assert.deepEqual(await ws.receiveJson(), { a: 1 });
    await assert.rejects(ws.receiveText({ timeout: 50 }), WebSocketTimeoutError);
    await ws.close();
    assert.equal(ws.isConnected, false);

    const bye = await client.connect("/bye");
    assert.equal(await bye.receiveText(), "bye");
    await assert.rejects(bye.receiveText(), (e: unknown) => e instanceof WebSocketDisconnect && e.code === 4000 && e.reason === "done");
    await assert.rejects(client.websocket("/missing"), /HTTP 404/);
  } finally {
    await client.close();
  }
});

test("TestClient.override() replaces a dependency wherever it is used, HTTP and WebSocket, until restore() or close()", { timeout: 10_000 }, async () => {
  const app = testApp();
  const database = (): string => "production-db";
  const currentUser = async (_req: Request, resolve: Resolve): Promise<string> => `alice@${await resolve(database)}`;
  app.get("/me", (_req, { user }) => ({ user }), { dependencies: { user: currentUser } });
  app.websocket("/me", async (ws, { user }) => {
    await ws.accept();
    ws.sendText(user);
    await ws.receiveText().catch(() => undefined);
  }, { dependencies: { user: currentUser } });
  const client = new TestClient(app);
  try {
    const me = async (): Promise<unknown> => (await client.get("/me")).json();
    assert.deepEqual(await me(), { user: "alice@production-db" });
    client.override(database, () => "test-db");
    assert.deepEqual(await me(), { user: "alice@test-db" }, "a dependency of a dependency");
    const ws = await client.websocket("/me");
    assert.equal(await ws.receiveText({ timeout: 2_000 }), "alice@test-db");
    await ws.close();
    client.override(currentUser, () => "bob");
    assert.deepEqual(await me(), { user: "bob" });
    client.restore(currentUser);
    assert.deepEqual(await me(), { user: "alice@test-db" }, "restore() undoes one override");
    client.restore();
    assert.deepEqual(await me(), { user: "alice@production-db" });
    client.override(database, () => "again");
  } finally {
    await client.close();
  }
  assert.equal(app.dependencyOverrides.size, 0, "close() undid the overrides");
});
