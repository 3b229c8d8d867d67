// Peer: a room with the ws library: every message goes to every client, the usual loop over clients.
import { WebSocketServer } from "ws";
import { listenPort, ready } from "./common.js";

const wss = new WebSocketServer({ port: listenPort(), host: "127.0.0.1", path: "/room/bench" }, ready);
wss.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => {
    for (const client of wss.clients) client.send(data, { binary: isBinary });
  });
});
