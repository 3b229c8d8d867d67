/**
 * The app behind Debian's nginx and HAProxy, with the configurations of examples/deploy/ as
 * docs/deployment.md gives them (only ports changed): python-websockets (compression on, its
 * frames coalesced by the proxy) gets every echo byte for byte, an event stream's first bytes and
 * its events pass at once, a large file passes whole and with Range.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createConformanceApp } from "../../examples/conformance.js";
import { foreignEnv, freePort, median, serve, waitFor, type Served } from "../helpers.js";

const deploy = fileURLToPath(new URL("../../examples/deploy/", import.meta.url));
const fixtures = fileURLToPath(new URL("../fixtures/files/", import.meta.url));
const PYTHON = "/usr/bin/python3";

let served: Served;
let dir: string;
before(async () => {
  served = await serve(createConformanceApp({ handleSignals: false, shutdownTimeoutMs: 2_000 }));
  dir = mkdtempSync(join(tmpdir(), "catzilla-proxies-"));
});
after(async () => {
  await served.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Proxy {
  name: string;
  binary: string;
  /** Write the configuration for `port` → the app; returns the command line. */
  start(port: number): [string, string[]];
}

const proxies: Proxy[] = [
  {
    name: "nginx",
    binary: "/usr/sbin/nginx",
    start(port) {
      const root = join(dir, "nginx");
      mkdirSync(root, { recursive: true });
      const site = readFileSync(join(deploy, "nginx.conf"), "utf8")
        .replace("server 127.0.0.1:8000;", `server 127.0.0.1:${served.port};`)
        .replace("listen 80;", `listen 127.0.0.1:${port};`);
      writeFileSync(join(root, "site.conf"), site);
      // The least of a main configuration around it: one process in the foreground, files here.
      writeFileSync(join(root, "nginx.conf"), [
        "daemon off;", "master_process off;", "worker_processes 1;", `pid ${root}/nginx.pid;`, `error_log ${root}/error.log warn;`,
        "events { worker_connections 1024; }",
        `http { access_log off; client_body_temp_path ${root}/body; proxy_temp_path ${root}/proxy; fastcgi_temp_path ${root}/fastcgi;`,
        `  uwsgi_temp_path ${root}/uwsgi; scgi_temp_path ${root}/scgi; include ${root}/site.conf; }`,
      ].join("\n"));
      return [this.binary, ["-e", `${root}/error.log`, "-p", root, "-c", `${root}/nginx.conf`]];
    },
  },
  {
    name: "haproxy",
    binary: "/usr/sbin/haproxy",
    start(port) {
      const config = readFileSync(join(deploy, "haproxy.cfg"), "utf8")
        .replace("server app 127.0.0.1:8000", `server app 127.0.0.1:${served.port}`)
        .replace("bind 127.0.0.1:80", `bind 127.0.0.1:${port}`);
      const file = join(dir, "haproxy.cfg");
      writeFileSync(file, config);
      return [this.binary, ["-db", "-f", file]];
    },
  },
];

/** Start a proxy in front of the app; resolves with its port once it accepts connections. */
async function startProxy(proxy: Proxy): Promise<{ port: number; child: ChildProcess; output: () => string }> {
  const port = await freePort();
  const [command, args] = proxy.start(port);
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], env: foreignEnv() });
  let output = "";
  child.stdout!.on("data", (d) => (output += d));
  child.stderr!.on("data", (d) => (output += d));
  const accepts = (): Promise<boolean> => new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1", () => {
      socket.destroy();
      resolve(true);
    });
    socket.on("error", () => resolve(false));
  });
  let up = false;
  await waitFor(() => {
    if (child.exitCode !== null) throw new Error(`${proxy.name} exited: ${output}`);
    void accepts().then((ok) => (up ||= ok));
    return up;
  }, 10_000, `${proxy.name} to listen`);
  return { port, child, output: () => output };
}

async function stopProxy(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 3_000);
  await exited;
  clearTimeout(timer);
}

// python-websockets: every message sent at once (the proxy coalesces them), echoes compared.
const PYTHON_CLIENT = `
import asyncio, json, os, random, sys
import websockets

async def main(url, count):
    rnd = random.Random(7)
    messages = []
    for i in range(count):
        size = rnd.choice([0, 1, 100, 1000, 1500, 5000, 70000, 300000])
        kind = i % 3
        if kind == 0:
            messages.append("m%d-" % i + "z" * (i % 3000))
        elif kind == 1:
            messages.append(os.urandom(size))
        else:
            messages.append(bytes((j * 7 + (j >> 9)) & 255 for j in range(size)))
    async with websockets.connect(url, compression="deflate", max_size=2 ** 24, max_queue=None) as ws:
        for m in messages:
            await ws.send(m)
        bad = []
        for i, m in enumerate(messages):
            got = await ws.recv()
            if got != m:
                bad.append(i)
        print(json.dumps({"count": len(messages), "bad": bad[:20], "extensions": [e.name for e in ws.extensions]}))

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
`;

function pythonEchoes(port: number, count: number): Promise<{ count: number; bad: number[]; extensions: string[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, ["-c", PYTHON_CLIENT, `ws://127.0.0.1:${port}/echo`, String(count)], { stdio: ["ignore", "pipe", "pipe"], env: foreignEnv() });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(JSON.parse(out.trim().split("\n").at(-1)!));
      else reject(new Error(`python-websockets exited with ${code}: ${err.slice(-2000)}`));
    });
  });
}

/** Milliseconds from each broadcast to its event arriving through the proxy, after the stream's first bytes. */
async function eventDelays(port: number, feed: string, count: number): Promise<{ firstBytesMs: number; delays: number[] }> {
  const socket = connect(port, "127.0.0.1");
  socket.on("error", () => undefined);
  let text = "";
  let wake: (() => void) | null = null;
  socket.on("data", (d: Buffer) => {
    text += d.toString("latin1");
    wake?.();
  });
  const until = async (what: string, timeoutMs: number): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (!text.includes(what)) {
      if (Date.now() > deadline) throw new Error(`no ${JSON.stringify(what)} within ${timeoutMs} ms; got ${JSON.stringify(text.slice(-300))}`);
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 20);
      });
    }
  };
  const started = performance.now();
  socket.write(`GET /news/${feed} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  try {
    await until(": open", 5_000);
    const firstBytesMs = performance.now() - started;
    const room = served.app.rooms.get(`news:${feed}`)!;
    const delays: number[] = [];
    for (let i = 0; i < count; i++) {
      const sent = performance.now();
      room.broadcast(`event-${i}`);
      await until(`data: event-${i}\n`, 5_000);
      delays.push(performance.now() - sent);
    }
    return { firstBytesMs, delays };
  } finally {
    socket.destroy();
  }
}

/** GET through the proxy: status and body. */
async function download(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Buffer }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers });
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
}

test("docs/deployment.md shows the configurations this test runs", () => {
  const doc = readFileSync(fileURLToPath(new URL("../../docs/deployment.md", import.meta.url)), "utf8");
  for (const [lang, file] of [["nginx", "nginx.conf"], ["haproxy", "haproxy.cfg"]]) {
    const block = new RegExp("```" + lang + "\\n([\\s\\S]*?)```").exec(doc)?.[1];
    assert.equal(block, readFileSync(join(deploy, file), "utf8"), `the ${lang} block of docs/deployment.md is examples/deploy/${file}`);
  }
});

for (const proxy of proxies) {
  test(`behind ${proxy.name} as docs/deployment.md configures it: WebSockets, event streams, large files`, { timeout: 120_000 }, async () => {
    assert.ok(existsSync(proxy.binary), `${proxy.name} not found at ${proxy.binary}; install it (apt-get install ${proxy.name})`);
    assert.equal(spawnSync(PYTHON, ["-c", "import websockets"], { env: foreignEnv() }).status, 0, "python3-websockets is not installed (apt-get install python3-websockets)");
    const { port, child } = await startProxy(proxy);
    try {
      const echoes = await pythonEchoes(port, 300);
      assert.deepEqual(echoes.extensions, ["permessage-deflate"]);
      assert.deepEqual(echoes.bad, [], `${proxy.name}: echoes that came back different`);
      assert.equal(echoes.count, 300);

      const { firstBytesMs, delays } = await eventDelays(port, `proxied-${proxy.name}`, 15);
      assert.ok(firstBytesMs < 1_000, `${proxy.name}: the stream's first bytes after ${firstBytesMs.toFixed(0)} ms`);
      // Held back by the proxy, events arrive 100-200 ms late; passed at once, in a millisecond or two.
      assert.ok(median(delays) < 50, `${proxy.name}: events arrive ${delays.map((d) => d.toFixed(0)).join(", ")} ms after their broadcast`);

      const file = readFileSync(join(fixtures, "random.bin"));
      const whole = await download(port, "/files/random.bin");
      assert.equal(whole.status, 200);
      assert.ok(whole.body.equals(file), "the whole file");
      const part = await download(port, "/files/random.bin", { Range: "bytes=1000-1999" });
      assert.equal(part.status, 206);
      assert.ok(part.body.equals(file.subarray(1000, 2000)), "the range");
      // 256 MiB streamed through at the client's pace (nginx must not spool it to disk first).
      const large = await fetch(`http://127.0.0.1:${port}/stream?n=4096&size=65536`);
      let length = 0;
      for await (const chunk of large.body!) length += (chunk as Uint8Array).byteLength;
      assert.equal(length, 4096 * 65536);
    } finally {
      await stopProxy(child);
    }
  });
}
