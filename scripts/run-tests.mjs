// Runs every *.test.ts under src/ and test/ with node:test, TypeScript loaded by tsx.
// Usage: node scripts/run-tests.mjs [filter...]   (a file runs when its path holds any filter)
import { readdirSync } from "node:fs";
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
const result = spawnSync(process.execPath, [
  "--conditions=catzilla-source", "--import", "tsx", "--test", "--test-reporter=spec", ...files,
], { cwd: root, stdio: "inherit" });
process.exit(result.status ?? 1);
