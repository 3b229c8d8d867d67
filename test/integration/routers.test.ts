/**
 * Routers over real sockets: include() with a prefix, and middleware of the app, of routers and of
 * one route, each around what it should wrap and nothing else.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import WebSocketClient from "ws";
import { HTTPError, Response, Router, type Middleware, type Request, type WebSocket, type WebSocketMiddleware } from "../../src/index.js";
import { serve, testApp, type Served } from "../helpers.js";

/** Middleware that records entering and leaving, and marks the response. */
function traced(name: string, trace: string[]): Middleware {
  return async (req, next) => {
    trace.push(`${name}>${req.path}`);
    const response = await next();
    trace.push(`<${name}`);
    response.headers.append("X-Through", name);
    return response;
  };
}

const trace: string[] = [];
let served: Served;

before(async () => {
  const app = testApp();
  app.use(traced("app", trace));

  const users = new Router({ prefix: "/users" });
  users.get("/{id:int}", (req) => ({ id: req.params.id }));
  users.get("/{id:int}/secret", () => "secret", { middleware: [traced("route", trace)] });
  users.use(traced("users", trace)); // after its routes: still theirs
  const api = new Router().use(traced("api", trace));
  api.include(users);
  api.get("/status", () => "up");

  const admin = new Router({ prefix: "/admin" }).use((req, next) => (req.header("authorization") === "Bearer ok" ? next() : new Response("no", { status: 401 })));
  admin.get("/panel", () => "panel");
  admin.get("/forbidden", () => "never", { middleware: [() => { throw new HTTPError(403, "Not for you"); }] });

  app.include(api, { prefix: "/api/v1" });
  app.include(admin);
  app.get("/plain", () => "plain");
  served = await serve(app);
});

after(() => served.close());

async function get(path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; through: string | null }> {
  trace.length = 0;
  const res = await fetch(served.url + path, { headers });
  return { status: res.status, body: await res.text(), through: res.headers.get("x-through") };
}

test("include() with a prefix mounts a router's routes (and the routers it includes) under it", { timeout: 10_000 }, async () => {
  assert.deepEqual(await get("/api/v1/users/7"), { status: 200, body: '{"id":7}', through: "users, api, app" });
  assert.equal((await get("/api/v1/status")).body, "up");
  assert.equal((await get("/users/7")).status, 404, "not without the prefix");
  assert.equal((await get("/api/v1/users/x")).status, 404, "the {id:int} converter still applies");
});

test("middleware nests app → outer router → inner router → route, and wraps only what it belongs to", { timeout: 10_000 }, async () => {
  const secret = await get("/api/v1/users/7/secret");
  assert.equal(secret.body, "secret");
  assert.deepEqual(trace, [
    "app>/api/v1/users/7/secret", "api>/api/v1/users/7/secret", "users>/api/v1/users/7/secret", "route>/api/v1/users/7/secret",
    "<route", "<users", "<api", "<app",
  ]);
  assert.equal(secret.through, "route, users, api, app");
  await get("/api/v1/status");
  assert.deepEqual(trace, ["app>/api/v1/status", "api>/api/v1/status", "<api", "<app"], "the users router's middleware is not the api router's");
  const plain = await get("/plain");
  assert.deepEqual([plain.body, plain.through], ["plain", "app"]);
  const missing = await get("/api/v1/nothing");
  assert.equal(missing.status, 404);
  assert.deepEqual(trace, ["app>/api/v1/nothing", "<app"], "no route matched: only the app's middleware ran, and got the 404 back");
  assert.equal(missing.through, "app", "the 404 is a response the app's middleware decorates");
});

test("a router's middleware can answer instead of its routes; an error it throws is answered like a handler's", { timeout: 10_000 }, async () => {
  assert.deepEqual(await get("/admin/panel"), { status: 401, body: "no", through: "app" });
  assert.deepEqual(await get("/admin/panel", { authorization: "Bearer ok" }), { status: 200, body: "panel", through: "app" });
  const forbidden = await get("/admin/forbidden", { authorization: "Bearer ok" });
  assert.equal(forbidden.status, 403);
  assert.match(forbidden.body, /Not for you/);
  assert.equal(forbidden.through, "app", "what the route's middleware threw reached the app's middleware as a response");
});

test("a prefix that does not start with / or ends with one is refused when included", () => {
  const app = testApp();
  for (const prefix of ["api", "/api/"]) assert.throws(() => app.include(new Router(), { prefix }), { name: "TypeError", message: /include\(\) prefix must start with "\/"/ });
});

test("include()'s dependencies run before every included route, HTTP and WebSocket; a route that depends on one gets the same value", { timeout: 10_000 }, async () => {
  const app = testApp();
  const calls: string[] = [];
  const token = (req: Request) => {
    calls.push(`token ${req.path}`);
    if (req.header("authorization") !== "Bearer ok") throw new HTTPError(401, "Bad token");
    return "user-1";
  };
  const api = new Router();
  api.get("/me", (_req, { user }) => ({ user }), { dependencies: { user: token } });
  api.get("/open", () => "open");
  api.websocket("/live", async (ws) => {
    await ws.accept();
    ws.sendText("live");
    await ws.receiveText().catch(() => undefined);
  });
  app.include(api, { prefix: "/api", dependencies: [token] });
  app.get("/outside", () => "outside");
  const served = await serve(app);
  try {
    const auth = { authorization: "Bearer ok" };
    assert.deepEqual(await (await fetch(`${served.url}/api/me`, { headers: auth })).json(), { user: "user-1" });
    assert.deepEqual(calls, ["token /api/me"], "resolved once for the guard and the route's own use");
    calls.length = 0;
    const refused = await fetch(`${served.url}/api/open`);
    assert.equal(refused.status, 401);
    assert.deepEqual(await refused.json(), { detail: "Bad token" });
    assert.equal(await (await fetch(`${served.url}/outside`)).text(), "outside");
    assert.deepEqual(calls, ["token /api/open"], "routes outside the include do not run it");

    const wsUrl = `${served.url.replace("http", "ws")}/api/live`;
    assert.equal(await upgradeStatus(wsUrl, {}), 401, "a WebSocket route of the include is refused by it too");
    assert.equal(await upgradeStatus(wsUrl, auth), 101);
  } finally {
    await served.close();
  }
});

test("router.useWebSocket() runs after the app's WebSocket middleware, on that router's WebSocket routes only, then the route's own", { timeout: 10_000 }, async () => {
  const app = testApp();
  const order: string[] = [];
  const mark = (name: string): WebSocketMiddleware => async (ws, next) => {
    order.push(`${name} ${ws.path}`);
    await next();
  };
  app.useWebSocket(mark("app"));
  const live = new Router({ prefix: "/live" }).useWebSocket(mark("live"));
  live.useWebSocket(async (ws, next) => {
    if (ws.request.query.get("key") !== "k") return ws.reject(403, "No key");
    await next();
  });
  const echo = async (ws: WebSocket): Promise<void> => {
    await ws.accept();
    ws.sendText("hi");
    await ws.receiveText().catch(() => undefined);
  };
  live.websocket("/feed", echo, { middleware: [mark("route")] });
  app.include(live);
  app.websocket("/plain", echo);
  const served = await serve(app);
  try {
    const base = served.url.replace("http", "ws");
    assert.equal(await upgradeStatus(`${base}/live/feed?key=k`, {}), 101);
    assert.deepEqual(order, ["app /live/feed", "live /live/feed", "route /live/feed"]);
    order.length = 0;
    assert.equal(await upgradeStatus(`${base}/live/feed`, {}), 403);
    assert.deepEqual(order, ["app /live/feed", "live /live/feed"]);
    order.length = 0;
    assert.equal(await upgradeStatus(`${base}/plain`, {}), 101);
    assert.deepEqual(order, ["app /plain"], "the router's middleware is not the app's other routes'");
  } finally {
    await served.close();
  }
});

/** The status a WebSocket upgrade is answered with: 101 when it opened (then it is closed). */
function upgradeStatus(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocketClient(url, { headers });
    ws.on("unexpected-response", (_req, res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    ws.on("open", () => {
      ws.close();
      resolve(101);
    });
    ws.on("error", (error) => {
      if (!/Unexpected server response/.test(error.message)) reject(error);
    });
  });
}

test("an event-style WebSocket route's dependencies run before accept (one that throws refuses) and close when the connection ends", { timeout: 10_000 }, async () => {
  const app = testApp();
  const events: string[] = [];
  async function* session(req: Request) {
    if (req.query.get("user") === null) throw new HTTPError(401, "Who are you?");
    events.push("open");
    try {
      yield "session";
    } finally {
      events.push("closed");
    }
  }
  app.websocket("/events", {
    onOpen(ws) {
      events.push("onOpen");
      ws.sendText("hi");
    },
  }, { dependencies: { session } });
  const served = await serve(app);
  try {
    const base = served.url.replace("http", "ws");
    assert.equal(await upgradeStatus(`${base}/events`, {}), 401);
    assert.equal(events.length, 0, "nothing opened for a refused upgrade");
    assert.equal(await upgradeStatus(`${base}/events?user=ann`, {}), 101);
    const deadline = Date.now() + 5_000;
    while (!events.includes("closed") && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.deepEqual(events, ["open", "onOpen", "closed"]);
  } finally {
    await served.close();
  }
});
