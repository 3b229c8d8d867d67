/**
 * A Room alone, with a fake link and fake members (no sockets): the order broadcasts reach
 * members in across the compression queue, the fan-out slice and replays, and the queue's bounds.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { constants as zlibConstants, inflateRawSync } from "node:zlib";
import { Room, type RoomLink, type RoomOptions, type RoomTotals } from "./room.js";
import type { MemberRoom, WebSocketMember } from "./member.js";
import type { SendStatus, WebSocketTransport } from "../transport.js";
import { FANOUT_SLICE_MS } from "./fan-out.js";

function link(): RoomLink {
  let order = 0;
  return {
    onEmpty: () => undefined,
    revive: () => true,
    historyChanged: () => undefined,
    nextEntryOrder: () => ++order,
    publish: () => undefined,
    logged: () => false,
    append: () => undefined,
    read: () => Promise.resolve({ lastId: 0, entries: [] }),
  };
}

function totals(): RoomTotals {
  return { broadcasts: 0, compressed: 0, deliveries: 0, skipped: 0, closedSlow: 0, dropped: 0, brokerFailures: 0, remoteBroadcasts: 0 };
}

/** The payload of an unmasked server frame (lengths up to 64 KiB), inflated when RSV1 is set. */
function payloadOf(frame: Uint8Array): string {
  const bytes = Buffer.from(frame);
  let length = bytes[1]! & 0x7f;
  let offset = 2;
  if (length === 126) {
    length = bytes.readUInt16BE(2);
    offset = 4;
  }
  const payload = bytes.subarray(offset, offset + length);
  if ((bytes[0]! & 0x40) === 0) return payload.toString();
  return inflateRawSync(Buffer.concat([payload, Buffer.from([0, 0, 0xff, 0xff])]), { finishFlush: zlibConstants.Z_SYNC_FLUSH }).toString();
}

/** A member whose transport keeps what it is sent; `busyMs` makes each send take that long. */
function member(options: { windowBits?: number; busyMs?: number } = {}): WebSocketMember & { got: string[] } {
  const got: string[] = [];
  const transport: Partial<WebSocketTransport> = {
    isOpen: true,
    bufferedAmount: 0,
    sharedCompressionWindowBits: options.windowBits ?? null,
    bulk: null,
    sendFrame(frame: Uint8Array): SendStatus {
      const until = performance.now() + (options.busyMs ?? 0);
      while (performance.now() < until);
      got.push(payloadOf(frame));
      return "ok";
    },
  };
  return {
    memberKind: "websocket",
    transport: transport as WebSocketTransport,
    got,
    sendText: (text: string) => void got.push(`replay ${text}`),
    sendBytes: () => undefined,
    close: () => undefined,
    joinedRoom: (_room: MemberRoom) => undefined,
    leftRoom: (_room: MemberRoom) => undefined,
  };
}

function room(options: RoomOptions = {}): Room {
  return new Room("r", options, link(), totals());
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 3_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

test("past the turn's fan-out slice broadcasts wait for later turns, and arrive in publish order", { timeout: 10_000 }, async () => {
  const r = room();
  const slow = member({ busyMs: FANOUT_SLICE_MS + 1 });
  r.add(slow);
  await turn();
  const results = Array.from({ length: 5 }, (_, i) => r.broadcast(`m${i}`));
  assert.equal(results[0]!.queued, false, "the first runs at once");
  assert.equal(results[0]!.delivered, 1);
  assert.ok(results.slice(1).every((result) => result.queued), "the rest wait: the slice is spent");
  assert.deepEqual(slow.got, ["m0"]);
  await until(() => slow.got.length === 5, "the waiting broadcasts");
  assert.deepEqual(slow.got, ["m0", "m1", "m2", "m3", "m4"]);
  assert.equal(r.stats.deliveries, 5);
});

test("a compressed broadcast and the small ones after it keep publish order", { timeout: 10_000 }, async () => {
  const r = room();
  const shared = member({ windowBits: 15 });
  const plain = member();
  r.add(shared);
  r.add(plain);
  await turn();
  const big = "breaking news ".repeat(200);
  assert.equal(r.broadcast(big).queued, true, "compressed off the loop first");
  assert.equal(r.broadcast("small").queued, true, "waits behind it");
  await until(() => shared.got.length === 2 && plain.got.length === 2, "both broadcasts");
  assert.deepEqual(shared.got, [big, "small"]);
  assert.deepEqual(plain.got, [big, "small"]);
  assert.equal(r.stats.compressed, 1);
});

test("maxQueuedBytes: a room that has more waiting drops the next broadcast and counts it", { timeout: 10_000 }, async () => {
  const r = room({ maxQueuedBytes: 1_000 });
  const slow = member({ busyMs: FANOUT_SLICE_MS + 1 });
  r.add(slow);
  await turn();
  const results = Array.from({ length: 20 }, (_, i) => r.broadcast(`${i}`.padEnd(200, "x")));
  const dropped = results.filter((result) => result.dropped).length;
  assert.ok(dropped > 0 && dropped < 19, `${dropped} dropped`);
  assert.equal(r.stats.dropped, dropped);
  await until(() => slow.got.length === 20 - dropped, "what was taken");
  // What was taken arrives in order; what was dropped reached no one.
  const sent = results.map((result, i) => (result.dropped ? null : `${i}`.padEnd(200, "x"))).filter((m) => m !== null);
  assert.deepEqual(slow.got, sent);
});

test("maxQueueMs: a broadcast that waited longer is dropped when its turn comes", { timeout: 10_000 }, async () => {
  const r = room({ maxQueueMs: 1 });
  const slow = member({ busyMs: 10 });
  r.add(slow);
  await turn();
  for (let i = 0; i < 4; i++) r.broadcast(`m${i}`);
  await until(() => slow.got.length + r.stats.dropped === 4, "every broadcast delivered or dropped");
  assert.equal(slow.got[0], "m0");
  assert.ok(r.stats.dropped >= 1, `${r.stats.dropped} dropped`);
});

test("a member that joins with a last id while broadcasts wait gets each of them once", { timeout: 10_000 }, async () => {
  const r = room({ history: { maxMessages: 10 } });
  const slow = member({ busyMs: FANOUT_SLICE_MS + 1 });
  r.add(slow);
  await turn();
  r.broadcast("m1");
  r.broadcast("m2");
  r.broadcast("m3");
  // It saw m1: the replay sends m2 and m3 at once, and the waiting m2 and m3 pass it over.
  const late = member();
  assert.equal(r.add(late, { lastEventId: 1 }), 2);
  await until(() => slow.got.length === 3, "the waiting broadcasts");
  await turn();
  assert.deepEqual(late.got, ["replay m2", "replay m3"]);
});

/** A link whose history is a shared log held here; `read` answers when `release()` is called. */
function loggedLink(log: Array<{ id: number; text: string }>) {
  let order = 0;
  const reads: Array<() => void> = [];
  const emptied: string[] = [];
  const linked: RoomLink = {
    ...link(),
    onEmpty: (r) => void emptied.push(r.name),
    nextEntryOrder: () => ++order,
    logged: () => true,
    read: (_room, afterId) => new Promise((resolve) => {
      reads.push(() => {
        const entries = log.filter((e) => e.id > afterId).map((e) => ({ id: e.id, at: Date.now(), text: e.text, bytes: null }));
        resolve({ lastId: log.at(-1)?.id ?? 0, entries });
      });
    }),
  };
  return { linked, emptied, reads, release: () => reads.splice(0).forEach((answer) => answer()) };
}

const entry = (id: number, text = `m${id}`) => ({ id, at: Date.now(), text, bytes: null });

test("shared log: an entry past a gap waits while the gap is read, and all arrive in id order", { timeout: 10_000 }, async () => {
  const log = [1, 2, 3, 4, 5].map((id) => ({ id, text: `m${id}` }));
  const { linked, reads, release } = loggedLink(log);
  const r = new Room("r", { history: { maxMessages: 10 } }, linked, totals());
  const m = member();
  r.add(m);
  await turn();
  r.receiveLogged(entry(1), null, false);
  r.receiveLogged(entry(4), null, false);
  assert.equal(reads.length, 1, "the gap (2, 3) is read from the log");
  r.receiveLogged(entry(5), null, false);
  r.receiveLogged(entry(3), null, false);
  assert.deepEqual(m.got, ["m1"], "nothing after the gap goes before it");
  release();
  await until(() => m.got.length === 5, "the gap and what waited");
  assert.deepEqual(m.got, ["m1", "m2", "m3", "m4", "m5"]);
  assert.equal(r.lastEventId, 5);
  const kept = r.since(1);
  assert.ok(kept !== "resync");
  assert.deepEqual(kept.map((e) => e.id), [2, 3, 4, 5], "the history holds the gap's entries too");
});

test("shared log: a member catching up from the log gets what was broadcast meanwhile after it, once each", { timeout: 10_000 }, async () => {
  const log = [1, 2, 3].map((id) => ({ id, text: `m${id}` }));
  const { linked, release, emptied } = loggedLink(log);
  const r = new Room("r", { history: { maxMessages: 10 } }, linked, totals());
  const late = member();
  // This server has seen nothing yet: a member that saw m1 reads m2 and m3 from the log.
  const joined = r.add(late, { lastEventId: 1 }) as Promise<number | "resync">;
  assert.ok(joined instanceof Promise);
  // Meanwhile m3 (already in the log) and m4 reach the room live.
  r.receiveLogged(entry(3), null, false);
  log.push({ id: 4, text: "m4" });
  r.receiveLogged(entry(4), null, false);
  assert.deepEqual(late.got, [], "live broadcasts wait for the member's catch-up");
  release();
  assert.equal(await joined, 3, "the log holds m2, m3 and m4 by the time it is read");
  await until(() => late.got.length === 3, "the catch-up and the live broadcast after it");
  assert.deepEqual(late.got, ["replay m2", "replay m3", "replay m4"], "m3 and m4 came live too, and are not sent twice");
  // Once it leaves, the room (no history kept here beyond the log's, no members) may go away.
  r.remove(late);
  assert.equal(r.size, 0);
  assert.deepEqual(emptied, [], "the history still keeps entries");
});

test("shared log: a room whose catch-ups are over goes away when its last member leaves", { timeout: 10_000 }, async () => {
  const log = [{ id: 1, text: "m1" }, { id: 2, text: "m2" }];
  const { linked, release, emptied } = loggedLink(log);
  const r = new Room("r", {}, linked, totals());
  const late = member();
  const joined = r.add(late, { lastEventId: 0 });
  release();
  await joined;
  await turn();
  await turn();
  r.remove(late);
  assert.deepEqual(emptied, ["r"]);
});
