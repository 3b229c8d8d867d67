/**
 * File downloads with Range: resumable downloads (`curl -C -`), video seeking, multipart ranges,
 * conditional requests. The sample file is made on first start in the system temp directory.
 *
 *   node --conditions=catzilla-source --import tsx examples/file-download.ts
 *   curl -r 0-99 -o part.bin http://127.0.0.1:8000/download/sample.bin
 */
import { open, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileResponse, HTTPError, Router } from "catzilla";
import { runIfMain } from "./main.js";

export const router = new Router();
const SAMPLE_BYTES = 64 * 1024 * 1024;
const directory = tmpdir();
const files: Record<string, string> = { "sample.bin": join(directory, "catzilla-sample-64MiB.bin") };

async function ensureSample(path: string): Promise<void> {
  const existing = await stat(path).catch(() => null);
  if (existing?.size === SAMPLE_BYTES) return;
  const handle = await open(path, "w");
  try {
    const block = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < SAMPLE_BYTES / block.length; i++) {
      block.fill(i % 256);
      await handle.write(block);
    }
  } finally {
    await handle.close();
  }
}

let ready: Promise<void> | undefined;

router.get("/download/{name}", async (req) => {
  const path = files[req.params.name];
  if (path === undefined) throw new HTTPError(404, `No file named ${req.params.name}`);
  await (ready ??= ensureSample(path));
  return new FileResponse(path, { filename: req.params.name });
});

await runIfMain(import.meta.url, router, "File download");
