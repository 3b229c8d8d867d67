// Opens COUNT connections to URL that read the response head and a first piece of the body, then
// stop reading (the socket is paused: the kernel's buffers fill, then the server's). Prints
// "ready N failed M" once every one got its first bytes and HOLD_SETTLE_MS passed, and holds them
// until stdin closes or HOLD_MS passes.
import { connect, type Socket } from "node:net";

const url = new URL(process.env.URL ?? "http://127.0.0.1:8000/stream?n=1000000000");
const count = Number(process.env.COUNT ?? 1000);
const holdMs = Number(process.env.HOLD_MS ?? 120_000);
const settleMs = Number(process.env.HOLD_SETTLE_MS ?? 2_000);
const sockets: Socket[] = [];
let ready = 0;
let failed = 0;

function open(): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect(Number(url.port), url.hostname);
    socket.once("connect", () => socket.write(`GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\n\r\n`));
    socket.once("data", (data: Buffer) => {
      socket.pause();
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

const batch = 100;
for (let i = 0; i < count; i += batch) {
  await Promise.all(Array.from({ length: Math.min(batch, count - i) }, open));
}
await new Promise((resolve) => setTimeout(resolve, settleMs));
console.log(`ready ${ready} failed ${failed}`);
const stop = (): void => {
  for (const s of sockets) s.destroy();
  process.exit(0);
};
process.stdin.on("end", stop);
process.stdin.resume();
setTimeout(stop, holdMs).unref();
