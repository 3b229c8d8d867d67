/**
 * The package as `npm pack` makes it from a fresh checkout (the repository's files, no dist/):
 * `prepack` builds the JavaScript and declarations, and the tarball holds what users need and no
 * tests, fixtures, benchmarks or examples.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freshCheckout } from "./helpers.js";

const root = fileURLToPath(new URL("..", import.meta.url));

test("npm pack of a fresh checkout ships dist/ (built by prepack) and nothing of the tests", { timeout: 120_000 }, () => {
  const checkout = mkdtempSync(join(tmpdir(), "catzilla-pack-"));
  try {
    freshCheckout(checkout);
    const listing = JSON.parse(execFileSync("npm", ["pack", "--dry-run", "--json"], {
      cwd: checkout, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, npm_config_loglevel: "error" },
    })) as Array<{ files: Array<{ path: string }> }>;
    const files = listing[0]!.files.map((f) => f.path);
    for (const needed of ["dist/index.js", "dist/index.d.ts", "dist/testing/index.js", "dist/redis/index.js", "dist/redis/index.d.ts",
      "native/src/engine.c", "binding.gyp", "scripts/build-native.mjs", "package.json", "README.md", "prebuilds/linux-x64/catzilla.node"]) {
      assert.ok(files.includes(needed), `${needed} is in the tarball`);
    }
    const unwanted = files.filter((f) => /^(test|bench|examples|docs)\//.test(f) || /\.test\.(ts|js)$/.test(f));
    assert.deepEqual(unwanted, [], "tests, benchmarks, examples and docs stay out of the tarball");
  } finally {
    rmSync(checkout, { recursive: true, force: true });
  }
});

test("catzilla/redis without ioredis installed says what to do", { timeout: 60_000 }, () => {
  // The built package in a directory of its own: no node_modules to find ioredis in.
  const app = mkdtempSync(join(tmpdir(), "catzilla-no-ioredis-"));
  try {
    cpSync(join(root, "dist"), join(app, "dist"), { recursive: true });
    writeFileSync(join(app, "package.json"), JSON.stringify({ type: "module" }));
    let message = "";
    try {
      execFileSync(process.execPath, ["--input-type=module", "-e", "await import('./dist/redis/index.js')"], { cwd: app, stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" });
    } catch (error) {
      message = String((error as { stderr?: string }).stderr);
    }
    assert.match(message, /catzilla\/redis needs the ioredis package.*npm install ioredis/);
  } finally {
    rmSync(app, { recursive: true, force: true });
  }
});
