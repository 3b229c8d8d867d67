/**
 * HTTP streaming benchmark: Catzilla against node:http, Fastify, Hono, Express and Bun, in one run, on
 * the endpoints of examples/conformance.ts. Server pinned to CPU 0, load generator (wrk) to CPU 1.
 *
 *   npm run bench                      # all figures, 3 repetitions, medians
 *   BENCH_SECONDS=2 BENCH_REPEAT=1 npm run bench
 *   BENCH_ONLY=hello,sse-latency BENCH_PEERS=catzilla,node:http npm run bench
 *   BENCH_BASELINE=/tmp/ab-base BENCH_ONLY=hello,stream npm run bench:http   # A/B against a built checkout
 *   BENCH_PEERS=catzilla,native-http,node:http npm run bench:http             # both HTTP engines
 *
 * Needs wrk (Debian: apt-get install wrk) and Linux (taskset, /proc for RSS).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir, cpus, totalmem } from "node:os";
import { join } from "node:path";
import { get } from "node:http";
import { bunBinary, canPin as pin, cpuMicros, firstLine, hasCommand, median, pinned, root, rssOf, startServer, stopServer } from "./harness.js";

const seconds = Number(process.env.BENCH_SECONDS ?? 4);
const repeat = Number(process.env.BENCH_REPEAT ?? 3);
const sseConnections = Number(process.env.BENCH_SSE_CONNECTIONS ?? 10_000);
const only = process.env.BENCH_ONLY?.split(",");
const port = Number(process.env.BENCH_PORT ?? 9300);

interface Target {
  name: string;
  script: string;
  env?: Record<string, string>;
  /** Not Node.js: the runtime's binary (Bun). */
  runtime?: () => string | null;
}

const targets: Target[] = [
  { name: "catzilla", script: "examples/conformance.ts", env: { CATZILLA_HTTP_ENGINE: "node" } },
  // The same app on the native HTTP engine (the C server; docs/http-engine.md).
  { name: "native-http", script: "examples/conformance.ts", env: { CATZILLA_HTTP_ENGINE: "native" } },
  { name: "node:http", script: "bench/peers/node-http.ts" },
  { name: "fastify", script: "bench/peers/fastify.ts" },
  { name: "hono", script: "bench/peers/hono.ts" },
  { name: "express", script: "bench/peers/express.ts" },
  // Bun.serve, the reference for what a native HTTP core gives (Bun from the npm registry).
  { name: "bun", script: "bench/peers/bun.ts", runtime: bunBinary },
].filter((t) => process.env.BENCH_PEERS === undefined || process.env.BENCH_PEERS.split(",").includes(t.name));
// BENCH_BASELINE=<another checkout, built>: its Catzilla beside this one's, in the same run (an A/B).
if (process.env.BENCH_BASELINE !== undefined && process.env.BENCH_BASELINE !== "") {
  // BENCH_BASELINE_FIRST=1 measures it first: a figure that follows the order is the machine's, not the change's.
  const baseline = { name: "baseline", script: `${process.env.BENCH_BASELINE}/examples/conformance.ts` };
  if (process.env.BENCH_BASELINE_FIRST === "1") targets.unshift(baseline);
  else targets.push(baseline);
}

interface Figure {
  key: string;
  label: string;
  unit: string;
  /** Whether a smaller value is better (latency, memory). */
  lowerIsBetter: boolean;
  /** Target for catzilla, as a ratio to a named peer. */
  target?: { peer: string; ratio: number };
}

const figures: Figure[] = [
  { key: "hello", label: "/hello", unit: "req/s", lowerIsBetter: false, target: { peer: "node:http", ratio: 0.85 } },
  { key: "hello-cpu", label: "/hello server CPU per request", unit: "µs/req", lowerIsBetter: true },
  { key: "stream-1m", label: "/stream?n=1000&size=1024", unit: "MB/s", lowerIsBetter: false, target: { peer: "node:http", ratio: 3 } },
  { key: "stream-tiny", label: "/stream?n=100000&size=16", unit: "chunks/s", lowerIsBetter: false, target: { peer: "node:http", ratio: 10 } },
  { key: "files", label: "/files (16 MiB file)", unit: "MB/s", lowerIsBetter: false, target: { peer: "node:http", ratio: 1.5 } },
  { key: "sse-latency-p50", label: "/sse?n=1 first byte p50", unit: "µs", lowerIsBetter: true, target: { peer: "node:http", ratio: 0.9 } },
  { key: "sse-latency-p99", label: "/sse?n=1 first byte p99", unit: "µs", lowerIsBetter: true },
  { key: "sse-idle-rss", label: `RSS per idle SSE connection (${sseConnections})`, unit: "bytes", lowerIsBetter: true, target: { peer: "node:http", ratio: 0.9 } },
];
const wanted = (key: string): boolean => only === undefined || only.some((o) => key.startsWith(o));

function startTarget(target: Target, filesDir: string): Promise<ChildProcess> {
  const runtime = target.runtime?.();
  if (runtime === null) throw new Error(`${target.name} is not available`);
  return startServer(target.name, target.script, {
    PORT: String(port), FILES_DIR: filesDir, NODE_ENV: "production", MAX_CONNECTIONS: String(sseConnections + 1000), ...target.env,
  }, [], runtime);
}

interface WrkResult {
  requestsPerSec: number;
  bytesPerSec: number;
  p50us: number;
  p99us: number;
}

function parseSize(text: string): number {
  const m = /^([\d.]+)([KMGT]?)B?$/.exec(text.trim());
  if (m === null) return NaN;
  return Number(m[1]) * ({ "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 } as Record<string, number>)[m[2]!]!;
}

function parseDuration(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (m === null) return NaN;
  return Number(m[1]) * ({ us: 1, ms: 1000, s: 1_000_000, m: 60_000_000 } as Record<string, number>)[m[2]!]!;
}

function wrk(path: string, connections: number, latency = false): WrkResult {
  const args = ["-t1", `-c${connections}`, `-d${seconds}s`, "--timeout", "10s", ...(latency ? ["--latency"] : []), `http://127.0.0.1:${port}${path}`];
  const [command, full] = pinned(1, "wrk", args);
  const run = spawnSync(command, full, { encoding: "utf8", timeout: (seconds + 30) * 1000 });
  const out = run.stdout;
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out)?.[1];
  const transfer = /Transfer\/sec:\s+(\S+)/.exec(out)?.[1];
  if (rps === undefined || transfer === undefined) throw new Error(`wrk failed on ${path}:\n${out}\n${run.stderr}`);
  return {
    requestsPerSec: Number(rps),
    bytesPerSec: parseSize(transfer),
    p50us: parseDuration(/^\s+50%\s+(\S+)/m.exec(out)?.[1] ?? "NaN"),
    p99us: parseDuration(/^\s+99%\s+(\S+)/m.exec(out)?.[1] ?? "NaN"),
  };
}

async function idleSseBytesPerConnection(server: ChildProcess): Promise<number> {
  // Warm up so that lazily created code and buffers are not billed to the connections; each
  // warm-up request uses its own connection, closed at once, so none is still open while measuring.
  for (let i = 0; i < 200; i++) {
    await new Promise<void>((resolve, reject) => {
      get({ host: "127.0.0.1", port, path: "/sse?n=1", agent: false }, (res) => {
        res.resume();
        res.on("end", resolve);
      }).on("error", reject);
    });
  }
  await new Promise((resolve) => setTimeout(resolve, 500));
  const before = rssOf(server.pid!);
  const [command, args] = pinned(1, process.execPath, ["--import", "tsx", "bench/sse-clients.ts"]);
  const client = spawn(command, args, {
    cwd: root,
    env: { ...process.env, URL: `http://127.0.0.1:${port}/sse?n=0`, COUNT: String(sseConnections), HOLD_MS: "120000" },
    stdio: ["pipe", "pipe", "inherit"],
  });
  try {
    const line = await firstLine(client, 90_000, "the SSE clients");
    if (!line.startsWith(`ready ${sseConnections} `)) throw new Error(`SSE clients: ${line}`);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    return (rssOf(server.pid!) - before) / sseConnections;
  } finally {
    client.stdin!.end();
    client.kill("SIGTERM");
  }
}

async function measure(target: Target, filesDir: string): Promise<Record<string, number>> {
  const results: Record<string, number[]> = {};
  const add = (key: string, value: number): void => void (results[key] ??= []).push(value);
  for (let round = 0; round < repeat; round++) {
    const server = await startTarget(target, filesDir);
    try {
      if (wanted("hello")) {
        const cpu = cpuMicros(server.pid!);
        const r = wrk("/hello", 50);
        add("hello", r.requestsPerSec);
        add("hello-cpu", (cpuMicros(server.pid!) - cpu) / (r.requestsPerSec * seconds));
      }
      if (wanted("stream-1m")) add("stream-1m", wrk("/stream?n=1000&size=1024", 16).requestsPerSec * 1000 * 1024 / 1e6);
      if (wanted("stream-tiny")) add("stream-tiny", wrk("/stream?n=100000&size=16", 8).requestsPerSec * 100_000);
      if (wanted("files")) add("files", wrk("/files/bench-16MiB.bin", 4).requestsPerSec * 16 * 1024 * 1024 / 1e6);
      if (wanted("sse-latency")) {
        const r = wrk("/sse?n=1", 1, true);
        add("sse-latency-p50", r.p50us);
        add("sse-latency-p99", r.p99us);
      }
    } finally {
      await stopServer(server);
    }
  }
  if (wanted("sse-idle-rss")) {
    const server = await startTarget(target, filesDir);
    try {
      add("sse-idle-rss", await idleSseBytesPerConnection(server));
    } catch (error) {
      console.error(`${target.name}: ${(error as Error).message}`);
    } finally {
      await stopServer(server);
    }
  }
  const out: Record<string, number> = {};
  for (const [key, values] of Object.entries(results)) out[key] = median(values);
  return out;
}

function format(value: number | undefined, unit: string): string {
  if (value === undefined || Number.isNaN(value)) return "–";
  if (unit === "chunks/s" || unit === "req/s") return Math.round(value).toLocaleString("en-US");
  if (unit === "bytes") return `${(value / 1024).toFixed(1)} KB`;
  return value.toFixed(unit === "µs" ? 0 : 1);
}

async function main(): Promise<void> {
  if (!hasCommand("wrk")) {
    console.error("wrk is required: apt-get install wrk (Debian) or brew install wrk (macOS)");
    process.exit(2);
  }
  const filesDir = mkdtempSync(join(tmpdir(), "catzilla-bench-"));
  writeFileSync(join(filesDir, "bench-16MiB.bin"), randomBytes(16 * 1024 * 1024));
  console.log(`node ${process.version}, ${cpus().length} × ${cpus()[0]?.model}, ${Math.round(totalmem() / 2 ** 30)} GiB; ` +
    `server on CPU 0, wrk on CPU 1${pin ? "" : " (taskset unavailable: not pinned)"}; ${seconds} s per run, median of ${repeat}`);
  for (const target of [...targets]) {
    if (target.runtime === undefined || target.runtime() !== null) continue;
    console.log(`${target.name} cannot be installed here: left out of this run`);
    targets.splice(targets.indexOf(target), 1);
  }
  const all: Record<string, Record<string, number>> = {};
  try {
    for (const target of targets) {
      process.stdout.write(`measuring ${target.name}… `);
      const started = Date.now();
      all[target.name] = await measure(target, filesDir);
      console.log(`${((Date.now() - started) / 1000).toFixed(0)} s`);
    }
  } finally {
    rmSync(filesDir, { recursive: true, force: true });
  }
  const peers = targets.map((t) => t.name).filter((n) => n !== "catzilla");
  const rows = [
    `| Figure | ${targets.map((t) => t.name).join(" | ")} | ${peers.map((p) => `catzilla / ${p}`).join(" | ")} | target |`,
    `|---|${targets.map(() => "---:").join("|")}|${peers.map(() => "---:").join("|")}|---|`,
  ];
  for (const figure of figures) {
    if (!wanted(figure.key) && !(figure.key.startsWith("sse-latency") && wanted("sse-latency"))) continue;
    const ours = all.catzilla?.[figure.key];
    const ratios = peers.map((p) => {
      const theirs = all[p]?.[figure.key];
      if (ours === undefined || theirs === undefined) return "–";
      return theirs === 0 ? "none completed" : `${(ours / theirs).toFixed(2)}×`;
    });
    let target = "";
    if (figure.target !== undefined && ours !== undefined) {
      const theirs = all[figure.target.peer]?.[figure.key];
      if (theirs !== undefined) {
        const ratio = ours / theirs;
        const met = figure.lowerIsBetter ? ratio <= figure.target.ratio : ratio >= figure.target.ratio;
        target = `${figure.lowerIsBetter ? "≤" : "≥"} ${figure.target.ratio}× ${figure.target.peer}: ${met ? "met" : "not met"}`;
      }
    }
    rows.push(`| ${figure.label} (${figure.unit}) | ${targets.map((t) => format(all[t.name]?.[figure.key], figure.unit)).join(" | ")} | ${ratios.join(" | ")} | ${target} |`);
  }
  console.log("\n" + rows.join("\n"));
}

await main();
