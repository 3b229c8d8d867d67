// Files on the native HTTP engine: their bytes go from the file to the socket in C (sendfile),
// so downloads held by readers that stopped pin no memory in the process.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm, truncate, writeFile } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { FileResponse } from "../../src/index.js";
import { testApp, waitFor } from "../helpers.js";
import { nativeOrSkip } from "./native-helpers.js";

const MiB = 1024 * 1024;

async function fileServer(file: string): Promise<{ close(): Promise<void>; port: number; active(): number }> {
  const app = testApp({ httpEngine: "native" });
  app.get("/file", () => new FileResponse(file));
  const { port } = await app.listen({ port: 0, host: "127.0.0.1" });
  assert.equal(app.stats().httpEngine, "native");
  return { close: () => app.close(), port, active: () => app.stats().streams.active };
}

/** A download whose reader stops after its first bytes (the head, and maybe some body). */
function pausedDownload(port: number, path: string): Promise<{ socket: Socket; first: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: "127.0.0.1" }, () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
    });
    socket.once("data", (first: Buffer) => {
      socket.pause();
      resolve({ socket, first });
    });
    socket.once("error", reject);
  });
}

test("paused downloads of a large file hold no file bytes in the process; every byte arrives once they read", { timeout: 60_000 }, async (t) => {
  if (nativeOrSkip(t) === null) return;
  const dir = await mkdtemp(join(tmpdir(), "catzilla-sendfile-"));
  const file = join(dir, "big.bin");
  const content = randomBytes(24 * MiB);
  await writeFile(file, content);
  const server = await fileServer(file);
  const readers: Socket[] = [];
  try {
    const before = process.memoryUsage().arrayBuffers;
    let first: Buffer = Buffer.alloc(0);
    for (let i = 0; i < 16; i++) {
      const download = await pausedDownload(server.port, "/file");
      readers.push(download.socket);
      if (i === 0) first = download.first;
    }
    await waitFor(() => server.active() === 16, 5_000, "16 downloads under way");
    // Long enough for every download to fill what the kernel buffers and wait for its reader.
    await sleep(500);
    const held = process.memoryUsage().arrayBuffers - before;
    // Read into memory, each paused download would hold its read buffer (512 KiB): 8 MiB in all.
    assert.ok(held < 2 * MiB, `paused downloads hold ${(held / MiB).toFixed(1)} MiB of buffers`);
    // One reader reads on: the whole file arrives, byte for byte.
    const reader = readers[0]!;
    const head = first.indexOf("\r\n\r\n") + 4;
    assert.ok(head > 4 && first.toString("latin1").startsWith("HTTP/1.1 200 "));
    assert.match(first.subarray(0, head).toString("latin1"), new RegExp(`content-length: ${content.length}\r\n`, "i"));
    const chunks: Buffer[] = [first.subarray(head)];
    const done = new Promise<void>((resolve) => {
      let total = chunks[0]!.length;
      reader.on("data", (chunk: Buffer) => {
        chunks.push(chunk);
        total += chunk.length;
        if (total >= content.length) resolve();
      });
    });
    reader.resume();
    await done;
    const body = Buffer.concat(chunks);
    assert.equal(body.length, content.length);
    assert.equal(createHash("sha256").update(body).digest("hex"), createHash("sha256").update(content).digest("hex"));
  } finally {
    for (const socket of readers) socket.destroy();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test("a file that shrinks while it is sent ends the connection short, never with other bytes", { timeout: 30_000 }, async (t) => {
  if (nativeOrSkip(t) === null) return;
  const dir = await mkdtemp(join(tmpdir(), "catzilla-sendfile-"));
  const file = join(dir, "shrinks.bin");
  await writeFile(file, Buffer.alloc(16 * MiB, 7));
  const server = await fileServer(file);
  try {
    const { socket: reader } = await pausedDownload(server.port, "/file");
    await sleep(200);
    await truncate(file, 4 * MiB);
    let received = 0;
    let other = false;
    const closed = new Promise<void>((resolve) => reader.once("close", () => resolve()));
    reader.on("data", (chunk: Buffer) => {
      received += chunk.length;
      if (chunk.some((byte) => byte !== 7)) other = true;
    });
    reader.resume();
    await closed;
    assert.ok(received < 16 * MiB, "the response is cut short");
    assert.equal(other, false, "only the file's bytes were sent");
    await waitFor(() => server.active() === 0, 3_000, "the stream to end");
  } finally {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
});
