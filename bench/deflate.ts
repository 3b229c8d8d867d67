/**
 * permessage-deflate under load: while one connection echoes 1 MiB JSON messages compressed both
 * ways, how long does a 32-byte echo on another connection take? A server that inflates and
 * compresses on its event loop holds every other connection up for as long as zlib runs. Server
 * on CPU 0 (its thread pool too); the two clients of bench/deflate-load.ts, one process each, on
 * CPU 1; medians of BENCH_REPEAT runs.
 *
 *   npm run bench:deflate
 */
import { spawn } from "node:child_process";
import { cpus } from "node:os";
import { generatorResult, medians, pinned, printTable, root, startServer, stopServer, type Row } from "./harness.js";

const seconds = Number(process.env.BENCH_SECONDS ?? 4);
const repeat = Number(process.env.BENCH_REPEAT ?? 3);
const port = Number(process.env.BENCH_PORT ?? 9420);

interface Target {
  name: string;
  script: string;
  env: Record<string, string>;
}

const all: Target[] = [
  { name: "catzilla native", script: "examples/conformance.ts", env: { CATZILLA_ENGINE: "native" } },
  { name: "catzilla node", script: "examples/conformance.ts", env: { CATZILLA_ENGINE: "node" } },
  { name: "ws+bufferutil", script: "bench/peers/ws-echo.ts", env: { WS_DEFLATE: "1" } },
  { name: "uWebSockets.js", script: "bench/peers/uws-echo.ts", env: { UWS_DEFLATE: "1" } },
];
const targets = all.filter((t) => process.env.BENCH_PEERS === undefined || process.env.BENCH_PEERS.split(",").includes(t.name));

/** Both roles of bench/deflate-load.ts at once, each its own process on CPU 1; their results merged. */
async function load(serverPid: number): Promise<Record<string, number>> {
  const run = async (role: string): Promise<Record<string, number>> => {
    const [command, args] = pinned(1, process.execPath, ["--import", "tsx", "bench/deflate-load.ts"]);
    const child = spawn(command, args, {
      cwd: root, env: { ...process.env, ROLE: role, URL: `ws://127.0.0.1:${port}/echo`, SECONDS: String(seconds) },
      stdio: ["ignore", "pipe", "inherit"],
    });
    try {
      return (await generatorResult(child, serverPid, (seconds + 60) * 1000, `the ${role} client`)).result;
    } finally {
      child.kill("SIGKILL");
    }
  };
  const [heavy, light] = await Promise.all([run("heavy"), run("light")]);
  return { ...heavy, ...light };
}

console.log(`node ${process.version}, ${cpus().length} × ${cpus()[0]?.model}; server on CPU 0, load generator on CPU 1; ` +
  `${seconds} s per run, median of ${repeat}`);
// Rounds go over all servers in turn, so that the machine's drift weighs on every server alike.
const samples = new Map<string, Record<string, number[]>>(targets.map((t) => [t.name, {}]));
for (let round = 0; round < repeat; round++) {
  process.stdout.write(`round ${round + 1} of ${repeat}… `);
  for (const target of targets) {
    const server = await startServer(target.name, target.script, { ...target.env, PORT: String(port) });
    try {
      const values = samples.get(target.name)!;
      for (const [key, value] of Object.entries(await load(server.pid!))) (values[key] ??= []).push(value);
    } finally {
      await stopServer(server);
    }
  }
  console.log("done");
}
const results = medians(samples);
const rows: Row[] = [
  ["p50us", "32 B round trip p50 beside the 1 MiB stream (µs)", (v) => v.toFixed(0)],
  ["p99us", "32 B round trip p99 beside the 1 MiB stream (µs)", (v) => v.toFixed(0), "≤ ws+bufferutil"],
  ["maxUs", "32 B round trip, slowest (µs)", (v) => v.toFixed(0)],
  ["smallPerSec", "32 B round trips per second", (v) => Math.round(v).toLocaleString("en-US")],
  ["largePerSec", "1 MiB compressed messages echoed per second", (v) => v.toFixed(1)],
];
printTable(results, targets.map((t) => t.name), rows);
