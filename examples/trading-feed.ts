/**
 * A trading feed: binary price updates as fast as the client takes them. The producer checks the
 * send status and waits for the buffer to drain instead of queueing without bound.
 *
 *   node --conditions=catzilla-source --import tsx examples/trading-feed.ts
 *   # each message: u16 symbol, f64 price, f64 time (ms), big-endian; ?n=updates (default 100000)
 */
import { Router } from "catzilla";
import { runIfMain } from "./main.js";

export const router = new Router();
const SYMBOLS = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "BRK.B"];

router.websocket("/ws/prices", async (ws) => {
  await ws.accept();
  ws.sendJson({ symbols: SYMBOLS, format: "u16 symbol, f64 price, f64 time" });
  const n = Math.min(Number(ws.query.get("n") ?? 100_000) || 100_000, 10_000_000);
  const prices = SYMBOLS.map((_, i) => 100 + i * 25);
  for (let i = 0; i < n && ws.readyState === 1; i++) {
    const symbol = i % SYMBOLS.length;
    prices[symbol]! *= 1 + (Math.random() - 0.5) / 500;
    const update = Buffer.allocUnsafe(18);
    update.writeUInt16BE(symbol, 0);
    update.writeDoubleBE(prices[symbol]!, 2);
    update.writeDoubleBE(Date.now(), 10);
    // "backpressure": the client is behind; wait until it caught up.
    if (ws.sendBytes(update) === "backpressure") await ws.drained();
  }
  ws.close(1000, "feed complete");
}, { maxBufferedBytes: 256 * 1024, overLimitPolicy: "wait", summary: "Binary price updates, `n` of them, as fast as the client reads" });

await runIfMain(import.meta.url, router, "Trading feed");
