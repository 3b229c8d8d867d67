/**
 * Flood cases of the soak: the conformance app in a process of its own (CPU 0), one flood of
 * bench/flood-load.ts (CPU 1) for a few seconds, and bench/fairness-probe.ts beside it timing
 * GET /hello and a WebSocket echo, one at a time, from the start of the flood until a few seconds
 * after it ended. Reports the server's peak RSS (VmHWM) against its RSS before the flood, the
 * probe's p50 and worst latencies, and how long the server stayed busy (over half a CPU) after the
 * flood's clients were gone.
 *
 * Cases: `room` (one member floods a room whose other members never read), `ping` (pings sent
 * without reading the pongs), `fragments` (messages in 1-byte fragments), `broker` (POSTs to a
 * feed with SSE members while the app's Redis is stopped with SIGSTOP; needs redis-server).
 *
 *   npm run soak                                  # the churn, then every flood case
 *   FLOODS=room,ping SOAK_ENGINES=native node --import tsx bench/floods.ts
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { cpuMicros, firstLine, generatorResult, hasCommand, median, pinned, root, rssOf, startServer, stopServer } from "./harness.js";
import { startRedis, type RedisServer } from "../test/redis-server.js";

export type FloodKind = "room" | "ping" | "fragments" | "broker";
export const FLOOD_KINDS: readonly FloodKind[] = ["room", "ping", "fragments", "broker"];

export interface FloodOptions {
  kind: FloodKind;
  /** CATZILLA_ENGINE of the server. */
  engine: string;
  port: number;
  /** How long the flood runs. @default 5 */
  seconds?: number;
  /** Members of the room (`room`) or SSE subscribers (`broker`). @default 2000 / 50 */
  members?: number;
  /** Messages the `room` case's sender writes. @default 200000 */
  messages?: number;
  /** Node.js options for the server (the tests run it from source). */
  nodeOptions?: string[];
}

export interface FloodResult {
  kind: FloodKind;
  engine: string;
  /** RSS before the flood, and the most it reached (VmHWM). */
  rssBeforeBytes: number;
  peakRssBytes: number;
  helloP50: number;
  helloMax: number;
  echoP50: number;
  echoMax: number;
  /** Probes made (each waits for the one before). */
  probes: number;
  /** From the flood's end until the server used less than half a CPU over 250 ms (capped at 30 s). */
  busyAfterMs: number;
  /** What the load generator counted. */
  load: Record<string, number>;
  /** The server's /stats after the flood. */
  stats: Record<string, any>;
}

/** How long the probe goes on after the flood ended. */
const TAIL_SECONDS = 4;

function peakRss(pid: number): number {
  return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) * 1024;
}

function child(script: string, env: Record<string, string>): ChildProcess {
  const [command, args] = pinned(1, process.execPath, ["--import", "tsx", script]);
  return spawn(command, args, { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] });
}

/** Milliseconds until the process used less than half a CPU over a 250 ms window, at most `capMs`. */
async function busyFor(pid: number, capMs: number): Promise<number> {
  const started = performance.now();
  let cpu = cpuMicros(pid);
  while (performance.now() - started < capMs) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    const now = cpuMicros(pid);
    if (now - cpu < 125_000) return Math.max(0, performance.now() - started - 250);
    cpu = now;
  }
  return capMs;
}

async function json(port: number, path: string): Promise<Record<string, any>> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(10_000) });
  return (await res.json()) as Record<string, any>;
}

export async function runFlood(options: FloodOptions): Promise<FloodResult> {
  const { kind, engine, port } = options;
  const seconds = options.seconds ?? 5;
  const members = options.members ?? (kind === "broker" ? 50 : 2_000);
  let redis: RedisServer | null = null;
  if (kind === "broker") redis = await startRedis();
  const env: Record<string, string> = { CATZILLA_ENGINE: engine, PORT: String(port), MAX_CONNECTIONS: String(members + 1_000) };
  if (redis !== null) env.REDIS_URL = redis.url;
  const server = await startServer(`catzilla ${engine}`, "examples/conformance.ts", env, options.nodeOptions ?? []);
  let load: ChildProcess | null = null;
  let probe: ChildProcess | null = null;
  try {
    const pid = server.pid!;
    const url = `http://127.0.0.1:${port}`;
    const rssBeforeBytes = rssOf(pid);
    load = child("bench/flood-load.ts", {
      URL: url, KIND: kind === "broker" ? "publish" : kind, SECONDS: String(seconds), MEMBERS: String(members),
      MESSAGES: String(options.messages ?? 200_000),
    });
    const line = await firstLine(load, 120_000, `${kind}: the load`);
    if (line !== "loaded") throw new Error(`${kind}: ${line}`);
    probe = child("bench/fairness-probe.ts", { URL: url, SECONDS: String(seconds + TAIL_SECONDS), INTERVAL_MS: "20" });
    const probed = generatorResult(probe, pid, (seconds + TAIL_SECONDS) * 1000 + 30_000, `${kind}: the probe`);
    if (redis !== null) setTimeout(() => redis!.pause(), 500);
    const { result: figures } = await generatorResult(load, pid, seconds * 1000 + 60_000, `${kind}: the load's figures`);
    redis?.resume();
    const [busyAfterMs, { result: p }] = await Promise.all([busyFor(pid, 30_000), probed]);
    return {
      kind, engine, rssBeforeBytes, peakRssBytes: peakRss(pid),
      helloP50: p.helloP50!, helloMax: p.helloMax!, echoP50: p.echoP50!, echoMax: p.echoMax!, probes: p.hellos! + p.echoes!,
      busyAfterMs, load: figures, stats: await json(port, "/stats"),
    };
  } finally {
    load?.kill("SIGKILL");
    probe?.kill("SIGKILL");
    redis?.resume();
    await stopServer(server);
    await redis?.stop();
  }
}

export function floodTable(results: readonly FloodResult[]): string {
  const mb = (v: number): string => (v / 2 ** 20).toFixed(0);
  const ms = (v: number): string => v.toFixed(v < 10 ? 1 : 0);
  const lines = [
    "| case | engine | RSS before → peak (MB) | /hello p50 / worst (ms) | echo p50 / worst (ms) | busy after (ms) |",
    "|---|---|---:|---:|---:|---:|",
  ];
  for (const r of results) {
    lines.push(`| ${r.kind} | ${r.engine} | ${mb(r.rssBeforeBytes)} → ${mb(r.peakRssBytes)} | ${ms(r.helloP50)} / ${ms(r.helloMax)} | ` +
      `${ms(r.echoP50)} / ${ms(r.echoMax)} | ${Math.round(r.busyAfterMs)} |`);
  }
  return lines.join("\n");
}

/** Each figure the median of the runs (the load's and the stats of the median run by peak RSS). */
function medianResult(runs: readonly FloodResult[]): FloodResult {
  const of = (key: "rssBeforeBytes" | "peakRssBytes" | "helloP50" | "helloMax" | "echoP50" | "echoMax" | "probes" | "busyAfterMs"): number =>
    median(runs.map((r) => r[key]));
  const byPeak = [...runs].sort((a, b) => a.peakRssBytes - b.peakRssBytes)[runs.length >> 1]!;
  return {
    ...byPeak, rssBeforeBytes: of("rssBeforeBytes"), peakRssBytes: of("peakRssBytes"), helloP50: of("helloP50"), helloMax: of("helloMax"),
    echoP50: of("echoP50"), echoMax: of("echoMax"), probes: of("probes"), busyAfterMs: of("busyAfterMs"),
  };
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const kinds = (process.env.FLOODS?.split(",") ?? FLOOD_KINDS) as FloodKind[];
  const engines = (process.env.SOAK_ENGINES ?? "native,node").split(",");
  const seconds = Number(process.env.FLOOD_SECONDS ?? 5);
  const repeat = Number(process.env.FLOOD_REPEAT ?? 3);
  console.log(`node ${process.version}; flood cases of ${seconds} s, server on CPU 0, load and probe on CPU 1; median of ${repeat}`);
  const results: FloodResult[] = [];
  for (const kind of kinds) {
    if (kind === "broker" && !hasCommand("redis-server")) {
      console.log("redis-server not found: the broker case is skipped");
      continue;
    }
    for (const engine of engines) {
      const runs: FloodResult[] = [];
      for (let i = 0; i < repeat; i++) {
        const result = await runFlood({ kind, engine, port: Number(process.env.SOAK_PORT ?? 9700), seconds });
        console.log(`${kind} on ${engine}: ${JSON.stringify({ ...result, stats: result.stats.rooms })}`);
        runs.push(result);
      }
      results.push(medianResult(runs));
    }
  }
  console.log(`\n${floodTable(results)}`);
  process.exit(0);
}
