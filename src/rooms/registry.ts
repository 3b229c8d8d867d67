import { randomBytes } from "node:crypto";
import { RoomLimitError } from "../errors.js";
import type { Logger } from "../options.js";
import type { Broker } from "./broker.js";
import { PRESENCE_INTERVAL_MS, Room, type Member, type RoomEntry, type RoomOptions } from "./room.js";
import type { RoomsStats, RoomTotals } from "../metrics/stats.js";

const CHANNEL_PREFIX = "catzilla:room:";
const PRESENCE_PREFIX = "catzilla:presence:";
/**
 * A room's envelope on the broker: a kind byte, the publishing process's origin, then the payload.
 * A logged broadcast (shared history) carries the publisher's sequence number after the origin,
 * by which the publisher finds the broadcast's `except` again when it comes back with its id.
 */
const TEXT = 0;
const BINARY = 1;
const LOGGED = 2;
const ORIGIN_BYTES = 8;
const SEQ_BYTES = 4;
const MAX_PENDING_EXCLUDES = 65_536;

/** How often rooms with a history are swept: what aged out goes, and so does a room left with nothing. */
const SWEEP_INTERVAL_MS = 5_000;

/** The rooms of an app: `app.rooms`. */
export class RoomRegistry {
  private readonly rooms = new Map<string, Room>();
  private sweeper: NodeJS.Timeout | null = null;

  /** What the histories of all rooms hold (characters of text, bytes of binary). */
  private historyBytes = 0;
  private evicting = false;

  /**
   * @param maxRooms most rooms at once (AppOptions.maxRooms)
   * @param maxHistoryBytes what all histories may hold together (AppOptions.maxHistoryBytes)
   */
  constructor(private readonly maxRooms = 10_000, private readonly maxHistoryBytes = 256 * 1024 * 1024) {}

  private entryOrder = 0;

  /** @internal RoomLink */
  nextEntryOrder(): number {
    return ++this.entryOrder;
  }

  /** @internal RoomLink: past the budget, the oldest entries of all rooms go first. */
  historyChanged(_room: Room, bytes: number): void {
    this.historyBytes += bytes;
    if (this.historyBytes <= this.maxHistoryBytes || this.evicting) return;
    this.evicting = true;
    try {
      while (this.historyBytes > this.maxHistoryBytes) {
        let oldest: Room | null = null;
        for (const room of this.rooms.values()) if (oldest === null || room.oldestEntryOrder < oldest.oldestEntryOrder) oldest = room;
        if (oldest === null || oldest.oldestEntryOrder === Infinity) break;
        oldest.evictOldest();
      }
    } finally {
      this.evicting = false;
    }
  }
  /** @internal */
  readonly totals: RoomTotals = { broadcasts: 0, compressed: 0, deliveries: 0, skipped: 0, closedSlow: 0, dropped: 0, brokerFailures: 0, remoteBroadcasts: 0 };
  /** Identifies this process's publishes, so that it does not deliver them twice. */
  private readonly origin = randomBytes(ORIGIN_BYTES);
  private broker: Broker | null = null;
  /** `except` sets of this process's logged broadcasts until they come back, by sequence number. */
  private readonly excludedBySeq = new Map<number, Set<Member>>();
  private seq = 0;
  private logger: Logger = console;
  private brokerDown = false;

  /** The room with this name, created with `options` when it does not exist. */
  /**
   * The room with this name, created with `options` when it does not exist.
   * @throws RoomLimitError when it does not exist and `maxRooms` rooms do.
   */
  getOrCreate(name: string, options: RoomOptions = {}): Room {
    let room = this.rooms.get(name);
    if (room === undefined) {
      room = new Room(name, options, this, this.totals);
      this.register(room);
      if (options.history) this.sweeper ??= setInterval(() => this.sweep(Date.now()), SWEEP_INTERVAL_MS).unref();
    }
    return room;
  }

  private register(room: Room): void {
    if (this.rooms.size >= this.maxRooms) {
      // What aged out makes room first.
      this.sweep(Date.now());
      if (this.rooms.size >= this.maxRooms) throw new RoomLimitError(this.maxRooms);
    }
    this.rooms.set(room.name, room);
    if (this.broker !== null) this.subscribe(room);
  }

  /** Age out the histories; rooms left with no member and nothing kept go. */
  private sweep(now: number): void {
    for (const room of [...this.rooms.values()]) if (room.options.history) room.sweep(now);
  }

  /** @internal RoomLink */
  revive(room: Room): boolean {
    const holder = this.rooms.get(room.name);
    if (holder !== undefined) return holder === room;
    this.register(room);
    return true;
  }

  /** @internal The app stopped: no more sweeps. */
  stop(): void {
    if (this.sweeper !== null) clearInterval(this.sweeper);
    this.sweeper = null;
  }

  /**
   * Connect the rooms to other processes through a broker: every room subscribes to its own
   * channel while it exists here, and every broadcast is published. @internal
   */
  attachBroker(broker: Broker, logger: Logger): void {
    this.broker = broker;
    this.logger = logger;
    for (const room of this.rooms.values()) this.subscribe(room);
    // A count goes out when it changed, and unchanged every other tick to stay alive at the
    // other servers: a quiet room costs one message per two seconds per server.
    let tick = 0;
    this.presenceTimer = setInterval(() => {
      const refresh = ++tick % 2 === 0;
      for (const room of this.rooms.values()) {
        if (room.size === 0) continue;
        if (refresh || this.reported.get(room) !== room.size) this.reportPresence(room, room.size);
      }
    }, PRESENCE_INTERVAL_MS);
    this.presenceTimer.unref();
  }

  /** @internal Stop using the broker (at shutdown); the caller closes it. */
  detachBroker(): Broker | null {
    const broker = this.broker;
    this.broker = null;
    if (this.presenceTimer !== null) clearInterval(this.presenceTimer);
    this.presenceTimer = null;
    return broker;
  }

  private presenceTimer: NodeJS.Timeout | null = null;
  private readonly reported = new WeakMap<Room, number>();

  /** Tell the other servers how many members this one has in a room. */
  private reportPresence(room: Room, count: number): void {
    this.reported.set(room, count);
    const payload = Buffer.allocUnsafe(ORIGIN_BYTES + 4);
    this.origin.copy(payload, 0);
    payload.writeUInt32BE(count, ORIGIN_BYTES);
    this.send(PRESENCE_PREFIX + room.name, payload);
  }

  /** @internal RoomLink */
  onEmpty(room: Room): void {
    if (this.rooms.get(room.name) !== room) return;
    this.rooms.delete(room.name);
    const broker = this.broker;
    if (broker === null) return;
    // Others should not count our members for the rest of their report's lifetime.
    this.reportPresence(room, 0);
    for (const channel of [CHANNEL_PREFIX + room.name, PRESENCE_PREFIX + room.name]) {
      void Promise.resolve(broker.unsubscribe(channel)).catch(() => undefined);
    }
  }

  /** @internal RoomLink */
  publish(room: Room, text: string | null, bytes: Uint8Array | null): void {
    const broker = this.broker;
    if (broker === null) return;
    this.send(CHANNEL_PREFIX + room.name, this.envelope(text, bytes, null));
  }

  /** A broadcast in the room envelope: kind, this process's origin, the sequence number when logged, the payload. */
  private envelope(text: string | null, bytes: Uint8Array | null, seq: number | null): Buffer {
    const data = text !== null ? Buffer.from(text) : bytes!;
    const start = 1 + ORIGIN_BYTES + (seq === null ? 0 : SEQ_BYTES);
    const payload = Buffer.allocUnsafe(start + data.byteLength);
    payload[0] = (seq === null ? 0 : LOGGED) | (text !== null ? TEXT : BINARY);
    this.origin.copy(payload, 1);
    if (seq !== null) payload.writeUInt32BE(seq, 1 + ORIGIN_BYTES);
    payload.set(data, start);
    return payload;
  }

  /** @internal RoomLink */
  logged(room: Room): boolean {
    return this.broker?.log !== undefined && room.options.history != null;
  }

  /** @internal RoomLink */
  append(room: Room, text: string | null, bytes: Uint8Array | null, excluded: Set<Member> | null): void {
    const log = this.broker!.log!;
    const seq = this.seq = (this.seq + 1) >>> 0;
    const payload = this.envelope(text, bytes, seq);
    if (excluded !== null) {
      this.excludedBySeq.set(seq, excluded);
      // A broadcast whose copy never came back (lost in an outage) is not remembered forever.
      if (this.excludedBySeq.size > MAX_PENDING_EXCLUDES) this.excludedBySeq.delete(this.excludedBySeq.keys().next().value!);
    }
    const failed = (error: unknown): void => {
      this.excludedBySeq.delete(seq);
      this.brokerFailed(error);
      room.deliverUnlogged(text, bytes, excluded);
    };
    try {
      log.append(CHANNEL_PREFIX + room.name, payload, room.options.history!).then(() => this.brokerUp(), failed);
    } catch (error) {
      failed(error);
    }
  }

  /** @internal RoomLink */
  async read(room: Room, afterId: number): Promise<{ lastId: number; entries: RoomEntry[] }> {
    const log = this.broker?.log;
    if (log === undefined) return { lastId: 0, entries: [] };
    const { lastId, entries } = await log.read(CHANNEL_PREFIX + room.name, afterId, room.options.history!);
    const decoded: RoomEntry[] = [];
    for (const entry of entries) {
      const message = decodeLogged(entry.payload);
      if (message !== null) decoded.push({ id: entry.id, at: entry.at, ...message });
    }
    return { lastId, entries: decoded };
  }

  private send(channel: string, payload: Uint8Array): void {
    const broker = this.broker;
    if (broker === null) return;
    try {
      void Promise.resolve(broker.publish(channel, payload)).then(() => this.brokerUp(), (error) => this.brokerFailed(error));
    } catch (error) {
      this.brokerFailed(error);
    }
  }

  private subscribe(room: Room): void {
    const broker = this.broker!;
    const onMessage = (payload: Uint8Array, id?: number): void => {
      if (payload.byteLength < 1 + ORIGIN_BYTES) return;
      const buffer = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
      if (id !== undefined) return this.receiveLogged(room, buffer, id);
      // Our own publish: its members got it already.
      if (buffer.subarray(1, 1 + ORIGIN_BYTES).equals(this.origin)) return;
      const data = buffer.subarray(1 + ORIGIN_BYTES);
      if (buffer[0] === TEXT) room.deliverRemote(data.toString("utf8"), null);
      else room.deliverRemote(null, data);
    };
    const onPresence = (payload: Uint8Array): void => {
      if (payload.byteLength !== ORIGIN_BYTES + 4) return;
      const buffer = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
      const origin = buffer.subarray(0, ORIGIN_BYTES);
      if (origin.equals(this.origin)) return;
      const count = buffer.readUInt32BE(ORIGIN_BYTES);
      if (count === 0) room.remoteCounts.delete(origin.toString("hex"));
      else room.remoteCounts.set(origin.toString("hex"), { count, at: Date.now() });
    };
    for (const [channel, handler] of [[CHANNEL_PREFIX + room.name, onMessage], [PRESENCE_PREFIX + room.name, onPresence]] as const) {
      try {
        void Promise.resolve(broker.subscribe(channel, handler)).catch((error) => this.brokerFailed(error));
      } catch (error) {
        this.brokerFailed(error);
      }
    }
  }

  /** A logged broadcast, ours included: every server delivers it when it comes with its id. */
  private receiveLogged(room: Room, buffer: Buffer, id: number): void {
    const message = decodeLogged(buffer);
    if (message === null) return;
    const local = buffer.subarray(1, 1 + ORIGIN_BYTES).equals(this.origin);
    let excluded: Set<Member> | null = null;
    if (local) {
      const seq = buffer.readUInt32BE(1 + ORIGIN_BYTES);
      excluded = this.excludedBySeq.get(seq) ?? null;
      this.excludedBySeq.delete(seq);
    }
    room.receiveLogged({ id, at: Date.now(), ...message }, excluded, local);
  }

  private brokerFailed(error: unknown): void {
    this.totals.brokerFailures++;
    // Logged once per outage, not once per message.
    if (!this.brokerDown) {
      this.brokerDown = true;
      this.logger.error("catzilla: the room broker is unreachable; local delivery goes on", error);
    }
  }

  private brokerUp(): void {
    if (!this.brokerDown) return;
    this.brokerDown = false;
    this.logger.info("catzilla: the room broker is reachable again");
  }

  get(name: string): Room | undefined {
    return this.rooms.get(name);
  }

  /** Delete a room; its members stay connected but leave it. */
  delete(name: string): boolean {
    const room = this.rooms.get(name);
    if (room === undefined) return false;
    for (const member of [...room]) room.remove(member);
    if (this.rooms.get(name) === room) {
      while (room.oldestEntryOrder !== Infinity) room.evictOldest();
      this.onEmpty(room);
    }
    return true;
  }

  get size(): number {
    return this.rooms.size;
  }

  names(): IterableIterator<string> {
    return this.rooms.keys();
  }

  [Symbol.iterator](): IterableIterator<Room> {
    return this.rooms.values();
  }

  /** Totals for statistics. */
  summary(): RoomsStats {
    let members = 0;
    for (const room of this.rooms.values()) members += room.size;
    return { active: this.rooms.size, members, ...this.totals };
  }
}

function decodeLogged(payload: Uint8Array): { text: string | null; bytes: Uint8Array | null } | null {
  const start = 1 + ORIGIN_BYTES + SEQ_BYTES;
  if (payload.byteLength < start || (payload[0]! & LOGGED) === 0) return null;
  const data = Buffer.from(payload.buffer, payload.byteOffset + start, payload.byteLength - start);
  return (payload[0]! & BINARY) === 0 ? { text: data.toString("utf8"), bytes: null } : { text: null, bytes: data };
}
