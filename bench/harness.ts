// What both benchmarks share: pinning to CPUs, starting and stopping server processes, reading RSS.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus } from "node:os";
import { fileURLToPath } from "node:url";

export const root = fileURLToPath(new URL("..", import.meta.url));

export function hasCommand(command: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${command}`]).status === 0;
}

/** Whether processes can be pinned to CPUs (taskset and at least two CPUs). */
export const canPin = hasCommand("taskset") && cpus().length > 1;

/** The command and arguments that run `command args` on one CPU. */
export function pinned(cpu: number, command: string, args: string[]): [string, string[]] {
  return canPin ? ["taskset", ["-c", String(cpu), command, ...args]] : [command, args];
}

/** Bun as the npm registry's `bun` package ships it, pinned; installed on first use into bench/.bun. */
const BUN_VERSION = "1.4.5";

/** The bun binary (BENCH_BUN names another), installing it first if needed; null when it cannot be had. */
export function bunBinary(): string | null {
  if (process.env.BENCH_BUN !== undefined && process.env.BENCH_BUN !== "") return process.env.BENCH_BUN;
  const prefix = `${root}bench/.bun`;
  // The package puts its platform package's binary here (bin/bun.exe on every platform).
  const binary = `${prefix}/node_modules/bun/bin/bun.exe`;
  const version = (): string => spawnSync(binary, ["--version"], { encoding: "utf8" }).stdout?.trim() ?? "";
  if (version() === BUN_VERSION) return binary;
  console.log(`installing bun ${BUN_VERSION} from the npm registry into bench/.bun…`);
  spawnSync("npm", ["install", "--prefix", prefix, "--no-save", "--no-audit", "--no-fund", "--no-package-lock", `bun@${BUN_VERSION}`], {
    stdio: "inherit", timeout: 300_000,
  });
  return version() === BUN_VERSION ? binary : null;
}

/**
 * Node.js options of a server whose idle memory is measured (every server alike): a young
 * generation of 1 MB semi-spaces, which otherwise grows with the handshakes to up to 48 MB and is
 * not given back while the server is idle, and bench/settle.ts (full collections on SIGUSR2).
 */
export const MEMORY_SERVER = ["--max-semi-space-size=1", "--import", "./bench/settle.ts"];

/** Start a server script on CPU 0 (TypeScript on Node.js with tsx, or on `runtime`); resolves once it printed "listening". */
export async function startServer(
  name: string, script: string, env: Record<string, string>, nodeOptions: readonly string[] = [], runtime?: string,
): Promise<ChildProcess> {
  const [command, args] = runtime === undefined
    ? pinned(0, process.execPath, ["--import", "tsx", ...nodeOptions, script])
    : pinned(0, runtime, [script]);
  const child = spawn(command, args, { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`${name} did not start`)), 20_000);
    child.stdout!.on("data", (d) => {
      out += d;
      if (out.includes("listening")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => reject(new Error(`${name} exited with ${code}`)));
  });
  return child;
}

/** Stop a server this harness started (by its PID): SIGTERM, then SIGKILL after 5 s. */
export async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
  await exited;
  clearTimeout(timer);
}

/** CPU time (user + system) of a process in microseconds, from /proc (Linux). */
export function cpuMicros(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) * (1_000_000 / 100);
}

/** Resident set size of a process, from /proc (Linux). */
export function rssOf(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) * 1024;
}

export function median(values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
}

/** Per server, the median of each figure's samples. */
export function medians(samples: Map<string, Record<string, number[]>>): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const [name, values] of samples) out[name] = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, median(v)]));
  return out;
}

/** What idle connections cost a server, from its RSS (bytes). */
export interface IdleMemory {
  /** RSS growth from the idle server to `total` connections, ÷ total. */
  perConnection: number;
  /** RSS growth from `total / 3` to `total` connections, ÷ the connections added. */
  marginal: number;
  /** RSS with `total` connections. */
  rss: number;
  /**
   * As `perConnection`, both RSS read after full collections (a server started with
   * MEMORY_SERVER): what the server keeps per connection, not what it has yet to collect.
   */
  settled: number;
  /** RSS with `total` connections after full collections. */
  settledRss: number;
}

/**
 * Hold `total` idle connections to a server (pid) in two steps: a third, then the rest, each by a
 * client process `open(count)` starts (it resolves once they are all open). `perConnection`
 * includes what the first connections make the process grow once (V8's young generation grows
 * to its maximum under the handshake traffic, code is compiled); `marginal` is what one more
 * connection costs once that is paid. Both are read `settleMs` after the clients are ready.
 * `settled` compares the idle server and the server with `total` connections each right after
 * full collections (a collection in between would free pages the later connections reuse, and
 * hide them).
 */
export async function idleMemory(pid: number, total: number, open: (count: number) => Promise<ChildProcess>, settleMs = 3_000): Promise<IdleMemory> {
  const first = Math.round(total / 3);
  const startSettled = await settledRss(pid);
  const start = rssOf(pid);
  const clients: ChildProcess[] = [];
  try {
    clients.push(await open(first));
    await new Promise((resolve) => setTimeout(resolve, settleMs));
    const middle = rssOf(pid);
    clients.push(await open(total - first));
    await new Promise((resolve) => setTimeout(resolve, settleMs));
    const end = rssOf(pid);
    const endSettled = await settledRss(pid);
    return {
      perConnection: (end - start) / total, marginal: (end - middle) / (total - first), rss: end,
      settled: (endSettled - startSettled) / total, settledRss: endSettled,
    };
  } finally {
    for (const client of clients) {
      client.stdin?.end();
      client.kill("SIGKILL");
    }
  }
}

/** process.memoryUsage() of a server started with MEMORY_SERVER, right after full collections. */
export function settledMemory(child: ChildProcess): Promise<NodeJS.MemoryUsage> {
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error("no memory line after SIGUSR2")), 10_000);
    const onData = (d: Buffer): void => {
      out += d;
      const match = /^memory (\{.*\})$/m.exec(out);
      if (match === null) return;
      clearTimeout(timer);
      child.stdout!.off("data", onData);
      resolve(JSON.parse(match[1]!) as NodeJS.MemoryUsage);
    };
    child.stdout!.on("data", onData);
    child.kill("SIGUSR2");
  });
}

/** RSS after the server (started with MEMORY_SERVER) ran full collections. */
async function settledRss(pid: number): Promise<number> {
  process.kill(pid, "SIGUSR2");
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  return rssOf(pid);
}

/**
 * What a load generator prints last (one JSON line), and the server's CPU time (µs) from the
 * generator's "connected" line to then. Rejects after `timeoutMs`, or when the generator fails.
 */
export function generatorResult(
  client: ChildProcess, serverPid: number, timeoutMs: number, what: string,
): Promise<{ result: Record<string, number>; serverCpu: number }> {
  let out = "";
  let cpuAtStart = 0;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} timed out`)), timeoutMs);
    client.stdout!.on("data", (d) => {
      out += d;
      if (cpuAtStart === 0 && out.includes("connected")) cpuAtStart = cpuMicros(serverPid);
      const last = out.trim().split("\n").pop()!;
      if (last.startsWith("{")) {
        clearTimeout(timer);
        resolve({ result: JSON.parse(last) as Record<string, number>, serverCpu: cpuMicros(serverPid) - cpuAtStart });
      }
    });
    client.once("exit", (code) => code !== 0 && reject(new Error(`${what}: the generator exited with ${code}: ${out}`)));
  });
}

/** The first line a child process prints, or an error after `timeoutMs`. */
export function firstLine(child: ChildProcess, timeoutMs: number, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`${what} did not answer in time`)), timeoutMs);
    child.stdout!.on("data", (d) => {
      out += d;
      if (out.includes("\n")) {
        clearTimeout(timer);
        resolve(out.trim());
      }
    });
  });
}

/** One row of a results table: key in the results, label, formatter, target. */
export type Row = [key: string, label: string, format: (v: number) => string, target?: string];

/**
 * Print a Markdown table: one column per measured server, then one ratio column per Catzilla
 * engine and peer (ours / theirs), all from the same run.
 */
export function printTable(results: Record<string, Record<string, number>>, names: string[], rows: Row[], noRatio: string[] = []): void {
  const ours = names.filter((n) => n.startsWith("catzilla"));
  const peers = names.filter((n) => !n.startsWith("catzilla"));
  const pairs = ours.flatMap((o) => peers.map((p) => [o, p] as const));
  const ratioHeads = pairs.map(([o, p]) => ` ${o} / ${p} |`).join("");
  console.log(`\n| Figure | ${names.join(" | ")} |${ratioHeads} target |`);
  console.log(`|---|${names.map(() => "---:").join("|")}|${pairs.map(() => "---:|").join("")}---|`);
  for (const [key, label, format, target] of rows) {
    if (!names.some((n) => results[n]?.[key] !== undefined)) continue;
    const ratios = pairs.map(([o, p]) => {
      const a = results[o]?.[key];
      const b = results[p]?.[key];
      return a === undefined || b === undefined || b === 0 || noRatio.includes(key) ? "–" : `${(a / b).toFixed(2)}×`;
    });
    const cells = names.map((n) => (results[n]?.[key] === undefined ? "–" : format(results[n]![key]!)));
    console.log(`| ${label} | ${cells.join(" | ")} |${ratios.map((r) => ` ${r} |`).join("")} ${target ?? ""} |`);
  }
}

/**
 * BENCH_BASELINE=<another checkout, built (npm run build and its native addon)>: Catzilla from that
 * checkout on both engines beside this one's, in the same run (an A/B of a change).
 */
export function baselineTargets(): Array<{ name: string; script: string; protocol: "ws"; env: Record<string, string> }> {
  const baseline = process.env.BENCH_BASELINE;
  if (baseline === undefined || baseline === "") return [];
  const script = `${baseline}/examples/conformance.ts`;
  return [
    { name: "baseline native", script, protocol: "ws", env: { CATZILLA_ENGINE: "native" } },
    { name: "baseline node", script, protocol: "ws", env: { CATZILLA_ENGINE: "node" } },
  ];
}
