/**
 * Real traffic, as browsers and proxies send it: many frames coalesced into one write and split
 * at any offset, compressed with and without context takeover, fragmented, small and large
 * (past the sizes the native engine hands to the thread pool), from several clients at once.
 * Every echo is compared byte for byte; a failure names its seed.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createConformanceApp } from "../../examples/conformance.js";
import { readFileSync } from "node:fs";
import { rssBoundsHold, serve, startScript, type Served } from "../helpers.js";
import { TrafficClient, firstDifference, seeded, type Message } from "../traffic-client.js";
import { clientFrame, rawWebSocket } from "../ws-helpers.js";

let served: Served;
before(async () => {
  served = await serve(createConformanceApp({ handleSignals: false, shutdownTimeoutMs: 2_000 }));
});
after(() => served.close());

function describe(m: Message): string {
  return `${m.binary ? "binary" : "text"} of ${m.data.length} bytes`;
}

function assertEchoes(sent: Message[], got: Message[], seed: number | string): void {
  assert.equal(got.length, sent.length, `seed ${seed}: message count`);
  for (let i = 0; i < sent.length; i++) {
    const s = sent[i]!;
    const g = got[i]!;
    const at = firstDifference(s.data, g.data);
    assert.ok(s.binary === g.binary && at < 0,
      `seed ${seed}: message ${i} (${describe(s)}) came back as ${describe(g)}, first difference at byte ${at}: ` +
      `${g.data.subarray(Math.max(0, at), Math.max(0, at) + 24).toString("hex")} instead of ${s.data.subarray(Math.max(0, at), Math.max(0, at) + 24).toString("hex")}`);
  }
}

for (const offer of ["", "client_no_context_takeover; server_no_context_takeover"]) {
  test(`2,000 compressed messages written coalesced come back byte for byte (${offer === "" ? "context takeover" : "no context takeover"})`, { timeout: 60_000 }, async () => {
    const client = await TrafficClient.open(served.port, "/echo", { deflate: offer, random: seeded(13) });
    assert.match(client.extensions, /permessage-deflate/);
    const sent: Message[] = [];
    for (let i = 0; i < 2_000; i++) {
      const message = { data: Buffer.from(`m${i}-${"z".repeat(i % 3000)}`), binary: false };
      sent.push(message);
      await client.send(message);
    }
    await client.flush(512 * 1024);
    await client.waitForMessages(sent.length, 30_000);
    assertEchoes(sent, client.messages, offer || "context takeover");
    assert.equal(await client.close(), 1000);
  });
}

const PIECES = ["a", "b", "c", " ", "é", "ж", "中", "🐱"].map((c) => Buffer.from(c));

/** A random message: mostly small, some up to 256 KiB, a few of several MiB; text is valid UTF-8 with multi-byte characters. */
function randomMessage(random: () => number): Message {
  const r = random();
  const size = r < 0.55 ? Math.floor(random() * 200) : r < 0.85 ? Math.floor(random() * 8192) : r < 0.98 ? Math.floor(random() * 256 * 1024) : 1024 * 1024 + Math.floor(random() * 3 * 1024 * 1024);
  const binary = random() < 0.5;
  const data = Buffer.allocUnsafe(size);
  if (binary) {
    // Half noise (incompressible: deflate output a little larger than its input), half patterned.
    if (random() < 0.5) {
      for (let i = 0; i + 4 <= size; i += 4) data.writeUInt32LE(Math.floor(random() * 4294967296), i);
      for (let i = size & ~3; i < size; i++) data[i] = Math.floor(random() * 256);
    } else {
      for (let i = 0; i < size; i++) data[i] = (i * 7 + (i >> 9)) & 0xff;
    }
    return { data, binary };
  }
  // Runs of one character; cut at a character boundary at the end.
  let length = 0;
  while (length < size) {
    const piece = PIECES[Math.floor(random() * PIECES.length)]!;
    for (let n = 1 + Math.floor(random() * 40); n > 0 && length + piece.length <= size; n--) length += piece.copy(data, length);
    if (length + 4 > size) break;
  }
  return { data: data.subarray(0, length), binary };
}

test("differential: clients at once send random mixes coalesced and split, every echo byte-exact", { timeout: 120_000 }, async () => {
  const offers = [undefined, "", "client_no_context_takeover", "server_no_context_takeover", "client_no_context_takeover; server_no_context_takeover", "server_max_window_bits=10"];
  const seeds = [101, 202, 303, 404, 505, 606];
  await Promise.all(seeds.map(async (seed, index) => {
    const random = seeded(seed);
    const client = await TrafficClient.open(served.port, "/echo", { deflate: offers[index % offers.length], random });
    const sent: Message[] = [];
    for (let round = 0; round < 4; round++) {
      const count = 20 + Math.floor(random() * 60);
      for (let i = 0; i < count; i++) {
        const message = randomMessage(random);
        sent.push(message);
        const fragments = random() < 0.2 ? 2 + Math.floor(random() * 6) : 1;
        await client.send(message, { compress: random() < 0.8, fragments });
      }
      await client.flush(1 + Math.floor(random() * 128 * 1024));
      await client.waitForMessages(sent.length, 60_000).catch((error: Error) => {
        throw new Error(`seed ${seed}: ${error.message}`);
      });
    }
    assertEchoes(sent, client.messages, seed);
    assert.equal(await client.close(), 1000, `seed ${seed}: close`);
  }));
});

test("every server_max_window_bits echoes incompressible messages, small and past the thread-pool size", { timeout: 60_000 }, async () => {
  const random = seeded(8);
  for (const bits of [9, 10, 11, 12, 13, 14, 15]) {
    const client = await TrafficClient.open(served.port, "/echo", { deflate: `server_max_window_bits=${bits}; client_max_window_bits=${bits}`, random });
    assert.match(client.extensions, new RegExp(`server_max_window_bits=${bits}`));
    const sent: Message[] = [];
    for (const size of [1500, 2048, 70_000, 300_000]) {
      const data = Buffer.allocUnsafe(size);
      for (let i = 0; i < size; i++) data[i] = Math.floor(random() * 256);
      sent.push({ data, binary: true });
      await client.send(sent.at(-1)!);
    }
    await client.flush();
    await client.waitForMessages(sent.length, 20_000).catch((error: Error) => {
      throw new Error(`server_max_window_bits=${bits}: ${error.message}`);
    });
    assertEchoes(sent, client.messages, `window bits ${bits}`);
    assert.equal(await client.close(), 1000);
  }
});

test("maxMessageBytes limits the message as the application gets it: 16 MiB of noise (larger compressed) echoes, one byte more is refused with 1009", { timeout: 60_000 }, async () => {
  const random = seeded(16);
  const noise = Buffer.allocUnsafe(16 * 1024 * 1024 + 1);
  for (let i = 0; i + 4 <= noise.length; i += 4) noise.writeUInt32LE(Math.floor(random() * 4294967296), i);
  const exact = { data: noise.subarray(0, 16 * 1024 * 1024), binary: true };
  const client = await TrafficClient.open(served.port, "/echo", { deflate: "client_no_context_takeover", random });
  await client.send(exact);
  await client.flush();
  await client.waitForMessages(1, 30_000);
  assertEchoes([exact], client.messages, "16 MiB");
  await client.send({ data: noise, binary: true });
  await client.flush();
  const { code } = await client.closed;
  assert.equal(code, 1009);
});

test("a message in a million 1-byte fragments costs the server about its size, not an object per fragment", { timeout: 60_000 }, async () => {
  const { child, port } = await startScript("examples/conformance.ts");
  try {
    const rss = (): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"))![1]) * 1024;
    const client = await TrafficClient.open(port, "/echo", { random: seeded(1) });
    // Warm up, then the baseline.
    await client.send({ data: Buffer.from("warm"), binary: false });
    await client.flush();
    await client.waitForMessages(1, 5_000);
    const before = rss();
    const message = Buffer.alloc(1_500_000, 0x61);
    await client.send({ data: message, binary: true }, { fragments: message.length });
    await client.flush(256 * 1024);
    await client.waitForMessages(2, 40_000);
    const grown = rss() - before;
    assertEchoes([{ data: message, binary: true }], client.messages.slice(1), "fragments");
    // 10.5 MB on the wire; the message itself is 1.5 MB. One object per fragment took 20×.
    if (rssBoundsHold) assert.ok(grown < 80 * 1024 * 1024, `the server grew by ${(grown / 2 ** 20).toFixed(0)} MB`);
    assert.equal(await client.close(), 1000);
  } finally {
    child.kill("SIGKILL");
  }
});

test("a reply to a message that came in the same read as the client's close goes out before the close's echo", { timeout: 20_000 }, async () => {
  for (let i = 0; i < 20; i++) {
    const client = await rawWebSocket(served.port, "/echo");
    const close = Buffer.alloc(2);
    close.writeUInt16BE(1000);
    client.write(Buffer.concat([clientFrame(0x1, `last words ${i}`), clientFrame(0x8, close)]));
    await client.closed;
    assert.deepEqual(client.frames.map((f) => [f.opcode, f.opcode === 0x1 ? f.payload.toString() : f.payload.readUInt16BE(0)]), [[0x1, `last words ${i}`], [0x8, 1000]]);
  }
});
