/**
 * The OpenAPI and AsyncAPI documents made from an app's routes, validated against the OpenAPI 3.1
 * and AsyncAPI 3.0 schemas by validators from the npm registry, and the docs page in Chromium:
 * offline (nothing loaded from elsewhere), listing every operation and channel, trying one of each.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import * as v from "valibot";
import { toStandardJsonSchema } from "@valibot/to-json-schema";
import { Validator } from "@seriousme/openapi-schema-validator";
import { Ajv } from "ajv";
import addFormats from "ajv-formats";
import asyncapiSpecs from "@asyncapi/specs";
import { launchChromium } from "../browsers.js";
import { EventSourceResponse, Router, StreamingResponse } from "../../src/index.js";
import { serve, testApp, type Served } from "../helpers.js";


let served: Served;
let openapi: any;
let asyncapi: any;

const Item = z.object({ name: z.string().min(1), price: z.number().positive(), tags: z.array(z.string()).optional() });
const Token = z.object({ token: z.string(), n: z.number().int() });

before(async () => {
  const app = testApp();
  app.get("/chat/stream", (req) => new EventSourceResponse((async function* () {
    yield { data: JSON.stringify({ token: req.valid.query.message, n: 1 }) };
  })()), {
    summary: "Stream a reply token by token",
    schema: { query: z.object({ message: z.string().min(1) }) },
    response: { kind: "sse", data: Token, events: ["token"] },
  });
  app.get("/hello", (req) => `Hello, ${req.valid.query.name ?? "World"}!`, {
    summary: "Say hello",
    schema: { query: z.object({ name: z.string().optional() }) },
    response: { kind: "text" },
  });
  const shop = new Router({ prefix: "/shop" });
  shop.get("/items/{id:int}", (req) => ({ id: req.params.id, name: "pen", price: 1 }), {
    tags: ["shop"],
    response: Item,
    responses: { 404: "No such item" },
  });
  shop.post("/items", (req) => ({ created: req.valid.body.name }), {
    tags: ["shop"],
    operationId: "createItem",
    schema: {
      body: toStandardJsonSchema(v.object({ name: v.pipe(v.string(), v.minLength(1)), price: v.pipe(v.number(), v.gtValue(0)) })),
      headers: z.object({ "x-request-id": z.string().uuid().optional() }),
    },
  });
  shop.get("/export.csv", () => new StreamingResponse(["a,b\n"], { mediaType: "text/csv" }), { tags: ["shop"], response: { kind: "stream", contentType: "text/csv" } });
  app.include(shop);
  const dir = mkdtempSync(join(tmpdir(), "catzilla-docs-"));
  writeFileSync(join(dir, "a.txt"), "file");
  app.static("/files", dir);
  app.websocket("/ws/echo/{room}", async (ws) => {
    await ws.accept();
    for await (const message of ws) ws.send(`echo ${String(message)}`);
  }, {
    summary: "Echo what you send",
    schema: { query: z.object({ user: z.string() }) },
    sends: z.string(),
  });
  app.room("/ws/rooms/{id:int}", {
    onMessage(_ws, message, room) {
      room.broadcast(message);
    },
  }, { schema: { message: z.object({ text: z.string().max(500) }) } });
  app.openapi("/openapi.json", { title: "Docs test", version: "1.2.3", description: "What the routes say" });
  app.asyncapi("/asyncapi.json", { title: "Docs test", version: "1.2.3" });
  app.docs("/docs");
  served = await serve(app);
  openapi = await (await fetch(`${served.url}/openapi.json`)).json();
  asyncapi = await (await fetch(`${served.url}/asyncapi.json`)).json();
});

after(() => served.close());

test("the OpenAPI document is valid OpenAPI 3.1 (by @seriousme/openapi-schema-validator)", { timeout: 20_000 }, async () => {
  const validator = new Validator();
  const result = await validator.validate(openapi);
  assert.equal(result.valid, true, JSON.stringify(result.errors, null, 2));
  assert.equal(openapi.openapi, "3.1.0");
  assert.deepEqual(openapi.info, { title: "Docs test", version: "1.2.3", description: "What the routes say" });
  // What the validator does not know: references point at what is there.
  const text = JSON.stringify(openapi);
  for (const [, ref] of text.matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)) {
    assert.ok(ref! in openapi.components.schemas, `$ref to ${ref} resolves`);
  }
});

test("paths carry their converters, schemas, bodies and responses: JSON, SSE, streams, files with Range, 422", { timeout: 10_000 }, async () => {
  const paths = openapi.paths;
  assert.deepEqual(Object.keys(paths).sort(), ["/chat/stream", "/files/{path}", "/hello", "/shop/export.csv", "/shop/items", "/shop/items/{id}"]);
  const item = paths["/shop/items/{id}"].get;
  assert.deepEqual(item.parameters, [{ name: "id", in: "path", required: true, schema: { type: "integer", minimum: 0 } }]);
  assert.equal(item.responses["200"].content["application/json"].schema.properties.price.type, "number");
  assert.deepEqual(item.responses["404"], { description: "No such item" });
  assert.deepEqual(item.tags, ["shop"]);
  assert.equal(item.responses["422"], undefined, "no schemas, no 422");

  const stream = paths["/chat/stream"].get;
  assert.deepEqual(stream.parameters.map((p: any) => [p.name, p.in, p.required, p.schema.type]), [["message", "query", true, "string"]]);
  const events = stream.responses["200"].content["text/event-stream"];
  assert.ok(events, "an SSE route is text/event-stream");
  assert.deepEqual(Object.keys(events["x-event-data"].properties), ["token", "n"]);
  assert.deepEqual(events["x-events"], ["token"]);
  assert.equal(stream.responses["422"].content["application/json"].schema.$ref, "#/components/schemas/HTTPValidationError");

  const create = paths["/shop/items"].post;
  assert.equal(create.operationId, "createItem");
  assert.deepEqual(Object.keys(create.requestBody.content), ["application/json", "application/x-www-form-urlencoded"]);
  assert.deepEqual(create.requestBody.content["application/json"].schema.required, ["name", "price"], "valibot's schema, through its JSON Schema");
  assert.deepEqual(create.parameters.map((p: any) => [p.name, p.in, p.required, p.schema.format]), [["x-request-id", "header", false, "uuid"]]);

  assert.deepEqual(Object.keys(paths["/shop/export.csv"].get.responses["200"].content), ["text/csv"]);
  const files = paths["/files/{path}"].get;
  assert.ok(files.parameters.some((p: any) => p.name === "Range" && p.in === "header"));
  assert.deepEqual(Object.keys(files.responses).sort(), ["200", "206", "304", "412", "416"]);
  assert.equal(files.responses["200"].headers["Accept-Ranges"].schema.const, "bytes");
  assert.equal(paths["/files/{path}"].head, undefined, "HEAD comes with GET; the document lists the GET");
  assert.equal(paths["/openapi.json"], undefined, "the documents and the page leave themselves out");
});

test("the AsyncAPI document is valid AsyncAPI 3.0 (against @asyncapi/specs) with a channel per WebSocket route and room", { timeout: 20_000 }, async () => {
  // The AsyncAPI schema carries its own copy of the draft-07 meta-schema: Ajv's is left out.
  const ajv = new Ajv({ strict: false, allErrors: true, meta: false, validateSchema: false });
  (addFormats as unknown as (ajv: Ajv) => void)(ajv);
  const validate = ajv.compile((asyncapiSpecs as any).schemas["3.0.0"]);
  assert.equal(validate(asyncapi), true, JSON.stringify(validate.errors, null, 2));
  assert.equal(asyncapi.asyncapi, "3.0.0");
  const echo = asyncapi.channels.ws_echo_room;
  assert.equal(echo.address, "/ws/echo/{room}");
  assert.ok(echo.parameters.room);
  assert.deepEqual(echo.bindings.ws.query.required, ["user"]);
  assert.equal(echo.messages.serverMessage.payload.type, "string");
  const room = asyncapi.channels.ws_rooms_id;
  assert.deepEqual(room.tags, [{ name: "room" }]);
  assert.deepEqual(Object.keys(room.messages.clientMessage.payload.properties), ["text"]);
  assert.ok(room.messages.serverMessage, "a room broadcasts");
  assert.equal(asyncapi.operations.ws_rooms_id_receive.action, "receive");
  assert.equal(asyncapi.operations.ws_rooms_id_send.action, "send");
  assert.deepEqual(asyncapi.operations.ws_echo_room_receive.channel, { $ref: "#/channels/ws_echo_room" });
});

test("the docs page works offline in Chromium: every operation and channel listed, an HTTP call and a WebSocket tried", { timeout: 60_000 }, async () => {
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    const elsewhere: string[] = [];
    page.on("request", (request) => {
      if (!request.url().startsWith(served.url) && !request.url().startsWith(served.url.replace("http", "ws"))) elsewhere.push(request.url());
    });
    const errors: string[] = [];
    page.on("pageerror", (error) => errors.push(error.message));
    page.on("console", (message) => {
      if (message.type() === "error") errors.push(message.text());
    });
    const response = await page.goto(`${served.url}/docs`);
    assert.match(response?.headers()["content-security-policy"] ?? "", /default-src 'none'/);
    await page.waitForSelector("body[data-ready=true]");
    assert.equal(await page.textContent("#title"), "Docs test");
    const operations = Object.values(openapi.paths).reduce((n: number, item: any) => n + Object.keys(item).length, 0);
    assert.equal(await page.locator("details.op:not([id^=channel-])").count(), operations);
    assert.equal(await page.locator("details[id^=channel-]").count(), Object.keys(asyncapi.channels).length);

    const hello = page.locator("details.op", { hasText: "Say hello" });
    await hello.locator("summary").click();
    await hello.locator("input[name=name]").fill("Chromium");
    await hello.locator("button.try").click();
    // Locators wait without evaluating strings, which the page's CSP (no eval) would refuse.
    await hello.locator("pre.result", { hasText: "Hello, Chromium!" }).waitFor();

    const channel = page.locator("details#channel-ws_echo_room");
    await channel.locator("summary").click();
    await channel.locator("input[name=room]").fill("lobby");
    await channel.locator("input[name=user]").fill("ann");
    await channel.locator("button.connect").click();
    await channel.locator("pre.log", { hasText: "open" }).waitFor();
    await channel.locator("textarea[name=message]").fill("hi there");
    await channel.locator("button.send").click();
    await channel.locator("pre.log", { hasText: "< echo hi there" }).waitFor();
    assert.deepEqual(elsewhere, [], "nothing loaded from anywhere but the app");
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
