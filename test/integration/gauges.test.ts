/**
 * Gauges come back down: after churn of every kind (WebSockets closed cleanly and reset, SSE
 * room subscribers and producers aborted, streams and downloads aborted, keep-alive requests),
 * every gauge of stats() and /metrics is back at its baseline.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { get, type IncomingMessage } from "node:http";
import { churnRound } from "../../bench/churn.js";
import { gaugesOf } from "../../bench/soak.js";
import { createConformanceApp } from "../../examples/conformance.js";
import { serve, sleep, waitFor, type Served } from "../helpers.js";

let served: Served;
before(async () => {
  served = await serve(createConformanceApp({ handleSignals: false, shutdownTimeoutMs: 2_000 }));
});
after(() => served.close());

/** A GET on a connection of its own (no keep-alive: idle pooled connections would count as open ones). */
function request(path: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => get({ host: "127.0.0.1", port: served.port, path, agent: false }, resolve).on("error", reject));
}

/** The gauges of the Prometheus text, by metric name. */
async function metricGauges(): Promise<Record<string, number>> {
  const res = await request("/metrics");
  let text = "";
  for await (const chunk of res) text += chunk;
  const out: Record<string, number> = {};
  const gaugeNames = new Set([...text.matchAll(/^# TYPE (\S+) gauge$/gm)].map((m) => m[1]!));
  for (const m of text.matchAll(/^(\w+)(\{[^}]*\})? (\S+)$/gm)) {
    if (gaugeNames.has(m[1]!) && !/memory|uptime|bytes|throughput/.test(m[1]!)) out[m[1]! + (m[2] ?? "")] = Number(m[3]);
  }
  return out;
}

test("after churn every gauge in stats() and /metrics returns to its baseline", { timeout: 60_000 }, async () => {
  // A first round makes what stays (the rooms of the feed and of the chat) and warms up.
  await churnRound(served.port, 20);
  let baseline: Record<string, number> = {};
  await waitFor(() => {
    baseline = gaugesOf(served.app.stats());
    return baseline["connections.active"] === 0 && baseline["websockets.active"] === 0 && baseline["streams.active"] === 0;
  }, 10_000, "the first round's connections to end").catch(() => undefined);
  const metricsBaseline = await metricGauges();
  await sleep(50);
  baseline = gaugesOf(served.app.stats());
  for (let round = 0; round < 3; round++) await churnRound(served.port, 20);
  let now: Record<string, number> = {};
  try {
    await waitFor(() => JSON.stringify(now = gaugesOf(served.app.stats())) === JSON.stringify(baseline), 10_000, "the gauges to return");
  } catch {
    assert.deepEqual(now, baseline, "gauges after churn");
  }
  assert.equal(baseline["connections.active"], 0, "no connection left open after the first round");
  assert.equal(baseline["websockets.active"], 0);
  await sleep(50);
  assert.deepEqual(await metricGauges(), metricsBaseline, "Prometheus gauges after churn");
});
