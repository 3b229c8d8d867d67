/**
 * WebSocket clients of the load generators, on raw sockets: frames as a browser would mask them,
 * and an upgrade that hands over the bytes after the handshake. What they send and read is
 * counted by the generators themselves; nothing here parses the server's frames.
 */
import { connect, type Socket } from "node:net";
import { randomBytes } from "node:crypto";

/** A masked client frame (every length form); `fin: false` makes a fragment that more follow. */
export function maskedFrame(opcode: number, payload: Buffer, options: { fin?: boolean } = {}): Buffer {
  const first = (options.fin === false ? 0 : 0x80) | opcode;
  const len = payload.length;
  const header = len < 126 ? Buffer.from([first, 0x80 | len])
    : len < 65536 ? Buffer.from([first, 0x80 | 126, len >> 8, len & 0xff])
      : Buffer.concat([Buffer.from([first, 0x80 | 127, 0, 0, 0, 0]), Buffer.from([len >>> 24, (len >>> 16) & 0xff, (len >>> 8) & 0xff, len & 0xff])]);
  const key = randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i]! ^= key[i & 3]!;
  return Buffer.concat([header, key, body]);
}

/**
 * Open a WebSocket to `path` on 127.0.0.1:`port`; `onData` gets the bytes after the handshake.
 * With `onData` null the socket is paused once upgraded: a client that never reads. Errors after
 * the handshake are the generator's to notice (a closed socket), not exceptions.
 */
export function openWs(port: number, path: string, onData: ((data: Buffer) => void) | null): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    socket.setNoDelay(true);
    socket.on("error", reject);
    let head: Buffer | null = Buffer.alloc(0);
    socket.once("connect", () => socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`));
    socket.on("data", (data: Buffer) => {
      if (head === null) return onData?.(data);
      head = Buffer.concat([head, data]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      if (!head.subarray(0, 12).toString().includes("101")) return reject(new Error(head.subarray(0, end).toString()));
      const rest = head.subarray(end + 4);
      head = null;
      socket.removeListener("error", reject);
      socket.on("error", () => undefined);
      if (onData === null) socket.pause();
      resolve(socket);
      if (rest.length > 0) onData?.(rest);
    });
  });
}
