import { test } from "node:test";
import assert from "node:assert/strict";
import { encodeEvent, encodeComment } from "./sse.js";

test("a string is one data event", () => {
  assert.equal(encodeEvent("hello"), "data: hello\n\n");
});

test("all fields in a stable order", () => {
  assert.equal(
    encodeEvent({ comment: "c", event: "tick", id: 7, retry: 1500, data: "x" }),
    ": c\nevent: tick\nid: 7\nretry: 1500\ndata: x\n\n",
  );
});

test("data is split on CR, LF and CRLF", () => {
  assert.equal(encodeEvent({ data: "a\nb\rc\r\nd" }), "data: a\ndata: b\ndata: c\ndata: d\n\n");
  assert.equal(encodeEvent({ data: "" }), "data: \n\n");
  assert.equal(encodeEvent({ data: "end\n" }), "data: end\ndata: \n\n");
});

test("line breaks in event or id are rejected", () => {
  assert.throws(() => encodeEvent({ event: "a\nb", data: "x" }), TypeError);
  assert.throws(() => encodeEvent({ event: "a\rb", data: "x" }), TypeError);
  assert.throws(() => encodeEvent({ id: "1\r\n2", data: "x" }), TypeError);
  assert.throws(() => encodeEvent({ id: "1\u00002", data: "x" }), TypeError);
});

test("retry must be a non-negative integer", () => {
  assert.throws(() => encodeEvent({ retry: -1 }), TypeError);
  assert.throws(() => encodeEvent({ retry: 1.5 }), TypeError);
});

test("an empty event encodes to nothing; comments are lines starting with a colon", () => {
  assert.equal(encodeEvent({}), "");
  assert.equal(encodeComment("ping"), ": ping\n\n");
  assert.equal(encodeComment("a\nb"), ": a\n: b\n\n");
});
