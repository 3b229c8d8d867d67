// Streamed bodies on the native HTTP engine: small chunks are coalesced into slabs from a pool
// shared by every stream; a slab is reused only once the C server no longer needs its bytes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { StreamingResponse } from "../../src/index.js";
import { testApp } from "../helpers.js";
import { nativeOrSkip } from "./native-helpers.js";

const CHUNK = 1024;
const CHUNKS = 2048; // 2 MiB per stream: more than the socket buffers hold

/** Chunk `i` of stream `s`: every byte says which stream and which chunk it belongs to. */
function chunk(s: number, i: number): Buffer {
  return Buffer.alloc(CHUNK, (s * 31 + i) % 251);
}

/** The body of a chunked response read slowly off a raw socket, de-chunked. */
function slowRead(port: number, path: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
    const parts: Buffer[] = [];
    let reads = 0;
    socket.on("data", (data: Buffer) => {
      parts.push(data);
      // A reader slower than the server: the producers wait, and slabs are handed back and reused.
      if (++reads % 8 === 0) {
        socket.pause();
        setTimeout(() => socket.resume(), 3);
      }
    });
    socket.once("error", reject);
    socket.once("close", () => {
      const raw = Buffer.concat(parts);
      let at = raw.indexOf("\r\n\r\n") + 4;
      const body: Buffer[] = [];
      for (;;) {
        const eol = raw.indexOf("\r\n", at);
        const size = parseInt(raw.subarray(at, eol).toString("latin1"), 16);
        if (!(size > 0)) break;
        body.push(raw.subarray(eol + 2, eol + 2 + size));
        at = eol + 2 + size + 2;
      }
      resolve(Buffer.concat(body));
    });
  });
}

test("concurrent streams read slowly: every byte of each is its own, though their slabs are reused", { timeout: 60_000 }, async (t) => {
  if (nativeOrSkip(t) === null) return;
  const app = testApp({ httpEngine: "native" });
  app.get("/stream/{s}", (req) => {
    const s = Number(req.params.s);
    return new StreamingResponse(async function* () {
      for (let i = 0; i < CHUNKS; i++) {
        if (i % 256 === 0) await sleep(1);
        yield chunk(s, i);
      }
    }(), { mediaType: "application/octet-stream" });
  });
  const { port } = await app.listen({ port: 0, host: "127.0.0.1" });
  try {
    assert.equal(app.stats().httpEngine, "native");
    const STREAMS = 6;
    const bodies = await Promise.all(Array.from({ length: STREAMS }, (_, s) => slowRead(port, `/stream/${s}`)));
    for (let s = 0; s < STREAMS; s++) {
      const body = bodies[s]!;
      assert.equal(body.length, CHUNK * CHUNKS, `stream ${s} length`);
      for (let i = 0; i < CHUNKS; i++) {
        const expected = (s * 31 + i) % 251;
        const at = i * CHUNK;
        if (body[at] !== expected || body[at + CHUNK - 1] !== expected) {
          assert.fail(`stream ${s}, chunk ${i}: byte ${body[at]} where ${expected} was sent`);
        }
      }
    }
  } finally {
    await app.close();
  }
});
