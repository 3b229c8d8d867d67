import { test } from "node:test";
import assert from "node:assert/strict";
import { Catzilla } from "../app/app.js";
import { SERIES, renderPrometheus } from "./prometheus.js";

/** The dotted paths of every number in a stats snapshot. */
function numbers(value: unknown, path = ""): string[] {
  if (typeof value === "number") return [path];
  if (typeof value !== "object" || value === null) return [];
  return Object.entries(value).flatMap(([key, inner]) => numbers(inner, path === "" ? key : `${path}.${key}`));
}

test("every number of app.stats() is a Prometheus series, and each series names a number that exists", () => {
  const app = new Catzilla({ handleSignals: false });
  const stats = app.stats();
  // pid describes the process; the labelled families carry http.responses and websockets.closeCodes.
  const exported = new Set(SERIES.map(([path]) => path));
  const missing = numbers(stats).filter((path) => path !== "pid" && !path.startsWith("http.responses.") && !path.startsWith("websockets.closeCodes.") && !exported.has(path));
  assert.deepEqual(missing, [], "stats without a series");
  const present = new Set(numbers(stats));
  assert.deepEqual(SERIES.filter(([path]) => !present.has(path)).map(([path]) => path), [], "series of no stat");
  const text = renderPrometheus(stats);
  for (const [, name, type] of SERIES) assert.match(text, new RegExp(`^# TYPE catzilla_${name} ${type}$`, "m"));
  assert.match(text, /^catzilla_http_responses_total\{class="2xx"\} 0$/m);
});
