/**
 * The soak's short form (bench/soak.ts; `npm run soak` runs it for 10 minutes per engine): 15 s of
 * churn against the conformance app in a process of its own; every gauge comes back to its start
 * and no descriptor is left open.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { runSoak } from "../../bench/soak.js";
import { freePort } from "../helpers.js";

test("soak (short form): after 15 s of churn every gauge is back and no descriptor was left open", { timeout: 90_000 }, async () => {
  const result = await runSoak({
    engine: process.env.CATZILLA_ENGINE ?? "auto", seconds: 15, parallel: 8, port: await freePort(),
    nodeOptions: ["--conditions=catzilla-source"],
  });
  const mb = (v: number): string => (v / 2 ** 20).toFixed(1);
  console.log(`soak ${result.engine}: ${result.rounds} rounds; RSS ${mb(result.start.rssBytes)} → ${mb(result.end.rssBytes)} MB; ` +
    `descriptors ${result.start.descriptors} → ${result.end.descriptors}; gauges ${JSON.stringify(result.end.gauges)}`);
  assert.ok(result.rounds > 0);
  assert.deepEqual(result.problems, []);
});
