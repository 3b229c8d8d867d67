/**
 * CORS: the headers of preflights and responses over fetch, then Chromium itself making
 * cross-origin requests: one the API allows (preflighted, credentialed, reading an exposed header
 * and an error response) and one it refuses.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launchChromium } from "../browsers.js";
import { HTMLResponse, HTTPError, cors } from "../../src/index.js";
import { serve, testApp, type Served } from "../helpers.js";


let page: Served;
let api: Served;
let strict: Served;
const seen: string[] = [];
const strictSeen: string[] = [];

before(async () => {
  // The page's own origin: a page that calls the APIs (other ports: other origins).
  const pageApp = testApp();
  pageApp.get("/", () => new HTMLResponse("<!doctype html><title>page</title><p>cross-origin caller</p>"));
  page = await serve(pageApp);

  const apiApp = testApp();
  apiApp.use(async (req, next) => {
    seen.push(`${req.method} ${req.path}`);
    return next();
  });
  apiApp.use(cors({ origin: [page.url], credentials: true, exposedHeaders: ["X-Total"], maxAge: 600 }));
  apiApp.put("/items/{id:int}", async (req) => {
    const response = new HTMLResponse(JSON.stringify({ id: req.params.id, body: await req.json(), cookie: req.cookies.session ?? null }), {
      headers: { "Content-Type": "application/json", "X-Total": "42", "X-Hidden": "secret" },
    });
    return response;
  });
  apiApp.get("/missing-item", () => {
    throw new HTTPError(404, "No such item");
  });
  api = await serve(apiApp);

  const strictApp = testApp();
  strictApp.use(async (req, next) => {
    strictSeen.push(`${req.method} ${req.path}`);
    return next();
  });
  strictApp.use(cors({ origin: "https://elsewhere.example" }));
  strictApp.put("/items/{id:int}", () => ({ ok: true }));
  strictApp.get("/simple", () => ({ ok: true }));
  strict = await serve(strictApp);
});

after(async () => {
  await Promise.all([page.close(), api.close(), strict.close()]);
});

test("a preflight from an allowed origin gets the methods, the asked-for headers and max age; others get no CORS headers", { timeout: 10_000 }, async () => {
  const preflight = await fetch(`${api.url}/items/1`, {
    method: "OPTIONS",
    headers: { Origin: page.url, "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "content-type, x-request-id" },
  });
  assert.equal(preflight.status, 204);
  assert.equal(preflight.headers.get("access-control-allow-origin"), page.url, "the origin itself, never * with credentials");
  assert.equal(preflight.headers.get("access-control-allow-credentials"), "true");
  assert.match(preflight.headers.get("access-control-allow-methods") ?? "", /\bPUT\b/);
  assert.equal(preflight.headers.get("access-control-allow-headers"), "content-type, x-request-id");
  assert.equal(preflight.headers.get("access-control-max-age"), "600");
  assert.match(preflight.headers.get("vary") ?? "", /Origin/);

  const foreign = await fetch(`${api.url}/items/1`, {
    method: "OPTIONS",
    headers: { Origin: "https://evil.example", "Access-Control-Request-Method": "PUT" },
  });
  assert.equal(foreign.status, 204);
  assert.equal(foreign.headers.get("access-control-allow-origin"), null);
  assert.equal(foreign.headers.get("access-control-allow-methods"), null);

  const noOrigin = await fetch(`${api.url}/missing-item`);
  assert.equal(noOrigin.status, 404);
  assert.equal(noOrigin.headers.get("access-control-allow-origin"), null, "not a CORS request");
  const errorResponse = await fetch(`${api.url}/missing-item`, { headers: { Origin: page.url } });
  assert.equal(errorResponse.status, 404);
  assert.equal(errorResponse.headers.get("access-control-allow-origin"), page.url, "error responses carry the headers too");
  const unrouted = await fetch(`${api.url}/nowhere`, { headers: { Origin: page.url } });
  assert.equal(unrouted.status, 404);
  assert.equal(unrouted.headers.get("access-control-allow-origin"), page.url, "a path without a route too");
});

test("cors() refuses options that would be unsafe or wrong", () => {
  assert.throws(() => cors({ origin: "*", credentials: true }), /credentials/);
  assert.throws(() => cors({ credentials: true }), /credentials/);
  assert.throws(() => cors({ origin: ["https://a.example/"] }), /without a path/);
  assert.throws(() => cors({ maxAge: -1 }), /maxAge/);
});

test("Chromium: a cross-origin fetch the API allows passes its preflight; one it does not is refused", { timeout: 60_000 }, async () => {
  const browser = await launchChromium();
  try {
    const context = await browser.newContext();
    await context.addCookies([{ name: "session", value: "s3cret", url: api.url }]);
    const tab = await context.newPage();
    await tab.goto(`${page.url}/`);
    seen.length = 0;
    strictSeen.length = 0;

    // JSON and a custom header make it a preflighted request; credentials send the cookie.
    // Page code goes in as text: what the test's TypeScript compiles to is not the page's to run.
    const allowed = await tab.evaluate(`(async () => {
      const res = await fetch("${api.url}/items/7", {
        method: "PUT",
        credentials: "include",
        headers: { "Content-Type": "application/json", "X-Request-Id": "r1" },
        body: JSON.stringify({ name: "pen" }),
      });
      const missing = await fetch("${api.url}/missing-item", { credentials: "include" });
      return { status: res.status, body: await res.json(), total: res.headers.get("X-Total"), hidden: res.headers.get("X-Hidden"), missing: missing.status, detail: (await missing.json()).detail };
    })()`);
    assert.deepEqual(allowed, {
      status: 200,
      body: { id: 7, body: { name: "pen" }, cookie: "s3cret" },
      total: "42",
      hidden: null,
      missing: 404,
      detail: "No such item",
    });
    assert.deepEqual(seen, ["OPTIONS /items/7", "PUT /items/7", "GET /missing-item"], "the preflight, then the request itself");

    const refused = await tab.evaluate(`(async () => {
      const outcome = async (request) => {
        try {
          return "status " + (await request).status;
        } catch (error) {
          return "refused: " + error.name;
        }
      };
      return {
        preflighted: await outcome(fetch("${strict.url}/items/7", { method: "PUT", headers: { "Content-Type": "application/json" }, body: "{}" })),
        simple: await outcome(fetch("${strict.url}/simple")),
      };
    })()`);
    assert.deepEqual(refused, { preflighted: "refused: TypeError", simple: "refused: TypeError" });
    assert.deepEqual(strictSeen, ["OPTIONS /items/7", "GET /simple"], "the PUT itself never left the browser");
  } finally {
    await browser.close();
  }
});
