/**
 * A WebSocket client written for the real-traffic tests, independent of the server's codec: it
 * negotiates permessage-deflate (RFC 7692) with node:zlib, sends messages compressed or not and
 * fragmented as asked, writes the bytes of many frames coalesced and split at random offsets (as
 * browsers and proxies do), and decodes what comes back, inflating with the negotiated context.
 * Every random choice comes from a seeded generator, so that a failure can be replayed.
 */
import { connect, type Socket } from "node:net";
import { randomBytes } from "node:crypto";
import { constants, createDeflateRaw, createInflateRaw, type DeflateRaw, type InflateRaw } from "node:zlib";

/** mulberry32: a small seeded generator of floats in [0, 1). */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Message {
  data: Buffer;
  binary: boolean;
}

export interface TrafficOptions {
  /** Offer permessage-deflate (with these parameters; "" offers it plain). Undefined: no offer. */
  deflate?: string;
  random?: () => number;
}

const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);
const SYNC = { flush: constants.Z_SYNC_FLUSH };

/** One zlib stream used message by message: write, sync-flush, collect what came out. */
class ZlibStream {
  private chunks: Buffer[] = [];
  constructor(private readonly stream: DeflateRaw | InflateRaw) {
    stream.on("data", (chunk: Buffer) => this.chunks.push(chunk));
  }

  run(data: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.stream.once("error", reject);
      this.stream.write(data);
      this.stream.flush(SYNC.flush, () => {
        this.stream.off("error", reject);
        const out = Buffer.concat(this.chunks);
        this.chunks = [];
        resolve(out);
      });
    });
  }

  close(): void {
    this.stream.close();
  }
}

/** A client connection: `send` queues frames, `flush` writes them coalesced and split; `messages` fills as echoes come. */
export class TrafficClient {
  readonly messages: Message[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  /** The first close frame's code (1006 if the connection ended without one). */
  closeCode: number | null = null;
  extensions = "";
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private deflater: ZlibStream | null = null;
  private inflater: ZlibStream | null = null;
  private clientNoContext = false;
  private serverNoContext = false;
  private input: Buffer = Buffer.alloc(0);
  private fragments: Buffer[] = [];
  private fragmentType = 0;
  private fragmentCompressed = false;
  /** Decoding in order: inflation is asynchronous, so messages go through one chain. */
  private decoding: Promise<void> = Promise.resolve();
  private waiters: Array<() => void> = [];
  private readonly random: () => number;

  private constructor(readonly socket: Socket, options: TrafficOptions) {
    this.random = options.random ?? Math.random;
    this.closed = new Promise((resolve) => {
      socket.once("close", () => {
        void this.decoding.then(() => {
          this.closeCode ??= 1006;
          this.deflater?.close();
          this.inflater?.close();
          this.wake();
          resolve({ code: this.closeCode, reason: "" });
        });
      });
    });
  }

  static async open(port: number, path: string, options: TrafficOptions = {}): Promise<TrafficClient> {
    const socket = connect(port, "127.0.0.1");
    socket.setNoDelay(true);
    socket.on("error", () => undefined);
    const client = new TrafficClient(socket, options);
    const key = randomBytes(16).toString("base64");
    let request = `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n`;
    if (options.deflate !== undefined) request += `Sec-WebSocket-Extensions: permessage-deflate${options.deflate === "" ? "" : `; ${options.deflate}`}\r\n`;
    socket.write(`${request}\r\n`);
    const head = await new Promise<string>((resolve, reject) => {
      let buffered = Buffer.alloc(0);
      const onData = (data: Buffer): void => {
        buffered = Buffer.concat([buffered, data]);
        const end = buffered.indexOf("\r\n\r\n");
        if (end < 0) return;
        socket.off("data", onData);
        socket.off("close", onClose);
        const text = buffered.subarray(0, end).toString("latin1");
        client.input = buffered.subarray(end + 4);
        resolve(text);
      };
      const onClose = (): void => reject(new Error("closed before the upgrade response"));
      socket.on("data", onData);
      socket.once("close", onClose);
    });
    if (!head.startsWith("HTTP/1.1 101")) throw new Error(`upgrade refused: ${head.split("\r\n")[0]}`);
    const extensions = /^sec-websocket-extensions:\s*(.*)$/im.exec(head)?.[1]?.trim() ?? "";
    client.extensions = extensions;
    if (/permessage-deflate/i.test(extensions)) {
      client.clientNoContext = /client_no_context_takeover/i.test(extensions);
      client.serverNoContext = /server_no_context_takeover/i.test(extensions);
      const clientBits = Number(/client_max_window_bits=(\d+)/i.exec(extensions)?.[1] ?? 15);
      const serverBits = Number(/server_max_window_bits=(\d+)/i.exec(extensions)?.[1] ?? 15);
      // zlib refuses a raw window of 8 bits; 9 makes output any 8-bit window reads (as ws does).
      client.deflater = new ZlibStream(createDeflateRaw({ windowBits: Math.max(9, clientBits) }));
      client.inflater = new ZlibStream(createInflateRaw({ windowBits: serverBits }));
    }
    socket.on("data", (data: Buffer) => client.receive(data));
    if (client.input.length > 0) client.receive(Buffer.alloc(0));
    return client;
  }

  get compressed(): boolean {
    return this.deflater !== null;
  }

  /**
   * Queue one message as frames: compressed if asked (and negotiated), cut into `fragments`
   * frames. Nothing is written until `flush`.
   */
  async send(message: Message, options: { compress?: boolean; fragments?: number } = {}): Promise<void> {
    let payload = message.data;
    const compress = options.compress !== false && this.deflater !== null;
    if (compress) {
      if (this.clientNoContext) {
        // A fresh stream per message: the peer's inflater starts afresh too.
        const own = new ZlibStream(createDeflateRaw({ windowBits: 15 }));
        payload = await own.run(payload);
        own.close();
      } else {
        payload = await this.deflater!.run(payload);
      }
      if (payload.length >= 4 && payload.subarray(payload.length - 4).equals(TAIL)) payload = payload.subarray(0, payload.length - 4);
    }
    const count = Math.max(1, Math.min(options.fragments ?? 1, Math.max(1, payload.length)));
    let offset = 0;
    for (let i = 0; i < count; i++) {
      const end = i === count - 1 ? payload.length : offset + Math.floor((payload.length - offset) / (count - i));
      const opcode = i === 0 ? (message.binary ? 0x2 : 0x1) : 0x0;
      this.queue(frame(opcode, payload.subarray(offset, end), i === count - 1, i === 0 && compress));
      offset = end;
    }
  }

  /** Queue a raw frame (a ping, a close). */
  queue(bytes: Buffer): void {
    this.pending.push(bytes);
    this.pendingBytes += bytes.length;
  }

  /**
   * Write everything queued as one byte stream cut at random offsets (pieces of 1 byte to
   * `maxPiece` bytes), waiting for drain between writes.
   */
  async flush(maxPiece = 256 * 1024): Promise<void> {
    const all = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    let offset = 0;
    while (offset < all.length) {
      const r = this.random();
      // Mostly large pieces (coalesced frames), sometimes tiny ones (split headers).
      const size = r < 0.15 ? 1 + Math.floor(this.random() * 16) : 1 + Math.floor(this.random() * maxPiece);
      const piece = all.subarray(offset, Math.min(all.length, offset + size));
      offset += piece.length;
      if (!this.socket.write(piece)) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            this.socket.off("drain", done);
            this.socket.off("close", done);
            resolve();
          };
          this.socket.once("drain", done);
          this.socket.once("close", done);
        });
        if (this.socket.destroyed) return;
      }
    }
  }

  /** Resolves once `count` messages arrived, or rejects after `timeoutMs` (or when the connection ended short of it). */
  async waitForMessages(count: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.messages.length < count) {
      if (this.closeCode !== null) throw new Error(`connection closed (${this.closeCode}) after ${this.messages.length} of ${count} messages`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.messages.length} of ${count} messages within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Send a close frame (1000) and wait for the server to end the connection. */
  async close(timeoutMs = 3_000): Promise<number> {
    const payload = Buffer.alloc(2);
    payload.writeUInt16BE(1000);
    this.socket.write(frame(0x8, payload, true, false));
    const timer = setTimeout(() => this.socket.destroy(), timeoutMs);
    const { code } = await this.closed;
    clearTimeout(timer);
    return code;
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  private receive(data: Buffer): void {
    this.input = this.input.length === 0 ? data : Buffer.concat([this.input, data]);
    let offset = 0;
    for (;;) {
      const buffer = this.input;
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
      if (buffer.length - pos < len) break;
      this.frame(b0, buffer.subarray(pos, pos + len));
      offset = pos + len;
    }
    this.input = offset === 0 ? this.input : Buffer.from(this.input.subarray(offset));
  }

  private frame(b0: number, payload: Buffer): void {
    const fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    if (opcode === 0x8) {
      this.closeCode ??= payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
      this.socket.end();
      return;
    }
    if (opcode === 0x9 || opcode === 0xa) return;
    if (opcode !== 0x0) {
      this.fragmentType = opcode;
      this.fragmentCompressed = (b0 & 0x40) !== 0;
      this.fragments = [];
    }
    this.fragments.push(Buffer.from(payload));
    if (!fin) return;
    const whole = Buffer.concat(this.fragments);
    const binary = this.fragmentType === 0x2;
    const compressed = this.fragmentCompressed;
    this.fragments = [];
    this.decoding = this.decoding.then(async () => {
      let data: Buffer = whole;
      if (compressed) {
        if (this.serverNoContext) {
          const own = new ZlibStream(createInflateRaw({ windowBits: 15 }));
          data = await own.run(Buffer.concat([whole, TAIL]));
          own.close();
        } else {
          data = await this.inflater!.run(Buffer.concat([whole, TAIL]));
        }
      }
      this.messages.push({ data, binary });
      this.wake();
    });
  }
}

/** A masked client frame. */
export function frame(opcode: number, payload: Buffer, fin: boolean, rsv1: boolean): Buffer {
  const len = payload.length;
  const head = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const out = Buffer.allocUnsafe(head + 4 + len);
  out[0] = (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode;
  if (len < 126) out[1] = 0x80 | len;
  else if (len < 65536) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(len, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeBigUInt64BE(BigInt(len), 2);
  }
  const key = randomBytes(4);
  key.copy(out, head);
  for (let i = 0; i < len; i++) out[head + 4 + i] = payload[i]! ^ key[i & 3]!;
  return out;
}

/** The first byte where two buffers differ, or -1. */
export function firstDifference(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}
