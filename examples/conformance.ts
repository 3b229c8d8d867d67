/**
 * The app conformance and benchmark harnesses run against. See README "Conformance app".
 * PORT (default 8000), FILES_DIR (default test/fixtures/files), MAX_CONNECTIONS (HTTP and
 * WebSocket connections, also per client address, and streams per client address; default: the
 * framework's), REDIS_URL (rooms
 * across servers through Redis) and WORKERS (worker processes sharing the port) come from the
 * environment.
 */
import { fileURLToPath } from "node:url";
import { limitsFromEnv } from "./main.js";
import { Catzilla, EventSourceResponse, Response, StreamingResponse, type AppOptions, type EventItem, type StreamController } from "catzilla";

const MAX_CHUNK_BYTES = 1024 * 1024;
const filesDir = process.env.FILES_DIR ?? fileURLToPath(new URL("../test/fixtures/files", import.meta.url));

export function createConformanceApp(options: AppOptions = {}): Catzilla {
  const app = new Catzilla(options);

  app.get("/hello", () => "Hello, World!");

  // Parameters are bounded: a request may not make the server allocate more than a chunk of 1 MiB.
  app.get("/stream", (req) => {
    const n = intParam(req.query.get("n"), 10);
    const size = Math.min(intParam(req.query.get("size"), 1024), MAX_CHUNK_BYTES);
    const chunkSize = Math.max(1024, Math.min(intParam(req.query.get("chunkSize"), 65536), MAX_CHUNK_BYTES));
    const failAfter = req.query.has("fail") ? intParam(req.query.get("fail"), 0) : -1;
    return new StreamingResponse(chunks(n, Buffer.alloc(size, "x"), failAfter), { mediaType: "application/octet-stream", chunkSize });
  });

  app.get("/sse", (req) => {
    const n = intParam(req.query.get("n"), 10);
    const from = intParam(req.lastEventId ?? null, 0) + 1;
    return new EventSourceResponse((stream) => (n === 0 ? heartbeatsOnly(stream) : ticks(from, n)), { pingMs: 5_000 });
  });

  app.static("/files", filesDir);

  // Echoes every message with its type; permessage-deflate on, messages up to 16 MiB. The echo
  // needs nothing from the upgrade request, so the route does not keep it (keepRequest: false).
  app.websocket("/echo", {
    onMessage(ws, message) {
      ws.send(message);
    },
  }, { perMessageDeflate: true, maxMessageBytes: 16 * 1024 * 1024, maxBufferedBytes: 32 * 1024 * 1024, keepRequest: false });

  // Every message a member sends goes to all members of the room, the sender included, same type.
  app.websocket("/room/{name}", {
    onOpen(ws) {
      app.rooms.getOrCreate(ws.params.name).add(ws);
    },
    onMessage(ws, message) {
      app.rooms.getOrCreate(ws.params.name).broadcast(message);
    },
  });

  // A news feed with history: GET is an SSE member of the feed (resumes after Last-Event-ID, on
  // any server or worker: ids and history are shared), POST broadcasts its body as one event.
  const feed = (name: string) => app.rooms.getOrCreate(`news:${name}`, { history: { maxMessages: 100, maxAgeMs: 300_000 } });
  app.get("/news/{name}", (req) => feed(req.params.name).eventSource({ pingMs: 15_000 }));
  app.post("/news/{name}", async (req) => {
    feed(req.params.name).broadcast(await req.text());
    return new Response(null, { status: 202 });
  });

  app.get("/stats", () => app.stats());
  app.metrics("/metrics");
  return app;
}

// Generator functions are declared once, not per request: each `function*` expression evaluated
// in a handler gives V8 a new hidden class per request, which costs more than the stream itself.

function* chunks(n: number, chunk: Buffer, failAfter: number): Generator<Buffer> {
  for (let i = 0; i < n; i++) {
    if (i === failAfter) throw new Error(`failing after ${failAfter} chunks as asked`);
    yield chunk;
  }
}

async function* ticks(from: number, to: number): AsyncGenerator<EventItem> {
  for (let i = from; i <= to; i++) yield { id: i, data: `tick-${i}` };
}

/** Stays open with heartbeats only, until the client leaves. */
async function* heartbeatsOnly(stream: StreamController): AsyncGenerator<EventItem> {
  await new Promise((resolve) => stream.signal.addEventListener("abort", resolve, { once: true }));
}

function intParam(value: string | null, fallback: number): number {
  if (value === null || !/^\d+$/.test(value)) return fallback;
  return Number(value);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  // Harnesses that open many connections from 127.0.0.1 raise the limits with MAX_CONNECTIONS.
  const app = createConformanceApp(limitsFromEnv());
  // With REDIS_URL, rooms span every server joined to that Redis.
  const broker = process.env.REDIS_URL === undefined ? undefined : (await import("catzilla/redis")).redisBroker({ url: process.env.REDIS_URL });
  // With WORKERS=N, N worker processes share the port; rooms span them.
  const workers = Number(process.env.WORKERS ?? 1);
  const { url } = await app.listen({ port: Number(process.env.PORT ?? 8000), host: "127.0.0.1", workers, ...(broker === undefined ? {} : { broker }) });
  console.log(`catzilla conformance app listening on ${url}`);
}
