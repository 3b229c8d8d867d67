import { spawn, type ChildProcess } from "node:child_process";
import { freePort } from "./helpers.js";

/** A redis-server of the test's own on a free port of 127.0.0.1 (never 6379). */
export interface RedisServer {
  port: number;
  url: string;
  /** Kill it (SIGKILL, like a crash). */
  kill(): Promise<void>;
  /** Start it again on the same port. */
  restart(): Promise<void>;
  /** Stop it without ending it (SIGSTOP): it keeps its connections and answers nothing. */
  pause(): void;
  /** Let a paused server go on (SIGCONT). */
  resume(): void;
  stop(): Promise<void>;
}

export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  let child: ChildProcess | null = null;
  const start = async (): Promise<void> => {
    const proc = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    child = proc;
    await new Promise<void>((resolve, reject) => {
      let out = "";
      const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${out}`)), 10_000);
      proc.stdout!.on("data", (d) => {
        out += d;
        if (out.includes("Ready to accept connections")) {
          clearTimeout(timer);
          resolve();
        }
      });
      proc.once("exit", (code) => reject(new Error(`redis-server exited with ${code}: ${out}`)));
    });
  };
  const kill = async (): Promise<void> => {
    const proc = child;
    if (proc === null || proc.exitCode !== null) return;
    const exited = new Promise((resolve) => proc.once("exit", resolve));
    proc.kill("SIGKILL");
    await exited;
    child = null;
  };
  await start();
  const signal = (name: NodeJS.Signals) => (): void => void (child as ChildProcess | null)?.kill(name);
  return { port, url: `redis://127.0.0.1:${port}`, kill, restart: start, stop: kill, pause: signal("SIGSTOP"), resume: signal("SIGCONT") };
}
