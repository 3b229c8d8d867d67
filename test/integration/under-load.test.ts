/**
 * The demo under load, in a process of its own: readers that take a generator stream as fast as
 * loopback allows must not hold the event loop (other requests and WebSocket messages are
 * answered meanwhile), and SIGTERM ends the process within shutdownTimeoutMs (+1 s) with a 1001
 * to every WebSocket. Bounds are liveness bounds, far above what the server needs when fair.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import WS from "ws";
import { startScript, type ScriptProcess } from "../helpers.js";

const SHUTDOWN_TIMEOUT_MS = 2_000;

/** A raw client that reads a response as fast as it comes, discarding it. */
function fastReader(port: number, path: string): { socket: Socket; bytes: () => number } {
  const socket = connect(port, "127.0.0.1");
  let bytes = 0;
  socket.on("data", (data: Buffer) => void (bytes += data.length));
  socket.on("error", () => undefined);
  socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  return { socket, bytes: () => bytes };
}

/** Milliseconds for `probe` to settle, or a rejection after `limitMs`. */
async function within<T>(limitMs: number, what: string, probe: (signal: AbortSignal) => Promise<T>): Promise<number> {
  const started = performance.now();
  const signal = AbortSignal.timeout(limitMs);
  await Promise.race([
    probe(signal),
    new Promise((_, reject) => signal.addEventListener("abort", () => reject(new Error(`${what}: no answer within ${limitMs} ms`)), { once: true })),
  ]);
  return performance.now() - started;
}

async function echo(ws: WS, text: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    ws.once("message", (data) => (String(data) === `Echo: ${text}` ? resolve() : reject(new Error(`echo was ${String(data)}`))));
    ws.send(text);
  });
}

async function open(url: string): Promise<WS> {
  const ws = new WS(url);
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  return ws;
}

async function startDemo(): Promise<ScriptProcess> {
  return startScript("examples/demo.ts", { MAX_CONNECTIONS: "4000", SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS) });
}

test("readers as fast as loopback do not hold the event loop: /stats and a WebSocket echo are answered meanwhile", { timeout: 60_000 }, async () => {
  const { child, port } = await startDemo();
  const readers: Array<ReturnType<typeof fastReader>> = [];
  try {
    const ws = await open(`ws://127.0.0.1:${port}/ws/echo`);
    for (let i = 0; i < 4; i++) readers.push(fastReader(port, "/export.csv?rows=50000000"));
    // Until the streams run at full speed.
    const deadline = Date.now() + 10_000;
    while (readers.some((r) => r.bytes() < 4 * 1024 * 1024) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.ok(readers.every((r) => r.bytes() >= 4 * 1024 * 1024), "the fast readers got their streams going");
    for (let i = 0; i < 5; i++) {
      await within(1_500, `/stats #${i}`, async (signal) => assert.equal(typeof (await (await fetch(`http://127.0.0.1:${port}/stats`, { signal })).json() as { uptimeMs?: number }).uptimeMs, "number"));
      await within(1_500, `WebSocket echo #${i}`, () => echo(ws, `probe ${i}`));
    }
    const before = readers.map((r) => r.bytes());
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(readers.every((r, i) => r.bytes() > before[i]!), "every stream kept flowing while the probes were answered");
    ws.terminate();
  } finally {
    for (const r of readers) r.socket.destroy();
    child.kill("SIGKILL");
  }
});

test("SIGTERM with fast streams and 1,000 WebSockets open: every WebSocket gets 1001 and the process exits within shutdownTimeoutMs + 1 s", { timeout: 90_000 }, async () => {
  const { child, port } = await startDemo();
  const readers: Array<ReturnType<typeof fastReader>> = [];
  const sockets: WS[] = [];
  try {
    const codes = new Map<number, number>();
    for (let i = 0; i < 1_000; i += 100) {
      const batch = await Promise.all(Array.from({ length: 100 }, () => open(`ws://127.0.0.1:${port}/ws/echo`)));
      for (const ws of batch) {
        const index = sockets.push(ws) - 1;
        ws.on("close", (code) => codes.set(index, code));
        ws.on("error", () => undefined);
      }
    }
    await echo(sockets[999]!, "ready");
    for (let i = 0; i < 4; i++) readers.push(fastReader(port, "/export.csv?rows=50000000"));
    const deadline = Date.now() + 10_000;
    while (readers.some((r) => r.bytes() < 4 * 1024 * 1024) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    const started = performance.now();
    child.kill("SIGTERM");
    const code = await Promise.race([exited, new Promise<"still running">((r) => setTimeout(() => r("still running"), SHUTDOWN_TIMEOUT_MS + 1_000))]);
    const took = performance.now() - started;
    assert.notEqual(code, "still running", `the process still ran ${SHUTDOWN_TIMEOUT_MS + 1_000} ms after SIGTERM`);
    // Close frames already sent arrive; give the client's side a moment to read them.
    const closeDeadline = Date.now() + 3_000;
    while (codes.size < sockets.length && Date.now() < closeDeadline) await new Promise((r) => setTimeout(r, 20));
    const by = new Map<number, number>();
    for (const c of codes.values()) by.set(c, (by.get(c) ?? 0) + 1);
    assert.deepEqual([...by], [[1001, 1_000]], `close codes after SIGTERM (exit after ${took.toFixed(0)} ms)`);
  } finally {
    for (const r of readers) r.socket.destroy();
    for (const ws of sockets) ws.terminate();
    if (child.exitCode === null) child.kill("SIGKILL");
  }
});
