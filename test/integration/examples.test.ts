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
