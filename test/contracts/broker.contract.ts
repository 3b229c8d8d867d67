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
}
