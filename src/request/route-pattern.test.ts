import { test } from "node:test";
import assert from "node:assert/strict";
import { RoutePattern } from "./route-pattern.js";

test("static and parameterised paths", () => {
  assert.equal(new RoutePattern("/hello").isStatic, true);
  const p = new RoutePattern("/users/{id}/posts/{post:int}");
  assert.equal(p.isStatic, false);
  assert.deepEqual(p.match("/users/ann/posts/42"), { id: "ann", post: 42 });
  assert.equal(p.match("/users/ann/posts/x"), null);
  assert.equal(p.match("/users/ann/posts/42/more"), null);
});

test("params are percent-decoded; bad encoding is reported as undefined", () => {
  const p = new RoutePattern("/f/{name}");
  assert.deepEqual(p.match("/f/a%20b"), { name: "a b" });
  assert.equal(p.match("/f/%E0%A4%A"), undefined);
});

test("a trailing path parameter takes the rest, slashes included", () => {
  const p = new RoutePattern("/files/{rest:path}");
  assert.deepEqual(p.match("/files/a/b/c.txt"), { rest: "a/b/c.txt" });
  assert.deepEqual(p.match("/files/"), { rest: "" });
  assert.throws(() => new RoutePattern("/x/{rest:path}/y"), TypeError);
});

test("float and uuid converters; bad patterns fail at registration", () => {
  assert.deepEqual(new RoutePattern("/p/{x:float}").match("/p/1.5"), { x: 1.5 });
  assert.equal(new RoutePattern("/u/{id:uuid}").match("/u/not-a-uuid"), null);
  assert.throws(() => new RoutePattern("/x/{id:nope}"), TypeError);
  assert.throws(() => new RoutePattern("/x/{a}/{a}"), TypeError);
  assert.throws(() => new RoutePattern("x"), TypeError);
  assert.throws(() => new RoutePattern("/x/{a"), TypeError);
});
