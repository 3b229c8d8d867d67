/**
 * A WebSocket session alone, over a fake transport and host (no sockets): inbound backpressure,
 * receive and its timeout, how a session ends, what errors leaving a handler do, and what sends
 * count in the statistics.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { WebSocket, sessionEvents, type SessionHost, type WebSocketListener } from "./session.js";
import { resolveWebSocketOptions, type WebSocketOptions } from "./options.js";
import { StatsCollector } from "../metrics/stats.js";
import { WebSocketDisconnect, WebSocketException, WebSocketTimeoutError } from "../errors.js";
import type { Request } from "../request/request.js";
import type { SendStatus, WebSocketTransport } from "../transport.js";

interface Fake {
  ws: WebSocket;
  transport: WebSocketTransport & { calls: string[]; nextStatus: SendStatus };
  host: SessionHost & { calls: string[] };
  stats: StatsCollector;
}

function session(options: WebSocketOptions = {}, listener: WebSocketListener | null = null): Fake {
  const stats = new StatsCollector();
  const calls: string[] = [];
  const transport = {
    user: null as unknown,
    remoteAddress: "127.0.0.1",
    remotePort: 1,
    bufferedAmount: 0,
    isOpen: true,
    extensions: undefined,
    sharedCompressionWindowBits: null,
    bulk: null,
    calls,
    nextStatus: "ok" as SendStatus,
    sendText(text: string) {
      calls.push(`text ${text}`);
      return this.nextStatus;
    },
    sendBinary(data: Uint8Array) {
      calls.push(`binary ${data.byteLength}`);
      return this.nextStatus;
    },
    sendFrame: () => "ok" as SendStatus,
    ping: () => void calls.push("ping"),
    close: (code?: number, reason?: string) => void calls.push(`close ${code} ${reason}`),
    terminate: () => void calls.push("terminate"),
    pause: () => void calls.push("pause"),
    resume: () => void calls.push("resume"),
  };
  const hostCalls: string[] = [];
  const host = {
    stats,
    calls: hostCalls,
    accept: () => transport,
    reject: (_ws: WebSocket<any, any>, status: number, detail: unknown) => void hostCalls.push(`reject ${status} ${String(detail)}`),
    closeBeforeAccept: (_ws: WebSocket<any, any>, code: number, reason: string) => void hostCalls.push(`closeBeforeAccept ${code} ${reason}`),
  };
  const ws = new WebSocket({} as Request<Record<string, string | number>>, { host, options: resolveWebSocketOptions(options), listener, message: null });
  transport.user = ws;
  return { ws, transport, host, stats };
}

test("a handler that does not keep up pauses the socket at maxQueuedMessages and resumes it at half", { timeout: 5_000 }, async () => {
  const { ws, transport } = session({ maxQueuedMessages: 4 });
  await ws.accept();
  for (let i = 0; i < 4; i++) ws.deliver(`m${i}`);
  assert.deepEqual(transport.calls, ["pause"]);
  assert.equal(await ws.receive(), "m0");
  assert.deepEqual(transport.calls, ["pause"], "3 queued: still over half");
  assert.equal(await ws.receive(), "m1");
  assert.deepEqual(transport.calls, ["pause", "resume"]);
  assert.deepEqual([await ws.receive(), await ws.receive()], ["m2", "m3"], "nothing lost, in order");
});

test("a receive that timed out leaves the connection open and the next message to the next receive", { timeout: 5_000 }, async () => {
  const { ws } = session();
  await ws.accept();
  await assert.rejects(ws.receiveText({ timeout: 5 }), WebSocketTimeoutError);
  ws.deliver("late");
  assert.equal(await ws.receiveText({ timeout: 1_000 }), "late");
  const first = ws.receive();
  await assert.rejects(ws.receive(), /another receive\(\) is waiting/);
  ws.deliver("x");
  assert.equal(await first, "x");
});

test("the end of a connection: a waiting receive gets WebSocketDisconnect with the peer's code, iteration ends quietly", { timeout: 5_000 }, async () => {
  const { ws } = session();
  await ws.accept();
  const waiting = ws.receive();
  ws.deliver("one");
  assert.equal(await waiting, "one");
  const next = ws.receive();
  ws.ended(4000, "bye", "peer");
  await assert.rejects(next, (error: unknown) => error instanceof WebSocketDisconnect && error.code === 4000 && error.reason === "bye");
  assert.deepEqual([ws.closeCode, ws.closeReason, ws.endReason, ws.readyState], [4000, "bye", "peer", 3]);
  const seen: unknown[] = [];
  for await (const message of ws) seen.push(message);
  assert.deepEqual(seen, []);
});

test("a server close for shutdown is told apart from other server closes", { timeout: 5_000 }, async () => {
  const a = session();
  await a.ws.accept();
  a.ws.closeForShutdown();
  assert.deepEqual(a.transport.calls, ["close 1001 Server shutting down"]);
  a.ws.ended(1001, "Server shutting down", "server");
  assert.equal(a.ws.endReason, "shutdown");
  const b = session();
  await b.ws.accept();
  b.ws.close(4001, "done");
  b.ws.close(4002, "twice");
  assert.deepEqual(b.transport.calls, ["close 4001 done"], "a second close does nothing");
  b.ws.ended(4001, "done", "server");
  assert.equal(b.ws.endReason, "server");
});

test("before accept: receiving is misuse, close completes the handshake first, reject ends with 1008 for receives", { timeout: 5_000 }, async () => {
  const { ws, host } = session();
  assert.throws(() => ws.receive(), WebSocketException);
  assert.throws(() => ws.sendText("x"), /sendText\(\) called before accept\(\)/);
  assert.throws(() => ws.close(1006), RangeError, "1006 cannot be sent");
  ws.close(4403, "Forbidden room");
  ws.reject(403, "no");
  assert.deepEqual(host.calls, ["closeBeforeAccept 4403 Forbidden room", "reject 403 no"]);
  await assert.rejects(ws.accept(), /not connecting/);
  await assert.rejects(ws.receive(), (error: unknown) => error instanceof WebSocketDisconnect && error.code === 1008);
});

test("sends count by what the transport did: delivered, over the buffer, or dropped", { timeout: 5_000 }, async () => {
  const { ws, transport, stats } = session();
  await ws.accept();
  assert.equal(ws.sendText("héllo"), "ok");
  transport.nextStatus = "backpressure";
  ws.sendBytes(new Uint8Array(10));
  transport.nextStatus = "dropped";
  ws.sendJson({ a: 1 });
  transport.nextStatus = "closed";
  ws.sendText("gone");
  const { messagesOut, bytesOut, backpressureEvents, messagesDropped } = stats.websockets;
  assert.deepEqual({ messagesOut, bytesOut, backpressureEvents, messagesDropped }, { messagesOut: 2, bytesOut: 16, backpressureEvents: 1, messagesDropped: 1 });
  assert.deepEqual(transport.calls, ["text héllo", "binary 10", 'text {"a":1}', "text gone"]);
});

test("event style: an error leaving onMessage closes with its close code; anything else is logged and closes with 1011", { timeout: 5_000 }, async () => {
  const logged: unknown[] = [];
  const listener: WebSocketListener = {
    onMessage(_ws, message) {
      if (message === "app") throw new WebSocketException("Unknown room", "APP_UNKNOWN_ROOM", 4404);
      if (message === "async") return Promise.reject(new Error("db down")) as unknown as void;
      throw new Error("bug");
    },
  };
  for (const [message, expected, logs] of [["app", "close 4404 Unknown room", 0], ["async", "close 1011 Internal error", 1], ["sync", "close 1011 Internal error", 1]] as const) {
    const { ws, transport, stats } = session({}, listener);
    await ws.accept();
    const events = sessionEvents(stats, (error) => logged.push(error), () => undefined);
    const before = logged.length;
    events.onMessage(transport, message, false, message.length);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(transport.calls, [expected], message);
    assert.equal(logged.length - before, logs, `${message} logged`);
    assert.equal(stats.websockets.messagesIn, 1);
  }
});
