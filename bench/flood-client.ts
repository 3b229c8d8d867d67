/**
 * One WebSocket client that floods /echo of URL with 64-byte messages as fast as the socket takes
 * them, reading and dropping the echoes, until killed. With bench/fairness-probe.ts beside it,
 * it shows what one such client costs the others:
 *
 *   CATZILLA_ENGINE=native PORT=8000 taskset -c 0 node --import tsx examples/conformance.ts &
 *   taskset -c 1 node --import tsx bench/flood-client.ts &
 *   URL=http://127.0.0.1:8000 SECONDS=4 taskset -c 1 node --import tsx bench/fairness-probe.ts
 */
import { connect } from "node:net";
import { randomBytes } from "node:crypto";

const url = new URL(process.env.URL ?? "http://127.0.0.1:8000");
const key = randomBytes(4);
const payload = randomBytes(64);
const frame = Buffer.concat([Buffer.from([0x82, 0x80 | 64]), key, Buffer.from(payload.map((b, i) => b ^ key[i & 3]!))]);
const burst = Buffer.concat(Array.from({ length: 4096 }, () => frame));
const socket = connect(Number(url.port), "127.0.0.1");
socket.write(`GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
socket.on("data", () => undefined);
socket.on("error", () => process.exit(0));
const pump = (): void => {
  while (socket.write(burst));
};
socket.on("drain", pump);
setTimeout(pump, 200);
