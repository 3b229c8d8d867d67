/**
 * A fan-out storm against the conformance app in a process of its own (bench/floods.ts, the
 * soak's `room` case): one member of a room whose other members never read writes 100,000
 * messages at once, each a broadcast to the whole room. Bounds are on liveness (a probe's /hello
 * and echo), on what the server holds, and on whether it gets through what it was sent.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { runFlood } from "../../bench/floods.js";
import { freePort, rssBoundsHold } from "../helpers.js";

test("a fan-out storm: the server answers others throughout, gets through the backlog, and counts what it dropped", { timeout: 120_000 }, async () => {
  const result = await runFlood({
    kind: "room", engine: process.env.CATZILLA_ENGINE ?? "auto", port: await freePort(), seconds: 3, members: 3_000,
    messages: 100_000, nodeOptions: ["--conditions=catzilla-source"],
  });
  const mb = (v: number): string => (v / 2 ** 20).toFixed(0);
  console.log(`room flood on ${result.stats.engine}: RSS ${mb(result.rssBeforeBytes)} → peak ${mb(result.peakRssBytes)} MB; ` +
    `/hello p50 ${result.helloP50.toFixed(1)} worst ${result.helloMax.toFixed(0)} ms; echo worst ${result.echoMax.toFixed(0)} ms; ` +
    `backlog ${Math.round(result.load.backlogMs!)} ms; rooms ${JSON.stringify(result.stats.rooms)}`);
  // Before fan-out had a budget per turn, /hello went unanswered for as long as the backlog lasted (minutes).
  assert.ok(result.helloMax < 2_000, `a /hello waited ${result.helloMax} ms`);
  assert.ok(result.echoMax < 2_000, `an echo waited ${result.echoMax} ms`);
  // The sender's close is answered after its last message was handled.
  assert.ok(result.load.backlogMs! < 30_000, `the server took ${result.load.backlogMs} ms for the backlog`);
  const rooms = result.stats.rooms;
  assert.equal(rooms.broadcasts + rooms.dropped, 100_000, "every message was broadcast or counted as dropped");
  assert.ok(rooms.dropped > 0, "more than the room could deliver was dropped");
  if (rssBoundsHold) assert.ok(result.peakRssBytes - result.rssBeforeBytes < 512 * 2 ** 20, "peak RSS grew by less than 512 MB");
});
