import { test } from "node:test";
import assert from "node:assert/strict";
import { History, type RoomEntry } from "./history.js";

function history(limits: { maxMessages: number; maxAgeMs?: number; maxBytes: number }): { h: History; size: () => number } {
  let size = 0;
  let order = 0;
  const h = new History(limits, { changed: (bytes) => void (size += bytes), nextOrder: () => ++order });
  return { h, size: () => size };
}

const entry = (id: number, text: string, at = Date.now()): RoomEntry => ({ id, at, text, bytes: null });

test("keeps at most maxMessages and maxBytes (the newest always), and tells its budget every change", () => {
  const { h, size } = history({ maxMessages: 3, maxBytes: 10 });
  for (let id = 1; id <= 5; id++) h.remember(entry(id, "ab"));
  assert.equal(h.length, 3);
  assert.equal(h.after(0), "resync", "entry 1 is gone: a client that saw nothing cannot be caught up");
  assert.deepEqual((h.after(2) as RoomEntry[]).map((e) => e.id), [3, 4, 5]);
  assert.equal(size(), 6);
  h.remember(entry(6, "x".repeat(40)));
  assert.equal(h.length, 1, "over maxBytes: only the newest stays");
  assert.equal(size(), 40);
  h.clear();
  assert.equal(size(), 0);
  assert.equal(h.oldestOrder, Infinity);
});

test("ages entries out by maxAgeMs, and a gap moves where it is complete from", () => {
  const { h } = history({ maxMessages: 10, maxAgeMs: 1_000, maxBytes: 1_000 });
  h.remember(entry(1, "old", Date.now() - 5_000));
  h.remember(entry(2, "new"));
  assert.deepEqual((h.after(1) as RoomEntry[]).map((e) => e.id), [2]);
  assert.equal(h.length, 1);
  h.completeFrom = 5;
  h.remember(entry(5, "after a gap"));
  assert.equal(h.after(2), "resync", "3 and 4 were never had");
  assert.deepEqual((h.after(4) as RoomEntry[]).map((e) => e.id), [5]);
});
