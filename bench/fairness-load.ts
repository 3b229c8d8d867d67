/**
 * The load of the fairness benchmark (bench/fairness.ts), in one process: STREAMS readers that
 * take /stream as fast as loopback allows, one WebSocket client that floods /echo (a window of
 * 64 messages of 64 bytes always outstanding), and MEMBERS WebSocket members of /room/fair, one of
 * which broadcasts 64 bytes again each time its own copy came back. Prints "loaded" once it all
 * runs, then every figure as JSON when stdin closes.
 */
import { connect, type Socket } from "node:net";
import { randomBytes } from "node:crypto";
import { maskedFrame, openWs } from "./raw-ws.js";

const url = new URL(process.env.URL ?? "http://127.0.0.1:8000");
const port = Number(url.port);
const streams = Number(process.env.STREAMS ?? 4);
const members = Number(process.env.MEMBERS ?? 5_000);

const message = maskedFrame(0x2, randomBytes(64));


/** Counts 64-byte binary frames (2-byte header) in a byte stream. */
function frameCounter(): (data: Buffer) => number {
  let carry = 0;
  return (data) => {
    const total = carry + data.length;
    carry = total % 66;
    return Math.floor(total / 66);
  };
}

const figures = { streamBytes: 0, floodEchoes: 0, broadcasts: 0, deliveries: 0 };

// Members first (the room of MEMBERS, the last one broadcasts).
const sockets: Socket[] = [];
for (let i = 0; i < members - 1; i += 200) {
  sockets.push(...await Promise.all(Array.from({ length: Math.min(200, members - 1 - i) }, () => {
    const count = frameCounter();
    return openWs(port, "/room/fair", (data) => void (figures.deliveries += count(data)));
  })));
}
const count = frameCounter();
const sender = await openWs(port, "/room/fair", (data) => {
  const n = count(data);
  figures.deliveries += n;
  for (let i = 0; i < n; i++) {
    figures.broadcasts++;
    sender.write(message);
  }
});
sockets.push(sender);
const floodCount = frameCounter();
const window = Buffer.concat(Array.from({ length: 64 }, () => message));
const flooder = await openWs(port, "/echo", (data) => {
  const n = floodCount(data);
  figures.floodEchoes += n;
  if (n > 0) flooder.write(n === 64 ? window : window.subarray(0, n * message.length));
});
sockets.push(flooder);
for (let i = 0; i < streams; i++) {
  const socket = connect(port, "127.0.0.1");
  socket.on("data", (d: Buffer) => void (figures.streamBytes += d.length));
  socket.on("error", () => undefined);
  socket.write("GET /stream?n=1000000000&size=65536 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  sockets.push(socket);
}
sender.write(message);
flooder.write(window);
await new Promise((resolve) => setTimeout(resolve, 1_000));
const start = { ...figures };
const t0 = performance.now();
console.log("loaded");
process.stdin.resume();
process.stdin.on("end", () => {
  const seconds = (performance.now() - t0) / 1000;
  const rate = (key: keyof typeof figures): number => (figures[key] - start[key]) / seconds;
  console.log(JSON.stringify({ streamMBps: rate("streamBytes") / 1e6, floodEchoesPerSec: rate("floodEchoes"), broadcastsPerSec: rate("broadcasts"), deliveriesPerSec: rate("deliveries") }));
  for (const s of sockets) s.destroy();
  process.exit(0);
});
