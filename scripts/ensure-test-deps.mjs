// Makes sure what the tests need beyond npm is on the machine: Chromium for the browser test.
// On Debian/Ubuntu it installs the distribution's package (as root, or with sudo); elsewhere it
// says what to do. CHROMIUM_PATH points the tests at another Chromium.
import { existsSync } from "node:fs";
import { spawnSync } from "node:child_process";

const path = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
if (existsSync(path)) process.exit(0);

const has = (command) => spawnSync("sh", ["-c", `command -v ${command}`]).status === 0;
if (process.platform !== "linux" || !has("apt-get")) {
  console.error(`The browser test needs Chromium at ${path}. Install it, or set CHROMIUM_PATH to a Chromium or Chrome binary.`);
  process.exit(1);
}
const sudo = process.getuid?.() === 0 ? [] : ["sudo"];
const run = (args) => {
  console.log(`$ ${[...sudo, ...args].join(" ")}`);
  const result = spawnSync(sudo.length > 0 ? "sudo" : args[0], sudo.length > 0 ? args : args.slice(1), {
    stdio: ["ignore", "ignore", "inherit"],
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  });
  if (result.status !== 0) process.exit(result.status ?? 1);
};
run(["apt-get", "update", "-qq"]);
run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"]);
