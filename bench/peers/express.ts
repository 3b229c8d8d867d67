// Peer: Express 5, with res.write loops and express.static.
import express from "express";
import { filesDir, listenPort, ready } from "./common.js";

const app = express();
app.get("/hello", (_req, res) => {
  res.type("text/plain").send("Hello, World!");
});
app.get("/stream", async (req, res) => {
  const n = Number(req.query.n ?? 10);
  const chunk = Buffer.alloc(Number(req.query.size ?? 1024), "x");
  res.type("application/octet-stream");
  for (let i = 0; i < n; i++) {
    if (!res.write(chunk)) await new Promise((resolve) => res.once("drain", resolve));
    if (res.destroyed) return;
  }
  res.end();
});
app.get("/sse", (req, res) => {
  const n = Number(req.query.n ?? 10);
  res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
  if (n === 0) {
    res.flushHeaders();
    const timer = setInterval(() => res.write(": ping\n\n"), 5_000);
    res.on("close", () => clearInterval(timer));
    return;
  }
  for (let i = 1; i <= n; i++) res.write(`id: ${i}\ndata: tick-${i}\n\n`);
  res.end();
});
app.use("/files", express.static(filesDir, { etag: true }));
app.listen(listenPort(), "127.0.0.1", ready);
