// Builds the native WebSocket engine (build/Release/catzilla.node) from native/ with node-gyp.
// Runs at `npm install` / `npm ci`. Without a compiler the package still installs and runs on
// the TypeScript engine; under CI (CI=true) or with CATZILLA_ENGINE=native a failed build fails.
// Usage: node scripts/build-native.mjs [--asan]   (--asan: the AddressSanitizer build for tests)
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { spawnSync } from "node:child_process";
import { fileURLToPath, pathToFileURL } from "node:url";
import { createRequire } from "node:module";

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

if (process.platform !== "linux") fail(`the native engine is built on Linux only (it uses epoll), not on ${process.platform}`);

// A package from the registry ships binaries (prebuilds/, scripts/prebuild.mjs): where one fits
// this platform and loads, there is nothing to build. CATZILLA_BUILD_FROM_SOURCE=1 builds anyway
// (the binary built here is used only where none of the package's fits).
// The binary's name is the loader's own (platformName in src/node/native/binding.ts); a package
// always has dist/, a checkout without it has no prebuilds either.
const loader = join(root, "dist", "node", "native", "binding.js");
if (!asan && process.env.CATZILLA_BUILD_FROM_SOURCE !== "1" && existsSync(loader)) {
  const name = (await import(pathToFileURL(loader).href)).platformName();
  const prebuilt = join(root, "prebuilds", name, "catzilla.node");
  if (existsSync(prebuilt)) {
    try {
      createRequire(import.meta.url)(prebuilt);
      process.exit(0);
    } catch (error) {
      console.warn(`catzilla: the package's binary for ${name} does not load here (${error.message}); building from source`);
    }
  }
}

/** node-gyp: the one npm hands to install scripts, the one beside npm, or one on the PATH. */
function findNodeGyp() {
  const candidates = [process.env.npm_config_node_gyp];
  const npmCli = process.env.npm_execpath;
  if (npmCli) candidates.push(join(dirname(npmCli), "..", "node_modules", "node-gyp", "bin", "node-gyp.js"));
  candidates.push(join(dirname(process.execPath), "..", "lib", "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js"));
  return candidates.find((path) => path && existsSync(path)) ?? null;
}

// Node's headers: beside the Node.js that runs us (Debian's nodejs keeps them in /usr/include/node).
const prefix = join(dirname(process.execPath), "..");
const localHeaders = existsSync(join(prefix, "include", "node", "node_api.h"));

if (asan) {
  // The sanitizer build is compiled directly (node-gyp would replace the release build):
  // build/asan/catzilla.node, loaded with CATZILLA_ADDON and libasan preloaded (see run-tests.mjs).
  const headers = process.env.npm_config_nodedir ? join(process.env.npm_config_nodedir, "include", "node") : join(prefix, "include", "node");
  mkdirSync(join(root, "build", "asan"), { recursive: true });
  const sources = readdirSync(join(root, "native", "src")).filter((f) => f.endsWith(".c")).map((f) => join("native", "src", f));
  const result = spawnSync(process.env.CC ?? "gcc", [
    "-shared", "-fPIC", "-std=gnu11", "-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined",
    "-fno-sanitize-recover=undefined", "-Wall", "-Wextra", "-Werror", "-DNAPI_VERSION=8", `-I${headers}`, "-Inative/src",
    ...sources, "-o", join("build", "asan", "catzilla.node"),
  ], { cwd: root, stdio: "inherit" });
  if (result.error !== undefined || result.status !== 0) fail(`building the sanitizer build failed (${result.error?.message ?? `exit ${result.status}`})`);
  process.exit(0);
}

const nodeGyp = findNodeGyp();
const args = ["rebuild"];
// Build against the headers installed beside Node.js when there are some; node-gyp would
// otherwise download them.
if (!process.env.npm_config_nodedir && localHeaders) args.push(`--nodedir=${prefix}`);
const env = { ...process.env };
const command = nodeGyp === null ? "node-gyp" : process.execPath;
const result = spawnSync(command, nodeGyp === null ? args : [nodeGyp, ...args], { cwd: root, stdio: "inherit", env });
if (result.error !== undefined || result.status !== 0) {
  fail(`building the native engine failed (${result.error?.message ?? `node-gyp exited with ${result.status}`})`);
}
