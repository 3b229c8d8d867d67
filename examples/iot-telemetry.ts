/**
 * IoT telemetry: devices send binary readings and get `ACK` back. Event style: no promise chain
 * and no queue per connection, for very many devices.
 *
 *   node --conditions=catzilla-source --import tsx examples/iot-telemetry.ts
 *   # connect to ws://127.0.0.1:8000/ws/telemetry/<deviceId>, send binary, receive "ACK"
 */
import { CloseCode, Router } from "catzilla";
import { runIfMain } from "./main.js";

export const router = new Router();
const readings = new Map<string, number>();

router.websocket("/ws/telemetry/{deviceId}", {
  onOpen(ws) {
    readings.set(ws.params.deviceId, readings.get(ws.params.deviceId) ?? 0);
  },
  onMessage(ws, _message, isBinary) {
    if (!isBinary) {
      ws.close(CloseCode.UnsupportedData, "Telemetry is binary");
      return;
    }
    readings.set(ws.params.deviceId, (readings.get(ws.params.deviceId) ?? 0) + 1);
    ws.sendText("ACK");
  },
}, { maxMessageBytes: 64 * 1024, maxMessagesPerSecond: 1_000, summary: "Binary telemetry in, ACK out (event style)" });

router.get("/telemetry/stats", () => ({ devices: readings.size, readings: [...readings.values()].reduce((a, b) => a + b, 0) }));

await runIfMain(import.meta.url, router, "IoT telemetry");
