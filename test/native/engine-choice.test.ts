import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../..", import.meta.url));

/** Construct an app with a WebSocket route in a fresh process; what it printed, or the error. */
function construct(env: Record<string, string>, options = "{}"): { status: number | null; out: string } {
  const script = `
    import { Catzilla } from "catzilla";
    const app = new Catzilla({ handleSignals: false, ...${options} });
    app.websocket("/ws", { onMessage() {} });
    console.log("engine=" + app.stats().engine);
  `;
  const run = spawnSync(process.execPath, ["--conditions=catzilla-source", "--import", "tsx", "--input-type=module", "-e", script], {
    cwd: root, encoding: "utf8", env: { ...process.env, CATZILLA_ENGINE: "", CATZILLA_HTTP_ENGINE: "", ...env },
  });
  return { status: run.status, out: `${run.stdout}${run.stderr}` };
}

test("engine: an explicit native engine that cannot load fails at construction, naming the way out", () => {
  const { status, out } = construct({ CATZILLA_ADDON: "/nonexistent/catzilla.node", CATZILLA_ENGINE: "native" });
  assert.notEqual(status, 0);
  assert.match(out, /native WebSocket engine was asked for .* cannot load/);
  assert.match(out, /engine "auto" or "node"/);
});

test("engine: auto falls back to node:net when the addon cannot load; the option beats the environment", () => {
  assert.match(construct({ CATZILLA_ADDON: "/nonexistent/catzilla.node" }).out, /engine=node/);
  assert.match(construct({ CATZILLA_ENGINE: "native", CATZILLA_ADDON: "/nonexistent/catzilla.node" }, '{ engine: "node" }').out, /engine=node/);
  assert.match(construct({ CATZILLA_ENGINE: "fast" }).out, /must be "auto", "native" or "node", got fast/);
});

test("engine: auto runs the native engine where the addon is built", (t) => {
  const built = construct({ CATZILLA_ENGINE: "native" });
  if (built.status !== 0) {
    if (process.env.CI === "true") assert.fail(`CI=true but the native engine does not load: ${built.out}`);
    return t.skip("the native addon is not built");
  }
  assert.match(construct({}).out, /engine=native/);
});

/** Listen with an app in a fresh process; the HTTP engine it serves on, or the error. */
function listen(env: Record<string, string>, options = "{}"): { status: number | null; out: string } {
  const script = `
    import { Catzilla } from "catzilla";
    const app = new Catzilla({ handleSignals: false, ...${options} });
    app.get("/", () => "ok");
    const { url } = await app.listen({ port: 0 });
    const text = await (await fetch(url)).text();
    console.log("httpEngine=" + app.stats().httpEngine + " " + text);
    await app.close();
  `;
  const run = spawnSync(process.execPath, ["--conditions=catzilla-source", "--import", "tsx", "--input-type=module", "-e", script], {
    cwd: root, encoding: "utf8", env: { ...process.env, CATZILLA_ENGINE: "", CATZILLA_HTTP_ENGINE: "", ...env },
  });
  return { status: run.status, out: `${run.stdout}${run.stderr}` };
}

test("httpEngine: native without the addon fails at listen, naming the way out; auto serves on node:http then", () => {
  const explicit = listen({ CATZILLA_ADDON: "/nonexistent/catzilla.node", CATZILLA_HTTP_ENGINE: "native" });
  assert.notEqual(explicit.status, 0);
  assert.match(explicit.out, /native HTTP engine was asked for .* cannot load/);
  assert.match(explicit.out, /httpEngine "auto" or "node"/);
  assert.match(listen({ CATZILLA_ADDON: "/nonexistent/catzilla.node" }, '{ httpEngine: "auto" }').out, /httpEngine=node ok/);
  assert.match(listen({ CATZILLA_ADDON: "/nonexistent/catzilla.node" }).out, /httpEngine=node ok/, "auto, the default, falls back to node:http");
  assert.match(listen({ CATZILLA_HTTP_ENGINE: "fast" }).out, /must be "auto", "native" or "node", got fast/);
});

test("httpEngine: auto, the default, serves on the C server where the addon is built", (t) => {
  const built = listen({ CATZILLA_HTTP_ENGINE: "native" });
  if (built.status !== 0) {
    if (process.env.CI === "true") assert.fail(`CI=true but the native HTTP engine does not load: ${built.out}`);
    return t.skip("the native addon is not built");
  }
  assert.match(built.out, /httpEngine=native ok/);
  assert.match(listen({ CATZILLA_HTTP_ENGINE: "auto" }).out, /httpEngine=native ok/);
  assert.match(listen({}).out, /httpEngine=native ok/, "auto is the default");
  assert.match(listen({}, '{ httpEngine: "node" }').out, /httpEngine=node ok/);
});
