// Peer: plain node:http, written the way its documentation shows.
import { createServer, type ServerResponse } from "node:http";
import { createReadStream, statSync } from "node:fs";
import { join } from "node:path";
import { filesDir, listenPort, parseQuery, ready } from "./common.js";

function write(res: ServerResponse, chunk: Buffer | string): Promise<void> | undefined {
  if (res.write(chunk)) return undefined;
  return new Promise((resolve) => res.once("drain", resolve));
}

const server = createServer(async (req, res) => {
  const { path, query } = parseQuery(req.url ?? "/");
  if (path === "/hello") {
    res.writeHead(200, { "Content-Type": "text/plain; charset=utf-8", "Content-Length": "13" });
    res.end("Hello, World!");
  } else if (path === "/stream") {
    const n = Number(query.get("n") ?? 10);
    const chunk = Buffer.alloc(Number(query.get("size") ?? 1024), "x");
    res.writeHead(200, { "Content-Type": "application/octet-stream" });
    for (let i = 0; i < n; i++) {
      const wait = write(res, chunk);
      if (wait) await wait;
      if (res.destroyed) return;
    }
    res.end();
  } else if (path === "/sse") {
    const n = Number(query.get("n") ?? 10);
    res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
    if (n === 0) {
      res.flushHeaders();
      const timer = setInterval(() => res.write(": ping\n\n"), 5_000);
      res.on("close", () => clearInterval(timer));
      return;
    }
    for (let i = 1; i <= n; i++) res.write(`id: ${i}\ndata: tick-${i}\n\n`);
    res.end();
  } else if (path.startsWith("/files/")) {
    const file = join(filesDir, path.slice(7));
    const size = statSync(file).size;
    res.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": String(size) });
    createReadStream(file).pipe(res);
  } else {
    res.writeHead(404).end();
  }
});
server.listen(listenPort(), "127.0.0.1", ready);
