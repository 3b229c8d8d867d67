/**
 * A monitored stream: the producer checks backpressure and waits for the socket to drain,
 * the stream's peak buffer is recorded in statistics, and a failure mid-stream reaches the
 * client as an SSE `error` event before the connection is cut.
 *
 *   node --conditions=catzilla-source --import tsx examples/monitored-stream.ts
 *   curl -N 'http://127.0.0.1:8000/monitored?n=20&fail=15'
 */
import { EventSourceResponse, Router, type EventItem } from "catzilla";
import { runIfMain } from "./main.js";

export const router = new Router();

router.get("/monitored", (req) => {
  const n = Math.min(Number(req.query.get("n") ?? 50) || 50, 100_000);
  const failAt = req.query.has("fail") ? Number(req.query.get("fail")) : -1;
  return new EventSourceResponse(async function* (stream): AsyncGenerator<EventItem> {
    let waits = 0;
    for (let i = 1; i <= n; i++) {
      if (stream.checkBackpressure()) {
        waits++;
        await stream.waitForDrain();
      }
      if (i === failAt) throw new Error(`sensor ${i} stopped answering`);
      yield {
        id: i,
        event: "reading",
        data: JSON.stringify({ i, bytesSent: stream.bytesSent, buffered: stream.bufferedBytes, drainWaits: waits }),
      };
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    yield { event: "done", data: "complete" };
  }, {
    monitorMemory: true,
    onError: (error) => ({ event: "error", data: JSON.stringify({ message: (error as Error).message }) }),
  });
});

await runIfMain(import.meta.url, router, "Monitored stream");
