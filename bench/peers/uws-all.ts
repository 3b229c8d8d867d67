// Peer for the fairness benchmark: uWebSockets.js serving it all, as its examples show: /hello,
// /stream (write until backpressure, then onWritable), /echo and /room/{name} (pub/sub).
import * as uws from "uws-pack";
import { listenPort, ready } from "./common.js";

const app = uws.App();
app.get("/hello", (res) => void res.end("Hello, World!"));
app.get("/stream", (res, req) => {
  const query = new URLSearchParams(req.getQuery() ?? "");
  const n = Number(query.get("n") ?? 10);
  const chunk = Buffer.alloc(Math.min(Number(query.get("size") ?? 1024), 1024 * 1024), "x");
  let aborted = false;
  res.onAborted(() => void (aborted = true));
  let sent = 0;
  const pump = (): boolean => {
    while (sent < n && !aborted) {
      sent++;
      let ok = true;
      res.cork(() => void (ok = res.write(chunk)));
      if (!ok) return false;
    }
    if (!aborted) res.cork(() => void res.end());
    return true;
  };
  res.cork(() => void res.writeStatus("200 OK").writeHeader("Content-Type", "application/octet-stream"));
  if (!pump()) res.onWritable(() => pump());
});
app.ws("/echo", {
  compression: 0,
  maxPayloadLength: 16 * 1024 * 1024,
  maxBackpressure: 64 * 1024 * 1024,
  idleTimeout: 0,
  message: (ws, message, isBinary) => void ws.send(message, isBinary),
});
app.ws("/room/*", {
  compression: 0,
  maxBackpressure: 1024 * 1024,
  idleTimeout: 0,
  open: (ws) => void ws.subscribe("room"),
  message: (_ws, message, isBinary) => void app.publish("room", message, isBinary),
});
app.listen("127.0.0.1", listenPort(), (token) => (token ? ready() : process.exit(1)));
