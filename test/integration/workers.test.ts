import { test } from "node:test";
import assert from "node:assert/strict";
import { get } from "node:http";
import WS from "ws";
import { sleep, startScript, waitFor } from "../helpers.js";

function statsPid(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    get({ host: "127.0.0.1", port, path: "/stats", agent: false }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve((JSON.parse(body) as { pid: number }).pid));
    }).on("error", reject);
  });
}

test("workers: 2 share the port, and a room spans both workers", async () => {
  // The primary and its two workers each print a "listening" line.
  const { child: primary, port } = await startScript("examples/conformance.ts", { WORKERS: "2" }, 3);
  const clients: WS[] = [];
  try {
    const pids = new Set<number>();
    for (let i = 0; i < 20; i++) pids.add(await statsPid(port));
    assert.equal(pids.size, 2, `requests served by ${[...pids].join(", ")}`);
    assert.ok(!pids.has(primary.pid!), "the primary serves nothing itself");

    for (let i = 0; i < 10; i++) {
      clients.push(await new Promise<WS>((resolve, reject) => {
        const ws = new WS(`ws://127.0.0.1:${port}/room/both`);
        ws.once("open", () => resolve(ws));
        ws.once("error", reject);
      }));
    }
    const got = clients.map(() => [] as string[]);
    clients.forEach((c, i) => c.on("message", (d) => got[i]!.push(String(d))));
    await sleep(200);
    clients[0]!.send("one");
    clients[1]!.send("two");
    await waitFor(() => got.every((g) => g.length >= 2), 5_000, "every client to get both messages");
    await sleep(100);
    for (const g of got) assert.deepEqual([...g].sort(), ["one", "two"]);

    const exited = new Promise<number | null>((resolve) => primary.once("exit", (code) => resolve(code)));
    primary.kill("SIGTERM");
    assert.equal(await exited, 0);
  } finally {
    for (const c of clients) c.terminate();
    if (primary.exitCode === null) primary.kill("SIGKILL");
  }
});
