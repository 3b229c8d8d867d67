/** The demo app: every example on one server, with an index page that links them. */
import { Catzilla, EventSourceResponse, HTMLResponse, type AppOptions } from "catzilla";
import { router as aiChat } from "./ai-chat.js";
import { router as csvExport } from "./csv-export.js";
import { router as fileDownload } from "./file-download.js";
import { router as monitored } from "./monitored-stream.js";
import { router as websocketEcho } from "./websocket-echo.js";
import { router as tradingFeed } from "./trading-feed.js";
import { router as telemetry } from "./iot-telemetry.js";
import { router as orders } from "./orders-api.js";

export function createDemoApp(options: AppOptions = {}): Catzilla {
  const app = new Catzilla(options);
  app.include(csvExport);
  app.include(aiChat);
  app.include(fileDownload);
  app.include(monitored);
  app.include(websocketEcho);
  app.include(tradingFeed);
  app.include(telemetry);
  app.include(orders);

  app.get("/clock", () => new EventSourceResponse(async function* (stream) {
    while (!stream.signal.aborted) {
      yield { event: "time", data: new Date().toISOString() };
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }));
  app.get("/stats", () => app.stats(), { summary: "Statistics as JSON", tags: ["operations"] });
  app.metrics("/metrics");
  const info = { title: "Catzilla demos", version: "1.0.0", description: "Every example on one server." };
  app.openapi("/openapi.json", info);
  app.asyncapi("/asyncapi.json", info);
  app.docs("/docs");

  app.get("/", () => new HTMLResponse(`<!doctype html>
<meta charset="utf-8"><title>Catzilla demos</title>
<style>body{font:16px system-ui;max-width:46rem;margin:2rem auto;line-height:1.5}code{background:#f3f3f3;padding:0 .25rem}</style>
<h1>Catzilla demos</h1>
<ul>
  <li><a href="/export.csv?rows=1000000">CSV export of a million rows</a> — <code>StreamingResponse</code> from a generator, pulled as fast as you download</li>
  <li><a href="/chat">AI chat token stream</a> — Server-Sent Events from a fake model, token by token</li>
  <li><a href="/download/sample.bin">64 MiB file download</a> — <code>FileResponse</code> with Range, If-Range, ETag (try <code>curl -r 0-99</code>)</li>
  <li><a href="/monitored?n=30&amp;fail=20">Monitored stream</a> — backpressure checks, peak buffer in stats, an <code>error</code> event on failure</li>
  <li><a href="/ws-echo">WebSocket echo</a> — a browser page talking to <code>/ws/echo</code> (pull-style handler, permessage-deflate)</li>
  <li>Trading feed at <code>ws://…/ws/prices?n=100000</code> — binary price updates as fast as the client takes them</li>
  <li>IoT telemetry at <code>ws://…/ws/telemetry/{deviceId}</code> — binary in, <code>ACK</code> out (event-style handler); <a href="/telemetry/stats">counts</a></li>
  <li><a href="/clock">Server clock</a> — an endless SSE stream with heartbeats; closes cleanly when you leave</li>
  <li>Orders API at <code>/api/orders</code> — validated JSON bodies and query parameters, 422 with every issue</li>
  <li><a href="/docs">API docs</a> — from the <a href="/openapi.json">OpenAPI</a> and <a href="/asyncapi.json">AsyncAPI</a> documents the routes make; try each one</li>
  <li><a href="/stats">Statistics (JSON)</a> and <a href="/metrics">Prometheus metrics</a></li>
</ul>
<h2>Live clock</h2><p id="clock">…</p>
<script>
new EventSource("/clock").addEventListener("time", (e) => { document.getElementById("clock").textContent = e.data; });
</script>`));
  return app;
}

