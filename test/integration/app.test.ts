import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  FileResponse, HTMLResponse, HTTPError, InvalidResponseError, JSONResponse, RedirectResponse, Response, Router, StreamingResponse,
  type Dependency,
} from "../../src/index.js";
import { readFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { fileURLToPath } from "node:url";
import { rawExchange, serve, splitResponse, testApp, waitFor, type Served } from "../helpers.js";

const fixture = fileURLToPath(new URL("../fixtures/files/random.bin", import.meta.url));
const fileBytes = readFileSync(fixture);

describe("routing, requests and responses", () => {
  let served: Served;
  const events: string[] = [];
  const app = testApp({ maxBodyBytes: 1024, maxHeaderBytes: 4096 });

  const database: Dependency<{ query(): string }> = async function* () {
    events.push("db open");
    try {
      yield { query: () => "row" };
    } finally {
      events.push("db closed");
    }
  };
  const user: Dependency<string> = async (req, resolve) => {
    const db = await resolve(database);
    return `${req.header("x-user") ?? "anon"}:${db.query()}`;
  };

  app.get("/hello", () => "Hello, World!");
  app.get("/after/{ms:int}", async (req) => {
    await new Promise((resolve) => setTimeout(resolve, req.params.ms));
    return `after ${req.params.ms}`;
  });
  app.get("/users/{id:int}", (req) => ({ id: req.params.id, type: typeof req.params.id }));
  app.get("/files/{rest:path}", (req) => req.params.rest);
  app.get("/names/{name}", (req) => req.params.name);
  app.post("/items", async (req) => new JSONResponse(await req.json(), { status: 201 }));
  app.put("/items", () => "put");
  app.post("/echo-text", async (req) => req.text());
  app.get("/file", () => new FileResponse(fixture));
  app.post("/echo-bytes", async (req) => new Response(await req.bytes()));
  app.post("/count-stream", async (req) => {
    let n = 0;
    for await (const chunk of req.stream()) n += chunk.length;
    return { n };
  });
  app.get("/query", (req) => ({ q: req.query.get("q"), all: req.query.getAll("t") }));
  app.get("/cookies", (req) => req.cookies);
  app.get("/fields", (req) => ({
    accept: req.header("ACCEPT") ?? null,
    custom: req.header("x-Custom") ?? null,
    agent: req.header("user-agent") ?? null,
    cookie: req.header("cookie") ?? null,
    // Names that are properties of every object elsewhere are fields (or missing) here.
    constructor: req.header("constructor") ?? null,
    toString: req.header("tostring") ?? null,
  }));
  app.get("/set-cookie", () => new Response("ok").setCookie("session", "a b", { maxAge: 60, sameSite: "Lax" }));
  app.get("/html", () => new HTMLResponse("<h1>hi</h1>"));
  app.get("/bytes", () => new Uint8Array([1, 2, 3]));
  app.get("/nothing", () => undefined);
  app.get("/redirect", () => new RedirectResponse("/hello"));
  app.get("/teapot", () => {
    throw new HTTPError(409, "conflict here", { "X-Reason": "test" });
  });
  app.get("/boom", () => {
    throw new Error("secret internal detail");
  });
  app.get("/deps", (_req, deps) => {
    events.push(`handler ${deps.user}`);
    return deps.user;
  }, { dependencies: { user, db: database } });
  app.get("/deps-stream", (_req, deps) => new StreamingResponse(async function* () {
    try {
      yield `${deps.db.query()}-1\n`;
      await new Promise((r) => setTimeout(r, 20));
      yield `${deps.db.query()}-2\n`;
    } finally {
      events.push("stream finally");
    }
  }()), { dependencies: { db: database } });

  const api = new Router({ prefix: "/api/v1" });
  api.get("/ping", () => "pong");
  const nested = new Router({ prefix: "/admin" });
  nested.get("/stats", () => "admin-stats");
  api.include(nested);
  app.include(api);

  app.use(async (req, next) => {
    req.state.order = ["outer"];
    const res = await next();
    res.headers.set("X-Outer", "1");
    return res;
  });
  app.use(async (req, next) => {
    (req.state.order as string[]).push("inner");
    if (req.path === "/blocked") return new Response("blocked by middleware", { status: 403 });
    const res = await next();
    res.headers.set("X-Order", (req.state.order as string[]).join(","));
    return res;
  });

  before(async () => {
    served = await serve(app);
  });
  after(() => served.close());

  test("plain text with a length", async () => {
    const res = await fetch(`${served.url}/hello`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/plain; charset=utf-8");
    assert.equal(res.headers.get("content-length"), "13");
    assert.equal(await res.text(), "Hello, World!");
  });

  test("typed, path and percent-encoded params", async () => {
    assert.deepEqual(await (await fetch(`${served.url}/users/42`)).json(), { id: 42, type: "number" });
    assert.equal((await fetch(`${served.url}/users/abc`)).status, 404);
    assert.equal(await (await fetch(`${served.url}/files/a/b/c.txt`)).text(), "a/b/c.txt");
    assert.equal(await (await fetch(`${served.url}/names/J%C3%BCrgen%20K`)).text(), "Jürgen K");
    const bad = await rawExchange(served.port, "GET /names/%E0%A4%A HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert.equal(splitResponse(bad.data).status, 400);
  });

  test("404, and 405 with Allow", async () => {
    const missing = await fetch(`${served.url}/nope`);
    assert.equal(missing.status, 404);
    assert.deepEqual(await missing.json(), { detail: "Not Found" });
    const wrong = await fetch(`${served.url}/items`, { method: "DELETE" });
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get("allow"), "POST, PUT");
    const wrongGet = await fetch(`${served.url}/hello`, { method: "POST" });
    assert.equal(wrongGet.headers.get("allow"), "GET, HEAD");
  });

  test("HEAD on a GET route sends headers only", async () => {
    const res = await fetch(`${served.url}/hello`, { method: "HEAD" });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-length"), "13");
    assert.equal(await res.text(), "");
  });

  test("JSON, text, bytes and streamed request bodies", async () => {
    const created = await fetch(`${served.url}/items`, { method: "POST", body: JSON.stringify({ a: [1, 2] }) });
    assert.equal(created.status, 201);
    assert.deepEqual(await created.json(), { a: [1, 2] });
    assert.equal(await (await fetch(`${served.url}/echo-text`, { method: "POST", body: "héllo" })).text(), "héllo");
    const bytes = await fetch(`${served.url}/echo-bytes`, { method: "POST", body: new Uint8Array([0, 255, 7]) });
    assert.equal(bytes.headers.get("content-type"), "application/octet-stream");
    assert.deepEqual(new Uint8Array(await bytes.arrayBuffer()), new Uint8Array([0, 255, 7]));
    assert.deepEqual(await (await fetch(`${served.url}/count-stream`, { method: "POST", body: "x".repeat(1000) })).json(), { n: 1000 });
  });

  test("invalid JSON is 400; a body over maxBodyBytes is 413 and the connection closes", async () => {
    const bad = await fetch(`${served.url}/items`, { method: "POST", body: "{nope" });
    assert.equal(bad.status, 400);
    assert.deepEqual(await bad.json(), { detail: "Request body is not valid JSON" });
    const big = await fetch(`${served.url}/echo-text`, { method: "POST", body: "x".repeat(5000) });
    assert.equal(big.status, 413);
    // Without a declared length the limit is enforced while reading.
    const chunked = await rawExchange(served.port,
      "POST /count-stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
      `800\r\n${"y".repeat(0x800)}\r\n`);
    const response = splitResponse(chunked.data);
    assert.equal(response.status, 413);
    assert.match(response.head, /connection: close/i);
    assert.equal(chunked.closed, true);
  });

  test("query, headers and cookies", async () => {
    assert.deepEqual(await (await fetch(`${served.url}/query?q=a%20b&t=1&t=2`)).json(), { q: "a b", all: ["1", "2"] });
    const cookies = await fetch(`${served.url}/cookies`, { headers: { cookie: 'a=1; b="two"; c=%C3%A9; a=ignored' } });
    assert.deepEqual(await cookies.json(), { a: "1", b: "two", c: "é" });
    const set = await fetch(`${served.url}/set-cookie`);
    assert.equal(set.headers.get("set-cookie"), "session=a%20b; Max-Age=60; Path=/; HttpOnly; SameSite=Lax");
  });

  test("header fields: any case, repeats joined as node:http joins them, and names Object.prototype has", async () => {
    const { data } = await rawExchange(served.port, [
      "GET /fields HTTP/1.1", "Host: a", "Accept: text/html", "aCCept: */*", "X-Custom: one", "x-custom: two",
      "User-Agent: first", "User-Agent: second", "Cookie: a=1", "cookie: b=2", "toString: yes", "Connection: close", "", "",
    ].join("\r\n"));
    const response = splitResponse(data);
    assert.equal(response.status, 200);
    assert.deepEqual(JSON.parse(response.body.toString()), {
      accept: "text/html, */*", custom: "one, two", agent: "first", cookie: "a=1; b=2", constructor: null, toString: "yes",
    });
  });

  test("a request with no header fields at all (HTTP/1.0 needs no Host) is answered", async () => {
    const { data } = await rawExchange(served.port, "GET /hello HTTP/1.0\r\n\r\n");
    const response = splitResponse(data);
    assert.equal(response.status, 200);
    assert.equal(response.body.toString(), "Hello, World!");
  });

  test("HTML, bytes, no content and redirects", async () => {
    const html = await fetch(`${served.url}/html`);
    assert.equal(html.headers.get("content-type"), "text/html; charset=utf-8");
    assert.equal(await html.text(), "<h1>hi</h1>");
    const bytes = await fetch(`${served.url}/bytes`);
    assert.deepEqual(new Uint8Array(await bytes.arrayBuffer()), new Uint8Array([1, 2, 3]));
    assert.equal((await fetch(`${served.url}/nothing`)).status, 204);
    const redirect = await fetch(`${served.url}/redirect`, { redirect: "manual" });
    assert.equal(redirect.status, 307);
    assert.equal(redirect.headers.get("location"), "/hello");
  });

  test("HTTPError carries status, detail and headers; other errors are a bare 500", async () => {
    const res = await fetch(`${served.url}/teapot`);
    assert.equal(res.status, 409);
    assert.equal(res.headers.get("x-reason"), "test");
    assert.deepEqual(await res.json(), { detail: "conflict here" });
    const boom = await fetch(`${served.url}/boom`);
    assert.equal(boom.status, 500);
    const text = await boom.text();
    assert.equal(text, '{"detail":"Internal Server Error"}');
    assert.ok(app.errors.some((e) => e instanceof Error && e.message === "secret internal detail"));
  });

  test("middleware run in order around the handler and can answer themselves", async () => {
    const res = await fetch(`${served.url}/hello`);
    assert.equal(res.headers.get("x-order"), "outer,inner");
    assert.equal(res.headers.get("x-outer"), "1");
    const blocked = await fetch(`${served.url}/blocked`);
    assert.equal(blocked.status, 403);
    assert.equal(blocked.headers.get("x-outer"), "1");
  });

  test("routers with prefixes, nested", async () => {
    assert.equal(await (await fetch(`${served.url}/api/v1/ping`)).text(), "pong");
    assert.equal(await (await fetch(`${served.url}/api/v1/admin/stats`)).text(), "admin-stats");
  });

  test("dependencies resolve once per request and close after the response", async () => {
    events.length = 0;
    const res = await fetch(`${served.url}/deps`, { headers: { "x-user": "ann" } });
    assert.equal(await res.text(), "ann:row");
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(events, ["db open", "handler ann:row", "db closed"]);
  });

  test("a dependency of a streaming response closes only after the stream finished", async () => {
    events.length = 0;
    const res = await fetch(`${served.url}/deps-stream`);
    assert.equal(await res.text(), "row-1\nrow-2\n");
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(events, ["db open", "stream finally", "db closed"]);
  });

  test("a request head over maxHeaderBytes gets 431", async () => {
    const { data } = await rawExchange(served.port, `GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(8000)}\r\n\r\n`);
    assert.equal(splitResponse(data).status, 431);
  });

  test("pipelined requests are answered in the order they were sent, a slow one first", async () => {
    const pipeline = ["/after/80", "/hello", "/after/0", "/bytes"]
      .map((path, i) => `GET ${path} HTTP/1.1\r\nHost: x\r\n${i === 3 ? "Connection: close\r\n" : ""}\r\n`).join("");
    const { data, closed } = await rawExchange(served.port, pipeline);
    assert.ok(closed);
    const text = data.toString("latin1");
    const statuses = text.match(/HTTP\/1\.1 \d{3}/g);
    assert.deepEqual(statuses, ["HTTP/1.1 200", "HTTP/1.1 200", "HTTP/1.1 200", "HTTP/1.1 200"]);
    const order = ["after 80", "Hello, World!", "after 0", "\x01\x02\x03"].map((body) => text.indexOf(body));
    assert.ok(order.every((at, i) => at > 0 && (i === 0 || at > order[i - 1]!)), `bodies in order: ${JSON.stringify(order)}`);
  });

  test("malformed request lines get 400", async () => {
    const { data } = await rawExchange(served.port, "GARBAGE\r\n\r\n");
    assert.equal(splitResponse(data).status, 400);
  });

  test("two Host headers, a bad chunk size and an unknown transfer coding get 400, CONNECT 501, not a silent close", async () => {
    for (const [request, status] of [
      ["GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400],
      ["POST /echo-text HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400],
      ["POST /echo-text HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n", 400],
      ["CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 501],
    ] as const) {
      const { data } = await rawExchange(served.port, request);
      assert.equal(data.length > 0 ? splitResponse(data).status : 0, status, JSON.stringify(request));
    }
  });

  test("overlapping ranges are sent once (coalesced), not once per range", async () => {
    const ranges = Array(16).fill("0-").join(",");
    const res = await fetch(`${served.url}/file`, { headers: { Range: `bytes=${ranges}` } });
    assert.equal(res.status, 206);
    const body = Buffer.from(await res.arrayBuffer());
    assert.equal(Number(res.headers.get("content-length")), body.length);
    assert.equal(body.length, fileBytes.length);
  });
});

describe("error handler and limits", () => {
  test("a user error handler shapes error responses", async () => {
    const app = testApp();
    app.get("/x", () => {
      throw new TypeError("bad input");
    });
    app.onError((error) => (error instanceof TypeError ? new Response(`handled: ${error.message}`, { status: 422 }) : undefined));
    const served = await serve(app);
    try {
      const res = await fetch(`${served.url}/x`);
      assert.equal(res.status, 422);
      assert.equal(await res.text(), "handled: bad input");
      assert.equal((await fetch(`${served.url}/missing`)).status, 404);
    } finally {
      await served.close();
    }
  });

  test("an error response that cannot be rendered becomes a 500, never a crash", async () => {
    const app = testApp();
    app.get("/bad-header", () => {
      throw new HTTPError(400, "x", { "X-Bad": "line\nbreak" });
    });
    app.get("/circular", () => {
      const detail: Record<string, unknown> = {};
      detail.self = detail;
      throw new HTTPError(422, detail);
    });
    app.onError((error) => (error instanceof RangeError ? { cyclic: (() => { const o: Record<string, unknown> = {}; o.o = o; return o; })() } : undefined));
    app.get("/handler-result-cyclic", () => {
      throw new RangeError("x");
    });
    const served = await serve(app);
    try {
      for (const path of ["/bad-header", "/circular", "/handler-result-cyclic"]) {
        const res = await fetch(`${served.url}${path}`);
        assert.equal(res.status, 500, path);
        assert.deepEqual(await res.json(), { detail: "Internal Server Error" });
      }
      assert.equal((await fetch(`${served.url}/bad-header`)).status, 500, "the server is still up");
    } finally {
      await served.close();
    }
  });

  test("the rate limit answers 429 with Retry-After per client address", async () => {
    const app = testApp({ rateLimit: { requests: 3, windowMs: 60_000 } });
    app.get("/x", () => "ok");
    const served = await serve(app);
    try {
      const statuses: number[] = [];
      let retryAfter: string | null = null;
      for (let i = 0; i < 5; i++) {
        const res = await fetch(`${served.url}/x`);
        statuses.push(res.status);
        if (res.status === 429) retryAfter = res.headers.get("retry-after");
        await res.arrayBuffer();
      }
      assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
      assert.ok(Number(retryAfter) >= 1 && Number(retryAfter) <= 60, `Retry-After ${retryAfter}`);
      assert.equal(app.stats().http.rateLimited, 2);
    } finally {
      await served.close();
    }
  });

  test("a client that sends its head too slowly gets 408 and is disconnected", async () => {
    const app = testApp({ headersTimeoutMs: 300, requestTimeoutMs: 600 });
    app.get("/x", () => "ok");
    const served = await serve(app);
    try {
      const started = Date.now();
      const { data, closed } = await rawExchange(served.port, "GET /x HTTP/1.1\r\nHost: x\r\nX-Slow: 1", 5_000);
      assert.equal(closed, true);
      assert.equal(splitResponse(data).status, 408);
      assert.ok(Date.now() - started < 3_000, `took ${Date.now() - started} ms`);
    } finally {
      await served.close();
    }
  });

  test("a client that gets 408 but never reads is let go soon after, and fresh clients are served", { timeout: 20_000 }, async () => {
    const app = testApp({ headersTimeoutMs: 300, requestTimeoutMs: 300, maxConnections: 3 });
    app.get("/x", () => "ok");
    const served = await serve(app);
    const sockets: Socket[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const socket = connect(served.port, "127.0.0.1");
        socket.on("error", () => undefined);
        socket.write("GET /x HTTP/1.1\r\nHost: x\r\n");
        socket.pause();
        sockets.push(socket);
      }
      await waitFor(() => app.stats().connections.active === 3, 3_000, "the slow clients to be counted");
      // 408 after 300 ms; destroyed at most a few seconds later although the clients never read nor close.
      await waitFor(() => app.stats().connections.active === 0, 8_000, "the refused connections to be let go");
      assert.equal(await (await fetch(`${served.url}/x`)).text(), "ok");
    } finally {
      for (const socket of sockets) socket.destroy();
      await served.close();
    }
  });

  test("connections over maxConnections are closed at once", async () => {
    const app = testApp({ maxConnections: 2 });
    app.get("/x", () => "ok");
    const served = await serve(app);
    const { connect } = await import("node:net");
    const open = [connect(served.port, "127.0.0.1"), connect(served.port, "127.0.0.1")];
    try {
      await Promise.all(open.map((s) => new Promise((resolve) => s.once("connect", resolve))));
      await new Promise((resolve) => setTimeout(resolve, 50));
      const extra = await rawExchange(served.port, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n", 2_000);
      assert.equal(extra.closed, true);
      assert.equal(extra.data.length, 0);
      open[0]!.write("GET /x HTTP/1.1\r\nHost: x\r\n\r\n");
      const reply = await new Promise<Buffer>((resolve) => open[0]!.once("data", resolve));
      assert.equal(splitResponse(reply).status, 200);
      assert.equal(app.stats().connections.active, 2);
      for (const s of open) s.destroy();
      await waitFor(() => app.stats().connections.active === 0, 2_000, "the closed connections to be counted");
      assert.equal(app.stats().connections.total, 2, "the connection over the limit is not counted");
    } finally {
      for (const s of open) s.destroy();
      await served.close();
    }
  });

  test("bad options fail at construction and name the option", () => {
    assert.throws(() => testApp({ maxBodyBytes: -1 }), /maxBodyBytes/);
    assert.throws(() => testApp({ headersTimeoutMs: 5000, requestTimeoutMs: 1000 }), /headersTimeoutMs/);
    assert.throws(() => testApp({ rateLimit: { requests: 0, windowMs: 10 } }), /rateLimit.requests/);
    assert.throws(() => new Router({ prefix: "api" }), /prefix/);
    assert.throws(() => testApp().get("/x/{a:nope}", () => ""), /converter/);
  });
});

describe("mistakes are caught where they are made", () => {
  test("a handler that returns what is not a response gets a 500 and a log entry that says what it returned", async () => {
    const app = testApp();
    const handlers: Record<string, () => unknown> = {
      "/generator": () => (function* () { yield "row"; })(),
      "/map": () => new Map([["a", 1]]),
      "/set": () => new Set([1]),
      "/function": () => () => "text",
      "/symbol": () => Symbol("x"),
      "/readable-stream": () => new ReadableStream(),
      "/forgotten-await": () => ({ body: Promise.resolve(1) }),
    };
    // Typed as they would be by a caller that lost the types (JavaScript, `any`).
    for (const [path, handler] of Object.entries(handlers)) app.get(path, handler as () => string);
    app.get("/fine", () => ({ next: "cursor", when: new Date(0), list: [1, 2], nested: { map: 1 } }));
    const served = await serve(app);
    try {
      for (const path of Object.keys(handlers)) {
        const errors = app.errors.length;
        const res = await fetch(`${served.url}${path}`);
        assert.equal(res.status, 500, path);
        assert.deepEqual(await res.json(), { detail: "Internal Server Error" });
        assert.equal(app.errors.length, errors + 1, `${path}: one log entry`);
        const error = app.errors.at(-1) as InvalidResponseError;
        assert.ok(error instanceof InvalidResponseError, path);
        assert.equal(error.code, "CZ_INVALID_RESPONSE");
        assert.match(error.message, /returned (a|an) /, path);
      }
      assert.match((app.errors.at(-1) as Error).message, /field "body" is a Promise, which is not a response: await it/);
      assert.equal((await fetch(`${served.url}/fine`)).status, 200);
    } finally {
      await served.close();
    }
  });

  test("routes that match the same paths, and Express-style :params, are refused at registration", () => {
    const app = testApp();
    app.get("/users/{id}", () => "");
    assert.throws(() => app.get("/users/{name}", () => ""), /GET \/users\/\{name\} matches the same paths as GET \/users\/\{id\}/);
    assert.throws(() => app.route(["POST", "GET"], "/users/{id}", () => ""), /matches the same paths/);
    // Another method, or a more specific converter first, is fine.
    app.post("/users/{id}", () => "");
    app.get("/items/{id:int}", () => "");
    app.get("/items/{slug}", () => "");
    assert.throws(() => app.get("/items/:id", () => ""), /segment ":id".*written \{id\}/);
    const api = new Router({ prefix: "/users" });
    api.get("/{other}", () => "");
    assert.throws(() => app.include(api), /matches the same paths/);
    app.websocket("/ws/{room}", () => undefined);
    assert.throws(() => app.websocket("/ws/{name}", () => undefined), /WebSocket route \/ws\/\{name\} matches the same paths/);
  });

  test("per-route WebSocket options are checked at registration and name the option", () => {
    const app = testApp();
    assert.throws(() => app.websocket("/a", () => undefined, { maxMessageBytes: 0 }), /RangeError|websocket\.maxMessageBytes/);
    assert.throws(() => app.websocket("/b", () => undefined, { maxMesageBytes: 10 } as never), /Unknown option websocket\.maxMesageBytes/);
    assert.throws(() => app.websocket("/c", () => undefined, { perMessageDeflate: { treshold: 10 } } as never), /Unknown option websocket\.perMessageDeflate\.treshold/);
    assert.throws(() => app.websocket("/d", () => undefined, { perMessageDeflate: { threshold: -1 } }), /perMessageDeflate\.threshold/);
    assert.throws(() => new Router().websocket("/e", () => undefined, { idleTimeoutMs: -5 }), /websocket\.idleTimeoutMs/);
    assert.throws(() => app.websocket("/f", () => undefined, { origins: "https://x" as never }), /websocket\.origins/);
    assert.equal(app.websocketRoutes.length, 0);
  });

  test("bad listen options fail with an error naming the option, before anything starts", async () => {
    const app = testApp();
    let started = false;
    app.onStartup(() => void (started = true));
    await assert.rejects(app.listen({ port: "abc" as never }), /Option port must be an integer in 0\.\.65535, got "abc"/);
    await assert.rejects(app.listen({ port: 70_000 }), /Option port/);
    await assert.rejects(app.listen({ port: 0, host: 5 as never }), /Option host/);
    await assert.rejects(app.listen({ port: 0, workers: 1.5 }), /Option workers/);
    assert.equal(started, false);
  });
});

describe("keep-alive connections and turns of the event loop", () => {
  /** A keep-alive connection that reads one response at a time (Content-Length bodies). */
  async function keepAlive(port: number): Promise<{ send(path: string): void; response(): Promise<string>; socket: Socket }> {
    const socket = connect(port, "127.0.0.1");
    await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
    let data = "";
    let waiting: (() => void) | null = null;
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => {
      data += d;
      waiting?.();
    });
    const complete = (): string | null => {
      const end = data.indexOf("\r\n\r\n");
      if (end < 0) return null;
      const length = Number(/\r\ncontent-length: (\d+)/i.exec(data.slice(0, end))?.[1] ?? 0);
      if (data.length < end + 4 + length) return null;
      const body = data.slice(end + 4, end + 4 + length);
      data = data.slice(end + 4 + length);
      return body;
    };
    return {
      socket,
      send: (path) => void socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`),
      response: async () => {
        for (;;) {
          const body = complete();
          if (body !== null) return body;
          await new Promise<void>((resolve) => (waiting = resolve));
        }
      },
    };
  }

  test("a request's promise jobs run before the next connection's request reaches the app, as on node:http", { timeout: 10_000 }, async () => {
    // Requests that arrive in the same read of the loop used to be handed to the app one after
    // another before any of their promise jobs ran, so every async handler of the batch was in
    // flight at once (and its objects outlived the young generation's collections).
    const app = testApp();
    const log: string[] = [];
    app.get("/warm", () => "warm");
    app.get("/step/{name}", async (req) => {
      log.push(`start ${req.params.name}`);
      await null;
      log.push(`after ${req.params.name}`);
      return "ok";
    });
    const { port } = await app.listen({ port: 0, host: "127.0.0.1" });
    const clients = await Promise.all(["a", "b", "c"].map(() => keepAlive(port)));
    try {
      // Every connection is accepted and idle first, so that the steps below arrive together.
      for (const client of clients) client.send("/warm");
      assert.deepEqual(await Promise.all(clients.map((c) => c.response())), ["warm", "warm", "warm"]);
      // Written in one turn: the server reads all three in one turn of its loop.
      clients.forEach((client, i) => client.send(`/step/${"abc"[i]}`));
      assert.deepEqual(await Promise.all(clients.map((c) => c.response())), ["ok", "ok", "ok"]);
      assert.equal(log.length, 6);
      for (let i = 0; i < log.length; i += 2) {
        const name = log[i]!.split(" ")[1];
        assert.deepEqual([log[i], log[i + 1]], [`start ${name}`, `after ${name}`], `promise jobs interleaved: ${log.join(", ")}`);
      }
    } finally {
      for (const client of clients) client.socket.destroy();
      await app.close();
    }
  });

  test("req.signal fires when the client leaves during the response, never for a response already done", { timeout: 10_000 }, async () => {
    const app = testApp();
    let fired = 0;
    let inFlight: AbortSignal | null = null;
    app.get("/signal", (req) => {
      req.signal.addEventListener("abort", () => fired++);
      return "done";
    });
    app.get("/wait", async (req) => {
      inFlight = req.signal;
      await new Promise((resolve) => req.signal.addEventListener("abort", resolve));
      return "never";
    });
    const warnings: string[] = [];
    const onWarning = (warning: Error): void => void warnings.push(warning.name);
    process.on("warning", onWarning);
    const { port } = await app.listen({ port: 0, host: "127.0.0.1" });
    try {
      // Many requests on one keep-alive connection, each done before the next: the connection
      // keeps no listener of theirs, and their signals stay quiet when it closes.
      const client = await keepAlive(port);
      for (let i = 0; i < 25; i++) {
        client.send("/signal");
        assert.equal(await client.response(), "done");
      }
      client.socket.destroy();
      const waiting = await keepAlive(port);
      waiting.send("/wait");
      await waitFor(() => inFlight !== null, 3_000, "the waiting request");
      waiting.socket.destroy();
      await waitFor(() => inFlight!.aborted, 3_000, "the signal of the request in flight");
      assert.ok(inFlight!.reason instanceof Error && /disconnect/i.test(String(inFlight!.reason)), String(inFlight!.reason));
      assert.equal(fired, 0);
      assert.deepEqual(warnings.filter((name) => name === "MaxListenersExceededWarning"), []);
    } finally {
      process.off("warning", onWarning);
      await app.close();
    }
  });
});
