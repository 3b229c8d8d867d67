/**
 * Fan-out benchmark: RECEIVERS WebSocket members in one room (default 10,000), 100 broadcasts of
 * 64 bytes, each sent when the previous one reached everybody. Catzilla (/room/{name} of the
 * conformance app) against ws (a loop over clients), uWebSockets.js (publish) and Socket.IO rooms.
 * Server on CPU 0, one load-generator process on CPU 1.
 *
 *   npm run bench:fanout
 *   BENCH_RECEIVERS=2000 BENCH_REPEAT=1 npm run bench:fanout
 */
import { spawn, spawnSync } from "node:child_process";
import { cpus, totalmem } from "node:os";
import { baselineTargets, generatorResult, medians, pinned, printTable, root, startServer, stopServer, type Row } from "./harness.js";

const receivers = Number(process.env.BENCH_RECEIVERS ?? 10_000);
const broadcasts = Number(process.env.BENCH_BROADCASTS ?? 100);
const repeat = Number(process.env.BENCH_REPEAT ?? 3);
const port = Number(process.env.BENCH_PORT ?? 9500);

const targets = [
  { name: "catzilla native", script: "examples/conformance.ts", protocol: "ws", env: { CATZILLA_ENGINE: "native" } },
  { name: "catzilla node", script: "examples/conformance.ts", protocol: "ws", env: { CATZILLA_ENGINE: "node" } },
  { name: "ws", script: "bench/peers/ws-room.ts", protocol: "ws" },
  { name: "uWebSockets.js", script: "bench/peers/uws-room.ts", protocol: "ws" },
  { name: "socket.io", script: "bench/peers/socketio-room.ts", protocol: "socketio" },
  ...baselineTargets(),
].filter((t) => process.env.BENCH_PEERS === undefined || process.env.BENCH_PEERS.split(",").includes(t.name));

async function run(target: (typeof targets)[number]): Promise<Record<string, number>> {
  const server = await startServer(target.name, target.script, { ...("env" in target ? target.env : {}), PORT: String(port), MAX_CONNECTIONS: String(receivers + 1000) });
  try {
    const [command, args] = pinned(1, process.execPath, ["--import", "tsx", "bench/ws-load.ts"]);
    const client = spawn(command, args, {
      cwd: root,
      env: {
        ...process.env, URL: `ws://127.0.0.1:${port}/room/bench`, PROTOCOL: target.protocol, MODE: "fanout",
        CONNECTIONS: String(receivers), BROADCASTS: String(broadcasts), SIZE: "64",
      },
      stdio: ["ignore", "pipe", "inherit"],
    });
    const { result, serverCpu } = await generatorResult(client, server.pid!, 300_000, `${target.name}: fan-out`);
    return { ...result, serverCpuPerDeliveryUs: serverCpu / result.deliveries! };
  } finally {
    await stopServer(server);
  }
}

/**
 * Two Catzilla servers joined by a redis-server of the benchmark's own: receivers split over
 * both, the sender on the first, so half of every broadcast crosses Redis.
 */
async function acrossRedis(): Promise<Record<string, number> | null> {
  if (spawnSync("sh", ["-c", "command -v redis-server"]).status !== 0) return null;
  const redisPort = port + 50;
  const redis = spawn("redis-server", ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
  await new Promise((resolve) => setTimeout(resolve, 500));
  const env = (p: number) => ({ PORT: String(p), MAX_CONNECTIONS: String(receivers + 1000), REDIS_URL: `redis://127.0.0.1:${redisPort}` });
  const first = await startServer("catzilla A", "examples/conformance.ts", env(port));
  const second = await startServer("catzilla B", "examples/conformance.ts", env(port + 1));
  try {
    const [command, args] = pinned(1, process.execPath, ["--import", "tsx", "bench/ws-load.ts"]);
    const run = spawnSync(command, args, {
      cwd: root,
      encoding: "utf8",
      timeout: 300_000,
      env: {
        ...process.env, URL: `ws://127.0.0.1:${port}/room/bench`, URL2: `ws://127.0.0.1:${port + 1}/room/bench`,
        MODE: "fanout", CONNECTIONS: String(receivers), BROADCASTS: String(broadcasts), SIZE: "64",
      },
    });
    return JSON.parse(run.stdout.trim().split("\n").pop()!) as Record<string, number>;
  } finally {
    await stopServer(first);
    await stopServer(second);
    redis.kill("SIGKILL");
  }
}

async function main(): Promise<void> {
  console.log(`node ${process.version}, ${cpus().length} × ${cpus()[0]?.model}, ${Math.round(totalmem() / 2 ** 30)} GiB; ` +
    `${receivers} receivers, ${broadcasts} broadcasts of 64 B; server on CPU 0, generator on CPU 1; median of ${repeat}`);
  // Rounds go over all servers in turn, so that the machine's drift weighs on every server alike.
  const samples = new Map<string, Record<string, number[]>>(targets.map((t) => [t.name, {}]));
  for (let round = 0; round < repeat; round++) {
    process.stdout.write(`round ${round + 1} of ${repeat}… `);
    for (const target of targets) {
      const values = samples.get(target.name)!;
      for (const [key, value] of Object.entries(await run(target))) (values[key] ??= []).push(value);
    }
    console.log("done");
  }
  const results = medians(samples);
  const rows: Row[] = [
    ["deliveriesPerSec", "deliveries/s", (v) => Math.round(v).toLocaleString("en-US"), "≥ ws, ≥ uWebSockets.js (native)"],
    ["p99ms", "p99 publish → last receiver (ms)", (v) => v.toFixed(1), "≤ ws"],
    ["serverCpuPerDeliveryUs", "server CPU per delivery (µs)", (v) => v.toFixed(2), "≤ 0.5× ws"],
    ["clientCpu", "load generator CPU (cores)", (v) => v.toFixed(2), ""],
    ["lost", "deliveries lost", (v) => String(v), "0"],
  ];
  printTable(results, targets.map((t) => t.name), rows, ["lost"]);
  if (process.env.BENCH_SKIP_REDIS === undefined) {
    const redis = await acrossRedis();
    if (redis === null) console.log("\nredis-server not found: the cross-server figure is skipped");
    else {
      console.log(`\nTwo Catzilla servers joined by Redis (receivers split over both, sender on the first): ` +
        `${Math.round(redis.deliveriesPerSec!).toLocaleString("en-US")} deliveries/s, p99 ${redis.p99ms!.toFixed(1)} ms, lost ${redis.lost}`);
    }
  }
}

await main();
