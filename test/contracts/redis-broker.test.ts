import { after, before } from "node:test";
import { redisBroker } from "catzilla/redis";
import { brokerContract } from "./broker.contract.js";
import { startRedis, type RedisServer } from "../redis-server.js";

let redis: RedisServer;
before(async () => {
  redis = await startRedis();
});
after(() => redis.stop());

const quiet = { info: () => undefined, error: () => undefined };

brokerContract("redis", async () => {
  const a = redisBroker({ url: redis.url, logger: quiet });
  const b = redisBroker({ url: redis.url, logger: quiet });
  return { a, b, close: async () => void (await Promise.all([a.close(), b.close()])) };
});
