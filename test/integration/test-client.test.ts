import { test } from "node:test";
import assert from "node:assert/strict";
import { TestClient } from "catzilla/testing";
import { WebSocketDisconnect, WebSocketTimeoutError } from "../../src/index.js";
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
