import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import WS from "ws";
import { MemoryBus, type Broker, type Catzilla } from "../../src/index.js";
import { redisBroker } from "catzilla/redis";
import { sleep, testApp, waitFor } from "../helpers.js";
import { startRedis, type RedisServer } from "../redis-server.js";
import { connectWs } from "../ws-helpers.js";

const HISTORY = { maxMessages: 5 };

/** A server of the pair: WebSocket and SSE members of history rooms, resuming with `lastId`. */
function historyApp(): Catzilla {
  const app = testApp({ websocket: { pingIntervalMs: 0 } });
  app.websocket("/live/{room}", {
    async onOpen(ws) {
      const lastId = ws.query.get("lastId") ?? undefined;
      const replay = await app.rooms.getOrCreate(ws.params.room, { history: HISTORY }).add(ws, { lastEventId: lastId });
      if (replay === "resync") ws.sendText("RESYNC");
    },
    onMessage(ws, message) {
      const except = ws.query.get("except") === "me" ? ws : undefined;
      app.rooms.getOrCreate(ws.params.room, { history: HISTORY }).broadcast(message, { except });
    },
  });
  app.get("/sse/{room}", (req) => app.rooms.getOrCreate(req.params.room, { history: HISTORY }).eventSource({ pingMs: 0 }));
  return app;
}

interface SseEvent { id?: string; event?: string; data: string }

/** Read an SSE stream with fetch (so the Last-Event-ID can go to any server) until `count` events. */
async function readEvents(url: string, count: number, lastEventId?: string): Promise<SseEvent[]> {
  const controller = new AbortController();
  const response = await fetch(url, { signal: controller.signal, headers: lastEventId === undefined ? {} : { "Last-Event-ID": lastEventId } });
  const events: SseEvent[] = [];
  const decoder = new TextDecoder();
  let text = "";
  const timer = setTimeout(() => controller.abort(), 10_000);
  try {
    for await (const chunk of response.body!) {
      text += decoder.decode(chunk, { stream: true });
      let end: number;
      while ((end = text.indexOf("\n\n")) >= 0) {
        const block = text.slice(0, end);
        text = text.slice(end + 2);
        const event: SseEvent = { data: "" };
        let hasData = false;
        for (const line of block.split("\n")) {
          const [field, value] = [line.slice(0, line.indexOf(":")), line.slice(line.indexOf(":") + 2)];
          if (field === "id") event.id = value;
          else if (field === "event") event.event = value;
          else if (field === "data") [event.data, hasData] = [value, true];
        }
        // As an EventSource: a block without data (comments: the opening, heartbeats) is no event.
        if (!hasData) continue;
        events.push(event);
        if (events.length === count) return events;
      }
    }
    return events;
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
}

/**
 * A client that records messages from the start: a replay can arrive with the handshake
 * response, before the 'open' event's awaiters run.
 */
async function member(url: string): Promise<{ ws: WS; got: string[] }> {
  const ws = new WS(url);
  const got = collect(ws);
  await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
  return { ws, got };
}

function collect(ws: WS): string[] {
  const got: string[] = [];
  ws.on("message", (data) => got.push(String(data)));
  return got;
}

function sharedHistorySuite(name: string, brokers: () => Promise<[Broker, Broker]>, settle: number): void {
  describe(`shared room history: ${name}`, () => {
    const apps = [historyApp(), historyApp()] as const;
    const ports: number[] = [];
    before(async () => {
      const [a, b] = await brokers();
      ports.push((await apps[0].listen({ port: 0, host: "127.0.0.1", broker: a })).port);
      ports.push((await apps[1].listen({ port: 0, host: "127.0.0.1", broker: b })).port);
    });
    after(async () => {
      await Promise.all(apps.map((app) => app.close()));
    });
    const ws = (server: 0 | 1, path: string) => connectWs(`ws://127.0.0.1:${ports[server]}${path}`);
    const sse = (server: 0 | 1) => `http://127.0.0.1:${ports[server]}`;
    /** Wait until a server's room has its members (an SSE member joins once its stream starts). */
    const members = (server: 0 | 1, room: string, count: number) =>
      waitFor(() => (apps[server].rooms.get(room)?.size ?? 0) >= count, 5_000, `${count} members of ${room} on server ${server}`);

    test("broadcasts from both servers reach every member in one order with the same ids", async () => {
      const clients = [await ws(0, "/live/order"), await ws(0, "/live/order"), await ws(1, "/live/order"), await ws(1, "/live/order")];
      const got = clients.map(collect);
      const events = readEvents(`${sse(1)}/sse/order`, 20);
      await members(0, "order", 2);
      await members(1, "order", 3);
      await sleep(settle);
      for (let i = 0; i < 10; i++) clients[i % 2 === 0 ? 0 : 2]!.send(`m${i}`);
      await waitFor(() => got.every((g) => g.length === 10), 10_000, "every member to get all ten");
      for (const g of got) assert.deepEqual(g, got[0]);
      const order = [...got[0]!];
      assert.deepEqual([...order].sort(), Array.from({ length: 10 }, (_, i) => `m${i}`).sort());
      // Both servers gave the messages the same ids: the SSE member saw consecutive ids, and the
      // rooms on both servers end at the last of them.
      for (let i = 10; i < 20; i++) clients[1]!.send(`n${i}`);
      const seen = await events;
      assert.deepEqual(seen.map((e) => e.data), [...order, ...Array.from({ length: 10 }, (_, i) => `n${i + 10}`)]);
      const ids = seen.map((e) => Number(e.id));
      ids.forEach((id, i) => i > 0 && assert.equal(id, ids[i - 1]! + 1));
      await waitFor(() => apps.every((app) => app.rooms.get("order")!.lastEventId === ids.at(-1)), 5_000, "both rooms at the last id");
      for (const c of clients) c.close();
    });

    test("a client resumes on the other server: what it missed, in order, then live messages", async () => {
      const sender = await ws(0, "/live/resume");
      await members(0, "resume", 1);
      await sleep(settle);
      const first = readEvents(`${sse(0)}/sse/resume`, 3);
      await members(0, "resume", 2);
      await sleep(settle);
      for (const m of ["a", "b", "c"]) sender.send(m);
      const seen = await first;
      assert.deepEqual(seen.map((e) => e.data), ["a", "b", "c"]);
      // Away from here on: two more broadcasts, then the client comes back on server 1, which has
      // no member of the room and never saw a message of it.
      for (const m of ["d", "e"]) sender.send(m);
      await waitFor(() => apps[0].rooms.get("resume")!.lastEventId === Number(seen[2]!.id) + 2, 5_000, "d and e");
      const resumed = readEvents(`${sse(1)}/sse/resume`, 3, seen[2]!.id);
      const { ws: wsResumed, got: wsGot } = await member(`ws://127.0.0.1:${ports[1]}/live/resume?lastId=${seen[2]!.id}`);
      await members(1, "resume", 2);
      await sleep(settle);
      sender.send("live");
      assert.deepEqual((await resumed).map((e) => [e.data, Number(e.id)]), [
        ["d", Number(seen[2]!.id) + 1], ["e", Number(seen[2]!.id) + 2], ["live", Number(seen[2]!.id) + 3],
      ]);
      await waitFor(() => wsGot.length === 3, 5_000, `the WebSocket member's three, got ${wsGot}`);
      assert.deepEqual(wsGot, ["d", "e", "live"]);
      sender.close();
      wsResumed.close();
    });

    test("an id the shared history no longer covers gets resync, then live messages", async () => {
      const sender = await ws(0, "/live/old");
      const first = readEvents(`${sse(0)}/sse/old`, 1);
      await members(0, "old", 2);
      await sleep(settle);
      sender.send("0");
      const [oldest] = await first;
      for (let i = 1; i <= 8; i++) sender.send(String(i));
      await waitFor(() => apps[0].rooms.get("old")!.lastEventId === Number(oldest!.id) + 8, 5_000, "eight more");
      const { ws: late, got } = await member(`ws://127.0.0.1:${ports[1]}/live/old?lastId=${oldest!.id}`);
      const lateSse = readEvents(`${sse(1)}/sse/old`, 2, oldest!.id);
      await members(1, "old", 2);
      await sleep(settle);
      sender.send("live");
      await waitFor(() => got.length === 2, 5_000, "resync and the live message");
      assert.deepEqual(got, ["RESYNC", "live"]);
      const events = await lateSse;
      assert.equal(events[0]!.event, "resync");
      assert.equal(events[1]!.data, "live");
      // An id from the future (another deployment's) is not trusted either.
      const { ws: future, got: futureGot } = await member(`ws://127.0.0.1:${ports[1]}/live/old?lastId=${Number(oldest!.id) + 1_000}`);
      await waitFor(() => futureGot.length === 1, 5_000, "resync");
      assert.deepEqual(futureGot, ["RESYNC"]);
      for (const c of [sender, late, future]) c.close();
    });

    test("except leaves out the sender of a logged broadcast, on its own server only", async () => {
      const sender = await ws(0, "/live/except?except=me");
      const local = await ws(0, "/live/except");
      const remote = await ws(1, "/live/except");
      const [senderGot, localGot, remoteGot] = [sender, local, remote].map(collect);
      await members(0, "except", 2);
      await members(1, "except", 1);
      await sleep(settle);
      sender.send("not to me");
      await waitFor(() => localGot!.length === 1 && remoteGot!.length === 1, 5_000, "the others");
      await sleep(100);
      assert.deepEqual(senderGot, []);
      for (const c of [sender, local, remote]) c.close();
    });
  });
}

sharedHistorySuite("memory bus", async () => {
  const bus = new MemoryBus();
  return [bus.broker(), bus.broker()];
}, 20);

let redis: RedisServer;
before(async () => {
  redis = await startRedis();
});
after(() => redis.stop());
const quiet = { info: () => undefined, error: () => undefined };
sharedHistorySuite("redis", async () => [redisBroker({ url: redis.url, logger: quiet }), redisBroker({ url: redis.url, logger: quiet })], 200);

describe("shared room history when the broker misbehaves", () => {
  /** A memory-bus broker whose deliveries and appends can be made to fail. */
  function faulty(broker: Broker): Broker & { dropNextLogged: number; appendsFail: boolean } {
    const wrapper = {
      dropNextLogged: 0,
      appendsFail: false,
      publish: broker.publish.bind(broker),
      unsubscribe: broker.unsubscribe.bind(broker),
      close: broker.close.bind(broker),
      subscribe(channel: string, onMessage: (payload: Uint8Array, id?: number) => void) {
        return broker.subscribe(channel, (payload, id) => {
          if (id !== undefined && wrapper.dropNextLogged > 0) return void wrapper.dropNextLogged--;
          onMessage(payload, id);
        });
      },
      log: {
        append: (channel: string, payload: Uint8Array, limits: { maxMessages: number }) =>
          wrapper.appendsFail ? Promise.reject(new Error("the log is unreachable")) : broker.log!.append(channel, payload, limits),
        read: broker.log!.read.bind(broker.log),
      },
    };
    return wrapper;
  }

  test("messages a server did not get are filled in from the log, in order, before later ones", async () => {
    const bus = new MemoryBus();
    const [a, b] = [faulty(bus.broker()), faulty(bus.broker())];
    const apps = [historyApp(), historyApp()];
    const ports = [(await apps[0]!.listen({ port: 0, host: "127.0.0.1", broker: a })).port, (await apps[1]!.listen({ port: 0, host: "127.0.0.1", broker: b })).port];
    try {
      const sender = await member(`ws://127.0.0.1:${ports[0]}/live/gap`);
      const receiver = await member(`ws://127.0.0.1:${ports[1]}/live/gap`);
      sender.ws.send("1");
      await waitFor(() => receiver.got.length === 1, 5_000, "the first");
      b.dropNextLogged = 2;
      for (const m of ["2", "3", "4", "5"]) sender.ws.send(m);
      await waitFor(() => receiver.got.length === 5, 5_000, "all five");
      await sleep(50);
      assert.deepEqual(receiver.got, ["1", "2", "3", "4", "5"]);
      assert.equal(apps[1]!.rooms.get("gap")!.lastEventId, apps[0]!.rooms.get("gap")!.lastEventId);
      sender.ws.close();
      receiver.ws.close();
    } finally {
      await Promise.all(apps.map((app) => app.close()));
    }
  });

  test("when the log cannot take a broadcast, local members still get it, and it is counted", async () => {
    const bus = new MemoryBus();
    const a = faulty(bus.broker());
    const app = historyApp();
    const { port } = await app.listen({ port: 0, host: "127.0.0.1", broker: a });
    try {
      const sender = await member(`ws://127.0.0.1:${port}/live/down`);
      const other = await member(`ws://127.0.0.1:${port}/live/down`);
      sender.ws.send("logged");
      await waitFor(() => other.got.length === 1, 5_000, "the logged one");
      const id = app.rooms.get("down")!.lastEventId;
      a.appendsFail = true;
      sender.ws.send("while down");
      await waitFor(() => other.got.length === 2, 5_000, "the unlogged one");
      assert.deepEqual(other.got, ["logged", "while down"]);
      assert.equal(app.rooms.get("down")!.lastEventId, id, "an unlogged broadcast has no id");
      assert.equal(app.stats().rooms?.brokerFailures, 1);
      a.appendsFail = false;
      sender.ws.send("back");
      await waitFor(() => other.got.length === 3, 5_000, "the next logged one");
      assert.equal(app.rooms.get("down")!.lastEventId, id + 1);
      sender.ws.close();
      other.ws.close();
    } finally {
      await app.close();
    }
  });
});
