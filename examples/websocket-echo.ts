/**
 * WebSocket echo, pull style, with a browser page that talks to it.
 *
 *   node --conditions=catzilla-source --import tsx examples/websocket-echo.ts
 *   open http://127.0.0.1:8000/ws-echo
 */
import { HTMLResponse, Router, WebSocketDisconnect } from "catzilla";
import { runIfMain } from "./main.js";

export const router = new Router();

router.websocket("/ws/echo", async (ws) => {
  await ws.accept();
  try {
    for (;;) {
      const message = await ws.receive();
      if (typeof message === "string") ws.sendText(`Echo: ${message}`);
      else ws.sendBytes(message);
    }
  } catch (error) {
    if (!(error instanceof WebSocketDisconnect)) throw error;
  }
}, { perMessageDeflate: true, summary: "Echo: text stays text, binary stays binary" });

router.get("/ws-echo", () => new HTMLResponse(`<!doctype html>
<meta charset="utf-8"><title>Catzilla WebSocket echo</title>
<style>body{font:16px system-ui;max-width:42rem;margin:2rem auto}#log{border:1px solid #ccc;min-height:6rem;padding:.5rem;white-space:pre-wrap}</style>
<h1>WebSocket echo</h1>
<p>Status: <b id="status">connecting</b></p>
<form id="form"><input id="message" value="Hello, Catzilla!" size="40"> <button id="send">Send</button> <button id="close" type="button">Close</button></form>
<div id="log"></div>
<script>
const log = (line) => { document.getElementById("log").textContent += line + "\\n"; };
const status = document.getElementById("status");
const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/echo");
ws.onopen = () => { status.textContent = "open"; };
ws.onmessage = (event) => log(event.data);
ws.onclose = (event) => { status.textContent = "closed " + event.code; };
document.getElementById("form").onsubmit = (event) => { event.preventDefault(); ws.send(document.getElementById("message").value); };
document.getElementById("close").onclick = () => ws.close(1000, "bye");
</script>`));

await runIfMain(import.meta.url, router, "WebSocket echo");
