// Peer for the fairness benchmark: what a Node developer builds without a framework: node:http
// for /hello and a generator-like /stream (write until it returns false, then wait for 'drain'),
// the ws library on the same server for /echo and /room/{name} (a loop over the room's clients).
import { createServer, type ServerResponse } from "node:http";
import { WebSocketServer, type WebSocket } from "ws";
import { listenPort, parseQuery, ready } from "./common.js";

function write(res: ServerResponse, chunk: Buffer): Promise<void> | undefined {
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
    const chunk = Buffer.alloc(Math.min(Number(query.get("size") ?? 1024), 1024 * 1024), "x");
    res.writeHead(200, { "Content-Type": "application/octet-stream" });
    for (let i = 0; i < n; i++) {
      const wait = write(res, chunk);
      if (wait) await wait;
      if (res.destroyed) return;
    }
    res.end();
  } else {
    res.writeHead(404).end();
  }
});

const wss = new WebSocketServer({ noServer: true, maxPayload: 16 * 1024 * 1024 });
const rooms = new Map<string, Set<WebSocket>>();
server.on("upgrade", (req, socket, head) => {
  const path = parseQuery(req.url ?? "/").path;
  if (path !== "/echo" && !path.startsWith("/room/")) return socket.destroy();
  wss.handleUpgrade(req, socket, head, (ws) => {
    if (path === "/echo") {
      ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
      return;
    }
    let room = rooms.get(path);
    if (room === undefined) rooms.set(path, (room = new Set()));
    const members = room;
    members.add(ws);
    ws.on("close", () => members.delete(ws));
    ws.on("message", (data, isBinary) => {
      for (const client of members) client.send(data, { binary: isBinary });
    });
  });
});
server.listen(listenPort(), "127.0.0.1", ready);
