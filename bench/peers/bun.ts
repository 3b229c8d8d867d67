// Peer: Bun's own HTTP server (Bun.serve), written the way its documentation shows. Run by the
// bun binary of the npm registry's `bun` package (bench/harness.ts installs it into bench/.bun).
import { join } from "node:path";
import { filesDir, listenPort, parseQuery, ready } from "./common.js";

declare const Bun: {
  serve(options: { port: number; hostname: string; idleTimeout: number; fetch(req: Request): Response }): unknown;
  file(path: string): Blob;
};

const encoder = new TextEncoder();

Bun.serve({
  port: listenPort(),
  hostname: "127.0.0.1",
  // Idle SSE streams are held for the memory figure: no idle timeout (Bun's default is 10 s).
  idleTimeout: 0,
  fetch(req) {
    const { path, query } = parseQuery(req.url.slice(req.url.indexOf("/", 8)));
    if (path === "/hello") return new Response("Hello, World!", { headers: { "Content-Type": "text/plain; charset=utf-8" } });
    if (path === "/stream") {
      const n = Number(query.get("n") ?? 10);
      const chunk = new Uint8Array(Number(query.get("size") ?? 1024)).fill(120);
      let sent = 0;
      const body = new ReadableStream({
        pull(controller) {
          controller.enqueue(chunk);
          if (++sent === n) controller.close();
        },
      });
      return new Response(body, { headers: { "Content-Type": "application/octet-stream" } });
    }
    if (path === "/sse") {
      const n = Number(query.get("n") ?? 10);
      let timer: ReturnType<typeof setInterval> | undefined;
      const body = new ReadableStream({
        start(controller) {
          if (n === 0) {
            controller.enqueue(encoder.encode(": open\n\n"));
            timer = setInterval(() => controller.enqueue(encoder.encode(": ping\n\n")), 5_000);
            return;
          }
          for (let i = 1; i <= n; i++) controller.enqueue(encoder.encode(`id: ${i}\ndata: tick-${i}\n\n`));
          controller.close();
        },
        cancel() {
          clearInterval(timer);
        },
      });
      return new Response(body, { headers: { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" } });
    }
    if (path.startsWith("/files/")) return new Response(Bun.file(join(filesDir, path.slice(7))));
    return new Response(null, { status: 404 });
  },
});
ready();
