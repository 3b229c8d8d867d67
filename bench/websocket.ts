/**
 * WebSocket benchmark: Catzilla against ws (with and without bufferutil), uWebSockets.js and
 * Socket.IO, in one run. Server on CPU 0, the load generator (bench/ws-load.ts, one process) on
 * CPU 1; medians of BENCH_REPEAT rounds of BENCH_SECONDS runs, each round over every server in turn.
 *
 *   npm run bench:ws
 *   BENCH_SECONDS=2 BENCH_REPEAT=1 BENCH_IDLE_CONNECTIONS=2000 npm run bench:ws
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { cpus, totalmem } from "node:os";
import { MEMORY_SERVER, baselineTargets, cpuMicros, firstLine, idleMemory, medians, pinned, printTable, root, startServer, stopServer, type IdleMemory, type Row } from "./harness.js";
const seconds = Number(process.env.BENCH_SECONDS ?? 4);
const repeat = Number(process.env.BENCH_REPEAT ?? 3);
const idleConnections = Number(process.env.BENCH_IDLE_CONNECTIONS ?? 15_000);
const port = Number(process.env.BENCH_PORT ?? 9400);
const only = process.env.BENCH_ONLY?.split(",");

interface Target {
  name: string;
  script: string;
  protocol: "ws" | "socketio";
  env?: Record<string, string>;
}

const targets: Target[] = [
  { name: "catzilla native", script: "examples/conformance.ts", protocol: "ws", env: { CATZILLA_ENGINE: "native", CATZILLA_HTTP_ENGINE: "node" } },
  { name: "catzilla node", script: "examples/conformance.ts", protocol: "ws", env: { CATZILLA_ENGINE: "node", CATZILLA_HTTP_ENGINE: "node" } },
  // The native WebSocket engine behind the native HTTP engine (the handshake parsed in C).
  { name: "catzilla native-http", script: "examples/conformance.ts", protocol: "ws", env: { CATZILLA_ENGINE: "native", CATZILLA_HTTP_ENGINE: "native" } },
  { name: "ws+bufferutil", script: "bench/peers/ws-echo.ts", protocol: "ws" },
  { name: "ws", script: "bench/peers/ws-echo.ts", protocol: "ws", env: { WS_NO_BUFFER_UTIL: "1" } },
  { name: "uWebSockets.js", script: "bench/peers/uws-echo.ts", protocol: "ws" },
  { name: "socket.io", script: "bench/peers/socketio-echo.ts", protocol: "socketio" },
  ...baselineTargets(),
].filter((t) => process.env.BENCH_PEERS === undefined || process.env.BENCH_PEERS.split(",").includes(t.name)) as Target[];

const wanted = (key: string): boolean => only === undefined || only.some((o) => key.startsWith(o));

function start(target: Target): Promise<ChildProcess> {
  return startServer(target.name, target.script, { ...target.env, PORT: String(port), MAX_CONNECTIONS: String(idleConnections + 1000) });
}

function load(target: Target, env: Record<string, string>): Record<string, number> {
  const [command, args] = pinned(1, process.execPath, ["--import", "tsx", "bench/ws-load.ts"]);
  const run = spawnSync(command, args, {
    cwd: root,
    encoding: "utf8",
    timeout: (seconds + 60) * 1000,
    env: { ...process.env, URL: `ws://127.0.0.1:${port}/echo`, PROTOCOL: target.protocol, SECONDS: String(seconds), ...env },
  });
  const line = run.stdout.trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(line) as Record<string, number>;
  } catch {
    throw new Error(`load generator failed for ${target.name}: ${run.stdout}\n${run.stderr}`);
  }
}

async function idle(target: Target): Promise<IdleMemory> {
  const server = await startServer(target.name, target.script, {
    ...target.env, PORT: String(port), MAX_CONNECTIONS: String(idleConnections + 1000),
  }, MEMORY_SERVER);
  try {
    await new Promise((resolve) => setTimeout(resolve, 500));
    // Warm up the handshake path so its code and first buffers are not billed to the connections.
    load(target, { MODE: "echo", CONNECTIONS: "50", INFLIGHT: "1", SECONDS: "1" });
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    return await idleMemory(server.pid!, idleConnections, async (count) => {
      const [command, args] = pinned(1, process.execPath, ["--import", "tsx", "bench/ws-load.ts"]);
      const client = spawn(command, args, {
        cwd: root,
        env: { ...process.env, URL: `ws://127.0.0.1:${port}/echo`, PROTOCOL: target.protocol, MODE: "idle", CONNECTIONS: String(count) },
        stdio: ["pipe", "pipe", "inherit"],
      });
      const line = await firstLine(client, 120_000, "the idle clients");
      if (!line.startsWith(`ready ${count} `)) {
        client.kill("SIGKILL");
        throw new Error(`${target.name}: ${line}`);
      }
      return client;
    });
  } finally {
    await stopServer(server);
  }
}

async function main(): Promise<void> {
  console.log(`node ${process.version}, ${cpus().length} × ${cpus()[0]?.model}, ${Math.round(totalmem() / 2 ** 30)} GiB; ` +
    `server on CPU 0, load generator on CPU 1; ${seconds} s per run, median of ${repeat}`);
  // Rounds go over all servers in turn (each started afresh), so that the machine's drift over the
  // minutes of a run weighs on every server alike instead of on whichever was measured last.
  const samples = new Map<string, Record<string, number[]>>(targets.map((t) => [t.name, {}]));
  const add = (target: Target, key: string, value: number): void => void (samples.get(target.name)![key] ??= []).push(value);
  for (let round = 0; round < repeat; round++) {
    process.stdout.write(`round ${round + 1} of ${repeat}… `);
    const started = Date.now();
    for (const target of targets) {
      const server = await start(target);
      try {
        if (wanted("echo")) {
          const cpu = cpuMicros(server.pid!);
          const r = load(target, { MODE: "echo", CONNECTIONS: "100", INFLIGHT: "16", SIZE: "32" });
          add(target, "echo", r.msgsPerSec!);
          add(target, "echo-client-cpu", r.clientCpu!);
          // Server CPU over the whole run (connecting included) per echoed message.
          add(target, "echo-server-cpu", (cpuMicros(server.pid!) - cpu) / r.messages!);
        }
        if (wanted("large") && target.protocol === "ws") {
          add(target, "large", load(target, { MODE: "echo", CONNECTIONS: "4", INFLIGHT: "4", SIZE: "65536" }).bytesPerSec! / 1e6);
        }
        if (wanted("latency")) {
          const r = load(target, { MODE: "latency", SIZE: "32" });
          add(target, "p50", r.p50us!);
          add(target, "p99", r.p99us!);
        }
      } finally {
        await stopServer(server);
      }
    }
    console.log(`${((Date.now() - started) / 1000).toFixed(0)} s`);
  }
  if (wanted("idle")) {
    for (const target of targets) {
      process.stdout.write(`idle connections on ${target.name}… `);
      try {
        const memory = await idle(target);
        add(target, "idle", memory.perConnection);
        add(target, "idle-marginal", memory.marginal);
        add(target, "idle-settled", memory.settled);
        add(target, "idle-rss", memory.settledRss);
        console.log("done");
      } catch (error) {
        console.error((error as Error).message);
      }
    }
  }
  const results = medians(samples);
  const rows: Row[] = [
    ["echo", "echo msgs/s (100 conns × 16 in flight, 32 B)", (v) => Math.round(v).toLocaleString("en-US"), "node ≥ 4× ws+bufferutil; native ≥ 8× ws, ≥ 1.2× uWS"],
    ["echo-server-cpu", "server CPU per echoed message (µs)", (v) => v.toFixed(2), "native ≤ 0.8× uWS"],
    ["echo-client-cpu", "load generator CPU during echo (cores)", (v) => v.toFixed(2)],
    ["large", "64 KiB messages MB/s (4 conns × 4 in flight)", (v) => v.toFixed(0), "node ≥ 1.5× ws+bufferutil; native ≥ 1.1× uWS"],
    ["p50", "round trip p50 (µs)", (v) => v.toFixed(0)],
    ["p99", "round trip p99 (µs)", (v) => v.toFixed(0), "node ≤ ws+bufferutil; native ≤ uWS"],
    ["idle", `server RSS per idle connection (0 → ${idleConnections})`, (v) => `${(v / 1024).toFixed(2)} KB`, "node ≤ 0.8× ws"],
    ["idle-marginal", `server RSS per added idle connection (${Math.round(idleConnections / 3)} → ${idleConnections})`, (v) => `${(v / 1024).toFixed(2)} KB`],
    ["idle-settled", `server RSS per idle connection (0 → ${idleConnections}), both read after full garbage collections`, (v) => `${(v / 1024).toFixed(2)} KB`, "native ≤ 600 B"],
    ["idle-rss", `server RSS at ${idleConnections} idle connections, after a full collection (MB)`, (v) => (v / 2 ** 20).toFixed(1)],
  ];
  printTable(results, targets.map((t) => t.name), rows);
}

await main();
