/**
 * Chromium and Firefox ESR as users run them, on a page that reports back over HTTP: bursts of
 * compressed echoes of many sizes (the browsers' own permessage-deflate, their frames coalesced
 * in the server's reads), and an EventSource on a room feed that must open at once and receive
 * what the room broadcasts.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createConformanceApp } from "../../examples/conformance.js";
import { HTMLResponse, Response } from "../../src/index.js";
import { serve, type Served } from "../helpers.js";
import { browsers, hasBrowser, openBrowser } from "../browsers.js";

interface Report {
  kind: string;
  [key: string]: unknown;
}

const reports = new Map<string, Report[]>();
const waiters: Array<() => void> = [];
let served: Served;

before(async () => {
  const app = createConformanceApp({ handleSignals: false, shutdownTimeoutMs: 2_000 });
  app.get("/traffic-page", () => new HTMLResponse(PAGE));
  app.post("/report/{browser}", async (req) => {
    const report = await req.json() as Report;
    const list = reports.get(req.params.browser) ?? [];
    list.push(report);
    reports.set(req.params.browser, list);
    for (const wake of waiters.splice(0)) wake();
    return new Response(null, { status: 204 });
  });
  served = await serve(app);
});
after(() => served.close());

async function report(browser: string, kind: string, timeoutMs: number): Promise<Report> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = reports.get(browser)?.find((r) => r.kind === kind);
    if (found !== undefined) return found;
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`${browser}: no "${kind}" report within ${timeoutMs} ms; got ${JSON.stringify(reports.get(browser) ?? [])}`);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, Math.min(left, 250));
      waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

for (const browser of browsers) {
  test(`${browser.name}: compressed echoes in bursts come back byte for byte; an EventSource on a room feed opens at once`, { timeout: 120_000 }, async () => {
    assert.ok(hasBrowser(browser), `${browser.name} not found at ${browser.executable}; install it (apt-get install ${browser.name === "chromium" ? "chromium" : "firefox-esr"})`);
    const running = openBrowser(browser, `${served.url}/traffic-page?browser=${browser.name}`);
    try {
      const opened = await report(browser.name, "sse-open", 30_000);
      // Firefox opens an EventSource only when the body's first byte arrives.
      assert.ok((opened.ms as number) < 1_000, `${browser.name}: EventSource open after ${String(opened.ms)} ms`);
      const feed = served.app.rooms.get(`news:browser-${browser.name}`);
      assert.ok(feed !== undefined, "the page joined the feed");
      for (const text of ["one", "two", "three"]) feed.broadcast(text);
      const events = await report(browser.name, "sse-events", 10_000);
      assert.deepEqual(events.data, ["one", "two", "three"]);
      const echoes = await report(browser.name, "echoes", 90_000);
      assert.match(String(echoes.extensions), /permessage-deflate/);
      assert.deepEqual(echoes.mismatches, [], `${browser.name}: ${JSON.stringify(echoes.mismatches).slice(0, 2000)}`);
      assert.equal(echoes.count, echoes.expected);
    } finally {
      await running.close();
    }
  });
}

const PAGE = `<!doctype html>
<meta charset="utf-8"><title>traffic</title>
<script>
const browser = new URLSearchParams(location.search).get("browser");
const post = (body) => fetch("/report/" + browser, { method: "POST", body: JSON.stringify(body) });
window.onerror = (message) => post({ kind: "error", message: String(message) });

// An EventSource on a room feed: opens at once (its first bytes are a comment), then gets broadcasts.
const started = performance.now();
const source = new EventSource("/news/browser-" + browser);
const events = [];
source.onopen = () => post({ kind: "sse-open", ms: Math.round(performance.now() - started) });
source.onmessage = (e) => {
  events.push(e.data);
  if (events.length === 3) { post({ kind: "sse-events", data: events }); source.close(); }
};

// Compressed echoes: text and binary of many sizes, compressible and not, all sent at once.
function text(size, seed) {
  const pieces = ["a", "é", "ж", "中", "🐱", " ", "z"];
  const bytes = pieces.map((p) => new TextEncoder().encode(p).length);
  const parts = [];
  let length = 0;
  for (let i = seed; length < size; i++) {
    const n = 1 + (i * 7) % 30;
    parts.push(pieces[i % pieces.length].repeat(n));
    length += bytes[i % pieces.length] * n;
  }
  return parts.join("");
}
function noise(size) {
  const bytes = new Uint8Array(size);
  for (let at = 0; at < size; at += 65536) crypto.getRandomValues(bytes.subarray(at, Math.min(size, at + 65536)));
  return bytes;
}
function pattern(size) {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 7 + (i >> 9)) & 0xff;
  return bytes;
}
// Built after the EventSource opened (the page's script would hold its open event back).
function echoes() {
const messages = [];
for (let i = 0; i < 2000; i++) messages.push("m" + i + "-" + "z".repeat(i % 3000));
const sizes = [0, 1, 125, 126, 1000, 1023, 1024, 1500, 4096, 16384, 65535, 65536, 100000, 262144, 300000, 1048576];
for (const size of sizes) { messages.push(text(size, size)); messages.push(noise(size)); messages.push(pattern(size)); }
const expected = messages.length;

function same(a, b) {
  if (typeof a === "string") return a === b;
  if (!(b instanceof ArrayBuffer)) return false;
  const x = new Uint8Array(b);
  if (x.length !== a.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== a[i]) return false;
  return true;
}
const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/echo");
ws.binaryType = "arraybuffer";
let count = 0;
const mismatches = [];
ws.onopen = () => { for (const m of messages) ws.send(m); };
ws.onmessage = (e) => {
  const want = messages[count];
  if (!same(want, e.data)) {
    const got = typeof e.data === "string" ? e.data.slice(0, 40) : "binary " + e.data.byteLength;
    mismatches.push({ index: count, size: typeof want === "string" ? want.length : want.length, got });
  }
  count++;
  if (count === expected) post({ kind: "echoes", count, expected, mismatches: mismatches.slice(0, 20), extensions: ws.extensions });
};
ws.onclose = (e) => { if (count < expected) post({ kind: "echoes", count, expected, mismatches: mismatches.slice(0, 20), closed: e.code, extensions: ws.extensions }); };
}
setTimeout(echoes, 200);
</script>`;
