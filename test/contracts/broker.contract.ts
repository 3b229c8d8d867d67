import { test } from "node:test";
import assert from "node:assert/strict";
import type { Broker } from "../../src/index.js";
import { waitFor, sleep } from "../helpers.js";

/** Two brokers that reach each other (two processes or machines), and how to end them. */
export interface BrokerPair {
  a: Broker;
  b: Broker;
  close(): Promise<void>;
}

/** The contract every broker passes: call it with a way to make connected pairs. */
export function brokerContract(name: string, makePair: () => Promise<BrokerPair>): void {
  const channel = (suffix: string) => `contract:${name}:${suffix}:${Math.random().toString(36).slice(2)}`;

  test(`${name}: a publish reaches subscribers on both sides, bytes intact, in order`, async () => {
    const { a, b, close } = await makePair();
    try {
      const ch = channel("order");
      const atA: string[] = [];
      const atB: string[] = [];
      await a.subscribe(ch, (p) => atA.push(Buffer.from(p).toString("hex")));
      await b.subscribe(ch, (p) => atB.push(Buffer.from(p).toString("hex")));
      await sleep(50);
      const payloads = Array.from({ length: 20 }, (_, i) => Buffer.from([i, 0, 255, 10, 13]));
      for (const p of payloads) await a.publish(ch, p);
      await waitFor(() => atA.length === 20 && atB.length === 20, 5_000, "deliveries");
      const expected = payloads.map((p) => p.toString("hex"));
      assert.deepEqual(atA, expected);
      assert.deepEqual(atB, expected);
    } finally {
      await close();
    }
  });

  test(`${name}: unsubscribe stops deliveries; other channels are not mixed in`, async () => {
    const { a, b, close } = await makePair();
    try {
      const one = channel("one");
      const two = channel("two");
      const got: string[] = [];
      await b.subscribe(one, (p) => got.push(`one:${Buffer.from(p)}`));
      await b.subscribe(two, (p) => got.push(`two:${Buffer.from(p)}`));
      await sleep(50);
      await a.publish(one, Buffer.from("x"));
      await a.publish(two, Buffer.from("y"));
      await waitFor(() => got.length === 2);
      await b.unsubscribe(one);
      await sleep(50);
      await a.publish(one, Buffer.from("late"));
      await a.publish(two, Buffer.from("z"));
      await waitFor(() => got.length === 3);
      await sleep(50);
      assert.deepEqual(got.sort(), ["one:x", "two:y", "two:z"]);
    } finally {
      await close();
    }
  });

  test(`${name}: the log gives ids in one order that every subscriber sees`, async (t) => {
    const { a, b, close } = await makePair();
    try {
      if (a.log === undefined || b.log === undefined) return t.skip("this broker keeps no log");
      const ch = channel("log");
      const atA: Array<[number | undefined, string]> = [];
      const atB: Array<[number | undefined, string]> = [];
      await a.subscribe(ch, (p, id) => atA.push([id, Buffer.from(p).toString()]));
      await b.subscribe(ch, (p, id) => atB.push([id, Buffer.from(p).toString()]));
      await sleep(50);
      const limits = { maxMessages: 5 };
      // Both sides append at once: ids are unique and consecutive, and delivered in id order.
      const ids = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? a : b).log!.append(ch, Buffer.from(`m${i}`), limits)));
      const sorted = [...ids].sort((x, y) => x - y);
      for (let i = 1; i < sorted.length; i++) assert.equal(sorted[i], sorted[i - 1]! + 1);
      await waitFor(() => atA.length === 10 && atB.length === 10, 5_000, "logged deliveries");
      assert.deepEqual(atA, atB);
      assert.deepEqual(atA.map(([id]) => id), sorted);
      for (const [id, text] of atA) assert.equal(text, `m${ids.indexOf(id!)}`);
      // A plain publish on the same channel arrives without an id.
      await a.publish(ch, Buffer.from("plain"));
      await waitFor(() => atB.length === 11);
      assert.deepEqual(atB[10], [undefined, "plain"]);

      // The log keeps the newest five; reading from either side sees the same.
      const last = sorted[9]!;
      const fromB = await b.log.read(ch, 0, limits);
      assert.equal(fromB.lastId, last);
      assert.deepEqual(fromB.entries.map((e) => e.id), sorted.slice(5));
      assert.deepEqual(fromB.entries.map((e) => Buffer.from(e.payload).toString()), atA.slice(5, 10).map(([, text]) => text));
      const tail = await a.log.read(ch, last - 2, limits);
      assert.deepEqual(tail.entries.map((e) => e.id), [last - 1, last]);
      assert.deepEqual((await a.log.read(ch, last, limits)).entries, []);
      assert.deepEqual(await a.log.read(channel("empty"), 0, limits), { lastId: 0, entries: [] });
    } finally {
      await close();
    }
  });

  test(`${name}: log entries older than maxAgeMs are not returned`, async (t) => {
    const { a, b, close } = await makePair();
    try {
      if (a.log === undefined || b.log === undefined) return t.skip("this broker keeps no log");
      const ch = channel("age");
      await sleep(100); // connected
      const limits = { maxMessages: 100, maxAgeMs: 400 };
      const first = await a.log.append(ch, Buffer.from("old"), limits);
      await sleep(250);
      const second = await b.log.append(ch, Buffer.from("new"), limits);
      assert.equal(second, first + 1);
      await sleep(250);
      const { lastId, entries } = await a.log.read(ch, 0, limits);
      assert.equal(lastId, second);
      assert.deepEqual(entries.map((e) => Buffer.from(e.payload).toString()), ["new"]);
    } finally {
      await close();
    }
  });
}
