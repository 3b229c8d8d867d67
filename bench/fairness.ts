/**
 * Fairness: how long other clients wait while the server is under load. A probe process
 * (bench/fairness-probe.ts) times GET /hello and a WebSocket echo, one at a time, first with the
 * server idle, then while bench/fairness-load.ts runs 4 streams read as fast as loopback allows,
 * one WebSocket client flooding /echo, and a room of BENCH_MEMBERS (default 5,000) members in
 * which a broadcast follows the previous one's return. Catzilla on both engines (the conformance
 * app), node:http with ws, and uWebSockets.js, doing the same. Server on CPU 0, load and probe on
 * CPU 1; rounds go over every server in turn; medians of BENCH_REPEAT.
 *
 *   npm run bench:fairness
 *   BENCH_MEMBERS=1000 BENCH_REPEAT=1 npm run bench:fairness
 */
import { spawn, type ChildProcess } from "node:child_process";
import { cpus, totalmem } from "node:os";
import { firstLine, generatorResult, medians, pinned, printTable, root, startServer, stopServer, type Row } from "./harness.js";

const members = Number(process.env.BENCH_MEMBERS ?? 5_000);
const repeat = Number(process.env.BENCH_REPEAT ?? 3);
const seconds = Number(process.env.BENCH_SECONDS ?? 6);
const port = Number(process.env.BENCH_PORT ?? 9750);

const targets: Array<{ name: string; script: string; env: Record<string, string> }> = [
  { name: "catzilla native", script: "examples/conformance.ts", env: { CATZILLA_ENGINE: "native" } },
  { name: "catzilla node", script: "examples/conformance.ts", env: { CATZILLA_ENGINE: "node" } },
  { name: "node:http + ws", script: "bench/peers/node-ws-all.ts", env: {} },
  { name: "uWebSockets.js", script: "bench/peers/uws-all.ts", env: {} },
];
const chosen = targets.filter((t) => process.env.BENCH_PEERS === undefined || process.env.BENCH_PEERS.split(",").includes(t.name));

function tsx(script: string, env: Record<string, string>, stdin: "ignore" | "pipe"): ChildProcess {
  const [command, args] = pinned(1, process.execPath, ["--import", "tsx", script]);
  return spawn(command, args, { cwd: root, env: { ...process.env, ...env }, stdio: [stdin, "pipe", "inherit"] });
}

async function probe(server: ChildProcess, what: string): Promise<Record<string, number>> {
  const client = tsx("bench/fairness-probe.ts", { URL: `http://127.0.0.1:${port}`, SECONDS: String(seconds) }, "ignore");
  return (await generatorResult(client, server.pid!, seconds * 1000 + 30_000, what)).result;
}

async function measure(target: (typeof targets)[number]): Promise<Record<string, number>> {
  const server = await startServer(target.name, target.script, { ...target.env, PORT: String(port), MAX_CONNECTIONS: String(members + 1000) });
  let load: ChildProcess | null = null;
  try {
    const idle = await probe(server, `${target.name}: idle probe`);
    load = tsx("bench/fairness-load.ts", { URL: `http://127.0.0.1:${port}`, MEMBERS: String(members) }, "pipe");
    const line = await firstLine(load, 120_000, `${target.name}: the load`);
    if (line !== "loaded") throw new Error(`${target.name}: ${line}`);
    const loaded = await probe(server, `${target.name}: probe under load`);
    const done = generatorResult(load, server.pid!, 30_000, `${target.name}: the load's figures`);
    load.stdin!.end();
    const { result } = await done;
    return {
      idleHelloP99: idle.helloP99!, loadedHelloP50: loaded.helloP50!, loadedHelloP99: loaded.helloP99!, loadedHelloMax: loaded.helloMax!,
      idleEchoP99: idle.echoP99!, loadedEchoP50: loaded.echoP50!, loadedEchoP99: loaded.echoP99!, loadedEchoMax: loaded.echoMax!,
      streamMBps: result.streamMBps!, floodEchoesPerSec: result.floodEchoesPerSec!, deliveriesPerSec: result.deliveriesPerSec!,
    };
  } finally {
    load?.kill("SIGKILL");
    await stopServer(server);
  }
}

console.log(`node ${process.version}, ${cpus().length} × ${cpus()[0]?.model}, ${Math.round(totalmem() / 2 ** 30)} GiB; ` +
  `server on CPU 0, load and probe on CPU 1; ${members} room members; probes for ${seconds} s; median of ${repeat}`);
const samples = new Map<string, Record<string, number[]>>();
for (let round = 0; round < repeat; round++) {
  for (const target of chosen) {
    const figures = await measure(target);
    const into = samples.get(target.name) ?? {};
    for (const [key, value] of Object.entries(figures)) (into[key] ??= []).push(value);
    samples.set(target.name, into);
  }
}
const ms = (v: number): string => v.toFixed(v < 10 ? 2 : 0);
const rate = (v: number): string => Math.round(v).toLocaleString("en-US");
const rows: Row[] = [
  ["idleHelloP99", "GET /hello p99, idle (ms)", ms],
  ["loadedHelloP50", "GET /hello p50, under load (ms)", ms],
  ["loadedHelloP99", "GET /hello p99, under load (ms)", ms, "tens of ms at most"],
  ["loadedHelloMax", "GET /hello slowest, under load (ms)", ms],
  ["idleEchoP99", "WebSocket echo p99, idle (ms)", ms],
  ["loadedEchoP50", "WebSocket echo p50, under load (ms)", ms],
  ["loadedEchoP99", "WebSocket echo p99, under load (ms)", ms, "tens of ms at most"],
  ["loadedEchoMax", "WebSocket echo slowest, under load (ms)", ms],
  ["streamMBps", "the load: stream MB/s (4 readers)", (v) => v.toFixed(0)],
  ["floodEchoesPerSec", "the load: flood echoes/s", rate],
  ["deliveriesPerSec", `the load: room deliveries/s (${members} members)`, rate],
];
printTable(medians(samples), chosen.map((t) => t.name), rows);
process.exit(0);
