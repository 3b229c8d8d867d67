import { test } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_DEFLATE_LEVEL, DEFAULT_DEFLATE_THRESHOLD } from "../protocol/websocket/constants.js";
import { WEBSOCKET_DEFAULTS, resolveWebSocketOptions } from "./options.js";

test("route options win over app options, which win over the defaults; maxFrameBytes follows maxMessageBytes", () => {
  const resolved = resolveWebSocketOptions({ maxMessageBytes: 4096, idleTimeoutMs: 10 }, { idleTimeoutMs: 20 });
  assert.equal(resolved.maxMessageBytes, 4096);
  assert.equal(resolved.maxFrameBytes, 4096);
  assert.equal(resolved.idleTimeoutMs, 20);
  assert.equal(resolved.maxBufferedBytes, WEBSOCKET_DEFAULTS.maxBufferedBytes);
  assert.equal(resolved.perMessageDeflate, null, "off unless asked for");
});

test("permessage-deflate: true takes the named defaults, an object is merged over them", () => {
  assert.deepEqual(resolveWebSocketOptions({ perMessageDeflate: true }).perMessageDeflate, { threshold: DEFAULT_DEFLATE_THRESHOLD, level: DEFAULT_DEFLATE_LEVEL });
  assert.deepEqual(resolveWebSocketOptions({ perMessageDeflate: { level: 1, serverNoContextTakeover: true } }).perMessageDeflate,
    { threshold: DEFAULT_DEFLATE_THRESHOLD, level: 1, serverNoContextTakeover: true });
});

test("bad options fail with an error that names the option and the value", () => {
  const cases: Array<[Parameters<typeof resolveWebSocketOptions>[0], RegExp]> = [
    [{ maxMessageBytes: 0 }, /websocket\.maxMessageBytes must be a positive integer, got 0/],
    [{ idleTimeoutMs: -1 }, /websocket\.idleTimeoutMs must be a non-negative integer, got -1/],
    [{ perMessageDeflate: { level: 10 } }, /websocket\.perMessageDeflate\.level must be an integer in 0\.\.9, got 10/],
    [{ perMessageDeflate: { serverMaxWindowBits: 8 } }, /websocket\.perMessageDeflate\.serverMaxWindowBits must be an integer in 9\.\.15, got 8/],
    [{ perMessageDeflate: { threshold: 1.5 } }, /websocket\.perMessageDeflate\.threshold must be a non-negative integer, got 1\.5/],
    [{ overLimitPolicy: "queue" as never }, /overLimitPolicy must be "wait", "drop" or "close", got queue/],
    [{ maxMesageBytes: 1 } as never, /Unknown option websocket\.maxMesageBytes/],
  ];
  for (const [options, message] of cases) assert.throws(() => resolveWebSocketOptions(options), message);
});
