/**
 * Load generator for bench/deflate.ts, one role per process (both on the same CPU), so that the
 * client's own handling of the large messages does not hold up the small round trips.
 *
 * ROLE=heavy: a `ws` client with permessage-deflate echoes 1 MiB JSON text messages back to back.
 * ROLE=light: another measures the round trip of 32-byte messages meanwhile, which shows whether
 * the server's zlib work holds up its other connections.
 * URL, SECONDS (the light role starts measuring after WARMUP_MS). Prints one JSON line.
 */
import WS from "ws";

const url = process.env.URL ?? "ws://127.0.0.1:8000/echo";
const seconds = Number(process.env.SECONDS ?? 4);
const warmupMs = Number(process.env.WARMUP_MS ?? 300);
const role = process.env.ROLE ?? "light";

function open(): Promise<WS> {
  return new Promise((resolve, reject) => {
    const ws = new WS(url, { perMessageDeflate: { threshold: 0 } });
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
  });
}

async function heavy(): Promise<void> {
  const rows = Array.from({ length: 12_000 }, (_, i) => ({ id: i, name: `user${i}`, price: ((i * 7919) % 10_007) / 100, tags: ["a", "b", String(i % 7)] }));
  const large = JSON.stringify(rows).slice(0, 1 << 20);
  const ws = await open();
  let echoed = 0;
  const started = Date.now();
  // Until the light role is done: its warm-up, its measurement, and a margin.
  const until = started + warmupMs + seconds * 1000 + 500;
  await new Promise<void>((resolve) => {
    ws.on("message", (data) => {
      if ((data as Buffer).length !== large.length) throw new Error("a large echo came back changed");
      echoed++;
      if (Date.now() < until) ws.send(large);
      else resolve();
    });
    ws.send(large);
  });
  console.log(JSON.stringify({ largePerSec: echoed / ((Date.now() - started) / 1000) }));
  ws.terminate();
}

async function light(): Promise<void> {
  const ws = await open();
  await new Promise((resolve) => setTimeout(resolve, warmupMs));
  const samples: number[] = [];
  const small = "x".repeat(32);
  const started = Date.now();
  while (Date.now() - started < seconds * 1000) {
    const t = process.hrtime.bigint();
    await new Promise<void>((resolve) => {
      ws.once("message", () => resolve());
      ws.send(small);
    });
    samples.push(Number(process.hrtime.bigint() - t) / 1000);
  }
  const elapsed = (Date.now() - started) / 1000;
  samples.sort((a, b) => a - b);
  const at = (q: number): number => samples[Math.min(samples.length - 1, Math.floor(samples.length * q))]!;
  console.log(JSON.stringify({ p50us: at(0.5), p99us: at(0.99), maxUs: samples.at(-1), smallPerSec: samples.length / elapsed }));
  ws.terminate();
}

await (role === "heavy" ? heavy() : light());
