/**
 * CSV export of a million rows, streamed from a generator: the server never holds the file,
 * and pulls rows only as fast as the client downloads them.
 *
 *   node --conditions=catzilla-source --import tsx examples/csv-export.ts
 *   curl -o users.csv 'http://127.0.0.1:8000/export.csv?rows=1000000'
 */
import { Router, StreamingResponse } from "catzilla";
import { runIfMain } from "./main.js";

export const router = new Router();

function* users(count: number): Generator<string> {
  yield "id,name,email,signed_up\n";
  const epoch = Date.UTC(2024, 0, 1);
  for (let id = 1; id <= count; id++) {
    const day = new Date(epoch + (id % 700) * 86_400_000).toISOString().slice(0, 10);
    yield `${id},User ${id},user${id}@example.com,${day}\n`;
  }
}

router.get("/export.csv", (req) => {
  const rows = Math.min(Number(req.query.get("rows") ?? 1_000_000) || 0, 50_000_000);
  return new StreamingResponse(users(rows), {
    mediaType: "text/csv; charset=utf-8",
    chunkSize: 64 * 1024,
    headers: { "Content-Disposition": 'attachment; filename="users.csv"' },
  });
}, { summary: "Users as CSV, `rows` of them (default a million)", tags: ["streaming"], response: { kind: "stream", contentType: "text/csv" } });

await runIfMain(import.meta.url, router, "CSV export");
