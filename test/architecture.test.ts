import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const src = fileURLToPath(new URL("../src", import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(join(src, dir), { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts"))
    .map((f) => join(src, dir, f));
}

function imports(file: string): string[] {
  return [...readFileSync(file, "utf8").matchAll(/^\s*(?:import|export)[^;]*?from\s+"([^"]+)"/gms)].map((m) => m[1]!);
}

// node:buffer holds pure byte utilities (isUtf8); everything else from node: does I/O or time.
const PURE_NODE_MODULES = new Set(["node:buffer"]);

test("protocol/ is pure: no I/O modules and nothing from the other layers", () => {
  const files = sources("protocol");
  assert.ok(files.length > 0);
  for (const file of files) {
    for (const spec of imports(file)) {
      if (PURE_NODE_MODULES.has(spec)) continue;
      assert.ok(!spec.startsWith("node:"), `${file} imports ${spec}`);
      assert.ok(spec.startsWith("./") || spec.startsWith("../"), `${file} imports ${spec}`);
      assert.ok(!/^\.\.\/\.\./.test(spec) && !/\.\.\/(node|app|responses|metrics|websocket)\//.test(spec), `${file} reaches outside protocol/: ${spec}`);
    }
  }
});

test("node/ (I/O) does not depend on the framework layer", () => {
  for (const file of sources("node")) {
    for (const spec of imports(file)) {
      assert.ok(!/\.\.\/(app|responses)\//.test(spec), `${file} imports ${spec}`);
    }
  }
});
