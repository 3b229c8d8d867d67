// Runs every *.test.ts under src/ and test/ with node:test, TypeScript loaded by tsx, then the
// integration suites again on the other engines: the first pass runs the native WebSocket
// engine where its addon is built (and must, under CI=true) behind node:http, the second the
// node:net WebSocket engine behind node:http, the third the native HTTP engine (with the native
// WebSocket engine). A last pass runs the native suites and the integration suites (native HTTP
// and WebSocket engines) on the addon's AddressSanitizer + LeakSanitizer build.
// Usage: node scripts/run-tests.mjs [filter...]   (a file runs when its path holds any filter)
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { spawnSync } from "node:child_process";

const root = new URL("..", import.meta.url).pathname;
const filters = process.argv.length > 2 ? process.argv.slice(2) : [""];
const files = [];
for (const dir of ["src", "test"]) {
  for (const entry of readdirSync(join(root, dir), { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith(".test.ts")) continue;
    const file = relative(root, join(entry.parentPath ?? entry.path, entry.name));
    if (filters.some((filter) => file.includes(filter))) files.push(file);
  }
}
files.sort();

// Every integration suite runs on both engines: a server's WebSocket connections and SSE room
// subscribers are the native engine's on the first pass, node:net's on the second.
const engineFiles = files.filter((file) => file.startsWith("test/integration/"));
// A test that hangs fails after this long instead of running into CI's limit; tests that need
// longer say so themselves ({ timeout }).
const TEST_TIMEOUT_MS = 120_000;

const reports = mkdtempSync(join(tmpdir(), "catzilla-tests-"));
const totals = { pass: 0, fail: 0 };
let runs = 0;

function run(label, testFiles, engine, extraEnv = {}) {
  if (testFiles.length === 0) return;
  console.log(`\n── ${label} ──\n`);
  const tap = join(reports, `${++runs}-${engine ?? "default"}.tap`);
  const env = { ...process.env, CATZILLA_HTTP_ENGINE: "node", ...extraEnv };
  if (engine !== undefined) env.CATZILLA_ENGINE = engine;
  spawnSync(process.execPath, [
    "--conditions=catzilla-source", "--import", "tsx", "--test", `--test-timeout=${TEST_TIMEOUT_MS}`,
    "--test-reporter=spec", "--test-reporter-destination=stdout",
    "--test-reporter=tap", `--test-reporter-destination=${tap}`,
    ...testFiles,
  ], { cwd: root, stdio: "inherit", env });
  let text = "";
  try {
    text = readFileSync(tap, "utf8");
  } catch {
    totals.fail++;
    return;
  }
  const count = (name) => Number(new RegExp(`^# ${name} (\\d+)$`, "m").exec(text)?.[1] ?? 0);
  totals.pass += count("pass");
  totals.fail += count("fail") + count("cancelled");
  if (!/^# pass \d+$/m.test(text)) totals.fail++;
}

// Under CI the native engine is not optional: an addon that did not build fails the first pass.
const first = process.env.CATZILLA_ENGINE ?? (process.env.CI === "true" ? "native" : undefined);
run(`all suites (engine: ${first ?? "auto"})`, files, first);
run("integration suites again on the node:net engine", engineFiles, "node");
const nativeBuilt = existsSync(join(root, "build", "Release", "catzilla.node"));
if (nativeBuilt || process.env.CI === "true") {
  run("integration suites again on the native HTTP engine", engineFiles, "native", { CATZILLA_HTTP_ENGINE: "native" });
}

// The sanitizer pass: gcc's libasan is preloaded (node itself is not instrumented), leaks are
// reported at exit but for what Node.js keeps on purpose (native/sanitizers/lsan.supp).
// Every engine suite (the browser test starts Chromium without the preloaded libasan).
const sanitizerFiles = files.filter((file) => /^test\/native\/(handover|sse-handover|parser|http-server|http-upgrade|http-files|http-streams)\.test\.ts$/.test(file) ||
  engineFiles.includes(file));
const libasan = spawnSync("gcc", ["-print-file-name=libasan.so"], { encoding: "utf8" }).stdout?.trim() ?? "";
if (sanitizerFiles.length > 0 && (nativeBuilt || process.env.CI === "true")) {
  if (!libasan.startsWith("/") || !existsSync(libasan)) {
    console.log("\n(no gcc libasan: the sanitizer pass is skipped)");
    if (process.env.CI === "true") totals.fail++;
  } else if (spawnSync(process.execPath, [join(root, "scripts", "build-native.mjs"), "--asan"], { cwd: root, stdio: "inherit" }).status !== 0) {
    totals.fail++;
  } else {
    run("native engine suites under AddressSanitizer and LeakSanitizer", sanitizerFiles, "native", {
      CATZILLA_HTTP_ENGINE: "native",
      CATZILLA_ADDON: join(root, "build", "asan", "catzilla.node"),
      LD_PRELOAD: libasan,
      ASAN_OPTIONS: "detect_leaks=1:abort_on_error=0",
      LSAN_OPTIONS: `suppressions=${join(root, "native", "sanitizers", "lsan.supp")}`,
    });
  }
}
rmSync(reports, { recursive: true, force: true });
console.log(`\n${totals.pass} passed, ${totals.fail} failed`);
process.exit(totals.fail === 0 ? 0 : 1);
