/**
 * The Redis broker: rooms across processes and machines through Redis pub/sub.
 * `ioredis` is an optional peer dependency: install it to use this entry point.
 *
 * @example
 * import { redisBroker } from "catzilla/redis";
 * await app.listen({ port: 8000, broker: redisBroker({ url: "redis://127.0.0.1:6379" }) });
 */
import { Redis, type RedisOptions } from "ioredis";
import type { Broker } from "../rooms/broker.js";
import type { Logger } from "../options.js";

/** Options of {@link redisBroker}. */
export interface RedisBrokerOptions {
  /** @default "redis://127.0.0.1:6379" */
  url?: string;
  /** First reconnection delay after Redis went away; it doubles up to `maxRetryDelayMs`. @default 100 */
  minRetryDelayMs?: number;
  /** @default 5000 */
  maxRetryDelayMs?: number;
  /** Where the one line per outage and per recovery goes. @default console */
  logger?: Logger;
  /** More ioredis options, for TLS, auth and the like. */
  redis?: RedisOptions;
}

/**
 * A {@link Broker} on Redis pub/sub: one connection publishes, one subscribes (per room channel
 * while the room exists here). When Redis goes away, publishing fails fast (rooms count it and
 * keep delivering locally) instead of queueing; both connections come back with backoff and the
 * subscriptions are restored, without a restart.
 */
export function redisBroker(options: RedisBrokerOptions = {}): Broker {
  return new RedisBroker(options);
}

class RedisBroker implements Broker {
  private readonly pub: Redis;
  private readonly sub: Redis;
  private readonly handlers = new Map<string, (payload: Uint8Array) => void>();
  private readonly logger: Logger;
  private down = false;
  private wasReady = false;
  private closed = false;

  constructor(options: RedisBrokerOptions) {
    const url = options.url ?? "redis://127.0.0.1:6379";
    const min = options.minRetryDelayMs ?? 100;
    const max = options.maxRetryDelayMs ?? 5_000;
    this.logger = options.logger ?? console;
    const common: RedisOptions = {
      ...options.redis,
      retryStrategy: (attempt) => Math.min(max, min * 2 ** Math.min(attempt - 1, 16)),
      maxRetriesPerRequest: 1,
    };
    // Publishing while Redis is away fails at once: no unbounded queue of broadcasts.
    this.pub = new Redis(url, { ...common, enableOfflineQueue: false });
    // Subscriptions are ours to restore: on every (re)connection the channels of the rooms that
    // exist here are subscribed again, and none is sent before the connection is ready.
    this.sub = new Redis(url, { ...common, autoResubscribe: false, enableOfflineQueue: false });
    this.sub.on("messageBuffer", (channel: Buffer, message: Buffer) => this.handlers.get(channel.toString())?.(message));
    this.sub.on("ready", () => {
      if (this.handlers.size > 0) this.sub.subscribe(...this.handlers.keys()).catch(() => undefined);
    });
    for (const connection of [this.pub, this.sub]) {
      connection.on("error", () => undefined);
      connection.on("close", () => this.wentDown());
      connection.on("ready", () => this.cameBack());
    }
  }

  async publish(channel: string, payload: Uint8Array): Promise<void> {
    await this.pub.publish(channel, Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength));
  }

  async subscribe(channel: string, onMessage: (payload: Uint8Array) => void): Promise<void> {
    this.handlers.set(channel, onMessage);
    if (this.sub.status === "ready") await this.sub.subscribe(channel);
  }

  async unsubscribe(channel: string): Promise<void> {
    this.handlers.delete(channel);
    if (this.sub.status === "ready") await this.sub.unsubscribe(channel);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.handlers.clear();
    await Promise.allSettled([this.pub.quit(), this.sub.quit()]);
    this.pub.disconnect();
    this.sub.disconnect();
  }

  private wentDown(): void {
    if (this.down || this.closed || !this.wasReady) return;
    this.down = true;
    this.logger.error("catzilla: Redis is unreachable; rooms deliver locally and reconnect with backoff");
  }

  private cameBack(): void {
    if (this.pub.status === "ready" && this.sub.status === "ready") this.wasReady = true;
    if (!this.down || this.pub.status !== "ready" || this.sub.status !== "ready") return;
    this.down = false;
    this.logger.info("catzilla: Redis is reachable again; rooms span servers again");
  }
}
