import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { cpSync, mkdirSync, symlinkSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Catzilla, type AppOptions } from "../src/index.js";

/** An app listening on an ephemeral port of 127.0.0.1; `close()` shuts it down. */
export interface Served {
  app: Catzilla;
  url: string;
  port: number;
  close(): Promise<void>;
}

const quiet = { info: () => undefined, error: () => undefined };

/** A new app with signal handlers off and errors kept out of the test output (`errors` collects them). */
export function testApp(options: AppOptions = {}): Catzilla & { errors: unknown[] } {
  const errors: unknown[] = [];
  const app = new Catzilla({
    handleSignals: false,
    shutdownTimeoutMs: 2_000,
    logger: { ...quiet, error: (_message: string, ...rest: unknown[]) => void errors.push(rest[0]) },
    ...options,
  }) as Catzilla & { errors: unknown[] };
  app.errors = errors;
  return app;
}

export async function serve(app: Catzilla): Promise<Served> {
  const { url, port } = await app.listen({ port: 0, host: "127.0.0.1" });
  return { app, url, port, close: () => app.close() };
}

/** Send raw bytes and collect everything the server sends until it closes or `timeoutMs` passes. */
export function rawExchange(port: number, request: string | Buffer, timeoutMs = 3_000): Promise<{ data: Buffer; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ data: Buffer.concat(chunks), closed: false });
    }, timeoutMs);
    socket.on("data", (d) => chunks.push(d));
    socket.on("error", (e) => {
      clearTimeout(timer);
      if ((e as NodeJS.ErrnoException).code === "ECONNRESET") resolve({ data: Buffer.concat(chunks), closed: true });
      else reject(e);
    });
    socket.on("close", () => {
      clearTimeout(timer);
      resolve({ data: Buffer.concat(chunks), closed: true });
    });
    socket.write(request);
  });
}

/** Split a raw HTTP/1.1 response into head and body. */
export function splitResponse(data: Buffer): { head: string; body: Buffer; status: number } {
  const end = data.indexOf("\r\n\r\n");
  if (end < 0) throw new Error(`No complete head in ${JSON.stringify(data.toString("latin1").slice(0, 200))}`);
  const head = data.subarray(0, end).toString("latin1");
  return { head, body: data.subarray(end + 4), status: Number(head.split(" ")[1]) };
}

/** Decode a chunked body; returns the chunks and whether the terminating chunk arrived. */
export function decodeChunked(body: Buffer): { chunks: Buffer[]; complete: boolean } {
  const chunks: Buffer[] = [];
  let offset = 0;
  for (;;) {
    const lineEnd = body.indexOf("\r\n", offset);
    if (lineEnd < 0) return { chunks, complete: false };
    const size = parseInt(body.subarray(offset, lineEnd).toString("latin1"), 16);
    if (Number.isNaN(size)) throw new Error("Malformed chunk size");
    if (size === 0) return { chunks, complete: body.subarray(lineEnd, lineEnd + 4).toString() === "\r\n\r\n" };
    const start = lineEnd + 2;
    if (body.length < start + size + 2) {
      chunks.push(body.subarray(start));
      return { chunks, complete: false };
    }
    chunks.push(body.subarray(start, start + size));
    if (body.subarray(start + size, start + size + 2).toString() !== "\r\n") throw new Error("Missing CRLF after chunk");
    offset = start + size + 2;
  }
}

/** Resolve when `predicate` holds, polling every 10 ms, or fail after `timeoutMs`. */
export async function waitFor(predicate: () => boolean, timeoutMs = 3_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The median of some numbers (the upper one of the middle two for an even count). */
export function median(values: readonly number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
}

/**
 * The environment for a program that is not Node.js (a browser, a proxy, python): without the
 * sanitizer pass's preloaded libasan (LD_PRELOAD) and its options.
 */
export function foreignEnv(): Record<string, string> {
  return Object.fromEntries(Object.entries(process.env).filter((entry): entry is [string, string] =>
    entry[1] !== undefined && !["LD_PRELOAD", "ASAN_OPTIONS", "LSAN_OPTIONS"].includes(entry[0])));
}

/**
 * Whether RSS bounds mean anything in this process: not under the sanitizer pass, whose preloaded
 * allocator keeps freed memory in quarantine (hundreds of MB).
 */
export const rssBoundsHold = !(process.env.LD_PRELOAD ?? "").includes("libasan");

/** A free TCP port on 127.0.0.1 (asked of the OS, then released). */
export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

/** A script of the repository running in its own process. */
export interface ScriptProcess {
  child: ChildProcess;
  port: number;
}

/**
 * Run a script of the repository (e.g. "examples/conformance.ts") in its own process on a free
 * port; resolves once it printed "listening" `lines` times (a cluster primary and its workers
 * print one each). A process that does not get there is killed.
 */
export async function startScript(script: string, env: Record<string, string> = {}, lines = 1): Promise<ScriptProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, ["--conditions=catzilla-source", "--import", "tsx", fileURLToPath(new URL(`../${script}`, import.meta.url))], {
    env: { ...process.env, ...env, PORT: String(port) },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  try {
    await waitFor(() => (out.match(/listening/g) ?? []).length >= lines, 30_000, `${script} to listen`);
  } catch (error) {
    child.kill("SIGKILL");
    throw error;
  }
  return { child, port };
}

/**
 * What a fresh clone holds, copied into `dir`: the files git knows (as they are in the working
 * tree), without dist/, build/ or prebuilds/; node_modules is this checkout's, linked.
 */
export function freshCheckout(dir: string): void {
  const root = fileURLToPath(new URL("..", import.meta.url));
  for (const file of execFileSync("git", ["ls-files", "-z"], { cwd: root, encoding: "utf8" }).split("\0").filter(Boolean)) {
    mkdirSync(join(dir, dirname(file)), { recursive: true });
    cpSync(join(root, file), join(dir, file));
  }
  symlinkSync(join(root, "node_modules"), join(dir, "node_modules"));
}
