/**
 * The package as an app gets it: `npm pack` of a fresh checkout, installed into a new app with
 * install scripts ignored (npm's allowScripts denying them, or `--ignore-scripts`), compiled with
 * TypeScript 5 and the newest release under the tsconfig each one's `tsc --init` writes, and run:
 * the native engine comes from the binary the package ships. Without a binary for the platform
 * the app runs on node:net and its log says why and what to do.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freshCheckout } from "./helpers.js";

const quiet = { ...process.env, npm_config_loglevel: "error", npm_config_fund: "false", npm_config_audit: "false", CATZILLA_ENGINE: "" };

const APP = `import { Catzilla, StreamingResponse } from "catzilla";
import { TestClient } from "catzilla/testing";

const app = new Catzilla();
app.get("/hello", () => "Hello");
app.get("/rows", () => new StreamingResponse((function* () { yield "a,b\\n"; })(), { mediaType: "text/csv" }));
app.websocket("/echo", { onMessage(ws, message) { ws.send(message); } });
app.websocket("/chat/{room}", {
  onOpen(ws) { app.rooms.getOrCreate(ws.params.room).add(ws); },
  onMessage(ws, message) { app.rooms.getOrCreate(ws.params.room).broadcast(message, { except: ws }); },
});
app.get("/live/{room}", (req) => app.rooms.getOrCreate(req.params.room).eventSource());
/** What a test of the app would use. */
export const testClient = (): TestClient => new TestClient(app);
const { url } = await app.listen({ port: 0 });
const body: string = await (await fetch(\`\${url}/hello\`)).text();
const engine = app.stats().engine;
console.log(JSON.stringify({ body, engine, url }));
await app.close();
`;

/** Whether an ELF file is for this machine number (62 x86-64, 183 AArch64). */
function elfMachine(path: string): number {
  const head = readFileSync(path).subarray(0, 20);
  assert.equal(head.toString("latin1", 1, 4), "ELF", `${path} is an ELF file`);
  return head.readUInt16LE(18);
}

/** The app as TypeScript emitted it (where `tsc --init`'s outDir put it). */
function compiledApp(dir: string): string {
  for (const path of [join(dir, "index.js"), join(dir, "dist", "index.js")]) if (existsSync(path)) return path;
  throw new Error(`no compiled app in ${dir}`);
}

describe("the package in an app", { timeout: 600_000 }, () => {
  let work = "";
  let tarball = "";
  let app = "";
  let appEnv: NodeJS.ProcessEnv = quiet;

  before(() => {
    work = mkdtempSync(join(tmpdir(), "catzilla-consumer-"));
    const checkout = join(work, "checkout");
    freshCheckout(checkout);
    const packed = JSON.parse(execFileSync("npm", ["pack", "--json", "--pack-destination", work], {
      cwd: checkout, encoding: "utf8", env: quiet, stdio: ["ignore", "pipe", "inherit"],
    })) as Array<{ filename: string }>;
    tarball = join(work, packed[0]!.filename);
    assert.ok(!existsSync(join(checkout, "prebuilds")), "postpack removed prebuilds/ from the checkout");
    app = join(work, "app");
    mkdirSync(app);
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
    // The app's machine has Node.js and npm, and no compiler (nor python3 or make) on PATH.
    const bin = join(work, "bin");
    mkdirSync(bin);
    symlinkSync(process.execPath, join(bin, "node"));
    symlinkSync(realpathSync(execFileSync("sh", ["-c", "command -v npm"], { encoding: "utf8" }).trim()), join(bin, "npm"));
    appEnv = { ...quiet, PATH: bin };
    execFileSync(join(bin, "npm"), ["install", "--ignore-scripts", tarball, "ts5@npm:typescript@5", "tsnew@npm:typescript@latest"], {
      cwd: app, env: appEnv, stdio: ["ignore", "inherit", "inherit"], timeout: 300_000,
    });
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  test("the tarball ships a binary per target and what is marked @internal stays out of its types", () => {
    const installed = join(app, "node_modules", "catzilla");
    assert.equal(elfMachine(join(installed, "prebuilds", "linux-x64", "catzilla.node")), 62);
    assert.equal(elfMachine(join(installed, "prebuilds", "linux-x64-musl", "catzilla.node")), 62);
    assert.equal(elfMachine(join(installed, "prebuilds", "linux-arm64", "catzilla.node")), 183);
    assert.ok(!existsSync(join(installed, "build")), "nothing was built at install");
    const session = readFileSync(join(installed, "dist", "websocket", "session.d.ts"), "utf8");
    assert.match(session, /receiveJson/);
    assert.doesNotMatch(session, /^\s+(joinedRoom|leftRoom)\(/m);
    assert.doesNotMatch(readFileSync(join(installed, "dist", "rooms", "room.d.ts"), "utf8"), /^\s+(deliverNext|receiveLogged)\(/m);
  });

  for (const [compiler, label] of [["ts5", "TypeScript 5"], ["tsnew", "the newest TypeScript"]] as const) {
    test(`compiles under ${label}'s tsc --init defaults, with and without skipLibCheck`, () => {
      const dir = join(app, compiler);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, "index.ts"), APP);
      const tsc = join(app, "node_modules", compiler, "bin", "tsc");
      const version = execFileSync(process.execPath, [tsc, "--version"], { cwd: dir, encoding: "utf8" }).trim();
      execFileSync(process.execPath, [tsc, "--init"], { cwd: dir, stdio: "ignore" });
      for (const flags of [[], ["--skipLibCheck", "false"]]) {
        const run = spawnSync(process.execPath, [tsc, "-p", ".", ...flags], { cwd: dir, encoding: "utf8" });
        assert.equal(run.status, 0, `${version} ${flags.join(" ")}:\n${run.stdout}${run.stderr}`);
      }
      compiledApp(dir);
    });
  }

  test("runs on the native engine from the package's binary, without an install script or a compiler", () => {
    assert.notEqual(spawnSync("/bin/sh", ["-c", "command -v gcc || command -v cc"], { env: appEnv }).status, 0, "no compiler on the app's PATH");
    const run = spawnSync(process.execPath, [compiledApp(join(app, "tsnew"))], { cwd: app, encoding: "utf8", env: appEnv, timeout: 30_000 });
    assert.equal(run.status, 0, run.stderr);
    const result = JSON.parse(run.stdout.trim().split("\n").pop()!) as { body: string; engine: string };
    assert.deepEqual({ body: result.body, engine: result.engine }, { body: "Hello", engine: "native" });
    assert.match(run.stdout, /WebSocket engine: native/);
  });

  test("without a binary for the platform it runs on node:net and says why and what to do", () => {
    const prebuilds = join(app, "node_modules", "catzilla", "prebuilds");
    rmSync(prebuilds, { recursive: true, force: true });
    const run = spawnSync(process.execPath, [compiledApp(join(app, "ts5"))], { cwd: app, encoding: "utf8", env: appEnv, timeout: 30_000 });
    assert.equal(run.status, 0, run.stderr);
    const result = JSON.parse(run.stdout.trim().split("\n").pop()!) as { engine: string };
    assert.equal(result.engine, "node");
    assert.match(run.stdout, /WebSocket engine: node:net, because the native engine cannot load: the package has no binary for linux-x64 and none was built here.*npm rebuild catzilla/);
  });
});
