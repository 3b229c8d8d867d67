/**
 * Hostile and overloaded traffic against the conformance app in a process of its own: bounds are
 * on what the server holds (descriptors, gauges) and on whether it still answers, not durations.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import WS from "ws";
import { freePort, waitFor } from "../helpers.js";

const conformance = fileURLToPath(new URL("../../examples/conformance.ts", import.meta.url));

/** The conformance app with a descriptor limit of `limit` (a shell's ulimit), on a free port. */
async function startLimited(limit: number): Promise<{ pid: number; port: number; stop: () => void }> {
  const port = await freePort();
  const child = spawn("bash", ["-c", `ulimit -n ${limit} && exec "${process.execPath}" --conditions=catzilla-source --import tsx "${conformance}"`], {
    env: { ...process.env, PORT: String(port), MAX_CONNECTIONS: "5000" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", () => undefined);
  await waitFor(() => out.includes("listening"), 30_000, "the app to listen");
  return { pid: child.pid!, port, stop: () => void child.kill("SIGKILL") };
}

test("out of descriptors, upgrades the native engine cannot take are served by node:net end to end, and nothing is left open", { timeout: 60_000 }, async () => {
  const server = await startLimited(256);
  const sockets: WS[] = [];
  try {
    const base = readdirSync(`/proc/${server.pid}/fd`).length;
    let opened = 0;
    let echoed = 0;
    await Promise.all(Array.from({ length: 240 }, (_, i) => new Promise<void>((resolve) => {
      const ws = new WS(`ws://127.0.0.1:${server.port}/echo`);
      sockets.push(ws);
      const timer = setTimeout(resolve, 10_000);
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      ws.on("open", () => {
        opened++;
        ws.send(`m${i}`);
      });
      ws.on("message", (data) => {
        if (String(data) === `m${i}`) echoed++;
        done();
      });
      ws.on("unexpected-response", done);
      ws.on("error", done);
    })));
    // Some may be refused at accept (the limit), but every upgrade that was answered works.
    assert.ok(opened > 150, `${opened} of 240 opened`);
    assert.equal(echoed, opened, `${echoed} of ${opened} open connections echoed`);
    for (const ws of sockets) ws.terminate();
    await waitFor(() => readdirSync(`/proc/${server.pid}/fd`).length <= base + 8, 10_000, "the descriptors to be closed");
  } finally {
    for (const ws of sockets) ws.terminate();
    server.stop();
  }
});
