/**
 * Load generator for bench/deflate.ts: two `ws` clients with permessage-deflate on one server's
 * /echo. One echoes 1 MiB JSON text messages back to back (compressed both ways); the other
 * measures the round trip of 32-byte messages meanwhile, which shows whether the server's zlib
 * work holds up its other connections. URL, SECONDS. Prints one JSON line.
 */
import WS from "ws";

const url = process.env.URL ?? "ws://127.0.0.1:8000/echo";
const seconds = Number(process.env.SECONDS ?? 4);
const rows = Array.from({ length: 12_000 }, (_, i) => ({ id: i, name: `user${i}`, price: ((i * 7919) % 10_007) / 100, tags: ["a", "b", String(i % 7)] }));
const large = JSON.stringify(rows).slice(0, 1 << 20);

function open(options: WS.ClientOptions): Promise<WS> {
  return new Promise((resolve, reject) => {
    const ws = new WS(url, options);
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
  });
}

const heavy = await open({ perMessageDeflate: { threshold: 0 } });
const light = await open({ perMessageDeflate: { threshold: 0 } });
let echoed = 0;
let running = true;
heavy.on("message", (data) => {
  if (String(data).length !== large.length) throw new Error("a large echo came back changed");
  echoed++;
  if (running) heavy.send(large);
});
heavy.send(large);

const samples: number[] = [];
const started = Date.now();
const small = "x".repeat(32);
while (Date.now() - started < seconds * 1000) {
  const t = process.hrtime.bigint();
  await new Promise<void>((resolve) => {
    light.once("message", () => resolve());
    light.send(small);
  });
  samples.push(Number(process.hrtime.bigint() - t) / 1000);
}
running = false;
const elapsed = (Date.now() - started) / 1000;
samples.sort((a, b) => a - b);
const at = (q: number): number => samples[Math.min(samples.length - 1, Math.floor(samples.length * q))]!;
console.log(JSON.stringify({ p50us: at(0.5), p99us: at(0.99), maxUs: samples.at(-1), smallPerSec: samples.length / elapsed, largePerSec: echoed / elapsed }));
heavy.terminate();
light.terminate();
