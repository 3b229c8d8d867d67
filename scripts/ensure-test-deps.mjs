// Makes sure what the tests need beyond npm is on the machine: Chromium and Firefox ESR for the
// browser tests; nginx, HAProxy and python3-websockets for the proxy tests; redis-server for the
// Redis broker tests; and clang with its sanitizer and libFuzzer runtimes for the native engine's
// fuzz test (the AddressSanitizer run uses gcc's libasan); the cross compilers that build the
// package's linux-arm64 and linux-x64-musl binaries (the consumer test packs it). On Debian/Ubuntu it installs the
// distribution's packages (as root, or with sudo); elsewhere it says what to do. CHROMIUM_PATH and
// FIREFOX_PATH point the tests at other browsers.
import { existsSync } from "node:fs";
import { spawnSync } from "node:child_process";

const has = (command) => spawnSync("sh", ["-c", `command -v ${command}`]).status === 0;
const chromium = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const firefox = process.env.FIREFOX_PATH ?? "/usr/bin/firefox-esr";
const missing = [];
if (!existsSync(chromium)) missing.push("chromium");
if (!existsSync(firefox)) missing.push("firefox-esr");
if (!has("redis-server")) missing.push("redis-server");
// The proxy tests: Debian's nginx and HAProxy in front of the server, python-websockets as a client.
if (!existsSync("/usr/sbin/nginx")) missing.push("nginx");
if (!existsSync("/usr/sbin/haproxy")) missing.push("haproxy");
if (spawnSync("/usr/bin/python3", ["-c", "import websockets"]).status !== 0) missing.push("python3-websockets");
if (process.platform === "linux" && !has("clang")) missing.push("clang", "libclang-rt-14-dev");
// The cross compiler and the arm64 C library's headers (only a Recommends of the compiler's package).
if (process.platform === "linux" && !has("aarch64-linux-gnu-gcc")) missing.push("gcc-aarch64-linux-gnu");
if (process.platform === "linux" && !existsSync("/usr/aarch64-linux-gnu/include/stdio.h")) missing.push("libc6-dev-arm64-cross");
if (process.platform === "linux" && !has("musl-gcc")) missing.push("musl-tools");
if (missing.length === 0) process.exit(0);

if (process.platform !== "linux" || !has("apt-get")) {
  console.error(`The tests need ${missing.join(" and ")}. Install them (Chromium: or set CHROMIUM_PATH to a Chromium or Chrome binary).`);
  process.exit(1);
}
const sudo = process.getuid?.() === 0 ? [] : ["sudo"];
const run = (args) => {
  console.log(`$ ${[...sudo, ...args].join(" ")}`);
  const [command, ...rest] = [...sudo, ...args];
  const result = spawnSync(command, rest, {
    stdio: ["ignore", "ignore", "inherit"],
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  });
  if (result.status !== 0) process.exit(result.status ?? 1);
};
run(["apt-get", "update", "-qq"]);
run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", ...missing]);
