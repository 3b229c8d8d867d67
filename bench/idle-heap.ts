/**
 * Where an idle WebSocket connection's memory goes, per engine: N connections held by the load
 * generator (another process), then, after full garbage collections in the server, the growth of
 * the JavaScript heap, of external memory and of RSS, each ÷ N. The heap figure is what the
 * framework keeps per connection in JavaScript; RSS also holds the C side and what the
 * handshakes left in V8's heap pages.
 *
 *   node --expose-gc --import tsx bench/idle-heap.ts            (IDLE_CONNECTIONS=5000)
 */
import { spawn } from "node:child_process";
import { createConformanceApp } from "../examples/conformance.js";

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("run with node --expose-gc");
const connections = Number(process.env.IDLE_CONNECTIONS ?? 5_000);

for (const engine of ["native", "node"] as const) {
  const app = createConformanceApp({
    handleSignals: false, engine, logger: { info: () => undefined, error: console.error },
    websocket: { maxConnections: connections + 100, maxConnectionsPerClient: connections + 100 },
  });
  const { port } = await app.listen({ port: 0, host: "127.0.0.1" });
  gc();
  gc();
  const before = process.memoryUsage();
  const client = spawn(process.execPath, ["--import", "tsx", "bench/ws-load.ts"], {
    env: { ...process.env, URL: `ws://127.0.0.1:${port}/echo`, MODE: "idle", CONNECTIONS: String(connections) },
    stdio: ["pipe", "pipe", "inherit"],
  });
  await new Promise<void>((resolve, reject) => {
    client.stdout!.on("data", (d) => String(d).startsWith("ready") && resolve());
    client.once("exit", (code) => reject(new Error(`the load generator exited with ${code}`)));
  });
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  gc();
  gc();
  const after = process.memoryUsage();
  const per = (key: "heapUsed" | "external" | "rss") => Math.round((after[key] - before[key]) / connections);
  console.log(`${engine}: ${connections} idle connections; per connection: JS heap ${per("heapUsed")} B, external ${per("external")} B, RSS ${per("rss")} B`);
  client.kill("SIGKILL");
  await app.close();
}
process.exit(0);
