// Peer: Hono on @hono/node-server, with its streaming helpers.
import { Hono } from "hono";
import { serve } from "@hono/node-server";
import { serveStatic } from "@hono/node-server/serve-static";
import { stream, streamSSE } from "hono/streaming";
import { filesDir, listenPort, ready } from "./common.js";

const app = new Hono();
app.get("/hello", (c) => c.text("Hello, World!"));
app.get("/stream", (c) => {
  const n = Number(c.req.query("n") ?? 10);
  const chunk = new Uint8Array(Buffer.alloc(Number(c.req.query("size") ?? 1024), "x"));
  c.header("Content-Type", "application/octet-stream");
  return stream(c, async (s) => {
    for (let i = 0; i < n; i++) await s.write(chunk);
  });
});
app.get("/sse", (c) => {
  const n = Number(c.req.query("n") ?? 10);
  return streamSSE(c, async (s) => {
    if (n === 0) {
      while (!s.aborted) { await s.sleep(5_000); await s.write(": ping\n\n"); }
      return;
    }
    for (let i = 1; i <= n; i++) await s.writeSSE({ id: String(i), data: `tick-${i}` });
  });
});
app.use("/files/*", serveStatic({ root: filesDir, rewriteRequestPath: (p) => p.replace(/^\/files/, "") }));
serve({ fetch: app.fetch, port: listenPort(), hostname: "127.0.0.1" }, ready);
