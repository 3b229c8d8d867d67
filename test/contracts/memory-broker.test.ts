import { MemoryBus } from "../../src/index.js";
import { brokerContract } from "./broker.contract.js";

brokerContract("memory bus", async () => {
  const bus = new MemoryBus();
  const a = bus.broker();
  const b = bus.broker();
  return { a, b, close: async () => void (await Promise.all([a.close(), b.close()])) };
});
