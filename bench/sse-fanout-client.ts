// Opens COUNT SSE subscribers to URL, then POSTs BROADCASTS messages to POST_URL, each once every
// subscriber got the previous one, and prints one JSON line: deliveries/s and how many were lost.
// Each broadcast is one event; events are counted by their blank-line terminator ("\n\n").
import { connect, type Socket } from "node:net";
import { request } from "node:http";

const url = new URL(process.env.URL ?? "http://127.0.0.1:8000/news/fanout");
const postUrl = new URL(process.env.POST_URL ?? url.href);
const count = Number(process.env.COUNT ?? 2_000);
const broadcasts = Number(process.env.BROADCASTS ?? 100);
const timeoutMs = Number(process.env.TIMEOUT_MS ?? 60_000);

const received = new Uint32Array(count);
const lastByte = new Uint8Array(count);
const sockets: Socket[] = [];
let target = 0;
let reached = 0;
let onReached: (() => void) | null = null;

function open(index: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname);
    sockets.push(socket);
    let headers = true;
    socket.once("connect", () => socket.write(`GET ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\n\r\n`));
    socket.on("data", (data: Buffer) => {
      let from = 0;
      if (headers) {
        if (!data.toString("latin1", 0, 13).startsWith("HTTP/1.1 200")) return reject(new Error(`subscriber ${index}: ${data.toString("latin1", 0, 40)}`));
        const end = data.indexOf("\r\n\r\n");
        if (end < 0) return;
        headers = false;
        from = end + 4;
        resolve();
      }
      for (let i = from; i < data.length; i++) {
        if (data[i] === 10 && lastByte[index] === 10) {
          received[index]!++;
          if (received[index] === target && ++reached === count) onReached?.();
        }
        lastByte[index] = data[i]!;
      }
    });
    socket.on("error", reject);
  });
}

function post(body: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request({ host: postUrl.hostname, port: postUrl.port, path: postUrl.pathname, method: "POST", agent: false }, (res) => {
      res.resume();
      res.on("end", resolve);
    });
    req.on("error", reject);
    req.end(body);
  });
}

for (let i = 0; i < count; i += 200) {
  await Promise.all(Array.from({ length: Math.min(200, count - i) }, (_, k) => open(i + k)));
}
console.log("connected");
const started = process.hrtime.bigint();
let lost = 0;
for (let b = 1; b <= broadcasts; b++) {
  target = b;
  reached = received.reduce((n, r) => n + (r >= b ? 1 : 0), 0);
  const all = new Promise<boolean>((resolve) => {
    if (reached === count) return resolve(true);
    onReached = () => resolve(true);
    setTimeout(() => resolve(false), timeoutMs).unref();
  });
  await post(`m${b}`);
  if (!(await all)) {
    lost = count - reached;
    break;
  }
}
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
const deliveries = received.reduce((n, r) => n + Math.min(r, broadcasts), 0);
console.log(JSON.stringify({ deliveries, seconds, deliveriesPerSec: deliveries / seconds, lost }));
for (const socket of sockets) socket.destroy();
process.exit(0);
