import { test } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:net";
import { EventSourceResponse, StreamingResponse } from "../../src/index.js";
import { serve, sleep, startScript, testApp, waitFor } from "../helpers.js";

function connectionRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.on("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.on("error", () => resolve(true));
  });
}

test("close() stops accepting, lets a stream finish, then runs shutdown hooks", async () => {
  const app = testApp({ shutdownTimeoutMs: 5_000 });
  const order: string[] = [];
  app.onStartup(() => void order.push("startup"));
  app.onShutdown(() => void order.push("shutdown hook"));
  app.get("/slow", () => new StreamingResponse(async function* () {
    for (let i = 0; i < 5; i++) {
      yield `part ${i}\n`;
      await sleep(60);
    }
    order.push("stream done");
  }()));
  const served = await serve(app);
  const res = await fetch(`${served.url}/slow`);
  const body = res.text();
  const closing = app.close().then(() => void order.push("closed"));
  await sleep(20);
  assert.equal(await connectionRefused(served.port), true);
  assert.equal(await body, "part 0\npart 1\npart 2\npart 3\npart 4\n");
  await closing;
  assert.deepEqual(order, ["startup", "stream done", "shutdown hook", "closed"]);
  assert.equal(app.stats().streams.completed, 1);
});

test("streams still running at the shutdown deadline are cut", async () => {
  const app = testApp({ shutdownTimeoutMs: 300 });
  let finallyRan = false;
  app.get("/forever", () => new StreamingResponse(async function* (stream) {
    try {
      while (!stream.signal.aborted) {
        yield "tick\n";
        await sleep(20);
      }
    } finally {
      finallyRan = true;
    }
  }));
  const served = await serve(app);
  const res = await fetch(`${served.url}/forever`);
  const body = res.text();
  await sleep(50);
  const started = Date.now();
  await app.close();
  const took = Date.now() - started;
  assert.ok(took >= 250 && took < 2_000, `close took ${took} ms`);
  await assert.rejects(body);
  await waitFor(() => finallyRan, 2_000, "the source's finally");
  assert.equal(app.stats().streams.aborted, 1);
});

test("shutdown ends idle event streams at once and cleanly (producers and room subscribers), without waiting for its deadline", { timeout: 20_000 }, async () => {
  const app = testApp({ shutdownTimeoutMs: 8_000 });
  let finallyRan = false;
  app.get("/events", () => new EventSourceResponse(async function* (stream) {
    try {
      await new Promise((resolve) => stream.signal.addEventListener("abort", resolve, { once: true }));
    } finally {
      finallyRan = true;
    }
  }));
  app.get("/feed", () => app.rooms.getOrCreate("feed", { history: { maxMessages: 10 } }).eventSource());
  const served = await serve(app);
  const readers = await Promise.all(["/events", "/feed"].map(async (path) => {
    const reader = (await fetch(`${served.url}${path}`)).body!.getReader();
    await reader.read();
    return reader;
  }));
  const started = Date.now();
  await app.close();
  const took = Date.now() - started;
  assert.ok(took < 3_000, `close took ${took} ms with idle event streams open`);
  for (const reader of readers) {
    // A clean end (the terminating chunk, or the end of a close-delimited body), not a cut.
    for (;;) {
      const { done } = await reader.read();
      if (done) break;
    }
  }
  await waitFor(() => finallyRan, 2_000, "the producer's finally");
});

test("SIGTERM shuts the conformance app down gracefully", async () => {
  const { child, port } = await startScript("examples/conformance.ts");
  try {
    const res = await fetch(`http://127.0.0.1:${port}/hello`);
    assert.equal(await res.text(), "Hello, World!");
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    child.kill("SIGTERM");
    assert.equal(await exited, 0);
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL");
  }
});
