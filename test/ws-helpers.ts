import { connect, type Socket } from "node:net";
import { randomBytes } from "node:crypto";

/** A frame as the server sent it. */
export interface ServerFrame {
  fin: boolean;
  rsv1: boolean;
  opcode: number;
  payload: Buffer;
}

/** A raw WebSocket client on node:net, for sending what a real client never would. */
export interface RawClient {
  socket: Socket;
  /** The response head to the upgrade request. */
  head: string;
  /** Frames received so far (parsed independently of the server's codec). */
  frames: ServerFrame[];
  /** Send bytes as they are. */
  write(data: Buffer | string): void;
  /** Resolves when the server closed the TCP connection. */
  closed: Promise<void>;
  /** The first close frame's code and reason, once it arrives. */
  closeFrame(timeoutMs?: number): Promise<{ code: number; reason: string }>;
}

export function clientFrame(opcode: number, payload: Buffer | string, options: { fin?: boolean; rsv1?: boolean; mask?: boolean; rsv2?: boolean } = {}): Buffer {
  const data = typeof payload === "string" ? Buffer.from(payload) : payload;
  const masked = options.mask ?? true;
  const len = data.length;
  const header: number[] = [(options.fin ?? true ? 0x80 : 0) | (options.rsv1 ? 0x40 : 0) | (options.rsv2 ? 0x20 : 0) | opcode];
  const maskBit = masked ? 0x80 : 0;
  if (len < 126) header.push(maskBit | len);
  else if (len < 65536) header.push(maskBit | 126, len >> 8, len & 0xff);
  else {
    header.push(maskBit | 127, 0, 0, 0, 0);
    header.push((len >>> 24) & 0xff, (len >>> 16) & 0xff, (len >>> 8) & 0xff, len & 0xff);
  }
  if (!masked) return Buffer.concat([Buffer.from(header), data]);
  const key = randomBytes(4);
  const body = Buffer.from(data);
  for (let i = 0; i < body.length; i++) body[i]! ^= key[i & 3]!;
  return Buffer.concat([Buffer.from(header), key, body]);
}

function parseFrames(buffer: Buffer, out: ServerFrame[]): Buffer {
  let offset = 0;
  for (;;) {
    if (buffer.length - offset < 2) break;
    const b0 = buffer[offset]!;
    const b1 = buffer[offset + 1]!;
    let len = b1 & 0x7f;
    let pos = offset + 2;
    if (len === 126) {
      if (buffer.length - pos < 2) break;
      len = buffer.readUInt16BE(pos);
      pos += 2;
    } else if (len === 127) {
      if (buffer.length - pos < 8) break;
      len = Number(buffer.readBigUInt64BE(pos));
      pos += 8;
    }
    if (b1 & 0x80) throw new Error("server frame is masked");
    if (buffer.length - pos < len) break;
    out.push({ fin: (b0 & 0x80) !== 0, rsv1: (b0 & 0x40) !== 0, opcode: b0 & 0x0f, payload: buffer.subarray(pos, pos + len) });
    offset = pos + len;
  }
  return buffer.subarray(offset);
}

/** The text payloads of short unmasked server frames after a 101 head, as far as they are whole. */
export function serverTexts(reply: Buffer): string[] {
  let at = reply.indexOf("\r\n\r\n") + 4;
  const out: string[] = [];
  while (at + 2 <= reply.length) {
    const len = reply[at + 1]! & 0x7f;
    if (at + 2 + len > reply.length) break;
    out.push(reply.subarray(at + 2, at + 2 + len).toString());
    at += 2 + len;
  }
  return out;
}

/** Connect, send an upgrade request (extra headers override the defaults) and wait for the response head. */
export async function rawWebSocket(port: number, path = "/", headers: Record<string, string> = {}): Promise<RawClient> {
  const socket = connect(port, "127.0.0.1");
  const all: Record<string, string> = {
    Host: `127.0.0.1:${port}`, Upgrade: "websocket", Connection: "Upgrade",
    "Sec-WebSocket-Key": randomBytes(16).toString("base64"), "Sec-WebSocket-Version": "13", ...headers,
  };
  let request = `GET ${path} HTTP/1.1\r\n`;
  for (const [k, v] of Object.entries(all)) if (v !== "") request += `${k}: ${v}\r\n`;
  socket.write(request + "\r\n");
  const frames: ServerFrame[] = [];
  let pending: Buffer = Buffer.alloc(0);
  let head: string | null = null;
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  socket.on("error", () => undefined);
  const headReady = new Promise<string>((resolve, reject) => {
    socket.on("data", (data: Buffer) => {
      pending = Buffer.concat([pending, data]);
      if (head === null) {
        const end = pending.indexOf("\r\n\r\n");
        if (end < 0) return;
        head = pending.subarray(0, end).toString("latin1");
        pending = pending.subarray(end + 4);
        resolve(head);
        if (!head.startsWith("HTTP/1.1 101")) return;
      }
      pending = parseFrames(pending, frames);
    });
    socket.once("close", () => (head === null ? reject(new Error("closed before a response")) : undefined));
  });
  const client: RawClient = {
    socket,
    head: await headReady,
    frames,
    write: (data) => void socket.write(data),
    closed,
    async closeFrame(timeoutMs = 3_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const frame = frames.find((f) => f.opcode === 0x8);
        if (frame !== undefined) {
          return { code: frame.payload.length >= 2 ? frame.payload.readUInt16BE(0) : 1005, reason: frame.payload.subarray(2).toString() };
        }
        if (Date.now() > deadline) throw new Error("no close frame");
        await new Promise((r) => setTimeout(r, 5));
      }
    },
  };
  return client;
}

/** Open a connection with the `ws` client; rejects on an error or a refused upgrade. */
export async function connectWs(url: string, protocols?: string[], options?: import("ws").ClientOptions): Promise<import("ws").WebSocket> {
  const { WebSocket } = await import("ws");
  const ws = new WebSocket(url, protocols, options);
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
    ws.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
}
