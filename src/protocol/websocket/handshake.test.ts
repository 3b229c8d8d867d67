import { test } from "node:test";
import assert from "node:assert/strict";
import { checkHandshake, hasToken, parseProtocols, selectProtocol } from "./handshake.js";
import { negotiateDeflate } from "./extensions.js";

const good = {
  host: "x", upgrade: "websocket", connection: "Upgrade", "sec-websocket-version": "13",
  "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
};

test("a valid handshake, with tokens in lists and any case", () => {
  const result = checkHandshake("GET", "1.1", { ...good, upgrade: "WebSocket", connection: "keep-alive, UPGRADE", "sec-websocket-protocol": "chat, superchat" });
  assert.deepEqual(result, { ok: true, key: good["sec-websocket-key"], protocols: ["chat", "superchat"], extensions: undefined, origin: undefined });
  assert.equal(hasToken("a, b ,c", "b"), true);
});

test("refusals: method, version, headers, key", () => {
  const status = (method: string, version: string, headers: Record<string, string>) => {
    const r = checkHandshake(method, version, headers);
    return r.ok ? 101 : r.status;
  };
  assert.equal(status("POST", "1.1", good), 400);
  assert.equal(status("GET", "1.0", good), 400);
  assert.equal(status("GET", "1.1", { ...good, upgrade: "h2c" }), 400);
  assert.equal(status("GET", "1.1", { ...good, connection: "keep-alive" }), 400);
  assert.equal(status("GET", "1.1", { ...good, "sec-websocket-key": "short" }), 400);
  assert.equal(status("GET", "1.1", { ...good, "sec-websocket-key": "AAAAAAAAAAAAAAAAAAAAAAAAAAAA" }), 400);
  const old = checkHandshake("GET", "1.1", { ...good, "sec-websocket-version": "8" });
  assert.equal(old.ok, false);
  assert.deepEqual(!old.ok && old.headers, { "Sec-WebSocket-Version": "13" });
  assert.equal(!old.ok && old.status, 426);
});

test("subprotocols: the server's preference among the client's offers", () => {
  assert.deepEqual(parseProtocols("a, b"), ["a", "b"]);
  assert.equal(parseProtocols("a b"), null);
  assert.equal(parseProtocols("a, a"), null);
  assert.equal(selectProtocol(["chat", "superchat"], ["superchat", "chat"]), "superchat");
  assert.equal(selectProtocol(["x"], ["chat"]), undefined);
});

test("permessage-deflate negotiation", () => {
  assert.equal(negotiateDeflate(undefined, {}), null);
  assert.equal(negotiateDeflate("x-webkit-deflate-frame", {}), null);
  assert.deepEqual(negotiateDeflate("permessage-deflate; client_max_window_bits", {}), {
    params: { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 },
    response: "permessage-deflate",
  });
  const limited = negotiateDeflate("permessage-deflate; server_max_window_bits=10; client_max_window_bits", { clientMaxWindowBits: 12, serverNoContextTakeover: true });
  assert.deepEqual(limited, {
    params: { serverNoContextTakeover: true, clientNoContextTakeover: false, serverMaxWindowBits: 10, clientMaxWindowBits: 12 },
    response: "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits=12",
  });
  // Invalid offers are skipped for the next one.
  assert.equal(negotiateDeflate("permessage-deflate; server_max_window_bits", {})?.response, undefined);
  assert.equal(negotiateDeflate("permessage-deflate; server_max_window_bits=16, permessage-deflate", {})?.response, "permessage-deflate");
  assert.equal(negotiateDeflate("permessage-deflate; foo=1", {}), null);
  assert.equal(negotiateDeflate("permessage-deflate; client_no_context_takeover; client_no_context_takeover", {}), null);
  assert.equal(negotiateDeflate("permessage-deflate; server_max_window_bits=8", {}), null);
  assert.equal(negotiateDeflate("permessage-deflate; client_no_context_takeover", {})?.params.clientNoContextTakeover, true);
});
