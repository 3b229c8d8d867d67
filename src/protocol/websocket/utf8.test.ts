import { test } from "node:test";
import assert from "node:assert/strict";
import { Utf8Validator, isValidUtf8 } from "./utf8.js";

const hex = (h: string): Uint8Array => Buffer.from(h.replace(/\s+/g, ""), "hex");

test("valid text, including 4-byte code points", () => {
  assert.equal(isValidUtf8(Buffer.from("Hello, wörld! €𝄞 ✓")), true);
  assert.equal(isValidUtf8(hex("f4 8f bf bf")), true); // U+10FFFF
  assert.equal(isValidUtf8(hex("ed 9f bf")), true); // U+D7FF
  assert.equal(isValidUtf8(hex("ee 80 80")), true); // U+E000
  assert.equal(isValidUtf8(new Uint8Array()), true);
});

test("invalid sequences", () => {
  const bad = {
    "overlong 2-byte": "c0 af",
    "overlong 2-byte C1": "c1 bf",
    "overlong 3-byte": "e0 80 af",
    "overlong 4-byte": "f0 80 80 af",
    "surrogate high": "ed a0 80",
    "surrogate low": "ed bf bf",
    "above U+10FFFF": "f4 90 80 80",
    "F5 lead": "f5 80 80 80",
    "lone continuation": "80",
    "truncated": "e2 82",
    "FF": "ff",
    "continuation missing mid-string": "e2 28 a1",
  };
  for (const [name, bytes] of Object.entries(bad)) assert.equal(isValidUtf8(hex(bytes)), false, name);
});

test("fragments split inside a code point validate incrementally", () => {
  const text = Buffer.from("κόσμε€𝄞");
  for (let split = 0; split <= text.length; split++) {
    const v = new Utf8Validator();
    assert.equal(v.feed(text.subarray(0, split)), true);
    assert.equal(v.feed(text.subarray(split)), true);
    assert.equal(v.isComplete, true, `split at ${split}`);
  }
});

test("fails fast on the first invalid byte, before the message ends", () => {
  const v = new Utf8Validator();
  assert.equal(v.feed(hex("ce ba e1 bd b9 cf 83 ce bc ce b5")), true);
  assert.equal(v.feed(hex("f4 90")), false);
  const w = new Utf8Validator();
  assert.equal(w.feed(hex("e0")), true);
  assert.equal(w.isComplete, false);
  assert.equal(w.feed(hex("80")), false);
});
