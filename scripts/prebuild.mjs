// The native engine's binaries that the package ships, built from native/ at pack time (prepack):
// prebuilds/<name>/catzilla.node for each target whose compiler is here. Node-API's ABI is stable,
// so one build per platform serves every Node.js from 20 on. The addon links to no library: the
// symbols of Node-API, libuv and zlib come from the Node.js process that loads it.
//
//   node scripts/prebuild.mjs           build every target it can (linux-x64 must build)
//   node scripts/prebuild.mjs --clean   remove prebuilds/ (postpack: a checkout keeps loading its own build)
//
// CI=true: every target must build (scripts/ensure-test-deps.mjs installs the cross compilers).
import { existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const out = join(root, "prebuilds");

if (process.argv.includes("--clean")) {
  rmSync(out, { recursive: true, force: true });
  process.exit(0);
}

/** Each target: its directory name (what src/node/native/binding.ts looks for), its compiler, and which Debian package has it. */
const TARGETS = [
  { name: "linux-x64", cc: "gcc", apt: "gcc", tested: true },
  { name: "linux-arm64", cc: "aarch64-linux-gnu-gcc", apt: "gcc-aarch64-linux-gnu", tested: false },
  { name: "linux-x64-musl", cc: "musl-gcc", apt: "musl-tools", tested: false },
];

const has = (command) => spawnSync("sh", ["-c", `command -v ${command}`]).status === 0;

if (process.platform !== "linux" || process.arch !== "x64") {
  console.error(`catzilla: the package's binaries are built on linux-x64, not ${process.platform}-${process.arch}`);
  process.exit(1);
}
// Node's headers (node_api.h, uv.h, zlib.h) beside the Node.js that runs us, or npm's nodedir.
const prefix = process.env.npm_config_nodedir ?? join(dirname(process.execPath), "..");
const headers = join(prefix, "include", "node");
if (!existsSync(join(headers, "node_api.h"))) {
  console.error(`catzilla: Node's headers are not in ${headers} (set npm_config_nodedir to a Node.js source or headers tree)`);
  process.exit(1);
}

const sources = readdirSync(join(root, "native", "src")).filter((f) => f.endsWith(".c")).sort().map((f) => join("native", "src", f));
rmSync(out, { recursive: true, force: true });
let failed = false;
for (const target of TARGETS) {
  if (!has(target.cc)) {
    const required = target.name === "linux-x64" || process.env.CI === "true";
    console.error(`catzilla: ${target.name}: no ${target.cc} (Debian package ${target.apt}); ${required ? "failing" : "skipped"}`);
    failed ||= required;
    continue;
  }
  const dir = join(out, target.name);
  mkdirSync(dir, { recursive: true });
  // The flags of binding.gyp, stripped: the same code as a build from source.
  const result = spawnSync(target.cc, [
    "-shared", "-fPIC", "-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-fvisibility=hidden", "-s",
    "-DNAPI_VERSION=8", `-I${headers}`, "-Inative/src", ...sources, "-o", join(dir, "catzilla.node"),
  ], { cwd: root, stdio: "inherit" });
  if (result.status !== 0) {
    console.error(`catzilla: ${target.name}: ${target.cc} failed`);
    failed = true;
    continue;
  }
  console.error(`catzilla: built prebuilds/${target.name}/catzilla.node with ${target.cc}`);
}
process.exit(failed ? 1 : 0);
