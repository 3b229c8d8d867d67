/**
 * SSE room subscribers (`room.eventSource()` with history: /news/{name} of the conformance app) on
 * each engine. On the native engine they are handed to C after their headers (from node:http, or
 * from the native HTTP engine: "native-http"); on node:net they keep their request, response and
 * socket.
 * - Idle: BENCH_SSE_SUBSCRIBERS connections (default 10,000), server RSS (bench/sse-clients.ts).
 * - Fan-out: BENCH_SSE_FANOUT subscribers (default 5,000), 100 broadcasts of a short text (POST
 *   /news/{name}), each once every subscriber got the previous one (bench/sse-fanout-client.ts):
 *   deliveries/s and the server's CPU per delivery.
 * Server on CPU 0, the clients on CPU 1; medians of BENCH_REPEAT runs.
 *
 *   npm run bench:sse-room
 *   BENCH_SSE_SUBSCRIBERS=3000 BENCH_REPEAT=1 npm run bench:sse-room
 */
import { spawn, type ChildProcess } from "node:child_process";
import { get } from "node:http";
import { cpus, totalmem } from "node:os";
import { MEMORY_SERVER, firstLine, generatorResult, idleMemory, median, pinned, printTable, root, startServer, stopServer, type IdleMemory, type Row } from "./harness.js";

const subscribers = Number(process.env.BENCH_SSE_SUBSCRIBERS ?? 10_000);
const fanoutSubscribers = Number(process.env.BENCH_SSE_FANOUT ?? 5_000);
const repeat = Number(process.env.BENCH_REPEAT ?? 3);
const port = Number(process.env.BENCH_PORT ?? 9600);
const settleMs = Number(process.env.BENCH_SETTLE_MS ?? 3_000);
/** Targets: the WebSocket/stream engine, and the HTTP engine the subscribers arrive on. */
const engines = (["native", "native-http", "node"] as const).filter((e) => process.env.BENCH_PEERS === undefined || process.env.BENCH_PEERS.split(",").includes(e));
const engineEnv = (engine: (typeof engines)[number]): Record<string, string> => ({
  CATZILLA_ENGINE: engine === "node" ? "node" : "native",
  CATZILLA_HTTP_ENGINE: engine === "native-http" ? "native" : "node",
});

async function measure(engine: (typeof engines)[number]): Promise<Record<string, number>> {
  const server = await startServer(`catzilla ${engine}`, "examples/conformance.ts", {
    ...engineEnv(engine), PORT: String(port), MAX_CONNECTIONS: String(subscribers + 1000),
  }, MEMORY_SERVER);
  let memory: IdleMemory;
  try {
    // Warm up: subscribers that join and leave at once compile the code paths first.
    for (let i = 0; i < 200; i++) {
      await new Promise<void>((resolve, reject) => {
        get({ host: "127.0.0.1", port, path: "/news/warm-up", agent: false }, (res) => {
          res.destroy();
          resolve();
        }).on("error", reject);
      });
    }
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    memory = await idleMemory(server.pid!, subscribers, async (count) => {
      const [command, args] = pinned(1, process.execPath, ["--import", "tsx", "bench/sse-clients.ts"]);
      const client = spawn(command, args, {
        cwd: root,
        env: { ...process.env, URL: `http://127.0.0.1:${port}/news/idle`, COUNT: String(count), HOLD_MS: "300000" },
        stdio: ["pipe", "pipe", "inherit"],
      });
      const line = await firstLine(client, 120_000, "the SSE clients");
      if (!line.startsWith(`ready ${count} failed 0`)) {
        client.kill("SIGKILL");
        throw new Error(`${engine}: ${line}`);
      }
      return client;
    }, settleMs);
  } finally {
    await stopServer(server);
  }
  // Fan-out on a server with Node.js's own memory settings.
  const fanOutServer = await startServer(`catzilla ${engine}`, "examples/conformance.ts", {
    ...engineEnv(engine), PORT: String(port), MAX_CONNECTIONS: String(fanoutSubscribers + 1000),
  });
  try {
    return {
      idle: memory.perConnection, marginal: memory.marginal, settled: memory.settled, rss: memory.settledRss,
      ...(await fanOut(fanOutServer)),
    };
  } finally {
    await stopServer(fanOutServer);
  }
}

async function fanOut(server: ChildProcess): Promise<Record<string, number>> {
  const [command, args] = pinned(1, process.execPath, ["--import", "tsx", "bench/sse-fanout-client.ts"]);
  const client = spawn(command, args, {
    cwd: root,
    env: { ...process.env, URL: `http://127.0.0.1:${port}/news/fanout`, COUNT: String(fanoutSubscribers), BROADCASTS: "100" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const { result, serverCpu } = await generatorResult(client, server.pid!, 300_000, "the SSE fan-out");
  return {
    deliveriesPerSec: result.deliveriesPerSec!,
    cpuPerDelivery: serverCpu / result.deliveries!,
    lost: result.lost!,
  };
}

console.log(`node ${process.version}, ${cpus().length} × ${cpus()[0]?.model}, ${Math.round(totalmem() / 2 ** 30)} GiB; ` +
  `server on CPU 0, clients on CPU 1; median of ${repeat}`);
const results: Record<string, Record<string, number>> = {};
for (const engine of engines) {
  const samples: Record<string, number[]> = {};
  for (let round = 0; round < repeat; round++) {
    for (const [key, value] of Object.entries(await measure(engine))) (samples[key] ??= []).push(value);
  }
  results[`catzilla ${engine}`] = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));
}
const kb = (v: number): string => `${(v / 1024).toFixed(2)} KB`;
const rows: Row[] = [
  ["idle", `server RSS per idle SSE room subscriber (0 → ${subscribers})`, kb],
  ["marginal", `server RSS per added subscriber (${Math.round(subscribers / 3)} → ${subscribers})`, kb],
  ["settled", `server RSS per idle subscriber (0 → ${subscribers}), both read after full garbage collections`, kb, "native ≤ 1 KB"],
  ["rss", `server RSS at ${subscribers} subscribers, after a full collection (MB)`, (v) => (v / 2 ** 20).toFixed(1)],
  ["deliveriesPerSec", `fan-out to ${fanoutSubscribers} subscribers: deliveries/s`, (v) => Math.round(v).toLocaleString("en-US")],
  ["cpuPerDelivery", "fan-out: server CPU per delivery (µs)", (v) => v.toFixed(2)],
  ["lost", "fan-out: deliveries lost", (v) => String(v), "0"],
];
printTable(results, engines.map((e) => `catzilla ${e}`), rows);
process.exit(0);
