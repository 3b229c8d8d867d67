/**
 * Validation over real sockets, with zod and valibot alike (Standard Schema): query, params,
 * headers and bodies of HTTP routes, upgrade requests and messages of WebSocket routes. 422 bodies
 * are checked field by field.
 */
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { z } from "zod";
import * as v from "valibot";
import { toStandardJsonSchema } from "@valibot/to-json-schema";
import WebSocketClient from "ws";
import type { IncomingMessage } from "node:http";
import type { Request } from "../../src/index.js";
import type { StandardSchemaV1 } from "../../src/request/standard-schema.js";
import { serve, testApp, type Served } from "../helpers.js";

interface Issue {
  loc: Array<string | number>;
  msg: string;
  type: string;
}

/** The same schemas, written with each library. */
interface Schemas {
  chatQuery: StandardSchemaV1<unknown, { message: string; limit: number; verbose?: boolean | undefined; tag?: string[] | undefined }>;
  item: StandardSchemaV1<unknown, { name: string; price: number }>;
  params: StandardSchemaV1<unknown, { id: number }>;
  headers: StandardSchemaV1<unknown, { "x-token": string }>;
  roomQuery: StandardSchemaV1<unknown, { name: string }>;
  chat: StandardSchemaV1<unknown, { text: string }>;
  slowChat: StandardSchemaV1<unknown, { text: string }>;
  /** The `type` each library gives a value of the wrong type, and a number below its minimum. */
  wrongType: string;
  tooSmall: string;
}

const zodSchemas: Schemas = {
  chatQuery: z.object({ message: z.string().min(1), limit: z.number().int().max(100).default(10), verbose: z.boolean().optional(), tag: z.array(z.string()).optional() }),
  item: z.object({ name: z.string(), price: z.number().positive() }),
  params: z.object({ id: z.number().int() }),
  headers: z.object({ "x-token": z.string().min(3) }),
  roomQuery: z.object({ name: z.string().min(1) }),
  chat: z.object({ text: z.string().max(20) }),
  slowChat: z.object({ text: z.string() }).refine(async (m) => {
    await new Promise((resolve) => setTimeout(resolve, m.text === "slow" ? 30 : 0));
    return true;
  }),
  wrongType: "invalid_type",
  tooSmall: "too_small",
};

// valibot gives JSON Schema (and so query coercion) through @valibot/to-json-schema's wrapper.
const valibotSchemas: Schemas = {
  chatQuery: toStandardJsonSchema(v.object({
    message: v.pipe(v.string(), v.minLength(1)),
    limit: v.optional(v.pipe(v.number(), v.integer(), v.maxValue(100)), 10),
    verbose: v.optional(v.boolean()),
    tag: v.optional(v.array(v.string())),
  })),
  item: toStandardJsonSchema(v.object({ name: v.string(), price: v.pipe(v.number(), v.gtValue(0)) })),
  params: toStandardJsonSchema(v.object({ id: v.pipe(v.number(), v.integer()) })),
  headers: v.object({ "x-token": v.pipe(v.string(), v.minLength(3)) }),
  roomQuery: v.object({ name: v.pipe(v.string(), v.minLength(1)) }),
  chat: v.object({ text: v.pipe(v.string(), v.maxLength(20)) }),
  slowChat: v.pipeAsync(v.object({ text: v.string() }), v.checkAsync(async (m) => {
    await new Promise((resolve) => setTimeout(resolve, m.text === "slow" ? 30 : 0));
    return true;
  })),
  wrongType: "number",
  tooSmall: "gt_value",
};

for (const [library, schemas] of [["zod", zodSchemas], ["valibot", valibotSchemas]] as const) {
  describe(`validation with ${library}`, () => {
    let served: Served;
    let dependencySaw: unknown = null;

    before(async () => {
      const app = testApp();
      app.get("/chat", (req) => ({ message: req.valid.query.message, limit: req.valid.query.limit, verbose: req.valid.query.verbose ?? null, tag: req.valid.query.tag ?? null }), {
        schema: { query: schemas.chatQuery },
        dependencies: {
          seen: (req: Request<any, { query?: unknown }>) => {
            dependencySaw = req.valid.query;
            return true;
          },
        },
      });
      app.post("/items/{id}", (req) => ({ id: req.valid.params.id, item: req.valid.body }), {
        schema: { params: schemas.params, body: schemas.item },
      });
      app.get("/secret", (req) => req.valid.headers["x-token"], { schema: { headers: schemas.headers } });
      app.get("/plain", (req) => ({ valid: req.valid }));

      app.websocket("/rooms", async (ws) => {
        await ws.accept();
        ws.sendText(`room ${ws.valid.query.name}`);
        const message = await ws.receiveJson({ schema: schemas.chat });
        ws.sendText(`said ${message.text}`);
        await ws.receiveText();
      }, { schema: { query: schemas.roomQuery } });
      app.websocket("/events", {
        onMessage(ws, message) {
          ws.sendText(`got ${message.text}`);
        },
      }, { schema: { message: schemas.slowChat } });
      app.room("/chat/{id:int}", {
        onMessage(_ws, message, room) {
          room.broadcast({ echo: message.text });
        },
      }, { schema: { message: schemas.chat } });
      served = await serve(app);
    });

    after(() => served.close());

    async function json(path: string, init?: RequestInit): Promise<{ status: number; body: any }> {
      const res = await fetch(served.url + path, init);
      return { status: res.status, body: await res.json() };
    }

    test("query values are coerced where the schema asks for numbers, booleans and lists", { timeout: 10_000 }, async () => {
      dependencySaw = null;
      const ok = await json("/chat?message=hi&limit=5&verbose=yes&tag=a&tag=b");
      assert.equal(ok.status, 200);
      assert.deepEqual(ok.body, { message: "hi", limit: 5, verbose: true, tag: ["a", "b"] });
      assert.deepEqual(dependencySaw, { message: "hi", limit: 5, verbose: true, tag: ["a", "b"] }, "dependencies run after validation and see req.valid");
      assert.deepEqual((await json("/chat?message=hi")).body, { message: "hi", limit: 10, verbose: null, tag: null }, "the schema's default");
      assert.deepEqual((await json("/chat?message=hi&verbose=0&tag=one")).body, { message: "hi", limit: 10, verbose: false, tag: ["one"] }, "one value of a list field is a list");
    });

    test("a query that fails gets 422 with every issue and its location", { timeout: 10_000 }, async () => {
      dependencySaw = null;
      const { status, body } = await json("/chat?limit=many");
      assert.equal(status, 422);
      const detail = body.detail as Issue[];
      assert.equal(detail.length, 2, JSON.stringify(detail));
      const byField = new Map(detail.map((issue) => [issue.loc.join("."), issue]));
      assert.ok(byField.has("query.message"), "the missing field");
      assert.equal(byField.get("query.limit")?.type, schemas.wrongType, "the wrong type, with the library's code");
      for (const issue of detail) assert.ok(typeof issue.msg === "string" && issue.msg.length > 0);
      assert.equal(dependencySaw, null, "neither dependencies nor handler ran");
      const over = await json("/chat?message=hi&limit=1000");
      assert.equal(over.status, 422);
      assert.deepEqual(over.body.detail.map((i: Issue) => i.loc), [["query", "limit"]]);
    });

    test("path params and a JSON body are validated together", { timeout: 10_000 }, async () => {
      const post = (path: string, body: string, type = "application/json") => json(path, { method: "POST", body, headers: { "content-type": type } });
      assert.deepEqual(await post("/items/7", '{"name":"pen","price":2.5}'), { status: 200, body: { id: 7, item: { name: "pen", price: 2.5 } } });
      const bad = await post("/items/x", '{"price":-1}');
      assert.equal(bad.status, 422);
      const locs = (bad.body.detail as Issue[]).map((i) => i.loc.join(".")).sort();
      assert.deepEqual(locs, ["body.name", "body.price", "path.id"]);
      assert.equal((bad.body.detail as Issue[]).find((i) => i.loc.join(".") === "body.price")?.type, schemas.tooSmall);
      const broken = await post("/items/7", '{"name":');
      assert.equal(broken.status, 422);
      assert.deepEqual(broken.body.detail.map((i: Issue) => [i.loc, i.type]), [[["body"], "json_invalid"]]);
      const missing = await post("/items/7", "");
      assert.equal(missing.status, 422);
      assert.deepEqual(missing.body.detail.map((i: Issue) => i.loc), [["body"]], "no body is a missing body");
      assert.deepEqual(await post("/items/7", "name=pen&price=3", "application/x-www-form-urlencoded"), { status: 200, body: { id: 7, item: { name: "pen", price: 3 } } }, "a form, coerced like a query");
      assert.equal((await post("/items/7", "pen", "text/plain")).status, 415);
    });

    test("headers are validated by their lower-case names; routes without schemas are untouched", { timeout: 10_000 }, async () => {
      const ok = await fetch(`${served.url}/secret`, { headers: { "X-Token": "abcd" } });
      assert.equal(ok.status, 200);
      assert.equal(await ok.text(), "abcd");
      const bad = await json("/secret", { headers: { "X-Token": "a" } });
      assert.equal(bad.status, 422);
      assert.deepEqual(bad.body.detail.map((i: Issue) => i.loc), [["header", "x-token"]]);
      assert.deepEqual(await json("/plain?x=1"), { status: 200, body: { valid: {} } });
    });

    test("a WebSocket upgrade whose query fails is refused with 422 and the issues, before the handler", { timeout: 10_000 }, async () => {
      const refused = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const ws = new WebSocketClient(`${served.url.replace("http", "ws")}/rooms?name=`);
        ws.on("unexpected-response", (_req, res: IncomingMessage) => {
          let body = "";
          res.on("data", (d: Buffer) => (body += d.toString()));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        });
        ws.on("open", () => reject(new Error("accepted")));
        ws.on("error", () => undefined);
      });
      assert.equal(refused.status, 422);
      assert.deepEqual(JSON.parse(refused.body).detail.map((i: Issue) => i.loc), [["query", "name"]]);
    });

    test("receiveJson({ schema }) returns the validated message, and closes with 1007 on one that fails", { timeout: 10_000 }, async () => {
      const ws = new WebSocketClient(`${served.url.replace("http", "ws")}/rooms?name=lobby`);
      const received: string[] = [];
      ws.on("message", (data) => received.push(data.toString()));
      await new Promise((resolve) => ws.once("open", resolve));
      await waitFor(() => received.length === 1);
      assert.equal(received[0], "room lobby");
      ws.send(JSON.stringify({ text: "hello" }));
      await waitFor(() => received.length === 2);
      assert.equal(received[1], "said hello");
      ws.close();

      const second = new WebSocketClient(`${served.url.replace("http", "ws")}/rooms?name=lobby`);
      await new Promise((resolve) => second.once("open", resolve));
      second.send(JSON.stringify({ text: "far too long for the schema's maximum" }));
      const [code, reason] = await new Promise<[number, string]>((resolve) => second.once("close", (c, r) => resolve([c, r.toString()])));
      assert.equal(code, 1007);
      assert.match(reason, /^Invalid message: text: /);
    });

    test("a room's message schema hands onMessage the validated value; a bad message closes with 1007", { timeout: 10_000 }, async () => {
      const ws = new WebSocketClient(`${served.url.replace("http", "ws")}/chat/1`);
      const received: string[] = [];
      ws.on("message", (data) => received.push(data.toString()));
      await new Promise((resolve) => ws.once("open", resolve));
      ws.send(JSON.stringify({ text: "hey" }));
      await waitFor(() => received.length === 1);
      assert.deepEqual(JSON.parse(received[0]!), { echo: "hey" });
      ws.send(JSON.stringify({ text: ["not", "text"] }));
      const code = await new Promise<number>((resolve) => ws.once("close", resolve));
      assert.equal(code, 1007);
    });

    test("an event-style route's message schema hands onMessage the value, in order, and closes with 1007 on a bad one", { timeout: 10_000 }, async () => {
      const ws = new WebSocketClient(`${served.url.replace("http", "ws")}/events`);
      const received: string[] = [];
      ws.on("message", (data) => received.push(data.toString()));
      await new Promise((resolve) => ws.once("open", resolve));
      // The first message's schema takes longer: the others wait for it.
      ws.send(JSON.stringify({ text: "slow" }));
      ws.send(JSON.stringify({ text: "fast" }));
      ws.send(JSON.stringify({ text: "last" }));
      await waitFor(() => received.length === 3);
      assert.deepEqual(received, ["got slow", "got fast", "got last"]);
      ws.send(JSON.stringify({ text: 42 }));
      const [code, reason] = await new Promise<[number, string]>((resolve) => ws.once("close", (c, r) => resolve([c, r.toString()])));
      assert.equal(code, 1007);
      assert.match(reason, /^Invalid message: text: /);
      assert.equal(received.length, 3, "the bad message never reached onMessage");

      const notJson = new WebSocketClient(`${served.url.replace("http", "ws")}/events`);
      await new Promise((resolve) => notJson.once("open", resolve));
      notJson.send("{nope");
      const closed = await new Promise<number>((resolve) => notJson.once("close", resolve));
      assert.equal(closed, 1007);
    });
  });
}

async function waitFor(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
