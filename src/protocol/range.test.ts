import { test } from "node:test";
import assert from "node:assert/strict";
import { parseRange, evaluatePreconditions, ifRangeHolds, httpDate } from "./range.js";

test("single, open-ended and suffix ranges", () => {
  assert.deepEqual(parseRange("bytes=0-499", 1000), { type: "ranges", ranges: [{ start: 0, end: 499 }] });
  assert.deepEqual(parseRange("bytes=500-", 1000), { type: "ranges", ranges: [{ start: 500, end: 999 }] });
  assert.deepEqual(parseRange("bytes=-200", 1000), { type: "ranges", ranges: [{ start: 800, end: 999 }] });
  assert.deepEqual(parseRange("Bytes = 1-1", 10), { type: "ranges", ranges: [{ start: 1, end: 1 }] });
});

test("last beyond the length is clamped; a long suffix means everything", () => {
  assert.deepEqual(parseRange("bytes=900-5000", 1000), { type: "ranges", ranges: [{ start: 900, end: 999 }] });
  assert.deepEqual(parseRange("bytes=-5000", 1000), { type: "ranges", ranges: [{ start: 0, end: 999 }] });
});

test("several ranges keep request order and drop unsatisfiable members", () => {
  assert.deepEqual(parseRange("bytes=0-1, 5-6,2000-3000, -1", 10), {
    type: "ranges",
    ranges: [{ start: 0, end: 1 }, { start: 5, end: 6 }, { start: 9, end: 9 }],
  });
});

test("overlapping ranges are coalesced, sorted: a range asked sixteen times is sent once", () => {
  assert.deepEqual(parseRange(Array(16).fill("bytes=0-").join(",").replace(/,bytes=/g, ","), 100), { type: "ranges", ranges: [{ start: 0, end: 99 }] });
  assert.deepEqual(parseRange("bytes=50-60,0-9,55-70,10-19", 100), { type: "ranges", ranges: [{ start: 0, end: 19 }, { start: 50, end: 70 }] });
  assert.deepEqual(parseRange("bytes=-10,0-", 100), { type: "ranges", ranges: [{ start: 0, end: 99 }] });
  // Without an overlap, request order stays (and touching ranges stay apart).
  assert.deepEqual(parseRange("bytes=20-29,0-9,10-19", 100), { type: "ranges", ranges: [{ start: 20, end: 29 }, { start: 0, end: 9 }, { start: 10, end: 19 }] });
});

test("unsatisfiable ranges", () => {
  assert.deepEqual(parseRange("bytes=1000-", 1000), { type: "unsatisfiable" });
  assert.deepEqual(parseRange("bytes=-0", 1000), { type: "unsatisfiable" });
  assert.deepEqual(parseRange("bytes=0-", 0), { type: "unsatisfiable" });
  assert.deepEqual(parseRange("bytes=-5", 0), { type: "unsatisfiable" });
});

test("malformed headers and unknown units", () => {
  for (const h of ["bytes=", "bytes=abc", "bytes=5-1", "bytes=1-2-3", "bytes=-", "bytes 0-1", "bytes=0x1-2", "bytes=+1-2"]) {
    assert.deepEqual(parseRange(h, 100), { type: "malformed" }, h);
  }
  assert.deepEqual(parseRange("items=0-1", 100), { type: "none" });
  assert.deepEqual(parseRange(undefined, 100), { type: "none" });
});

const etag = '"a-1"';
const lastModified = Date.UTC(2026, 0, 2, 3, 4, 5, 678);

test("If-None-Match outranks If-Modified-Since and uses the weak comparison", () => {
  assert.equal(evaluatePreconditions({ "if-none-match": '"a-1"' }, { etag, lastModified }, "GET"), 304);
  assert.equal(evaluatePreconditions({ "if-none-match": 'W/"a-1"' }, { etag, lastModified }, "GET"), 304);
  assert.equal(evaluatePreconditions({ "if-none-match": '"x", "a-1"' }, { etag, lastModified }, "HEAD"), 304);
  assert.equal(evaluatePreconditions({ "if-none-match": "*" }, { etag, lastModified }, "GET"), 304);
  assert.equal(
    evaluatePreconditions({ "if-none-match": '"x"', "if-modified-since": httpDate(lastModified) }, { etag, lastModified }, "GET"),
    0,
  );
});

test("If-Modified-Since compares whole seconds", () => {
  assert.equal(evaluatePreconditions({ "if-modified-since": httpDate(lastModified) }, { etag, lastModified }, "GET"), 304);
  assert.equal(evaluatePreconditions({ "if-modified-since": httpDate(lastModified - 1000) }, { etag, lastModified }, "GET"), 0);
  assert.equal(evaluatePreconditions({ "if-modified-since": "garbage" }, { etag, lastModified }, "GET"), 0);
});

test("If-Match and If-Unmodified-Since fail with 412", () => {
  assert.equal(evaluatePreconditions({ "if-match": '"b"' }, { etag, lastModified }, "GET"), 412);
  assert.equal(evaluatePreconditions({ "if-match": 'W/"a-1"' }, { etag, lastModified }, "GET"), 412);
  assert.equal(evaluatePreconditions({ "if-match": '"a-1"' }, { etag, lastModified }, "GET"), 0);
  assert.equal(evaluatePreconditions({ "if-unmodified-since": httpDate(lastModified - 5000) }, { etag, lastModified }, "GET"), 412);
});

test("If-Range: strong entity tag or the exact date", () => {
  assert.equal(ifRangeHolds(undefined, { etag, lastModified }), true);
  assert.equal(ifRangeHolds('"a-1"', { etag, lastModified }), true);
  assert.equal(ifRangeHolds('"a-2"', { etag, lastModified }), false);
  assert.equal(ifRangeHolds('W/"a-1"', { etag, lastModified }), false);
  assert.equal(ifRangeHolds(httpDate(lastModified), { etag, lastModified }), true);
  assert.equal(ifRangeHolds(httpDate(lastModified + 2000), { etag, lastModified }), false);
});
