// Peer: a room with uWebSockets.js pub/sub: every message is published to the room's topic.
import * as uws from "uws-pack";
import { listenPort, ready } from "./common.js";

const app = uws.App();
app.ws("/room/*", {
  compression: 0,
  maxBackpressure: 1024 * 1024,
  idleTimeout: 0,
  open: (ws) => void ws.subscribe("room"),
  message: (_ws, message, isBinary) => void app.publish("room", message, isBinary),
}).listen("127.0.0.1", listenPort(), (token) => (token ? ready() : process.exit(1)));
