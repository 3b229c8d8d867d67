/**
 * A lean WebSocket load generator (one process, one core): pre-masked frames, one write per batch,
 * frames counted from their headers. Speaks plain WebSocket or Socket.IO (Engine.IO v4).
 *
 * MODE=echo   CONNECTIONS, INFLIGHT, SIZE, SECONDS: echoed messages per second
 * MODE=latency                      SIZE, SECONDS: round trips on one connection, p50/p99
 * MODE=idle   CONNECTIONS: open them, print "ready", hold until stdin closes
 * MODE=fanout CONNECTIONS receivers in one room (the first also sends), BROADCASTS, SIZE: each
 *             broadcast is sent when the previous one reached everybody; deliveries/s, p99.
 *             With URL2, half of the receivers are on a second server.
 * Prints one JSON line with the result and the generator's own CPU time.
 */
import { connect, type Socket } from "node:net";
import { randomBytes } from "node:crypto";
import { maskedFrame } from "./raw-ws.js";

const url = new URL(process.env.URL ?? "ws://127.0.0.1:8000/echo");
const mode = process.env.MODE ?? "echo";
const protocol = process.env.PROTOCOL ?? "ws";
const connections = Number(process.env.CONNECTIONS ?? 100);
const inflight = Number(process.env.INFLIGHT ?? 16);
const size = Number(process.env.SIZE ?? 32);
const seconds = Number(process.env.SECONDS ?? 5);

const message = protocol === "socketio"
  ? maskedFrame(0x1, Buffer.from(`42["echo","${"x".repeat(Math.max(0, size - 12))}"]`))
  : maskedFrame(0x2, randomBytes(size));
const batch = Buffer.concat(Array.from({ length: Math.max(inflight, 1) }, () => message));

interface Conn {
  socket: Socket;
  /** Header bytes of a frame not complete yet. */
  head: Buffer | null;
  /** Payload bytes of the current frame still to skip. */
  skip: number;
  /** Whether the frame being skipped counts as a message. */
  counting: boolean;
  open: boolean;
}

/**
 * Count the data frames that complete in `data`. Payloads are skipped, never buffered, so
 * large messages cost the generator almost nothing.
 */
function countFrames(conn: Conn, data: Buffer): number {
  let count = 0;
  let offset = 0;
  for (;;) {
    if (conn.skip > 0) {
      const take = Math.min(conn.skip, data.length - offset);
      conn.skip -= take;
      offset += take;
      if (conn.skip > 0) return count;
      if (conn.counting) count++;
    }
    if (offset >= data.length) return count;
    let buf = data;
    let pos = offset;
    if (conn.head !== null) {
      buf = Buffer.concat([conn.head, data.subarray(offset)]);
      pos = 0;
      conn.head = null;
    }
    const available = buf.length - pos;
    if (available < 2) {
      conn.head = Buffer.from(buf.subarray(pos));
      return count;
    }
    const opcode = buf[pos]! & 0x0f;
    let len = buf[pos + 1]! & 0x7f;
    let headerLength = 2;
    if (len === 126) headerLength = 4;
    else if (len === 127) headerLength = 10;
    if (available < headerLength) {
      conn.head = Buffer.from(buf.subarray(pos));
      return count;
    }
    if (len === 126) len = buf.readUInt16BE(pos + 2);
    else if (len === 127) len = buf.readUInt32BE(pos + 6);
    const payloadStart = pos + headerLength;
    let counting = opcode === 0x1 || opcode === 0x2;
    if (counting && protocol === "socketio") {
      // Engine.IO: "42[...]" is an event; "2" is a ping to answer with "3".
      if (len === 1 && buf[payloadStart] === 0x32) conn.socket.write(maskedFrame(0x1, Buffer.from("3")));
      counting = buf[payloadStart] === 0x34 && buf[payloadStart + 1] === 0x32;
    }
    conn.counting = counting;
    conn.skip = len;
    if (len === 0 && counting) count++;
    // Continue in `buf` (which may be a joined copy) from the payload on.
    data = buf;
    offset = payloadStart;
  }
}

/** With URL2, every other connection goes to a second server (fan-out across servers). */
const url2 = process.env.URL2 === undefined ? null : new URL(process.env.URL2);
let opened = 0;

function open(onMessage: (conn: Conn, count: number) => void): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const target = url2 !== null && opened++ % 2 === 1 ? url2 : url;
    const socket = connect(Number(target.port), target.hostname);
    socket.setNoDelay(true);
    const path = protocol === "socketio" ? "/socket.io/?EIO=4&transport=websocket" : `${url.pathname}${url.search}`;
    const conn: Conn = { socket, head: null, skip: 0, counting: false, open: false };
    let head = Buffer.alloc(0);
    socket.once("connect", () => socket.write(
      `GET ${path} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`));
    socket.on("error", reject);
    let sioState = 0;
    const onData = (data: Buffer): void => {
      if (!conn.open) {
        head = Buffer.concat([head, data]);
        const end = head.indexOf("\r\n\r\n");
        if (end < 0) return;
        if (!head.subarray(0, 12).toString().includes("101")) {
          reject(new Error(head.subarray(0, end).toString()));
          return;
        }
        conn.open = true;
        data = head.subarray(end + 4);
        if (protocol !== "socketio") resolve(conn);
        if (data.length === 0) return;
      }
      if (protocol === "socketio" && sioState < 2) {
        // "0{...}" (open) → send "40"; "40{...}" (namespace connected) → ready.
        const text = data.toString("latin1");
        if (sioState === 0 && text.includes("0{")) {
          sioState = 1;
          socket.write(maskedFrame(0x1, Buffer.from("40")));
        }
        if (sioState === 1 && text.includes("40{")) {
          sioState = 2;
          resolve(conn);
        }
        return;
      }
      const count = countFrames(conn, data);
      if (count > 0) onMessage(conn, count);
    };
    socket.on("data", onData);
  });
}

async function echo(): Promise<void> {
  let received = 0;
  let running = true;
  const onMessage = (conn: Conn, count: number): void => {
    received += count;
    if (!running) return;
    // Keep INFLIGHT messages outstanding: send as many as came back, in one write.
    conn.socket.write(count === inflight ? batch : batch.subarray(0, count * message.length));
  };
  const conns: Conn[] = [];
  for (let i = 0; i < connections; i += 50) {
    conns.push(...await Promise.all(Array.from({ length: Math.min(50, connections - i) }, () => open(onMessage))));
  }
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const warm = received;
  for (const conn of conns) conn.socket.write(batch);
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  running = false;
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  console.log(JSON.stringify({
    messages: received - warm, seconds: elapsed, msgsPerSec: (received - warm) / elapsed,
    bytesPerSec: ((received - warm) * size) / elapsed, clientCpu: (cpu.user + cpu.system) / 1e6 / elapsed,
  }));
  for (const conn of conns) conn.socket.destroy();
}

async function latency(): Promise<void> {
  const samples: number[] = [];
  let sentAt = 0n;
  let conn!: Conn;
  const deadline = Date.now() + seconds * 1000;
  const done = new Promise<void>((resolve) => {
    void open((c, count) => {
      if (count === 0) return;
      samples.push(Number(process.hrtime.bigint() - sentAt) / 1000);
      if (Date.now() >= deadline) return resolve();
      sentAt = process.hrtime.bigint();
      c.socket.write(message);
    }).then((c) => {
      conn = c;
      sentAt = process.hrtime.bigint();
      c.socket.write(message);
    });
  });
  await done;
  conn.socket.destroy();
  const sorted = samples.slice(Math.floor(samples.length / 10)).sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  console.log(JSON.stringify({ roundTrips: samples.length, p50us: at(0.5), p99us: at(0.99) }));
}

async function idle(): Promise<void> {
  const conns: Conn[] = [];
  let failed = 0;
  for (let i = 0; i < connections; i += 200) {
    const results = await Promise.allSettled(Array.from({ length: Math.min(200, connections - i) }, () => open(() => undefined)));
    for (const r of results) if (r.status === "fulfilled") conns.push(r.value); else failed++;
  }
  console.log(`ready ${conns.length} failed ${failed}`);
  process.stdin.on("end", () => process.exit(0));
  process.stdin.resume();
  setTimeout(() => process.exit(0), 120_000).unref();
}

async function fanout(): Promise<void> {
  const broadcasts = Number(process.env.BROADCASTS ?? 100);
  let received = 0;
  let target = 0;
  let wake: (() => void) | null = null;
  const onMessage = (_conn: Conn, count: number): void => {
    received += count;
    if (received >= target && wake !== null) {
      const w = wake;
      wake = null;
      w();
    }
  };
  const conns: Conn[] = [];
  for (let i = 0; i < connections; i += 200) {
    conns.push(...await Promise.all(Array.from({ length: Math.min(200, connections - i) }, () => open(onMessage))));
  }
  // The harness reads the server's CPU time at this line, before the broadcasts.
  console.log("connected");
  await new Promise((resolve) => setTimeout(resolve, 500));
  const latencies: number[] = [];
  let lost = 0;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let b = 0; b < broadcasts; b++) {
    target = received + connections;
    const sent = process.hrtime.bigint();
    const done = new Promise<boolean>((resolve) => {
      wake = () => resolve(true);
      setTimeout(() => resolve(false), 5_000).unref();
    });
    conns[0]!.socket.write(message);
    if (!(await done)) {
      lost += target - received;
      received = target;
      wake = null;
    }
    latencies.push(Number(process.hrtime.bigint() - sent) / 1000);
  }
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const sorted = [...latencies].sort((a, b) => a - b);
  console.log(JSON.stringify({
    deliveries: broadcasts * connections - lost, lost, seconds: elapsed,
    deliveriesPerSec: (broadcasts * connections - lost) / elapsed,
    p50ms: sorted[Math.floor(sorted.length / 2)]! / 1000, p99ms: sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]! / 1000,
    clientCpu: (cpu.user + cpu.system) / 1e6 / elapsed,
  }));
  for (const conn of conns) conn.socket.destroy();
}

await (mode === "latency" ? latency() : mode === "idle" ? idle() : mode === "fanout" ? fanout() : echo());
