import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { EventSource } from "eventsource";
import { EventSourceResponse, jsonEvent, type EventItem } from "../../src/index.js";
import { decodeChunked, rawExchange, serve, sleep, splitResponse, testApp, waitFor, type Served } from "../helpers.js";

describe("EventSourceResponse", () => {
  let served: Served;
  const app = testApp();
  let connections = 0;
  const lastIds: Array<string | undefined> = [];

  app.get("/ticks", (req) => {
    const n = Number(req.query.get("n") ?? 3);
    return new EventSourceResponse(function* () {
      for (let i = 1; i <= n; i++) yield { id: i, event: "tick", data: `tick-${i}` };
    }());
  });
  // Sends three events per connection, then fails; the client resumes with Last-Event-ID.
  app.get("/resumable", () => new EventSourceResponse(async function* (stream): AsyncGenerator<EventItem> {
    connections++;
    lastIds.push(stream.lastEventId);
    const from = Number(stream.lastEventId ?? 0);
    yield { retry: 50 };
    for (let i = from + 1; i <= from + 3; i++) {
      yield { id: i, data: `event ${i}` };
      await sleep(5);
    }
    throw new Error("upstream went away");
  }, { onError: (error) => ({ event: "failure", data: (error as Error).message }) }));
  app.get("/multiline", () => new EventSourceResponse(["line one\nline two\r\nline three", jsonEvent({ a: 1 }, { event: "json" })]));
  app.get("/quiet", () => new EventSourceResponse(async function* (stream) {
    await new Promise((resolve) => stream.signal.addEventListener("abort", resolve));
  }, { pingMs: 50 }));
  app.get("/late", () => new EventSourceResponse(async function* (stream) {
    await new Promise((resolve) => stream.signal.addEventListener("abort", resolve));
  }, { pingMs: 60_000 }));
  app.get("/room-feed", () => app.rooms.getOrCreate("feed").eventSource({ pingMs: 60_000 }));

  before(async () => {
    served = await serve(app);
  });
  after(() => served.close());

  test("headers announce an unbuffered event stream", async () => {
    const res = await fetch(`${served.url}/ticks?n=1`);
    assert.equal(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
    assert.equal(res.headers.get("cache-control"), "no-cache");
    assert.equal(res.headers.get("x-accel-buffering"), "no");
    assert.equal(await res.text(), "event: tick\nid: 1\ndata: tick-1\n\n");
  });

  test("a real EventSource client receives typed events with ids", async () => {
    const source = new EventSource(`${served.url}/ticks?n=3`);
    try {
      const got: Array<{ data: string; id: string }> = [];
      source.addEventListener("tick", (e) => got.push({ data: e.data, id: e.lastEventId }));
      await waitFor(() => got.length === 3, 3_000, "three ticks");
      assert.deepEqual(got, [
        { data: "tick-1", id: "1" }, { data: "tick-2", id: "2" }, { data: "tick-3", id: "3" },
      ]);
    } finally {
      source.close();
    }
  });

  test("multi-line data arrives whole; JSON events parse", async () => {
    const source = new EventSource(`${served.url}/multiline`);
    try {
      const got: string[] = [];
      source.onmessage = (e) => got.push(e.data);
      source.addEventListener("json", (e) => got.push(JSON.parse(e.data).a));
      await waitFor(() => got.length === 2, 3_000, "two events");
      assert.deepEqual(got, ["line one\nline two\nline three", 1]);
    } finally {
      source.close();
    }
  });

  test("after a failure the client gets the error event, reconnects with Last-Event-ID and resumes", async () => {
    connections = 0;
    lastIds.length = 0;
    const source = new EventSource(`${served.url}/resumable`);
    try {
      const got: string[] = [];
      source.onmessage = (e) => got.push(e.data);
      source.addEventListener("failure", (e) => got.push(`failure: ${e.data}`));
      await waitFor(() => got.length >= 8, 5_000, "events from two connections");
      assert.deepEqual(got.slice(0, 8), [
        "event 1", "event 2", "event 3", "failure: upstream went away",
        "event 4", "event 5", "event 6", "failure: upstream went away",
      ]);
      assert.deepEqual(lastIds.slice(0, 2), [undefined, "3"]);
    } finally {
      source.close();
    }
  });

  test("a failure mid-stream cuts the connection after the error event", async () => {
    const { data, closed } = await rawExchange(served.port, "GET /resumable HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 10\r\n\r\n");
    assert.equal(closed, true);
    const { chunks, complete } = decodeChunked(splitResponse(data).body);
    assert.equal(complete, false);
    const text = Buffer.concat(chunks).toString();
    assert.ok(text.startsWith("retry: 50\n\nid: 11\ndata: event 11\n\n"), text);
    assert.ok(text.endsWith("event: failure\ndata: upstream went away\n\n"), text);
  });

  test("a quiet stream opens with a comment at once, then heartbeats keep it alive", async () => {
    const controller = new AbortController();
    const res = await fetch(`${served.url}/quiet`, { signal: controller.signal });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    let text = "";
    while (!text.includes(": ping\n\n")) text += new TextDecoder().decode((await reader.read()).value);
    assert.equal(text, ": open\n\n: ping\n\n");
    controller.abort();
    await waitFor(() => app.stats().streams.active === 0, 3_000, "the quiet stream to end");
  });

  test("an event stream whose first event is not ready sends its first bytes at once: producers and room subscribers", async () => {
    // Heartbeats a minute apart: the first bytes can only be the opening comment.
    for (const path of ["/late", "/room-feed"]) {
      const controller = new AbortController();
      const res = await fetch(`${served.url}${path}`, { signal: controller.signal });
      const first = await Promise.race([res.body!.getReader().read(), sleep(1_000).then(() => null)]);
      assert.notEqual(first, null, `${path}: no body byte within 1 s`);
      assert.equal(new TextDecoder().decode(first!.value), ": open\n\n", path);
      controller.abort();
    }
    await waitFor(() => app.stats().streams.active === 0, 3_000, "the streams to end");
  });
});
