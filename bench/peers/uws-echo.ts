// Peer: uWebSockets.js (v20, from the uws-pack repack of its release binaries).
import * as uws from "uws-pack";
import { listenPort, ready } from "./common.js";

// UWS_DEFLATE=1: permessage-deflate with context takeover both ways (uWS runs zlib on its loop).
// (The package's types do not declare uWS's compression constants; the module exports them.)
const options = uws as unknown as Record<"DEDICATED_COMPRESSOR" | "DEDICATED_DECOMPRESSOR", number>;
const compression = process.env.UWS_DEFLATE === "1" ? options.DEDICATED_COMPRESSOR | options.DEDICATED_DECOMPRESSOR : 0;

uws.App().ws("/echo", {
  compression,
  maxPayloadLength: 16 * 1024 * 1024,
  maxBackpressure: 64 * 1024 * 1024,
  idleTimeout: 0,
  message: (ws, message, isBinary) => void ws.send(message, isBinary),
}).listen("127.0.0.1", listenPort(), (token) => {
  if (token) ready();
  else process.exit(1);
});
