import { test } from "node:test";
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import type { IncomingRequest } from "../http-engine.js";
import { BodyTooLargeError } from "../errors.js";
import { Request } from "./request.js";

/** A request as an engine other than node:http could hand it over: a plain object. */
function incoming(target: string, headers: Record<string, string>, body: string[]): IncomingRequest & { close(): void } {
  const connection = Object.assign(new EventEmitter(), { remoteAddress: "10.0.0.7", remotePort: 4321, destroyed: false });
  const rawHeaders = Object.entries(headers).flat();
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  let complete = false;
  return {
    method: "POST",
    url: target,
    httpVersion: "1.1",
    headers: lower,
    rawHeaders,
    get complete() {
      return complete;
    },
    socket: connection,
    async *[Symbol.asyncIterator]() {
      for (const chunk of body) yield Buffer.from(chunk);
      complete = true;
    },
    close() {
      connection.destroyed = true;
      connection.emit("close");
    },
  };
}

test("a Request reads everything from an engine's IncomingRequest, node:http or not", async () => {
  const source = incoming("/items/7?tag=a&tag=b", { Host: "shop.example", Cookie: "session=s%20x", "Content-Type": "application/json" }, ['{"name":', '"pen"}']);
  const req = new Request(source, 1_000);
  assert.equal(req.method, "POST");
  assert.equal(req.path, "/items/7");
  assert.deepEqual(req.query.getAll("tag"), ["a", "b"]);
  assert.equal(req.header("content-type"), "application/json");
  assert.equal(req.cookies.session, "s x");
  assert.deepEqual(req.client, { host: "10.0.0.7", port: 4321 });
  assert.equal(req.remoteAddress, "10.0.0.7");
  assert.equal(req.url.href, "http://shop.example/items/7?tag=a&tag=b");
  assert.deepEqual(await req.json(), { name: "pen" });
  assert.throws(() => req.raw, /did not come through node:http/);
  const signal = req.signal;
  assert.equal(signal.aborted, false);
  source.close();
  assert.equal(signal.aborted, true, "the connection's close aborts the signal");
});

test("a body over maxBodyBytes from any engine is refused with 413", async () => {
  const req = new Request(incoming("/", { Host: "a" }, ["x".repeat(600), "x".repeat(600)]), 1_000);
  await assert.rejects(req.text(), BodyTooLargeError);
});
