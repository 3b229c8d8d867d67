import { fileURLToPath } from "node:url";
import { Catzilla, type AppOptions, type Router } from "catzilla";

/**
 * Options from the environment for harnesses that open many connections from 127.0.0.1:
 * MAX_CONNECTIONS raises the HTTP and WebSocket connection limits (per client address too) and
 * the concurrent streams per client address (maxStreamsPerClient); SHUTDOWN_TIMEOUT_MS sets
 * shutdownTimeoutMs.
 */
export function limitsFromEnv(): AppOptions {
  const options: AppOptions = {};
  const max = Number(process.env.MAX_CONNECTIONS);
  if (Number.isSafeInteger(max) && max > 0) {
    Object.assign(options, { maxConnections: max, maxStreamsPerClient: max, websocket: { maxConnections: max, maxConnectionsPerClient: max } });
  }
  const shutdown = Number(process.env.SHUTDOWN_TIMEOUT_MS);
  if (Number.isSafeInteger(shutdown) && shutdown > 0) options.shutdownTimeoutMs = shutdown;
  return options;
}

/** When `moduleUrl` is the script node was started with, serve `router` on $PORT (default 8000). */
export async function runIfMain(moduleUrl: string, router: Router, title: string): Promise<void> {
  if (process.argv[1] === undefined || fileURLToPath(moduleUrl) !== process.argv[1]) return;
  const app = new Catzilla(limitsFromEnv());
  app.include(router);
  const { url } = await app.listen({ port: Number(process.env.PORT ?? 8000), host: process.env.HOST ?? "127.0.0.1" });
  console.log(`${title} listening on ${url}`);
}
