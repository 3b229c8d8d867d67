import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import WS from "ws";
import { createDemoApp } from "../../examples/demo-app.js";
import { serve, waitFor, type Served } from "../helpers.js";

let served: Served;
before(async () => {
  served = await serve(createDemoApp({ handleSignals: false }));
});
after(() => served.close());

test("the trading feed sends every update to a slow reader, in order, without unbounded buffering", async () => {
  const ws = new WS(`ws://127.0.0.1:${served.port}/ws/prices?n=20000`);
  let header: unknown = null;
  let updates = 0;
  let lastTime = 0;
  let ordered = true;
  ws.on("message", (data, isBinary) => {
    if (!isBinary) {
      header = JSON.parse(String(data));
      return;
    }
    const buf = data as Buffer;
    assert.equal(buf.length, 18);
    const time = buf.readDoubleBE(10);
    if (time < lastTime) ordered = false;
    lastTime = time;
    updates++;
  });
  const code = await new Promise<number>((resolve) => ws.once("close", (c) => resolve(c)));
  assert.equal(code, 1000);
  assert.deepEqual((header as { symbols: string[] }).symbols.length, 8);
  assert.equal(updates, 20000);
  assert.equal(ordered, true);
});

test("IoT telemetry: binary readings are acknowledged, text is refused with 1003", async () => {
  const ws = new WS(`ws://127.0.0.1:${served.port}/ws/telemetry/sensor-7`);
  await new Promise((resolve) => ws.once("open", resolve));
  const acks: string[] = [];
  ws.on("message", (d) => acks.push(String(d)));
  for (let i = 0; i < 10; i++) ws.send(Buffer.from([i, 1, 2, 3]));
  await waitFor(() => acks.length === 10);
  assert.deepEqual(new Set(acks), new Set(["ACK"]));
  const closed = new Promise<number>((resolve) => ws.once("close", (c) => resolve(c)));
  ws.send("not binary");
  assert.equal(await closed, 1003);
  const stats = await (await fetch(`${served.url}/telemetry/stats`)).json() as { readings: number };
  assert.ok(stats.readings >= 10);
});

test("the demo page links every demo", async () => {
  const html = await (await fetch(`${served.url}/`)).text();
  for (const link of ["/export.csv", "/chat", "/download/sample.bin", "/monitored", "/ws-echo", "/clock", "/stats"]) {
    assert.ok(html.includes(link), link);
  }
});

test("the chat stream validates its message query; the orders API its body and query; the demo serves its documents and docs page", { timeout: 10_000 }, async () => {
  const missing = await fetch(`${served.url}/chat/stream`);
  assert.equal(missing.status, 422);
  assert.deepEqual((await missing.json() as any).detail.map((i: { loc: unknown }) => i.loc), [["query", "message"]]);
  const stream = await fetch(`${served.url}/chat/stream?message=hi`);
  assert.equal(stream.headers.get("content-type")?.split(";")[0], "text/event-stream");
  await stream.body?.cancel();

  const post = (body: unknown) => fetch(`${served.url}/api/orders`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const bad = await post({ item: "", quantity: 0 });
  assert.equal(bad.status, 422);
  assert.deepEqual((await bad.json() as any).detail.map((i: { loc: string[] }) => i.loc.join(".")).sort(), ["body.item", "body.quantity"]);
  const created = await (await post({ item: "pen", quantity: 2 })).json() as any;
  assert.equal(created.status, "open");
  const listed = await (await fetch(`${served.url}/api/orders?status=open&limit=1`)).json();
  assert.deepEqual(listed, [created]);
  assert.equal((await fetch(`${served.url}/api/orders?limit=1000`)).status, 422);
  assert.deepEqual(await (await fetch(`${served.url}/api/orders/${created.id}`)).json(), created);

  const openapi = await (await fetch(`${served.url}/openapi.json`)).json() as any;
  assert.equal(openapi.openapi, "3.1.0");
  assert.ok(openapi.paths["/api/orders"].post.requestBody);
  assert.ok(openapi.paths["/chat/stream"].get.responses["200"].content["text/event-stream"]);
  const asyncapi = await (await fetch(`${served.url}/asyncapi.json`)).json() as any;
  assert.deepEqual(Object.keys(asyncapi.channels).sort(), ["ws_echo", "ws_prices", "ws_telemetry_deviceId"]);
  const docs = await fetch(`${served.url}/docs`);
  assert.equal(docs.status, 200);
  assert.match(await docs.text(), /\/openapi\.json/);
});
