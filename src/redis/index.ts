/// <reference types="node" preserve="true" />
/**
 * The Redis broker: rooms across processes and machines through Redis pub/sub.
 * `ioredis` is an optional peer dependency: install it to use this entry point.
 *
 * @example
 * import { redisBroker } from "catzilla/redis";
 * await app.listen({ port: 8000, broker: redisBroker({ url: "redis://127.0.0.1:6379" }) });
 */
import type { Redis, RedisOptions } from "ioredis";
import { firstLogId, type Broker, type BrokerLog, type LogEntry, type LogLimits } from "../rooms/broker.js";
import type { Logger } from "../options.js";
import { assertPositiveInteger } from "../validate.js";

/** Options of {@link redisBroker}. */
export interface RedisBrokerOptions {
  /** @default "redis://127.0.0.1:6379" */
  url?: string;
  /** First reconnection delay after Redis went away; it doubles up to `maxRetryDelayMs`. @default 100 */
  minRetryDelayMs?: number;
  /** @default 5000 */
  maxRetryDelayMs?: number;
  /**
   * How long a command may wait for Redis's answer. A Redis that takes connections but answers
   * nothing (stopped, swapping, overloaded) fails a publish after this long; its connection is
   * then dropped and made again with backoff, and until it answers again publishing fails at
   * once. @default 2000
   */
  commandTimeoutMs?: number;
  /** Commands that may wait for Redis's answers at once; one more fails at once. @default 1000 */
  maxPendingCommands?: number;
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
 *
 * Its log (rooms with history) is a capped Redis stream per channel, `{<channel>}:log`, with the
 * last id in `{<channel>}:id`: one script appends, trims and publishes, so every server sees the
 * same ids in the same order. With `maxAgeMs` both keys expire that long after the last append.
 */
export function redisBroker(options: RedisBrokerOptions = {}): Broker {
  return new RedisBroker(options);
}

/** ioredis, loaded here so that its absence says what to do (it is an optional peer dependency). */
const { Redis: RedisClient } = await import("ioredis").catch((error: NodeJS.ErrnoException) => {
  if (error.code === "ERR_MODULE_NOT_FOUND" && String(error.message).includes("ioredis")) {
    throw new Error("catzilla/redis needs the ioredis package, an optional peer dependency: npm install ioredis", { cause: error });
  }
  throw error;
});

/** Channel messages start with a tag: a plain publish, or a logged one (then the id and a colon). */
const PLAIN = 0;
const LOGGED = 1;
const COLON = 0x3a;

/**
 * KEYS: id counter, stream. ARGV: channel, payload, maxMessages, now (ms), first id, ttl (ms, 0
 * for none). Ids are kept as strings in Lua: its numbers print 16 digits inexactly.
 */
const APPEND_SCRIPT = `
local id = redis.call('INCR', KEYS[1])
if id == 1 then
  redis.call('SET', KEYS[1], ARGV[5])
  id = ARGV[5]
else
  id = string.format('%.0f', id)
end
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], id .. '-0', 't', ARGV[4], 'p', ARGV[2])
if ARGV[6] ~= '0' then
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
end
redis.call('PUBLISH', ARGV[1], '\\1' .. id .. ':' .. ARGV[2])
return id
`;

interface AppendCommand {
  czLogAppend(idKey: string, streamKey: string, channel: string, payload: Buffer, max: number, now: number, first: number, ttl: number): Promise<string>;
}

const idKey = (channel: string) => `{${channel}}:id`;
const streamKey = (channel: string) => `{${channel}}:log`;

class RedisBroker implements Broker {
  readonly log: BrokerLog;
  private readonly pub: Redis;
  private readonly sub: Redis;
  private readonly handlers = new Map<string, (payload: Uint8Array, id?: number) => void>();
  private readonly logger: Logger;
  private down = false;
  private wasReady = false;
  private closed = false;
  /** Commands waiting for Redis's answer. */
  private pending = 0;
  /** The publishing connection is being dropped (a command timed out); cleared when it is made again. */
  private dropping = false;
  private readonly maxPending: number;

  constructor(options: RedisBrokerOptions) {
    const url = options.url ?? "redis://127.0.0.1:6379";
    const min = options.minRetryDelayMs ?? 100;
    const max = options.maxRetryDelayMs ?? 5_000;
    const commandTimeout = options.commandTimeoutMs ?? 2_000;
    this.maxPending = options.maxPendingCommands ?? 1_000;
    assertPositiveInteger("commandTimeoutMs", commandTimeout);
    assertPositiveInteger("maxPendingCommands", this.maxPending);
    this.logger = options.logger ?? console;
    const common: RedisOptions = {
      ...options.redis,
      retryStrategy: (attempt) => Math.min(max, min * 2 ** Math.min(attempt - 1, 16)),
      maxRetriesPerRequest: 1,
      commandTimeout,
    };
    // Publishing while Redis is away fails at once: no unbounded queue of broadcasts.
    this.pub = new RedisClient(url, { ...common, enableOfflineQueue: false });
    // Subscriptions are ours to restore: on every (re)connection the channels of the rooms that
    // exist here are subscribed again, and none is sent before the connection is ready.
    this.sub = new RedisClient(url, { ...common, autoResubscribe: false, enableOfflineQueue: false });
    this.pub.defineCommand("czLogAppend", { numberOfKeys: 2, lua: APPEND_SCRIPT });
    this.sub.on("messageBuffer", (channel: Buffer, message: Buffer) => this.received(channel.toString(), message));
    this.log = { append: (c, p, l) => this.append(c, p, l), read: (c, a, l) => this.read(c, a, l) };
    this.pub.on("ready", () => void (this.dropping = false));
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
    const message = Buffer.allocUnsafe(1 + payload.byteLength);
    message[0] = PLAIN;
    message.set(payload, 1);
    await this.command(() => this.pub.publish(channel, message));
  }

  /**
   * Run a command on the publishing connection, failing at once when too many wait already. One
   * that gets no answer in time means Redis hangs: the connection is dropped (what waits on it
   * fails at once, and what it held is let go) and made again with backoff.
   */
  private async command<T>(run: () => Promise<T>): Promise<T> {
    if (this.pending >= this.maxPending) throw new Error(`Redis is not answering: ${this.pending} commands wait for it`);
    this.pending++;
    try {
      return await run();
    } catch (error) {
      if (error instanceof Error && error.message === "Command timed out") this.hung();
      throw error;
    } finally {
      this.pending--;
    }
  }

  private hung(): void {
    if (this.closed) return;
    if (!this.down && this.wasReady) {
      this.down = true;
      this.logger.error("catzilla: Redis is not answering; rooms deliver locally and reconnect with backoff");
    }
    // Every command that waited times out at about the same time: the connection is dropped once.
    if (this.dropping) return;
    this.dropping = true;
    this.pub.disconnect(true);
  }

  private received(channel: string, message: Buffer): void {
    const handler = this.handlers.get(channel);
    if (handler === undefined || message.length === 0) return;
    if (message[0] === PLAIN) return handler(message.subarray(1));
    const colon = message.indexOf(COLON, 1);
    if (message[0] !== LOGGED || colon < 0) return;
    handler(message.subarray(colon + 1), Number(message.toString("latin1", 1, colon)));
  }

  private async append(channel: string, payload: Uint8Array, limits: LogLimits): Promise<number> {
    const now = Date.now();
    const id = await this.command(() => (this.pub as unknown as AppendCommand).czLogAppend(
      idKey(channel), streamKey(channel), channel, Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength),
      limits.maxMessages, now, firstLogId(now), limits.maxAgeMs ?? 0,
    ));
    return Number(id);
  }

  private async read(channel: string, afterId: number, limits: LogLimits): Promise<{ lastId: number; entries: LogEntry[] }> {
    const results = await this.command(() => this.pub.multi()
      .get(idKey(channel))
      .xrangeBuffer(streamKey(channel), `${afterId + 1}-0`, "+", "COUNT", limits.maxMessages)
      .exec());
    if (results === null) throw new Error("Redis aborted the read of a room log");
    for (const [error] of results) if (error) throw error;
    const lastId = Number(results[0]![1] ?? 0);
    const oldest = limits.maxAgeMs === undefined ? -Infinity : Date.now() - limits.maxAgeMs;
    const entries: LogEntry[] = [];
    for (const [id, fields] of results[1]![1] as Array<[Buffer, Buffer[]]>) {
      let at = 0;
      let payload: Buffer | undefined;
      for (let i = 0; i + 1 < fields.length; i += 2) {
        const name = fields[i]!.toString();
        if (name === "t") at = Number(fields[i + 1]!.toString());
        else if (name === "p") payload = fields[i + 1]!;
      }
      const entryId = Number(id.toString().split("-")[0]);
      if (payload !== undefined && at >= oldest) entries.push({ id: entryId, at, payload });
    }
    return { lastId, entries };
  }

  async subscribe(channel: string, onMessage: (payload: Uint8Array, id?: number) => void): Promise<void> {
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
