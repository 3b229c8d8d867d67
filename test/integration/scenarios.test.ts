// The plan's scenario tests, scaled to run in CI: servers in their own processes, real clients.
import { test } from "node:test";
import assert from "node:assert/strict";
import WS from "ws";
import { sleep, startScript, waitFor } from "../helpers.js";

async function openMany(url: string, count: number): Promise<WS[]> {
  const sockets: WS[] = [];
  for (let i = 0; i < count; i += 250) {
    sockets.push(...await Promise.all(Array.from({ length: Math.min(250, count - i) }, () => new Promise<WS>((resolve, reject) => {
      const ws = new WS(url, { perMessageDeflate: false });
      ws.once("open", () => resolve(ws));
      ws.once("error", reject);
    }))));
  }
  return sockets;
}

test("live game event: 5,000 viewers receive 4 events, at least 95 % of them within 1 s each", async () => {
  const viewers = 5_000;
  const { child, port } = await startScript("examples/conformance.ts", { MAX_CONNECTIONS: String(viewers + 100) });
  let sockets: WS[] = [];
  try {
    sockets = await openMany(`ws://127.0.0.1:${port}/room/final`, viewers);
    const arrivals: number[][] = [[], [], [], []];
    for (const ws of sockets) {
      ws.on("message", (data) => {
        const event = Number(String(data).split(":")[1]);
        arrivals[event]!.push(Date.now());
      });
    }
    const commentator = sockets[0]!;
    for (let event = 0; event < 4; event++) {
      const sentAt = Date.now();
      commentator.send(`event:${event}`);
      await waitFor(() => arrivals[event]!.length >= viewers || Date.now() - sentAt > 3_000, 5_000);
      const inTime = arrivals[event]!.filter((t) => t - sentAt <= 1_000).length;
      assert.ok(inTime >= viewers * 0.95, `event ${event}: ${inTime} of ${viewers} within 1 s`);
      await sleep(200);
    }
  } finally {
    for (const ws of sockets) ws.terminate();
    child.kill("SIGKILL");
  }
});

test("IoT: 1,000 devices send telemetry and every reading is acknowledged", async () => {
  const devices = 1_000;
  const { child, port } = await startScript("examples/iot-telemetry.ts", { MAX_CONNECTIONS: String(devices + 100) });
  let sockets: WS[] = [];
  try {
    sockets = [];
    for (let i = 0; i < devices; i += 250) {
      sockets.push(...await Promise.all(Array.from({ length: Math.min(250, devices - i) }, (_, k) => new Promise<WS>((resolve, reject) => {
        const ws = new WS(`ws://127.0.0.1:${port}/ws/telemetry/device-${i + k}`);
        ws.once("open", () => resolve(ws));
        ws.once("error", reject);
      }))));
    }
    let acks = 0;
    for (const ws of sockets) ws.on("message", (d) => String(d) === "ACK" && acks++);
    const reading = Buffer.alloc(24);
    for (let round = 0; round < 3; round++) for (const ws of sockets) ws.send(reading);
    await waitFor(() => acks === devices * 3, 10_000, "every reading to be acknowledged");
    const stats = await (await fetch(`http://127.0.0.1:${port}/telemetry/stats`)).json() as { devices: number; readings: number };
    assert.deepEqual(stats, { devices, readings: devices * 3 });
  } finally {
    for (const ws of sockets) ws.terminate();
    child.kill("SIGKILL");
  }
});
