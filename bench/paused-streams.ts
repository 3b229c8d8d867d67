/**
 * What a stream whose reader stopped reading holds in the server: BENCH_PAUSED connections
 * (default 1,000) read the head and a first piece of a generator stream of 1 KiB chunks, then
 * stop (bench/paused-clients.ts), so that the kernel's buffers fill and the stream waits on
 * backpressure. Server memory growth per stream: RSS as users see it, and RSS and `external` (the
 * Buffers' memory) after full collections. Catzilla with the default chunkSize (64 KiB) and with
 * 8 KiB, node:http writing the same chunks with write()/'drain' as its documentation shows.
 * Server on CPU 0, clients on CPU 1; rounds go over every server in turn; medians of BENCH_REPEAT.
 *
 *   npm run bench:paused
 *   BENCH_PAUSED=300 BENCH_REPEAT=1 npm run bench:paused
 */
import { spawn, type ChildProcess } from "node:child_process";
import { get } from "node:http";
import { cpus, totalmem } from "node:os";
import { MEMORY_SERVER, firstLine, medians, pinned, printTable, root, rssOf, settledMemory, startServer, stopServer, type Row } from "./harness.js";

const count = Number(process.env.BENCH_PAUSED ?? 1_000);
const repeat = Number(process.env.BENCH_REPEAT ?? 3);
const port = Number(process.env.BENCH_PORT ?? 9650);

interface Target {
  name: string;
  script: string;
  path: string;
  env: Record<string, string>;
}

const stream = "/stream?n=1000000000&size=1024";
const targets: Target[] = [
  { name: "catzilla", script: "examples/conformance.ts", path: stream, env: { MAX_CONNECTIONS: String(count + 100) } },
  { name: "catzilla chunkSize 8 KiB", script: "examples/conformance.ts", path: `${stream}&chunkSize=8192`, env: { MAX_CONNECTIONS: String(count + 100) } },
  { name: "node:http", script: "bench/peers/node-http.ts", path: stream, env: {} },
];

function warmUp(path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    get({ host: "127.0.0.1", port, path, agent: false }, (res) => {
      res.once("data", () => {
        res.destroy();
        resolve();
      });
    }).on("error", reject);
  });
}

async function measure(target: Target): Promise<Record<string, number>> {
  const server = await startServer(target.name, target.script, { ...target.env, PORT: String(port) }, MEMORY_SERVER);
  let client: ChildProcess | null = null;
  try {
    for (let i = 0; i < 50; i++) await warmUp(target.path);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const idle = await settledMemory(server);
    const idleRss = rssOf(server.pid!);
    const [command, args] = pinned(1, process.execPath, ["--import", "tsx", "bench/paused-clients.ts"]);
    client = spawn(command, args, {
      cwd: root,
      env: { ...process.env, URL: `http://127.0.0.1:${port}${target.path}`, COUNT: String(count), HOLD_MS: "300000", HOLD_SETTLE_MS: "3000" },
      stdio: ["pipe", "pipe", "inherit"],
    });
    const line = await firstLine(client, 120_000, "the paused clients");
    if (!line.startsWith(`ready ${count} failed 0`)) throw new Error(`${target.name}: ${line}`);
    const rss = rssOf(server.pid!);
    const held = await settledMemory(server);
    return {
      rss: (rss - idleRss) / count,
      settledRss: (held.rss - idle.rss) / count,
      external: (held.external - idle.external) / count,
    };
  } finally {
    client?.stdin?.end();
    client?.kill("SIGKILL");
    await stopServer(server);
  }
}

console.log(`node ${process.version}, ${cpus().length} × ${cpus()[0]?.model}, ${Math.round(totalmem() / 2 ** 30)} GiB; ` +
  `server on CPU 0, clients on CPU 1; ${count} paused streams; median of ${repeat}`);
const samples = new Map<string, Record<string, number[]>>();
for (let round = 0; round < repeat; round++) {
  for (const target of targets) {
    const figures = await measure(target);
    const into = samples.get(target.name) ?? {};
    for (const [key, value] of Object.entries(figures)) (into[key] ??= []).push(value);
    samples.set(target.name, into);
  }
}
const kb = (v: number): string => `${(v / 1024).toFixed(1)} KB`;
const rows: Row[] = [
  ["rss", "server RSS per paused stream", kb],
  ["settledRss", "server RSS per paused stream, after full collections", kb],
  ["external", "external (Buffer) memory per paused stream, after full collections", kb, "≤ 66 KB (64 KiB + 2 KiB)"],
];
printTable(medians(samples), targets.map((t) => t.name), rows);
process.exit(0);
