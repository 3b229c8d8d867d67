/**
 * The app conformance and benchmark harnesses run against. See README "Conformance app".
 * PORT (default 8000) and FILES_DIR (default test/fixtures/files) come from the environment.
 */
import { fileURLToPath } from "node:url";
import { Catzilla, EventSourceResponse, StreamingResponse, type AppOptions, type EventItem } from "catzilla";

const filesDir = process.env.FILES_DIR ?? fileURLToPath(new URL("../test/fixtures/files", import.meta.url));

export function createConformanceApp(options: AppOptions = {}): Catzilla {
  const app = new Catzilla(options);

  app.get("/hello", () => "Hello, World!");

  app.get("/stream", (req) => {
    const n = intParam(req.query.get("n"), 10);
    const size = intParam(req.query.get("size"), 1024);
    const failAfter = req.query.has("fail") ? intParam(req.query.get("fail"), 0) : -1;
    const chunk = Buffer.alloc(size, "x");
    return new StreamingResponse(function* () {
      for (let i = 0; i < n; i++) {
        if (i === failAfter) throw new Error(`failing after ${failAfter} chunks as asked`);
        yield chunk;
      }
    }(), { mediaType: "application/octet-stream" });
  });

  app.get("/sse", (req) => {
    const n = intParam(req.query.get("n"), 10);
    const resumeFrom = intParam(req.lastEventId ?? null, 0);
    return new EventSourceResponse(async function* (stream): AsyncGenerator<EventItem> {
      if (n === 0) {
        // Stay open: heartbeats only, until the client leaves.
        await new Promise((resolve) => stream.signal.addEventListener("abort", resolve, { once: true }));
        return;
      }
      for (let i = resumeFrom + 1; i <= n; i++) yield { id: i, data: `tick-${i}` };
    }, { pingMs: 5_000 });
  });

  app.static("/files", filesDir);

  app.get("/stats", () => app.stats());
  app.metrics("/metrics");
  return app;
}

function intParam(value: string | null, fallback: number): number {
  if (value === null || !/^\d+$/.test(value)) return fallback;
  return Number(value);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const app = createConformanceApp();
  const { url } = await app.listen({ port: Number(process.env.PORT ?? 8000), host: "127.0.0.1" });
  console.log(`catzilla conformance app listening on ${url}`);
}
