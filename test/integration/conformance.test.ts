import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createConformanceApp } from "../../examples/conformance.js";
import WS from "ws";
import { decodeChunked, rawExchange, serve, splitResponse, type Served } from "../helpers.js";

let served: Served;
before(async () => {
  served = await serve(createConformanceApp({ handleSignals: false }));
});
after(() => served.close());

test("/hello", async () => {
  const res = await fetch(`${served.url}/hello`);
  assert.equal(res.headers.get("content-type"), "text/plain; charset=utf-8");
  assert.equal(await res.text(), "Hello, World!");
});

test("/stream sends n chunks of size bytes, and fail=K cuts after K", async () => {
  const body = await (await fetch(`${served.url}/stream?n=1000&size=1024`)).arrayBuffer();
  assert.equal(body.byteLength, 1000 * 1024);
  assert.ok(Buffer.from(body).every((b) => b === 0x78));
  const { data } = await rawExchange(served.port, "GET /stream?n=10&size=100&fail=3 HTTP/1.1\r\nHost: x\r\n\r\n");
  const { chunks, complete } = decodeChunked(splitResponse(data).body);
  assert.equal(complete, false);
  assert.equal(Buffer.concat(chunks).length, 300);
});

test("/sse counts to n and resumes after Last-Event-ID", async () => {
  assert.equal(await (await fetch(`${served.url}/sse?n=2`)).text(), "id: 1\ndata: tick-1\n\nid: 2\ndata: tick-2\n\n");
  const resumed = await fetch(`${served.url}/sse?n=4`, { headers: { "Last-Event-ID": "2" } });
  assert.equal(await resumed.text(), "id: 3\ndata: tick-3\n\nid: 4\ndata: tick-4\n\n");
});

test("/files serves the fixtures with ranges", async () => {
  const res = await fetch(`${served.url}/files/hello.txt`, { headers: { range: "bytes=0-4" } });
  assert.equal(res.status, 206);
  assert.equal(await res.text(), "Hello");
});

test("/stats reports stream counters; /metrics is Prometheus text", async () => {
  const stats = await (await fetch(`${served.url}/stats`)).json() as { streams: Record<string, number> };
  for (const key of ["active", "created", "completed", "aborted", "bytes"]) {
    assert.equal(typeof stats.streams[key], "number", key);
  }
  assert.ok(stats.streams.created! >= 4);
  assert.ok(stats.streams.aborted! >= 1);
  assert.ok(stats.streams.bytes! >= 1000 * 1024);
  const metrics = await (await fetch(`${served.url}/metrics`)).text();
  assert.match(metrics, /^# HELP catzilla_uptime_seconds /m);
  assert.match(metrics, /^# TYPE catzilla_streams_created_total counter$/m);
  assert.match(metrics, /^catzilla_http_responses_total\{class="2xx"\} \d+$/m);
});

test("/echo echoes text and binary, compressed, up to 16 MiB", async () => {
  const ws = new WS(`ws://127.0.0.1:${served.port}/echo`, { perMessageDeflate: true, maxPayload: 32 * 1024 * 1024 });
  await new Promise((resolve) => ws.once("open", resolve));
  assert.match(ws.extensions, /permessage-deflate/);
  const replies: Array<[string | number, boolean]> = [];
  ws.on("message", (data, isBinary) => replies.push([isBinary ? (data as Buffer).length : String(data), isBinary]));
  ws.send("hello");
  ws.send(Buffer.alloc(16 * 1024 * 1024 - 16, 3));
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => replies.length === 2 && (clearInterval(timer), resolve()), 10);
  });
  assert.deepEqual(replies, [["hello", false], [16 * 1024 * 1024 - 16, true]]);
  ws.close();
});

test("/room/{name}: a member's message reaches every member of that room only, sender included", async () => {
  const open = (path: string) => new Promise<WS>((resolve) => {
    const ws = new WS(`ws://127.0.0.1:${served.port}${path}`);
    ws.once("open", () => resolve(ws));
  });
  const [a, b, other] = await Promise.all([open("/room/x"), open("/room/x"), open("/room/y")]);
  const got = { a: [] as string[], b: [] as string[], other: [] as string[] };
  a.on("message", (d, bin) => got.a.push(bin ? "binary" : String(d)));
  b.on("message", (d, bin) => got.b.push(bin ? "binary" : String(d)));
  other.on("message", (d) => got.other.push(String(d)));
  a.send("hello room");
  b.send(Buffer.from([1]));
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => got.a.length === 2 && got.b.length === 2 && (clearInterval(timer), resolve()), 10);
  });
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(got, { a: ["hello room", "binary"], b: ["hello room", "binary"], other: [] });
  for (const ws of [a, b, other]) ws.close();
});
