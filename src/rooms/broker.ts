/**
 * The broker interface: how rooms reach members on other processes and machines. A broker moves
 * opaque payloads on named channels; rooms put their own envelope in them. Implementations:
 * in-memory (one process, for tests), the cluster's IPC (`listen({ workers })`), Redis pub/sub
 * (`catzilla/redis`); another engine (NATS, ...) implements these calls and passes
 * test/contracts/broker.contract.ts.
 */
export interface Broker {
  /** Send a payload to every subscriber of the channel, on every process (the sender's included). */
  publish(channel: string, payload: Uint8Array): void | Promise<void>;
  /**
   * Receive the channel's payloads until `unsubscribe`. One handler per channel. Messages
   * appended to the channel's log (see {@link BrokerLog}) arrive with their id.
   */
  subscribe(channel: string, onMessage: (payload: Uint8Array, id?: number) => void): void | Promise<void>;
  unsubscribe(channel: string): void | Promise<void>;
  /** Stop: no more deliveries, connections closed. */
  close(): Promise<void>;
  /**
   * Optional: a shared, ordered, capped log per channel. Rooms with history use it, when the
   * broker has one, so that broadcast ids are the same on every server and a client can resume
   * on any of them.
   */
  readonly log?: BrokerLog;
}

/** Limits of one channel's log, as the room's `history` option gives them. */
export interface LogLimits {
  /** Keep the newest this many entries. */
  maxMessages: number;
  /** Entries older than this are not returned; the log may be dropped after this long without appends. */
  maxAgeMs?: number;
}

/** One entry of a channel's log. */
export interface LogEntry {
  id: number;
  /** When it was appended, in ms since the epoch. */
  at: number;
  payload: Uint8Array;
}

/**
 * A shared log per channel: ids given out one by one, in one order seen by every subscriber. A new
 * log starts at {@link firstLogId} of its time, so that ids keep increasing even across a log that
 * expired and was started again.
 */
export interface BrokerLog {
  /**
   * Give the payload the channel's next id, keep it in the channel's log (trimmed to `limits`) and
   * publish it to the channel's subscribers with that id, as one step: every subscriber gets the
   * logged messages of a channel in id order. Resolves with the id.
   */
  append(channel: string, payload: Uint8Array, limits: LogLimits): Promise<number>;
  /**
   * The entries after `afterId` that the log still holds, oldest first (none older than
   * `maxAgeMs`), and the last id given out (0 when the log is empty or gone).
   */
  read(channel: string, afterId: number, limits: LogLimits): Promise<{ lastId: number; entries: LogEntry[] }>;
}

/**
 * In-memory brokers on a shared bus: several apps in one process behave like several servers
 * (tests, or rooms shared by apps in one process). It is the reference implementation of the
 * contract; processes and machines need a networked broker.
 */
export class MemoryBus {
  private readonly members = new Set<BusBroker>();
  private readonly logs = new ChannelLogs();

  /** A broker attached to this bus. */
  broker(): Broker {
    const broker = new BusBroker(this.members, this.logs);
    this.members.add(broker);
    return broker;
  }
}

type Handler = (payload: Uint8Array, id?: number) => void;

class BusBroker implements Broker {
  readonly channels = new Map<string, Handler>();
  readonly log: BrokerLog;

  constructor(private readonly members: Set<BusBroker>, logs: ChannelLogs) {
    this.log = {
      append: async (channel, payload, limits) => {
        const id = logs.append(channel, payload, limits, Date.now());
        this.deliver(channel, payload, id);
        return id;
      },
      read: async (channel, afterId, limits) => logs.read(channel, afterId, limits, Date.now()),
    };
  }

  publish(channel: string, payload: Uint8Array): void {
    this.deliver(channel, payload, undefined);
  }

  private deliver(channel: string, payload: Uint8Array, id: number | undefined): void {
    for (const member of this.members) {
      const handler = member.channels.get(channel);
      if (handler !== undefined) queueMicrotask(() => member.channels.get(channel) === handler && handler(payload, id));
    }
  }

  subscribe(channel: string, onMessage: Handler): void {
    this.channels.set(channel, onMessage);
  }

  unsubscribe(channel: string): void {
    this.channels.delete(channel);
  }

  async close(): Promise<void> {
    this.channels.clear();
    this.members.delete(this);
  }
}

/**
 * The first id of a log started at `now` (ms): microseconds since the epoch, so that a log that
 * starts again continues above the ids of the one before unless that one averaged more than a
 * million appends per second. Ids stay safe integers until the year 2255.
 */
export function firstLogId(now: number): number {
  return Math.floor(now) * 1000;
}

/**
 * Capped logs by channel, held in one process: the memory bus's, and the cluster primary's for
 * its workers.
 */
export class ChannelLogs {
  private readonly logs = new Map<string, { lastId: number; lastAppend: number; entries: LogEntry[] }>();

  append(channel: string, payload: Uint8Array, limits: LogLimits, now: number): number {
    let log = this.logs.get(channel);
    if (log === undefined || (limits.maxAgeMs !== undefined && now - log.lastAppend > limits.maxAgeMs)) {
      // A log left alone for longer than its entries live is dropped and starts again.
      log = { lastId: firstLogId(now) - 1, lastAppend: now, entries: [] };
      this.logs.set(channel, log);
    }
    const id = ++log.lastId;
    log.lastAppend = now;
    log.entries.push({ id, at: now, payload });
    if (log.entries.length > limits.maxMessages) log.entries.splice(0, log.entries.length - limits.maxMessages);
    return id;
  }

  read(channel: string, afterId: number, limits: LogLimits, now: number): { lastId: number; entries: LogEntry[] } {
    const log = this.logs.get(channel);
    if (log === undefined) return { lastId: 0, entries: [] };
    const oldest = limits.maxAgeMs === undefined ? -Infinity : now - limits.maxAgeMs;
    return { lastId: log.lastId, entries: log.entries.filter((e) => e.id > afterId && e.at >= oldest) };
  }
}
