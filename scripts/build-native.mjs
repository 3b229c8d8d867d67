// Builds the native WebSocket engine (build/Release/catzilla.node) from native/ with node-gyp.
// Runs at `npm install` / `npm ci`. Without a compiler the package still installs and runs on
// the TypeScript engine; under CI (CI=true) or with CATZILLA_ENGINE=native a failed build fails.
// Usage: node scripts/build-native.mjs [--debug] [--asan]
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const required = process.env.CI === "true" || process.env.CATZILLA_ENGINE === "native";
const asan = process.argv.includes("--asan");

function fail(message) {
  if (required) {
    console.error(`catzilla: ${message}`);
    process.exit(1);
  }
  console.warn(`catzilla: ${message}; WebSockets will run on the TypeScript (node:net) engine`);
  process.exit(0);
}

if (process.platform === "win32") fail("the native engine is not built on Windows");

/** node-gyp: the one npm hands to install scripts, the one beside npm, or one on the PATH. */
function findNodeGyp() {
  const candidates = [process.env.npm_config_node_gyp];
  const npmCli = process.env.npm_execpath;
  if (npmCli) candidates.push(join(dirname(npmCli), "..", "node_modules", "node-gyp", "bin", "node-gyp.js"));
  candidates.push(join(dirname(process.execPath), "..", "lib", "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js"));
  return candidates.find((path) => path && existsSync(path)) ?? null;
}

const nodeGyp = findNodeGyp();
const args = ["rebuild"];
if (process.argv.includes("--debug") || asan) args.push("--debug");
// Build against the headers of the Node.js that runs us when they are installed beside it
// (Debian's nodejs keeps them in /usr/include/node); node-gyp would otherwise download them.
const prefix = join(dirname(process.execPath), "..");
if (!process.env.npm_config_nodedir && existsSync(join(prefix, "include", "node", "node_api.h"))) args.push(`--nodedir=${prefix}`);
const env = { ...process.env };
if (asan) {
  env.CFLAGS = `${env.CFLAGS ?? ""} -fsanitize=address,undefined -fno-omit-frame-pointer`;
  env.LDFLAGS = `${env.LDFLAGS ?? ""} -fsanitize=address,undefined`;
}
const command = nodeGyp === null ? "node-gyp" : process.execPath;
const result = spawnSync(command, nodeGyp === null ? args : [nodeGyp, ...args], { cwd: root, stdio: "inherit", env });
if (result.error !== undefined || result.status !== 0) {
  fail(`building the native engine failed (${result.error?.message ?? `node-gyp exited with ${result.status}`})`);
}
