import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, mkdir, open, rm, symlink, writeFile, utimes } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileResponse, StreamingResponse, streamFileRange } from "../../src/index.js";
import { rawExchange, serve, sleep, splitResponse, testApp, type Served } from "../helpers.js";

describe("FileResponse and static files", () => {
  let served: Served;
  let dir: string;
  let root: string;
  const content = randomBytes(100_000);
  const size = content.length;
  const app = testApp();
  const mtime = new Date("2026-03-04T05:06:07Z");

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "catzilla-files-"));
    root = join(dir, "public");
    await mkdir(join(root, "docs"), { recursive: true });
    await writeFile(join(root, "data.bin"), content);
    await utimes(join(root, "data.bin"), mtime, mtime);
    await writeFile(join(root, "notes.txt"), "plain notes\n");
    await writeFile(join(root, ".env"), "SECRET=1\n");
    await writeFile(join(root, "docs", "index.html"), "<p>docs</p>");
    await writeFile(join(dir, "outside.txt"), "outside the root\n");
    await symlink(join(dir, "outside.txt"), join(root, "escape.txt"));
    await symlink(join(root, "notes.txt"), join(root, "inside-link.txt"));
    const sparse = await open(join(dir, "sparse.bin"), "w");
    await sparse.truncate(2 * 1024 * 1024 * 1024);
    await sparse.close();

    app.static("/static", root);
    app.get("/download", () => new FileResponse(join(root, "data.bin"), { filename: "résumé 2026.pdf" }));
    app.get("/inline", () => new FileResponse(join(root, "notes.txt"), { filename: "notes.txt", disposition: "inline" }));
    app.get("/missing", () => new FileResponse(join(root, "nope.bin")));
    app.get("/sparse", () => new FileResponse(join(dir, "sparse.bin")));
    app.get("/part", () => new StreamingResponse(streamFileRange(join(root, "data.bin"), 10, 19)));
    served = await serve(app);
  });
  after(async () => {
    await served.close();
    await rm(dir, { recursive: true, force: true });
  });

  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${served.url}${path}`, { headers });

  test("a whole file with validators and a type from its name", async () => {
    const res = await get("/static/data.bin");
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("accept-ranges"), "bytes");
    assert.equal(res.headers.get("content-length"), String(size));
    assert.equal(res.headers.get("content-type"), "application/octet-stream");
    assert.equal(res.headers.get("last-modified"), mtime.toUTCString());
    assert.match(res.headers.get("etag")!, /^"[0-9a-f]+-[0-9a-f]+"$/);
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(content));
    const txt = await get("/static/notes.txt");
    assert.equal(txt.headers.get("content-type"), "text/plain; charset=utf-8");
    assert.equal(await txt.text(), "plain notes\n");
  });

  test("single, suffix, open-ended and clamped ranges", async () => {
    const cases: Array<[string, number, number]> = [
      ["bytes=0-99", 0, 99],
      ["bytes=-100", size - 100, size - 1],
      ["bytes=99990-", 99_990, size - 1],
      ["bytes=50000-999999", 50_000, size - 1],
      ["bytes=-999999", 0, size - 1],
      ["bytes=7-7", 7, 7],
    ];
    for (const [range, start, end] of cases) {
      const res = await get("/static/data.bin", { range });
      assert.equal(res.status, 206, range);
      assert.equal(res.headers.get("content-range"), `bytes ${start}-${end}/${size}`, range);
      assert.equal(res.headers.get("content-length"), String(end - start + 1), range);
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(content.subarray(start, end + 1)), range);
    }
  });

  test("several ranges come as multipart/byteranges", async () => {
    const res = await get("/static/data.bin", { range: "bytes=0-9, 100-199, -5" });
    assert.equal(res.status, 206);
    const type = res.headers.get("content-type")!;
    const boundary = /^multipart\/byteranges; boundary=(\S+)$/.exec(type)?.[1];
    assert.ok(boundary, type);
    assert.equal(res.headers.get("content-range"), null);
    const body = Buffer.from(await res.arrayBuffer());
    assert.equal(res.headers.get("content-length"), String(body.length));
    const expected = [[0, 9], [100, 199], [size - 5, size - 1]] as const;
    let offset = 0;
    for (const [i, [start, end]] of expected.entries()) {
      const head: string = `${i === 0 ? "" : "\r\n"}--${boundary}\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes ${start}-${end}/${size}\r\n\r\n`;
      assert.equal(body.subarray(offset, offset + head.length).toString("latin1"), head);
      offset += head.length;
      assert.ok(body.subarray(offset, offset + end - start + 1).equals(content.subarray(start, end + 1)));
      offset += end - start + 1;
    }
    assert.equal(body.subarray(offset).toString(), `\r\n--${boundary}--\r\n`);
  });

  test("unsatisfiable ranges get 416 with the length; malformed ones get the whole file", async () => {
    const res = await get("/static/data.bin", { range: `bytes=${size}-` });
    assert.equal(res.status, 416);
    assert.equal(res.headers.get("content-range"), `bytes */${size}`);
    await res.arrayBuffer();
    const zero = await get("/static/data.bin", { range: "bytes=-0" });
    assert.equal(zero.status, 416);
    await zero.arrayBuffer();
    for (const range of ["bytes=abc", "bytes=5-1", "pages=1-2"]) {
      const full = await get("/static/data.bin", { range });
      assert.equal(full.status, 200, range);
      assert.equal((await full.arrayBuffer()).byteLength, size);
    }
    const tooMany = await get("/static/data.bin", { range: `bytes=${Array.from({ length: 20 }, (_, i) => `${i * 10}-${i * 10 + 1}`).join(",")}` });
    assert.equal(tooMany.status, 200);
    await tooMany.arrayBuffer();
  });

  test("If-Range with the strong ETag or the exact date keeps the range; anything else sends it all", async () => {
    const etag = (await get("/static/data.bin", { range: "bytes=0-0" })).headers.get("etag")!;
    const cases: Array<[string, number]> = [
      [etag, 206],
      ['"stale"', 200],
      [`W/${etag}`, 200],
      [mtime.toUTCString(), 206],
      [new Date(mtime.getTime() + 60_000).toUTCString(), 200],
    ];
    for (const [ifRange, status] of cases) {
      const res = await get("/static/data.bin", { range: "bytes=0-9", "if-range": ifRange });
      assert.equal(res.status, status, ifRange);
      assert.equal((await res.arrayBuffer()).byteLength, status === 206 ? 10 : size);
    }
  });

  test("304 for If-None-Match and If-Modified-Since, 412 for If-Match", async () => {
    const etag = (await get("/static/data.bin", { range: "bytes=0-0" })).headers.get("etag")!;
    const notModified = await get("/static/data.bin", { "if-none-match": etag });
    assert.equal(notModified.status, 304);
    assert.equal(notModified.headers.get("etag"), etag);
    assert.equal((await notModified.arrayBuffer()).byteLength, 0);
    assert.equal((await get("/static/data.bin", { "if-modified-since": mtime.toUTCString() })).status, 304);
    // A 304 outranks a range.
    assert.equal((await get("/static/data.bin", { "if-none-match": etag, range: "bytes=0-1" })).status, 304);
    const changed = await get("/static/data.bin", { "if-modified-since": new Date(mtime.getTime() - 60_000).toUTCString() });
    assert.equal(changed.status, 200);
    await changed.arrayBuffer();
    assert.equal((await get("/static/data.bin", { "if-match": '"other"' })).status, 412);
  });

  test("HEAD sends the headers of a file or a range and no body", async () => {
    const { data } = await rawExchange(served.port, "HEAD /static/data.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9\r\nConnection: close\r\n\r\n");
    const { head, body, status } = splitResponse(data);
    assert.equal(status, 206);
    assert.match(head, /content-length: 10/i);
    assert.equal(body.length, 0);
  });

  test("Content-Disposition with an RFC 6266 filename* for non-ASCII names", async () => {
    const res = await get("/download");
    assert.equal(res.headers.get("content-disposition"),
      "attachment; filename=\"r_sum_ 2026.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%202026.pdf");
    assert.equal(res.headers.get("content-type"), "application/pdf");
    await res.arrayBuffer();
    const inline = await get("/inline");
    assert.equal(inline.headers.get("content-disposition"), 'inline; filename="notes.txt"');
    await inline.arrayBuffer();
  });

  test("a missing file is 404", async () => {
    assert.equal((await get("/missing")).status, 404);
    assert.equal((await get("/static/none.txt")).status, 404);
  });

  test("directories serve their index; links inside the root are followed", async () => {
    assert.equal(await (await get("/static/docs")).text(), "<p>docs</p>");
    assert.equal(await (await get("/static/docs/")).text(), "<p>docs</p>");
    assert.equal(await (await get("/static/inside-link.txt")).text(), "plain notes\n");
  });

  test("path traversal in every encoding never reaches a file outside the root", async () => {
    const attempts: Array<[string, number]> = [
      ["/static/../outside.txt", 404],
      ["/static/%2e%2e/outside.txt", 404],
      ["/static/%2E%2E/outside.txt", 404],
      ["/static/..%2foutside.txt", 404],
      ["/static/docs/%2e%2e/%2e%2e/outside.txt", 404],
      ["/static/..%5coutside.txt", 404],
      ["/static/escape.txt", 404],
      ["/static/.env", 404],
      ["/static/notes.txt%00.png", 400],
      ["/static/%ff%fe", 400],
    ];
    for (const [path, status] of attempts) {
      const { data } = await rawExchange(served.port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      const response = splitResponse(data);
      assert.equal(response.status, status, path);
      assert.ok(!response.body.toString().includes("outside the root"), path);
      assert.ok(!response.body.toString().includes("SECRET"), path);
    }
  });

  test("streamFileRange feeds a custom handler", async () => {
    const res = await get("/part");
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(content.subarray(10, 20)));
  });

  test("a 2 GiB file to a slow reader reads only what the client takes", async () => {
    const socket = connect(served.port, "127.0.0.1");
    socket.write("GET /sparse HTTP/1.1\r\nHost: x\r\n\r\n");
    let received = 0;
    socket.on("data", (d: Buffer) => {
      received += d.length;
      socket.pause();
      setTimeout(() => socket.resume(), Math.round((d.length / (4 * 1024 * 1024)) * 1000));
    });
    const before = app.stats().streams.bytes;
    const rssBefore = process.memoryUsage().rss;
    await sleep(1_500);
    const sent = app.stats().streams.bytes - before;
    const rssGrowth = process.memoryUsage().rss - rssBefore;
    socket.destroy();
    assert.ok(received > 1024 * 1024, `received ${received}`);
    assert.ok(sent - received < 16 * 1024 * 1024, `sent ${sent}, received ${received}`);
    assert.ok(rssGrowth < 64 * 1024 * 1024, `RSS grew by ${rssGrowth}`);
  });
});
