/**
 * The load of one flood case against the conformance app at URL, in one process. KIND is one of:
 *
 * - `room`: MEMBERS members of /room/flood that never read (after their handshake), and one
 *   member that writes MESSAGES (default 200,000) 64-byte messages at once, as a client that
 *   sends in a loop does (each is broadcast to the whole room), reads what it gets and, at the
 *   end, closes, and the others stay until the server answered its close (`backlogMs`: how long
 *   the server took to handle what it had been sent);
 * - `ping`: CONNECTIONS clients of /echo that send 125-byte pings as fast as their sockets take
 *   them and never read;
 * - `fragments`: CONNECTIONS clients of /echo that each send one text message in 1-byte
 *   fragments, without end; one that is closed (the message limit) connects again;
 * - `publish`: MEMBERS SSE subscribers of /news/flood that read, and one client that POSTs a
 *   10 KiB event to it every INTERVAL_MS (the hung-broker case: the orchestrator stops Redis).
 *
 * Prints "loaded" once everything is connected and the flood runs, then runs for SECONDS, closes
 * every connection and prints its figures as JSON.
 */
import { connect, type Socket } from "node:net";
import { request } from "node:http";
import { randomBytes } from "node:crypto";
import { maskedFrame, openWs } from "./raw-ws.js";

const url = new URL(process.env.URL ?? "http://127.0.0.1:8000");
const port = Number(url.port);
const kind = process.env.KIND ?? "room";
const seconds = Number(process.env.SECONDS ?? 5);
const members = Number(process.env.MEMBERS ?? 2_000);
const connections = Number(process.env.CONNECTIONS ?? 3);
const interval = Number(process.env.INTERVAL_MS ?? 5);

/** Write `burst` again and again while the socket takes it, until `running()` says stop. */
function flood(socket: Socket, burst: Buffer, running: () => boolean, sent: { bytes: number }): void {
  const pump = (): void => {
    while (running() && !socket.destroyed) {
      sent.bytes += burst.length;
      if (!socket.write(burst)) return;
    }
  };
  socket.on("drain", pump);
  pump();
}

const sockets: Socket[] = [];
/** Sockets closed after what they wrote went out, not reset. */
const ending = new Set<Socket>();
const figures: Record<string, number> = { sentBytes: 0, receivedBytes: 0, reconnects: 0, refused: 0 };
const sent = { bytes: 0 };
let running = true;
const live = (): boolean => running;

if (kind === "room") {
  for (let i = 0; i < members; i += 200) {
    sockets.push(...await Promise.all(Array.from({ length: Math.min(200, members - i) }, () => openWs(port, "/room/flood", null))));
  }
  const sender = await openWs(port, "/room/flood", (data) => void (figures.receivedBytes! += data.length));
  ending.add(sender);
  const burst = Buffer.concat(Array.from({ length: 1000 }, () => maskedFrame(0x2, randomBytes(64))));
  const messages = Number(process.env.MESSAGES ?? 200_000);
  for (let i = 0; i < messages; i += 1000) sender.write(burst);
  sent.bytes += burst.length * Math.ceil(messages / 1000);
} else if (kind === "ping") {
  const ping = Buffer.concat(Array.from({ length: 512 }, () => maskedFrame(0x9, randomBytes(125))));
  for (let i = 0; i < connections; i++) {
    const socket = await openWs(port, "/echo", null);
    sockets.push(socket);
    flood(socket, ping, live, sent);
  }
} else if (kind === "fragments") {
  const first = maskedFrame(0x1, Buffer.from("x"), { fin: false });
  const rest = Buffer.concat(Array.from({ length: 4096 }, () => maskedFrame(0x0, Buffer.from("x"), { fin: false })));
  const open = async (): Promise<void> => {
    if (!running) return;
    const socket = await openWs(port, "/echo", () => undefined).catch(() => null);
    if (socket === null) {
      figures.refused!++;
      setTimeout(() => void open(), 50);
      return;
    }
    sockets.push(socket);
    socket.once("close", () => {
      if (!running) return;
      figures.reconnects!++;
      void open();
    });
    socket.write(first);
    flood(socket, rest, live, sent);
  };
  for (let i = 0; i < connections; i++) await open();
} else if (kind === "publish") {
  for (let i = 0; i < members; i++) {
    sockets.push(await new Promise<Socket>((resolve, reject) => {
      const socket = connect(port, "127.0.0.1", () => {
        socket.write("GET /news/flood HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n");
        resolve(socket);
      });
      socket.on("error", reject);
      socket.on("data", (data: Buffer) => void (figures.receivedBytes! += data.length));
    }));
  }
  const event = "y".repeat(10 * 1024);
  figures.published = 0;
  figures.accepted = 0;
  const publish = (): void => {
    if (!running) return;
    figures.published!++;
    const req = request({ host: "127.0.0.1", port, method: "POST", path: "/news/flood", agent: false }, (res) => {
      if (res.statusCode === 202) figures.accepted!++;
      res.resume();
    });
    req.on("error", () => undefined);
    req.end(event);
    sent.bytes += event.length;
    setTimeout(publish, interval);
  };
  publish();
} else {
  throw new Error(`KIND must be room, ping, fragments or publish, not ${kind}`);
}

console.log("loaded");
await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
running = false;
// A sender that closes waits for the server to take all it wrote: its close comes after the last
// message was read (at most a minute).
const ended = performance.now();
await Promise.all([...ending].map((socket) => new Promise((resolve) => {
  socket.end();
  socket.once("close", resolve);
  setTimeout(resolve, 60_000);
})));
figures.backlogMs = ending.size === 0 ? 0 : performance.now() - ended;
for (const socket of sockets) socket.destroy();
figures.sentBytes = sent.bytes;
console.log(JSON.stringify(figures));
process.exit(0);
