import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
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

test("the request model (request/) sits below app/, websocket/ and responses/", () => {
  const files = sources("request");
  assert.ok(files.length >= 3);
  for (const file of files) {
    for (const spec of imports(file)) {
      assert.ok(!/\.\.\/(app|websocket|responses|rooms|node)\//.test(spec), `${file} imports ${spec}`);
    }
  }
});

test("only app/ itself, testing/ and the package entry import app/", () => {
  for (const file of sources(".")) {
    const where = relative(src, file);
    if (/^(app|testing)\//.test(where) || where === "index.ts") continue;
    for (const spec of imports(file)) assert.ok(!/(^|\/)app\//.test(spec), `${where} imports ${spec}`);
  }
});

/** src/ as a graph: each file and the files of src/ it imports (types included: they tie modules too). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sources(".")) {
    const targets = imports(file).filter((spec) => spec.startsWith(".")).map((spec) => join(dirname(file), spec.replace(/\.js$/, ".ts")));
    graph.set(file, targets);
  }
  return graph;
}

/** The strongly connected components of more than one file, or of one that imports itself (Tarjan). */
function cycles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const stack: string[] = [];
  const state = new Map<string, { index: number; low: number; onStack: boolean }>();
  const found: string[][] = [];
  const visit = (file: string): void => {
    const own = { index, low: index, onStack: true };
    index++;
    state.set(file, own);
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (!graph.has(next)) continue;
      const seen = state.get(next);
      if (seen === undefined) {
        visit(next);
        own.low = Math.min(own.low, state.get(next)!.low);
      } else if (seen.onStack) {
        own.low = Math.min(own.low, seen.index);
      }
    }
    if (own.low !== own.index) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      state.get(member)!.onStack = false;
      component.push(member);
    } while (member !== file);
    if (component.length > 1 || (graph.get(file) ?? []).includes(file)) found.push(component.map((f) => relative(src, f)).sort());
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
  return found;
}

test("no import cycles in src/ (type imports count)", () => {
  const graph = importGraph();
  assert.ok(graph.size > 40, `${graph.size} files read`);
  assert.deepEqual(cycles(graph), []);
});

test("the native engine's policies and close codes are the TypeScript ones (src/node/policy.ts, CloseCode)", async () => {
  const header = readFileSync(fileURLToPath(new URL("../native/src/engine.h", import.meta.url)), "utf8");
  const frame = readFileSync(fileURLToPath(new URL("../native/src/frame.h", import.meta.url)), "utf8");
  const defined = (name: string): number => Number(new RegExp(`#define ${name} (\\d+)`).exec(header)?.[1]);
  const policy = await import("../src/node/policy.js");
  assert.equal(defined("CZ_WAIT_CLOSE_FACTOR"), policy.WAIT_POLICY_CLOSE_FACTOR);
  assert.equal(defined("CZ_RATE_WINDOW_MS"), policy.MESSAGE_RATE_WINDOW_MS);
  assert.equal(defined("CZ_MAX_HEARTBEAT"), policy.MAX_HEARTBEAT_BYTES);
  const { CloseCode } = await import("../src/protocol/websocket/constants.js");
  const codes = [...frame.matchAll(/CZ_CLOSE_(\w+) = (\d+)/g)].map(([, name, code]) => [name!, Number(code)] as const);
  assert.ok(codes.length >= 10, `${codes.length} close codes in frame.h`);
  const ours = new Set(Object.values(CloseCode));
  for (const [name, code] of codes) assert.ok(ours.has(code as never), `CZ_CLOSE_${name} = ${code} is a CloseCode`);
});

test("the native engine numbers why a connection ended as END_REASONS does", async () => {
  const header = readFileSync(fileURLToPath(new URL("../native/src/engine.h", import.meta.url)), "utf8");
  const { END_REASONS } = await import("../src/node/native/binding.js");
  const numbered = [...header.matchAll(/CZ_END_(\w+) = (\d+)/g)].map(([, name, value]) => [name!.toLowerCase().replace(/_/g, "-"), Number(value)] as const);
  assert.equal(numbered.length, END_REASONS.length);
  for (const [name, value] of numbered) {
    assert.equal(END_REASONS[value], name === "protocol" ? "protocol-error" : name, `CZ_END_${name} = ${value}`);
  }
});
