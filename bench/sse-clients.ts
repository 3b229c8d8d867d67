// Opens COUNT idle SSE connections to URL, prints "ready" once every one got its headers, and
// holds them until stdin closes or HOLD_MS passes. Used to measure server memory per connection.
import { connect, type Socket } from "node:net";

const url = new URL(process.env.URL ?? "http://127.0.0.1:8000/sse?n=0");
const count = Number(process.env.COUNT ?? 1000);
const holdMs = Number(process.env.HOLD_MS ?? 120_000);
const sockets: Socket[] = [];
let ready = 0;
let failed = 0;

function open(): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect(Number(url.port), url.hostname);
    socket.setNoDelay(true);
    socket.once("connect", () => socket.write(`GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\n\r\n`));
    // Only a stream counts: a refusal (429 over the per-client cap, say) is a failure.
    socket.once("data", (data: Buffer) => {
      if (data.toString("latin1").startsWith("HTTP/1.1 200 ")) ready++;
      else failed++;
      resolve();
    });
    socket.on("error", () => {
      failed++;
      resolve();
    });
    sockets.push(socket);
  });
}

const batch = 200;
for (let i = 0; i < count; i += batch) {
  await Promise.all(Array.from({ length: Math.min(batch, count - i) }, open));
}
console.log(`ready ${ready} failed ${failed}`);
const stop = (): void => {
  for (const s of sockets) s.destroy();
  process.exit(0);
};
process.stdin.on("end", stop);
process.stdin.resume();
setTimeout(stop, holdMs).unref();
