// Peer: the ws library's echo server (bufferutil is used when installed, unless WS_NO_BUFFER_UTIL=1).
import { WebSocketServer } from "ws";
import { listenPort, ready } from "./common.js";

const wss = new WebSocketServer({ port: listenPort(), host: "127.0.0.1", path: "/echo", maxPayload: 16 * 1024 * 1024 }, ready);
wss.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
});
