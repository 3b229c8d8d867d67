/**
 * Responses alone (no sockets): the status line and headers a fixed response writes, header
 * rules, redirects and cookies. A response sink of the test's own keeps what is written.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { ResponseSink } from "../http-engine.js";
import type { SendContext } from "./response.js";
import { HTMLResponse, JSONResponse, RedirectResponse, Response, TextResponse } from "./response.js";
import { ResponseHeaders } from "./headers.js";

/** What `send` wrote: the status, the flat header list as a list of pairs, and the body. */
function written(response: Response): { status: number; headers: Array<[string, string]>; body: string | null } {
  let status = 0;
  let flat: string[] = [];
  let body: string | null = null;
  const res: ResponseSink = {
    statusCode: 200,
    headersSent: false,
    writeHead(code: number, headers: string[]) {
      status = code;
      flat = headers;
    },
    end(chunk?: string | Uint8Array) {
      body = chunk === undefined ? null : Buffer.from(chunk).toString();
    },
    destroy() {
      throw new Error("a fixed response is never cut");
    },
  };
  void response.send({ res } as SendContext);
  const headers: Array<[string, string]> = [];
  for (let i = 0; i < flat.length; i += 2) headers.push([flat[i]!, flat[i + 1]!]);
  return { status, headers, body };
}

test("a text body gets its default type and its length in bytes, not characters", () => {
  const out = written(new Response("héllo ☃"));
  assert.equal(out.status, 200);
  assert.deepEqual(out.headers, [["Content-Type", "text/plain; charset=utf-8"], ["Content-Length", "10"]]);
  assert.equal(out.body, "héllo ☃");
  assert.deepEqual(written(new Response(new Uint8Array([1, 2, 3]))).headers, [["Content-Type", "application/octet-stream"], ["Content-Length", "3"]]);
});

test("bodyless statuses: 204 and 304 send no length and no type, an empty 200 says 0", () => {
  for (const status of [204, 304]) {
    const out = written(new Response("ignored", { status }));
    assert.deepEqual(out.headers, [], `${status}`);
    assert.equal(out.body, null);
  }
  assert.deepEqual(written(new Response(null)).headers, [["Content-Length", "0"]]);
});

test("headers given are sent as given: first casing, insertion order, one line per Set-Cookie value", () => {
  const response = new TextResponse("ok", { headers: { "X-Trace": "a", "content-length": 2 } });
  response.headers.append("x-trace", "b");
  response.setCookie("session", "a b;c", { maxAge: 60.7, sameSite: "Lax" });
  response.setCookie("theme", "dark", { httpOnly: false, secure: true });
  assert.equal(response.headers.get("X-TRACE"), "a, b");
  assert.deepEqual(written(response).headers, [
    ["X-Trace", "a"],
    ["X-Trace", "b"],
    ["content-length", "2"],
    ["Content-Type", "text/plain; charset=utf-8"],
    ["Set-Cookie", "session=a%20b%3Bc; Max-Age=60; Path=/; HttpOnly; SameSite=Lax"],
    ["Set-Cookie", "theme=dark; Path=/; Secure"],
  ]);
});

test("a header name that is not a token, or a value with CR, LF or NUL, is refused where it is given", () => {
  assert.throws(() => new Response("x", { headers: { "Bad Name": "1" } }), { name: "TypeError", message: /Invalid header name: "Bad Name"/ });
  assert.throws(() => new Response("x", { headers: { "X-A": "1\r\nSet-Cookie: stolen=1" } }), { name: "TypeError", message: /Invalid value for header X-A/ });
  const headers = new ResponseHeaders();
  assert.throws(() => headers.set("X-A", "a\0b"), TypeError);
  assert.throws(() => headers.append("", "v"), TypeError);
  assert.equal([...headers].length, 0, "nothing refused was kept");
});

test("a status outside 100..999 or not an integer is a RangeError", () => {
  for (const status of [99, 1000, 200.5, Number.NaN]) assert.throws(() => new Response("x", { status }), RangeError, `${status}`);
});

test("typed responses: JSON, HTML, and a redirect whose Location is encoded once", () => {
  assert.deepEqual(written(new JSONResponse({ a: [1, "é"] })), {
    status: 200,
    headers: [["Content-Type", "application/json"], ["Content-Length", "14"]],
    body: '{"a":[1,"é"]}',
  });
  assert.equal(written(new JSONResponse(undefined)).body, "null", "undefined serialises as null, not an empty body");
  assert.equal(new HTMLResponse("<p>").headers.get("content-type"), "text/html; charset=utf-8");
  const redirect = written(new RedirectResponse("/search?q=café au lait"));
  assert.equal(redirect.status, 307);
  assert.deepEqual(redirect.headers, [["Location", "/search?q=caf%C3%A9%20au%20lait"], ["Content-Length", "0"]]);
  assert.equal(new RedirectResponse("/a%20b", { status: 303 }).headers.get("location"), "/a%20b", "already encoded: not encoded again");
  assert.equal(new RedirectResponse("/a%zz").headers.get("location"), "/a%25zz", "a bad escape is sent encoded, not refused");
});

test("a type the caller sets wins over the default", () => {
  const out = written(new Response("{}", { headers: { "content-type": "application/problem+json" } }));
  assert.deepEqual(out.headers, [["content-type", "application/problem+json"], ["Content-Length", "2"]]);
});
