import { test } from "node:test";
import assert from "node:assert/strict";
import { get } from "node:http";
import WS from "ws";
import { sleep, startScript, waitFor } from "../helpers.js";

/** The HTTP engine the workers should run: the one this pass of the suite asks for. */
const expectedEngine = process.env.CATZILLA_HTTP_ENGINE === "native" ? "native" : "node";

function statsPid(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = get({ host: "127.0.0.1", port, path: "/stats", agent: false }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => {
        const stats = JSON.parse(body) as { pid: number; httpEngine: string };
        // Workers run the HTTP engine asked for (on the native one each binds the port itself).
        if (stats.httpEngine !== expectedEngine) reject(new Error(`a worker runs the ${stats.httpEngine} HTTP engine, not ${expectedEngine}`));
        else resolve(stats.pid);
      });
    }).on("error", reject);
    // A connection handed to a worker that just died gets no answer.
    request.setTimeout(2_000, () => request.destroy(new Error("no answer within 2 s")));
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

test("workers: a feed's history is shared, so a client resumes on either worker", { timeout: 30_000 }, async () => {
  const { child: primary, port } = await startScript("examples/conformance.ts", { WORKERS: "2" }, 3);
  try {
    const post = async (body: string) => {
      const response = await fetch(`http://127.0.0.1:${port}/news/w`, { method: "POST", body });
      assert.equal(response.status, 202);
    };
    /** The first `count` events of the feed, resuming after `lastEventId`. */
    const read = async (count: number, lastEventId?: string) => {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), 5_000);
      const response = await fetch(`http://127.0.0.1:${port}/news/w`, {
        signal: controller.signal, headers: lastEventId === undefined ? {} : { "Last-Event-ID": lastEventId },
      });
      let text = "";
      const decoder = new TextDecoder();
      // As an EventSource: blocks without data (the opening comment, heartbeats) are no events.
      const events = (): Array<Record<string, string>> => text.split("\n\n").slice(0, -1)
        .map((block) => Object.fromEntries(block.split("\n").map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 2)])))
        .filter((event) => "data" in event);
      for await (const chunk of response.body!) {
        text += decoder.decode(chunk, { stream: true });
        if (events().length >= count) break;
      }
      clearTimeout(timer);
      controller.abort();
      return events().slice(0, count);
    };
    const first = read(1);
    await sleep(200);
    await post("one");
    const [one] = await first;
    assert.equal(one!.data, "one");
    await post("two");
    await post("three");
    // A worker that dies is replaced by one that has never seen the feed; the history is in the
    // primary, so it replays the same as the other.
    const victim = await statsPid(port);
    process.kill(victim, "SIGKILL");
    for (let deadline = Date.now() + 10_000; ; await sleep(100)) {
      const pids = new Set<number>();
      for (let i = 0; i < 6; i++) pids.add(await statsPid(port).catch(() => victim));
      if (pids.size === 2 && !pids.has(victim)) break;
      assert.ok(Date.now() < deadline, "a replacement worker within 10 s");
    }
    // Each request lands on either worker; every one of them replays the same two, same ids.
    for (let i = 0; i < 6; i++) {
      const events = await read(2, one!.id);
      assert.deepEqual(events.map((e) => [e.data, Number(e.id)]), [["two", Number(one!.id) + 1], ["three", Number(one!.id) + 2]]);
    }
  } finally {
    primary.kill("SIGTERM");
  }
});
