import { test } from "node:test";
import assert from "node:assert/strict";
import { CloseCode, Opcode, compressedBound, isValidCloseCode } from "./constants.js";
import { encodeClose, encodeFrame } from "./frame.js";
import { ConnectionState, PROTOCOL_ERROR_CODES, WebSocketProtocol, type ProtocolError, type ProtocolOptions } from "./protocol.js";

const MASK = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
const hex = (h: string): Buffer => Buffer.from(h.replace(/\s+/g, ""), "hex");

/** A masked client frame. */
function client(opcode: number, payload: string | Uint8Array, fin = true, rsv1 = false): Buffer {
  return encodeFrame(opcode as Opcode, payload, { fin, rsv1, mask: MASK });
}

type Event = [string, ...unknown[]];

function run(input: Buffer[] | Buffer, options: Partial<ProtocolOptions> = {}, split?: number): { events: Event[]; written: string[] } {
  const events: Event[] = [];
  const written: string[] = [];
  const protocol = new WebSocketProtocol({
    write: (data) => void written.push(Buffer.from(data).toString("hex")),
    onMessage: (data, isBinary) => void events.push(["message", isBinary ? data.toString("hex") : data.toString("utf8"), isBinary]),
    onPing: (payload) => void events.push(["ping", payload.toString()]),
    onPong: (payload) => void events.push(["pong", payload.toString()]),
    onClose: (code, reason) => void events.push(["close", code, reason]),
    onError: (code, reason) => void events.push(["error", code, reason]),
  }, { maxMessageBytes: 1 << 20, maxFrameBytes: 1 << 20, isServer: true, compression: false, ...options });
  const bytes = Buffer.isBuffer(input) ? input : Buffer.concat(input);
  if (split === undefined) {
    protocol.receiveData(Buffer.from(bytes));
  } else if (split === -1) {
    for (const byte of bytes) protocol.receiveData(Buffer.from([byte]));
  } else {
    protocol.receiveData(Buffer.from(bytes.subarray(0, split)));
    protocol.receiveData(Buffer.from(bytes.subarray(split)));
  }
  return { events, written };
}

/** The same events for the whole input, every two-way split, and byte by byte. */
function expectEvents(input: Buffer[] | Buffer, expected: Event[], options: Partial<ProtocolOptions> = {}): string[] {
  const whole = run(input, options);
  assert.deepEqual(whole.events, expected);
  const length = (Buffer.isBuffer(input) ? input : Buffer.concat(input)).length;
  for (let split = 0; split <= length; split++) {
    assert.deepEqual(run(input, options, split).events, expected, `split at ${split}`);
  }
  assert.deepEqual(run(input, options, -1).events, expected, "byte by byte");
  return whole.written;
}

test("RFC 6455 §5.7: a masked 'Hello'", () => {
  expectEvents(hex("81 85 37 fa 21 3d 7f 9f 4d 51 58"), [["message", "Hello", false]]);
});

test("every payload length encoding", () => {
  for (const size of [0, 125, 126, 65535, 65536, 100_000]) {
    const payload = Buffer.alloc(size, 0xab);
    const events = run(client(Opcode.Binary, payload)).events;
    assert.equal(events.length, 1, `size ${size}`);
    assert.equal((events[0]![1] as string).length, size * 2);
  }
  expectEvents(client(Opcode.Binary, Buffer.alloc(300, 1)), [["message", "01".repeat(300), true]]);
});

test("fragmented messages with control frames in between", () => {
  const written = expectEvents([
    client(Opcode.Text, "Hel", false),
    client(Opcode.Ping, "p1"),
    client(Opcode.Continuation, "lo, ", false),
    client(Opcode.Pong, "p2"),
    client(Opcode.Continuation, "wörld", true),
  ], [["ping", "p1"], ["pong", "p2"], ["message", "Hello, wörld", false]]);
  // The ping got an unmasked pong with the same payload.
  assert.deepEqual(written, [encodeFrame(Opcode.Pong, "p1").toString("hex")]);
});

test("text split inside a character across fragments", () => {
  const bytes = Buffer.from("€uro");
  expectEvents([
    client(Opcode.Text, bytes.subarray(0, 1), false),
    client(Opcode.Continuation, bytes.subarray(1, 2), false),
    client(Opcode.Continuation, bytes.subarray(2), true),
  ], [["message", "€uro", false]]);
});

const protocolErrors: Array<[string, Buffer[] | Buffer, number]> = [
  ["unmasked client frame", encodeFrame(Opcode.Text, "hi"), CloseCode.ProtocolError],
  ["RSV2 set", (() => { const f = client(Opcode.Text, "x"); f[0]! |= 0x20; return f; })(), CloseCode.ProtocolError],
  ["RSV3 set", (() => { const f = client(Opcode.Text, "x"); f[0]! |= 0x10; return f; })(), CloseCode.ProtocolError],
  ["RSV1 without compression", client(Opcode.Text, "x", true, true), CloseCode.ProtocolError],
  ["reserved data opcode 3", client(3, "x"), CloseCode.ProtocolError],
  ["reserved control opcode 0xB", client(0xb, "x"), CloseCode.ProtocolError],
  ["control frame of 126 bytes", client(Opcode.Ping, Buffer.alloc(126)), CloseCode.ProtocolError],
  ["fragmented ping", client(Opcode.Ping, "x", false), CloseCode.ProtocolError],
  ["continuation without a start", client(Opcode.Continuation, "x"), CloseCode.ProtocolError],
  ["new message inside a fragmented one", [client(Opcode.Text, "a", false), client(Opcode.Text, "b")], CloseCode.ProtocolError],
  ["invalid UTF-8", client(Opcode.Text, hex("ce ba e1 bd b9 cf 83 ce bc ce b5 ed a0 80 65 64 69 74 65 64")), CloseCode.InvalidPayload],
  ["close frame of one byte", client(Opcode.Close, Buffer.from([3])), CloseCode.ProtocolError],
  ["close code 1005", client(Opcode.Close, Buffer.from([0x03, 0xed])), CloseCode.ProtocolError],
  ["close code 999", client(Opcode.Close, Buffer.from([0x03, 0xe7])), CloseCode.ProtocolError],
  ["invalid UTF-8 in the close reason", client(Opcode.Close, Buffer.concat([Buffer.from([0x03, 0xe8]), hex("ff")])), CloseCode.InvalidPayload],
  ["64-bit length with the top bit set", hex("82 ff 80 00 00 00 00 00 00 01 37 fa 21 3d"), CloseCode.ProtocolError],
];

for (const [name, input, code] of protocolErrors) {
  test(`protocol violation: ${name} → ${code}`, () => {
    const written = expectEvents(input, [["error", code, (run(input).events[0]![2] as string)]]);
    assert.equal(written.length, 1);
    assert.equal(parseInt(written[0]!.slice(4, 8), 16), code, "close frame with the code");
  });
}

test("invalid UTF-8 fails at the first bad fragment, before the message ends", () => {
  const { events } = run([client(Opcode.Text, hex("ce ba"), false), client(Opcode.Continuation, hex("f4 90 80 80"), false)]);
  assert.deepEqual(events.map((e) => e.slice(0, 2)), [["error", CloseCode.InvalidPayload]]);
});

test("a compressed message's wire bytes may exceed the limits by deflate's bound (the limits hold inflated)", () => {
  const limit = 1000;
  const bound = compressedBound(limit);
  const codes = (frames: Buffer[], options: Partial<ProtocolOptions>): Array<unknown> => {
    const events: Event[] = [];
    const protocol = new WebSocketProtocol({
      write: () => undefined,
      onMessage: () => void events.push(["message"]),
      onCompressedMessage: () => void events.push(["compressed"]),
      onPing: () => undefined, onPong: () => undefined, onClose: () => undefined,
      onError: (code) => void events.push(["error", code]),
    }, { maxMessageBytes: limit, maxFrameBytes: limit, isServer: true, compression: true, ...options });
    protocol.receiveData(Buffer.concat(frames));
    return events.map((e) => e[1] ?? e[0]);
  };
  // One frame, and the same message in two frames, right at the bound: handed on to inflate.
  assert.deepEqual(codes([client(Opcode.Binary, Buffer.alloc(bound), true, true)], {}), ["compressed"]);
  const half = Math.floor(bound / 2);
  assert.deepEqual(codes([client(Opcode.Binary, Buffer.alloc(half), false, true), client(Opcode.Continuation, Buffer.alloc(bound - half))], {}), ["compressed"]);
  // A byte past it, as a frame or as a message: 1009 before the payload.
  assert.deepEqual(codes([client(Opcode.Binary, Buffer.alloc(bound + 1), true, true)], {}), [CloseCode.MessageTooBig]);
  assert.deepEqual(codes([client(Opcode.Binary, Buffer.alloc(half), false, true), client(Opcode.Continuation, Buffer.alloc(bound - half + 1))], {}), [CloseCode.MessageTooBig]);
  // Uncompressed messages keep the plain limits.
  assert.deepEqual(codes([client(Opcode.Binary, Buffer.alloc(limit + 1))], {}), [CloseCode.MessageTooBig]);
});

test("a frame or message over the limit gets 1009 before its payload is read", () => {
  const header = client(Opcode.Binary, Buffer.alloc(2000)).subarray(0, 8);
  assert.deepEqual(run(header, { maxFrameBytes: 1000 }).events.map((e) => e.slice(0, 2)), [["error", CloseCode.MessageTooBig]]);
  const fragments = [client(Opcode.Binary, Buffer.alloc(600), false), client(Opcode.Continuation, Buffer.alloc(600))];
  assert.deepEqual(run(fragments, { maxMessageBytes: 1000 }).events.map((e) => e.slice(0, 2)), [["error", CloseCode.MessageTooBig]]);
  const huge = hex("82 ff 00 00 10 00 00 00 00 00 37 fa 21 3d");
  assert.deepEqual(run(huge).events.map((e) => e.slice(0, 2)), [["error", CloseCode.MessageTooBig]]);
});

test("a close is echoed with its code, and nothing is read after it", () => {
  const written = expectEvents([
    client(Opcode.Close, Buffer.concat([Buffer.from([0x0f, 0xa0]), Buffer.from("bye")])),
    client(Opcode.Text, "after close"),
  ], [["close", 4000, "bye"]]);
  assert.deepEqual(written, [encodeClose(4000).toString("hex")]);
  const empty = expectEvents(client(Opcode.Close, new Uint8Array(0)), [["close", CloseCode.NoStatus, ""]]);
  assert.deepEqual(empty, [encodeClose().toString("hex")]);
});

test("valid close codes", () => {
  const valid = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999];
  const invalid = [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535];
  for (const code of valid) assert.equal(isValidCloseCode(code), true, String(code));
  for (const code of invalid) assert.equal(isValidCloseCode(code), false, String(code));
});

test("a client endpoint rejects masked frames and accepts unmasked ones", () => {
  assert.deepEqual(run(encodeFrame(Opcode.Text, "hi"), { isServer: false }).events, [["message", "hi", false]]);
  assert.deepEqual(run(client(Opcode.Text, "hi"), { isServer: false }).events.map((e) => e.slice(0, 2)), [["error", CloseCode.ProtocolError]]);
});

test("unmasking large payloads at every alignment matches the byte-wise definition", async () => {
  const { unmask } = await import("./frame.js");
  const mask = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  for (let offset = 0; offset < 8; offset++) {
    for (const length of [63, 64, 65, 1000, 4099]) {
      const backing = Buffer.alloc(length + 16);
      for (let i = 0; i < backing.length; i++) backing[i] = (i * 31) & 0xff;
      const data = backing.subarray(offset, offset + length);
      const expected = Buffer.from(data.map((b, i) => b ^ mask[i & 3]!));
      unmask(data, mask);
      assert.ok(data.equals(expected), `offset ${offset}, length ${length}`);
    }
  }
});

/** A protocol endpoint that records what it wrote and what it decoded. */
function endpoint(options: Partial<ProtocolOptions> = {}) {
  const written: Buffer[] = [];
  const events: Event[] = [];
  const protocol = new WebSocketProtocol({
    write: (data) => void written.push(Buffer.from(data)),
    onMessage: (data, isBinary) => void events.push(["message", isBinary ? Buffer.from(data) : data.toString("utf8"), isBinary]),
    onPing: (payload) => void events.push(["ping", payload.toString()]),
    onPong: (payload) => void events.push(["pong", payload.toString()]),
    onClose: (code, reason) => void events.push(["close", code, reason]),
    onError: (code, _reason, error) => void events.push(["error", code, error]),
    onCompressedMessage: (payload, isBinary) => void events.push(["compressed", Buffer.concat(payload), isBinary]),
  }, { maxMessageBytes: 1 << 20, maxFrameBytes: 1 << 20, isServer: true, compression: false, ...options });
  return { protocol, written, events };
}

test("the closing handshake: Open, Closing after our close, Closed after the peer's; nothing is sent after our close", () => {
  const { protocol, written, events } = endpoint();
  assert.equal(protocol.connectionState, ConnectionState.Open);
  protocol.sendClose(CloseCode.GoingAway, "bye");
  assert.equal(protocol.connectionState, ConnectionState.Closing);
  assert.equal(protocol.closeSent, true);
  assert.equal(protocol.closeReceived, false);
  assert.equal(protocol.sendText("late"), false);
  assert.equal(protocol.sendBinary(Buffer.from("late")), false);
  assert.equal(protocol.sendPing(), false);
  assert.equal(protocol.sendPong(), false);
  protocol.sendClose(CloseCode.Normal);
  assert.deepEqual(written.map((b) => b.toString("hex")), [encodeClose(CloseCode.GoingAway, "bye").toString("hex")]);
  // A ping from the peer while closing is reported but not answered.
  protocol.receiveData(client(Opcode.Ping, "p"));
  protocol.receiveData(client(Opcode.Close, Buffer.from([0x03, 0xe9])));
  assert.equal(protocol.connectionState, ConnectionState.Closed);
  assert.equal(written.length, 1, "no pong and no second close");
  assert.deepEqual(events, [["ping", "p"], ["close", CloseCode.GoingAway, ""]]);
});

test("the peer's close first: echoed at once, and the state is Closed", () => {
  const { protocol, written } = endpoint();
  protocol.receiveData(client(Opcode.Close, Buffer.from([0x0f, 0xa0])));
  assert.equal(protocol.connectionState, ConnectionState.Closed);
  assert.equal(protocol.closeReceived, true);
  assert.deepEqual(written.map((b) => b.toString("hex")), [encodeClose(4000).toString("hex")]);
  assert.equal(protocol.sendText("after"), false);
});

test("protocol errors carry a stable name with its close code, and fail the connection", () => {
  const cases: Array<[Buffer, ProtocolError, Partial<ProtocolOptions>?]> = [
    [Buffer.from([0xa1, 0x80, 1, 2, 3, 4]), "reserved-bits"],
    [client(Opcode.Text, "x", true, true), "unnegotiated-rsv1"],
    [client(0x3, "x"), "reserved-opcode"],
    [client(0xb, "x"), "reserved-opcode"],
    [client(Opcode.Ping, "x", false), "fragmented-control-frame"],
    [Buffer.from([0x89, 0xfe, 0x00, 0x7e, 1, 2, 3, 4]), "control-frame-too-long"],
    [client(Opcode.Continuation, "x"), "continuation-without-message"],
    [Buffer.concat([client(Opcode.Text, "a", false), client(Opcode.Text, "b")]), "interleaved-message"],
    [encodeFrame(Opcode.Text, "x"), "masking"],
    [hex("82 ff 80 00 00 00 00 00 00 00 37 fa 21 3d"), "bad-length"],
    [client(Opcode.Binary, Buffer.alloc(200)), "frame-too-large", { maxFrameBytes: 100 }],
    [Buffer.concat([client(Opcode.Binary, Buffer.alloc(60), false), client(Opcode.Continuation, Buffer.alloc(60))]), "message-too-large", { maxMessageBytes: 100 }],
    [client(Opcode.Text, Buffer.from([0xc3, 0x28])), "invalid-utf8"],
    [client(Opcode.Close, Buffer.from([0x03])), "bad-close-frame"],
    [client(Opcode.Close, Buffer.from([0x03, 0xe7])), "bad-close-frame"],
  ];
  for (const [bytes, error, options] of cases) {
    const { protocol, written, events } = endpoint(options);
    protocol.receiveData(Buffer.from(bytes));
    const code = PROTOCOL_ERROR_CODES[error];
    assert.deepEqual(events, [["error", code, error]], error);
    assert.equal(protocol.connectionState, ConnectionState.Closed, error);
    assert.equal(written.at(-1)!.readUInt16BE(2), code, `${error}: the close frame carries ${code}`);
    // Nothing more is read or sent.
    protocol.receiveData(client(Opcode.Text, "more"));
    assert.equal(events.length, 1, error);
    assert.equal(protocol.sendText("more"), false, error);
  }
});

test("a failed inflate fails with its name: invalid data 1007, over the limit 1009", () => {
  for (const error of ["invalid-compressed-data", "message-too-large"] as const) {
    const { protocol, events } = endpoint({ compression: true });
    protocol.receiveData(client(Opcode.Text, Buffer.from([1, 2, 3]), true, true));
    assert.equal(events[0]![0], "compressed");
    protocol.failInflate(error);
    assert.deepEqual(events.slice(1), [["error", PROTOCOL_ERROR_CODES[error], error]]);
    assert.equal(PROTOCOL_ERROR_CODES[error], error === "message-too-large" ? CloseCode.MessageTooBig : CloseCode.InvalidPayload);
  }
});

test("what one endpoint sends, the other reads back: text, binary at every length form, compressed, masked", () => {
  const payloads = [0, 1, 125, 126, 65535, 65536, 100_000].map((size) => Buffer.alloc(size, size & 0xff));
  for (const fromClient of [false, true]) {
    const sender = endpoint(fromClient ? { isServer: false, maskKey: () => Buffer.from([9, 8, 7, 6]) } : {});
    const receiver = endpoint({ isServer: fromClient, compression: true });
    assert.equal(sender.protocol.sendText("héllo"), true);
    for (const payload of payloads) sender.protocol.sendBinary(payload);
    sender.protocol.sendMessage(true, Buffer.from([0xaa]), true);
    sender.protocol.sendPing("p");
    sender.protocol.sendPong("q");
    for (const bytes of sender.written) receiver.protocol.receiveData(bytes);
    const side = fromClient ? "client" : "server";
    assert.deepEqual(receiver.events[0], ["message", "héllo", false], side);
    for (let i = 0; i < payloads.length; i++) {
      const [kind, data, isBinary] = receiver.events[1 + i]!;
      assert.equal(kind, "message");
      assert.equal(isBinary, true);
      assert.ok((data as Buffer).equals(payloads[i]!), `${side}: ${payloads[i]!.length} bytes`);
    }
    assert.deepEqual(receiver.events[1 + payloads.length], ["compressed", Buffer.from([0xaa]), true], side);
  }
});

test("a large unmasked payload is written after its header, not copied; a masked one is copied and masked", () => {
  const payload = Buffer.alloc(20_000, 0x41);
  const server = endpoint();
  server.protocol.sendBinary(payload);
  assert.equal(server.written.length, 2);
  assert.equal(server.written[0]!.length, 4);
  const seen: Uint8Array[] = [];
  const direct = new WebSocketProtocol({
    write: (data) => void seen.push(data), onMessage() {}, onPing() {}, onPong() {}, onClose() {}, onError() {},
  }, { maxMessageBytes: 1 << 20, maxFrameBytes: 1 << 20, isServer: true, compression: false });
  direct.sendBinary(payload);
  assert.equal(seen[1], payload, "the caller's buffer itself");
  const client = endpoint({ isServer: false, maskKey: () => Buffer.from([1, 2, 3, 4]) });
  client.protocol.sendBinary(payload);
  assert.equal(client.written.length, 1);
  assert.equal(payload[0], 0x41, "the caller's bytes are not masked in place");
});
