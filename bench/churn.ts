/**
 * Connections that come and go, of every kind the conformance app serves (examples/conformance.ts):
 * WebSockets closed cleanly and reset, room members, SSE room subscribers and producers aborted
 * after their first bytes, streams and downloads aborted, requests cut halfway. Used by the soak
 * (bench/soak.ts) and by the gauge tests. Every operation is bounded in time.
 */
import { get, type IncomingMessage } from "node:http";
import { connect } from "node:net";
import WS from "ws";

const OPERATION_TIMEOUT_MS = 10_000;

/** Counts of the operations done, by kind. */
export type ChurnCounts = Record<string, number>;

function bounded<T>(what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`churn: ${what} took over ${OPERATION_TIMEOUT_MS} ms`)), OPERATION_TIMEOUT_MS);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/** A GET on a connection of its own (no keep-alive: pooled idle connections would stay open). */
function request(port: number, path: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => get({ host: "127.0.0.1", port, path, agent: false }, resolve).on("error", reject));
}

async function openWs(port: number, path: string): Promise<WS> {
  const ws = new WS(`ws://127.0.0.1:${port}${path}`);
  ws.on("error", () => undefined);
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
    ws.once("unexpected-response", (_req, res) => reject(new Error(`${path}: HTTP ${res.statusCode}`)));
  });
  return ws;
}

const OPERATIONS: Record<string, (port: number) => Promise<void>> = {
  async "websocket-clean"(port) {
    const ws = await openWs(port, "/echo");
    const echoed = new Promise((resolve) => ws.once("message", resolve));
    ws.send("hi");
    await echoed;
    const closed = new Promise((resolve) => ws.once("close", resolve));
    ws.close(1000);
    await closed;
  },
  async "websocket-reset"(port) {
    const ws = await openWs(port, "/room/churn");
    const got = new Promise((resolve) => ws.once("message", resolve));
    ws.send("x");
    await got;
    ws.terminate();
  },
  async "sse-room-abort"(port) {
    await abortAfterFirstBytes(port, "/news/churn");
  },
  async "sse-producer-abort"(port) {
    await abortAfterFirstBytes(port, "/sse?n=0");
  },
  async "stream-abort"(port) {
    await abortAfterFirstBytes(port, "/stream?n=100000&size=65536");
  },
  async "download-abort"(port) {
    await abortAfterFirstBytes(port, "/files/random.bin");
  },
  async "request-reset"(port) {
    await new Promise<void>((resolve) => {
      const socket = connect(port, "127.0.0.1", () => {
        socket.write("GET /hello HTTP/1.1\r\nHost: x\r\n");
        setTimeout(() => {
          socket.resetAndDestroy();
          resolve();
        }, 20);
      });
      socket.on("error", () => resolve());
    });
  },
};

async function abortAfterFirstBytes(port: number, path: string): Promise<void> {
  const res = await request(port, path);
  await new Promise((resolve) => res.once("data", resolve));
  const closed = new Promise((resolve) => res.socket.once("close", resolve));
  res.destroy();
  await closed;
}

/** One round: `parallel` of every operation at once. Adds what it did to `counts`. */
export async function churnRound(port: number, parallel: number, counts: ChurnCounts = {}): Promise<ChurnCounts> {
  const work: Array<Promise<void>> = [];
  for (const [name, operation] of Object.entries(OPERATIONS)) {
    for (let i = 0; i < parallel; i++) {
      work.push(bounded(name, operation(port)).then(() => void (counts[name] = (counts[name] ?? 0) + 1)));
    }
  }
  await Promise.all(work);
  return counts;
}
