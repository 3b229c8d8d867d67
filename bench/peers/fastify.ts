// Peer: Fastify, with streams sent as Node Readables the way its documentation shows.
import Fastify from "fastify";
import { createReadStream, statSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { filesDir, listenPort, ready } from "./common.js";

const app = Fastify({ logger: false });
type Query = { n?: string; size?: string };

app.get("/hello", (_req, reply) => {
  reply.type("text/plain; charset=utf-8").send("Hello, World!");
});
app.get<{ Querystring: Query }>("/stream", (req, reply) => {
  const n = Number(req.query.n ?? 10);
  const chunk = Buffer.alloc(Number(req.query.size ?? 1024), "x");
  reply.type("application/octet-stream").send(Readable.from(function* () {
    for (let i = 0; i < n; i++) yield chunk;
  }()));
});
app.get<{ Querystring: Query }>("/sse", (req, reply) => {
  const n = Number(req.query.n ?? 10);
  reply.raw.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
  if (n === 0) {
    reply.raw.flushHeaders();
    const timer = setInterval(() => reply.raw.write(": ping\n\n"), 5_000);
    reply.raw.on("close", () => clearInterval(timer));
  } else {
    for (let i = 1; i <= n; i++) reply.raw.write(`id: ${i}\ndata: tick-${i}\n\n`);
    reply.raw.end();
  }
  reply.hijack();
});
app.get<{ Params: { "*": string } }>("/files/*", (req, reply) => {
  const file = join(filesDir, req.params["*"]);
  reply.header("Content-Length", statSync(file).size).type("application/octet-stream").send(createReadStream(file));
});
app.listen({ port: listenPort(), host: "127.0.0.1" }).then(ready);
