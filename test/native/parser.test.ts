import { test } from "node:test";
import assert from "node:assert/strict";
import type { NativeBinding } from "../../src/node/native/binding.js";
import { Opcode } from "../../src/protocol/websocket/constants.js";
import { encodeClose, encodeFrame } from "../../src/protocol/websocket/frame.js";
import { WebSocketProtocol } from "../../src/protocol/websocket/protocol.js";
import { nativeOrSkip } from "./native-helpers.js";
import { seeded as random } from "../traffic-client.js";

type Event = [string, ...unknown[]];

const TEXTS = ["", "hello", "wörld €uro 𝄞", "x".repeat(200), "ü".repeat(40_000), "a".repeat(70_000)];

/** A sequence of client frames, mostly valid, sometimes broken in one of the ways peers break them. */
function sequence(rand: () => number): Buffer {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;
  const mask = () => Buffer.from([rand() * 256, rand() * 256, rand() * 256, rand() * 256]);
  const frames: Buffer[] = [];
  const count = 1 + Math.floor(rand() * 5);
  for (let i = 0; i < count; i++) {
    const kind = rand();
    if (kind < 0.3) {
      frames.push(encodeFrame(Opcode.Text, pick(TEXTS), { mask: mask() }));
    } else if (kind < 0.45) {
      const size = pick([0, 1, 125, 126, 65535, 65536, 70_001]);
      frames.push(encodeFrame(Opcode.Binary, Buffer.alloc(size, Math.floor(rand() * 256)), { mask: mask() }));
    } else if (kind < 0.7) {
      // A fragmented message, maybe with control frames in between, maybe cut inside a character.
      const text = Buffer.from(pick(TEXTS.slice(1)));
      const binary = rand() < 0.3;
      const cuts = [0, ...Array.from({ length: 1 + Math.floor(rand() * 3) }, () => Math.floor(rand() * text.length)).sort((a, b) => a - b), text.length];
      for (let k = 0; k + 1 < cuts.length; k++) {
        const opcode = k === 0 ? (binary ? Opcode.Binary : Opcode.Text) : Opcode.Continuation;
        frames.push(encodeFrame(opcode, text.subarray(cuts[k], cuts[k + 1]), { fin: k + 2 === cuts.length, mask: mask() }));
        if (rand() < 0.3) frames.push(encodeFrame(rand() < 0.5 ? Opcode.Ping : Opcode.Pong, "c" + k, { mask: mask() }));
      }
    } else if (kind < 0.8) {
      frames.push(encodeFrame(pick([Opcode.Ping, Opcode.Pong]), Buffer.alloc(Math.floor(rand() * 126), 0x61), { mask: mask() }));
    } else if (kind < 0.85) {
      frames.push(encodeClose(pick([1000, 1001, 3000, 4999, 999, 1004, 1005, 1015, 2000, 5000]), pick(["", "bye", "ça va"]), mask()));
    } else {
      // Break a valid frame.
      const frame = encodeFrame(Opcode.Text, pick(TEXTS.slice(0, 4)), { mask: mask() });
      const how = Math.floor(rand() * 8);
      if (how === 0) frame[0]! |= 0x40; // RSV1
      else if (how === 1) frame[0]! |= 0x20; // RSV2
      else if (how === 2) frame[0] = (frame[0]! & 0xf0) | pick([3, 7, 0xb, 0xf]); // reserved opcode
      else if (how === 3) frame[1]! &= 0x7f; // not masked
      else if (how === 4) frame[0] = 0x00 | (frame[0]! & 0x0f) | 0x00; // not final: a message left open
      else if (how === 5 && frame.length > 6) frame[6] = pick([0xff, 0xc0, 0xed, 0xf5]) ^ frame[2]!; // invalid UTF-8 byte
      else if (how === 6) frames.push(encodeFrame(Opcode.Continuation, "x", { mask: mask() })); // continuation without a message
      else frames.push(Buffer.from([0x89, 0xfe, 0x00, 0x7e, 1, 2, 3, 4])); // control frame too long
      frames.push(frame);
    }
  }
  return Buffer.concat(frames);
}

function typescriptEvents(bytes: Buffer, maxBytes: number): Event[] {
  const events: Event[] = [];
  const protocol = new WebSocketProtocol({
    write: () => undefined,
    onMessage: (data, isBinary) => void events.push(["message", Buffer.from(data).toString("hex"), isBinary]),
    onPing: (payload) => void events.push(["ping", payload.toString("hex")]),
    onPong: (payload) => void events.push(["pong", payload.toString("hex")]),
    onClose: (code, reason) => void events.push(["close", code, reason]),
    onError: (code) => void events.push(["error", code]),
  }, { maxMessageBytes: maxBytes, maxFrameBytes: maxBytes, isServer: true, compression: false });
  protocol.receiveData(Buffer.from(bytes));
  return events;
}

function nativeEvents(binding: NativeBinding, chunks: Buffer[], maxBytes: number): Event[] {
  return binding.parse(chunks, maxBytes, maxBytes).map((event) => {
    const [kind, a, b] = event;
    if (kind === "message") return [kind, (a as Buffer).toString("hex"), b];
    if (kind === "ping" || kind === "pong") return [kind, (a as Buffer).toString("hex")];
    if (kind === "error") return [kind, a];
    return [kind, a, b];
  });
}

test("the C frame parser agrees with the TypeScript codec on 2,000 generated sequences, split anywhere", (t) => {
  const binding = nativeOrSkip(t);
  if (binding === null) return;
  const rand = random(6455);
  for (let n = 0; n < 2_000; n++) {
    const bytes = sequence(rand);
    const maxBytes = rand() < 0.2 ? 1 + Math.floor(rand() * 1000) : 1 << 20;
    const expected = typescriptEvents(bytes, maxBytes);
    // Whole, at a random split, in small random pieces (the reads a socket gives), byte by byte when short.
    const split = Math.floor(rand() * (bytes.length + 1));
    const pieces: Buffer[] = [];
    for (let at = 0; at < bytes.length;) {
      const size = 1 + Math.floor(rand() * 700);
      pieces.push(bytes.subarray(at, at + size));
      at += size;
    }
    const ways: Array<[string, Buffer[]]> = [["whole", [bytes]], [`split at ${split}`, [bytes.subarray(0, split), bytes.subarray(split)]], ["pieces", pieces]];
    if (bytes.length < 400) ways.push(["byte by byte", [...bytes].map((b) => Buffer.from([b]))]);
    for (const [how, chunks] of ways) {
      assert.deepEqual(nativeEvents(binding, chunks, maxBytes), expected, `case ${n} (${bytes.length} bytes, limit ${maxBytes}), ${how}: ${bytes.subarray(0, 40).toString("hex")}`);
    }
  }
});
