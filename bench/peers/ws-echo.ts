// Peer: the ws library's echo server (bufferutil is used when installed, unless WS_NO_BUFFER_UTIL=1).
import { WebSocketServer } from "ws";
import { listenPort, ready } from "./common.js";

// WS_DEFLATE=1: permessage-deflate on (ws runs zlib on the libuv thread pool).
const perMessageDeflate = process.env.WS_DEFLATE === "1";
const wss = new WebSocketServer({ port: listenPort(), host: "127.0.0.1", path: "/echo", maxPayload: 16 * 1024 * 1024, perMessageDeflate }, ready);
wss.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
});
