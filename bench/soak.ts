/**
 * Soak: a bounded connect/disconnect churn (bench/churn.ts: WebSockets closed cleanly and reset,
 * SSE room subscribers and producers aborted, streams and downloads aborted, requests cut) against
 * the conformance app in a process of its own, on each engine. Reports the server's RSS, open
 * descriptors and every gauge of /stats at the start (after a warm-up round) and at the end
 * (once the last round's connections are gone), and fails when a gauge did not come back or
 * descriptors were left open. The short form runs in `npm test` (test/integration/soak.test.ts).
 *
 *   npm run soak                                   # 10 minutes per engine
 *   SOAK_SECONDS=60 SOAK_ENGINES=native npm run soak
 */
import { get } from "node:http";
import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { churnRound, type ChurnCounts } from "./churn.js";
import { rssOf, startServer, stopServer } from "./harness.js";

export interface SoakPoint {
  rssBytes: number;
  descriptors: number;
  gauges: Record<string, number>;
}

export interface SoakResult {
  engine: string;
  seconds: number;
  rounds: number;
  operations: ChurnCounts;
  start: SoakPoint;
  end: SoakPoint;
  /** What did not come back: gauges off their start value, descriptors left open. */
  problems: string[];
}

export interface SoakOptions {
  /** CATZILLA_ENGINE of the server: "native", "node" or "auto". */
  engine: string;
  seconds: number;
  /** Operations of each kind at once per round. */
  parallel: number;
  port: number;
  /** Node.js options for the server (the test runs it from source). */
  nodeOptions?: string[];
  log?: (line: string) => void;
}

/** Descriptors a server may hold beyond its start once everything closed (its own lazily opened ones). */
const DESCRIPTOR_SLACK = 16;

function stats(port: number): Promise<Record<string, any>> {
  return new Promise((resolve, reject) => {
    get({ host: "127.0.0.1", port, path: "/stats", agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve(JSON.parse(body) as Record<string, any>));
    }).on("error", reject);
  });
}

/** The gauges of a stats() snapshot (or its JSON): everything that goes up and down, by name. */
export function gaugesOf(s: Record<string, any>): Record<string, number> {
  return {
    "connections.active": s.connections.active,
    "http.active": s.http.active,
    "streams.active": s.streams.active,
    "websockets.active": s.websockets.active,
    "rooms.active": s.rooms?.active ?? 0,
    "rooms.members": s.rooms?.members ?? 0,
  };
}

async function point(pid: number, port: number): Promise<SoakPoint> {
  return { rssBytes: rssOf(pid), descriptors: readdirSync(`/proc/${pid}/fd`).length, gauges: gaugesOf(await stats(port)) };
}

/** Wait until the connections of the last round are gone (the /stats request itself is the one open), at most `ms`. */
async function settle(port: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const g = gaugesOf(await stats(port));
    if (g["connections.active"]! <= 1 && g["websockets.active"] === 0 && g["streams.active"] === 0 && g["http.active"]! <= 1) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const { engine, seconds, parallel, port } = options;
  const log = options.log ?? (() => undefined);
  const server = await startServer(`catzilla ${engine}`, "examples/conformance.ts", {
    CATZILLA_ENGINE: engine, PORT: String(port), MAX_CONNECTIONS: String(parallel * 20 + 100),
  }, options.nodeOptions ?? []);
  try {
    const pid = server.pid!;
    const operations: ChurnCounts = {};
    await churnRound(port, parallel, operations);
    await settle(port, 10_000);
    const start = await point(pid, port);
    const started = Date.now();
    let rounds = 0;
    let lastReport = started;
    while (Date.now() - started < seconds * 1000) {
      await churnRound(port, parallel, operations);
      rounds++;
      if (Date.now() - lastReport >= 60_000) {
        lastReport = Date.now();
        const now = await point(pid, port);
        log(`${engine}: ${Math.round((Date.now() - started) / 1000)} s, ${rounds} rounds, RSS ${(now.rssBytes / 2 ** 20).toFixed(1)} MB, ${now.descriptors} descriptors`);
      }
    }
    await settle(port, 10_000);
    const end = await point(pid, port);
    const problems: string[] = [];
    for (const [name, value] of Object.entries(start.gauges)) {
      if (end.gauges[name] !== value) problems.push(`${name}: ${value} at the start, ${end.gauges[name]} at the end`);
    }
    if (end.descriptors > start.descriptors + DESCRIPTOR_SLACK) problems.push(`descriptors: ${start.descriptors} at the start, ${end.descriptors} at the end`);
    return { engine, seconds, rounds, operations, start, end, problems };
  } finally {
    await stopServer(server);
  }
}

function report(result: SoakResult): void {
  const mb = (v: number): string => (v / 2 ** 20).toFixed(1);
  const total = Object.values(result.operations).reduce((a, b) => a + b, 0);
  console.log(`\n### catzilla ${result.engine}: ${result.seconds} s, ${result.rounds} rounds, ${total.toLocaleString("en-US")} operations`);
  console.log(`(${Object.entries(result.operations).map(([k, v]) => `${k} ${v}`).join(", ")})\n`);
  console.log("| Figure | start | end |\n|---|---:|---:|");
  console.log(`| server RSS (MB) | ${mb(result.start.rssBytes)} | ${mb(result.end.rssBytes)} |`);
  console.log(`| open descriptors | ${result.start.descriptors} | ${result.end.descriptors} |`);
  for (const [name, value] of Object.entries(result.start.gauges)) console.log(`| ${name} | ${value} | ${result.end.gauges[name]} |`);
  console.log(result.problems.length === 0 ? "\nEvery gauge came back; no descriptor was left open." : `\nPROBLEMS: ${result.problems.join("; ")}`);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const seconds = Number(process.env.SOAK_SECONDS ?? 600);
  const engines = (process.env.SOAK_ENGINES ?? "native,node").split(",");
  const parallel = Number(process.env.SOAK_PARALLEL ?? 10);
  console.log(`node ${process.version}; soak of ${seconds} s per engine, ${parallel} of each operation at once`);
  let failed = false;
  for (const engine of engines) {
    const result = await runSoak({ engine, seconds, parallel, port: Number(process.env.SOAK_PORT ?? 9700), log: (line) => console.log(line) });
    report(result);
    failed ||= result.problems.length > 0;
  }
  process.exit(failed ? 1 : 0);
}
