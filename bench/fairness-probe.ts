/**
 * The probe of the fairness benchmark: for SECONDS, one GET /hello on a kept-alive connection and
 * one WebSocket echo of 32 bytes (on its own connection) every INTERVAL_MS, each waiting for the
 * previous; a probe that gets no answer within 5 s counts as 5 s. Prints p50, p99 and the worst
 * of each, in milliseconds, as JSON.
 */
import { Agent, get } from "node:http";
import { connect } from "node:net";
import { randomBytes } from "node:crypto";

const url = new URL(process.env.URL ?? "http://127.0.0.1:8000");
const port = Number(url.port);
const seconds = Number(process.env.SECONDS ?? 5);
const interval = Number(process.env.INTERVAL_MS ?? 5);
const LIMIT_MS = 5_000;

const agent = new Agent({ keepAlive: true, maxSockets: 1 });
function hello(): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, LIMIT_MS);
    get({ host: "127.0.0.1", port, path: "/hello", agent }, (res) => {
      res.resume();
      res.on("end", () => {
        clearTimeout(timer);
        resolve();
      });
    }).on("error", () => resolve());
  });
}

const key = randomBytes(4);
const payload = randomBytes(32);
const frame = Buffer.concat([Buffer.from([0x82, 0x80 | 32]), key, Buffer.from(payload.map((b, i) => b ^ key[i & 3]!))]);
const socket = connect(port, "127.0.0.1");
socket.setNoDelay(true);
let buffered = 0;
let wake: (() => void) | null = null;
let upgraded = false;
socket.write(`GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
socket.on("data", (data: Buffer) => {
  if (!upgraded) {
    const end = data.indexOf("\r\n\r\n");
    if (end < 0) return;
    upgraded = true;
    data = data.subarray(end + 4);
  }
  buffered += data.length;
  if (buffered >= 34) {
    buffered -= 34;
    wake?.();
  }
});
await new Promise<void>((resolve) => {
  const check = setInterval(() => upgraded && (clearInterval(check), resolve()), 5);
});
function echo(): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, LIMIT_MS);
    wake = () => {
      clearTimeout(timer);
      wake = null;
      resolve();
    };
    socket.write(frame);
  });
}

async function measure(probe: () => Promise<void>, samples: number[]): Promise<void> {
  const deadline = performance.now() + seconds * 1000;
  while (performance.now() < deadline) {
    const t = performance.now();
    await probe();
    samples.push(performance.now() - t);
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}
const helloMs: number[] = [];
const echoMs: number[] = [];
await Promise.all([measure(hello, helloMs), measure(echo, echoMs)]);
const at = (values: number[], q: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
};
console.log(JSON.stringify({
  helloP50: at(helloMs, 0.5), helloP99: at(helloMs, 0.99), helloMax: Math.max(...helloMs), hellos: helloMs.length,
  echoP50: at(echoMs, 0.5), echoP99: at(echoMs, 0.99), echoMax: Math.max(...echoMs), echoes: echoMs.length,
}));
socket.destroy();
agent.destroy();
process.exit(0);
