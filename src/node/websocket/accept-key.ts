import { createHash } from "node:crypto";
import { WEBSOCKET_GUID } from "../../protocol/websocket/handshake.js";

/** `Sec-WebSocket-Accept` for a client key (RFC 6455 §4.2.2). */
export function acceptKey(key: string): string {
  return createHash("sha1").update(key + WEBSOCKET_GUID).digest("base64");
}
