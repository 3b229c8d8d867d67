import { CloseCode, DEFAULT_DEFLATE_LEVEL, DEFAULT_DEFLATE_THRESHOLD, Opcode } from "../protocol/websocket/constants.js";
import { encodeFrame } from "../protocol/websocket/frame.js";
import { encodeEvent } from "../protocol/sse.js";
import type { BulkSender, EventStreamSink, StreamBulkSender, WebSocketTransport } from "../transport.js";
import { assertIntegerIn, assertPositiveInteger } from "../validate.js";
import { BroadcastQueue, type QueuedBroadcast } from "./broadcast-queue.js";
import { CatchUp, LogOrder } from "./catch-up.js";
import { sliceSpent } from "./fan-out.js";
import { History, type RoomEntry } from "./history.js";
import type { EventStreamMember, Joined, Member, RoomMember, WebSocketMember } from "./member.js";

import type { RoomStats, RoomTotals } from "../metrics/stats.js";

export type { Joined, Member, ReplayResult } from "./member.js";
export type { RoomStats, RoomTotals } from "../metrics/stats.js";
export type { RoomEntry } from "./history.js";

/** What a room delivers: text, bytes, or a value sent as JSON text. */
export type RoomMessage = string | Uint8Array | object | number | boolean | null;

/** Options of a room. */
export interface RoomOptions {
  /** Keep the room when its last member leaves (a room with history stays while it keeps broadcasts). @default false */
  keepWhenEmpty?: boolean;
  /** Bytes a member may hold unsent before the slow-member policy applies to it. @default 1048576 */
  maxBufferedBytes?: number;
  /**
   * What a broadcast does for a member over `maxBufferedBytes`: `"skip"` (the member misses this
   * message; counted in `stats.skipped`) or `"close"` (WebSocket members are closed with 1013,
   * SSE members are cut). A broadcast never waits for a slow member. @default "skip"
   */
  slowMemberPolicy?: "skip" | "close";
  /**
   * Keep recent broadcasts so that reconnecting clients get what they missed: at most
   * `maxMessages` of them, none older than `maxAgeMs` (dropped as they age, whether the room is
   * used or not), and at most `maxBytes` (characters of text, bytes of binary; the newest one is
   * always kept). A room with no members keeps existing while it keeps something.
   * @default null
   */
  history?: { maxMessages: number; maxAgeMs?: number; maxBytes?: number } | null;
  /**
   * Broadcasts of at least this many bytes are compressed once per window size for members whose
   * connection negotiated permessage-deflate with `server_no_context_takeover` (others get the
   * uncompressed frame). Compression runs off the event loop; later broadcasts wait behind it so
   * that every member still gets them in publish order. `false` turns it off.
   * @default 1024
   */
  compressionThreshold?: number | false;
  /** zlib level broadcasts are compressed with (0–9; see the WebSocket option `perMessageDeflate.level`). @default 6 */
  compressionLevel?: number;
  /**
   * Bytes of broadcasts that may wait for delivery (behind a compression, or for a later turn of
   * the event loop: fan-out takes a few milliseconds of each turn, so that the server keeps
   * answering everyone else). A broadcast past it is dropped: no member gets it, `broadcast()`
   * returns `dropped: true`, and it counts in `stats.dropped`. The first one waiting is always
   * taken. @default 4194304
   */
  maxQueuedBytes?: number;
  /**
   * How long a broadcast may wait for its turn (ms); one that waited longer is dropped when its
   * turn comes (counted in `stats.dropped`), so that a room that gets more than it can deliver
   * lags by at most this much. @default 1000
   */
  maxQueueMs?: number;
}

/** Options of one broadcast. */
export interface BroadcastOptions {
  /** Members that do not get this message (usually the sender). */
  except?: Member | readonly Member[];
}

/** What one broadcast did. */
export interface BroadcastResult {
  /**
   * The broadcast's id, increasing by one per broadcast of this room; `null` when the room's
   * history is shared through the broker, which gives the id (delivery waits for it, on every
   * server alike).
   */
  id: number | null;
  /**
   * Whether delivery happens later: the message is being compressed, waits behind one that is,
   * or waits for its id from the broker's shared log. The counts are then 0 here and go to
   * `room.stats` when it is delivered.
   */
  queued: boolean;
  /**
   * Whether the room dropped it: its queue was over `maxQueuedBytes` (the room gets more than it
   * can deliver). No member here got it; other servers still do.
   */
  dropped: boolean;
  delivered: number;
  skipped: number;
  closed: number;
}

type Entry = RoomEntry;

/** What a room needs from its registry to reach other processes. Not exported by the package. */
export interface RoomLink {
  onEmpty(room: Room): void;
  /** A room that went away is used again: registered again under its name, if that is free. */
  revive(room: Room): boolean;
  /** The room's history grew (or shrank) by `bytes`; the registry keeps all rooms within its budget. */
  historyChanged(room: Room, bytes: number): void;
  /** A number that grows with every entry any room keeps: which entry of all rooms is oldest. */
  nextEntryOrder(): number;
  /** Hand a broadcast to the broker, if there is one. */
  publish(room: Room, text: string | null, bytes: Uint8Array | null): void;
  /** Whether the room's history is the broker's shared log. */
  logged(room: Room): boolean;
  /**
   * Append a broadcast to the shared log; it comes back through `receiveLogged` with its id, or
   * through `deliverUnlogged` when the broker cannot take it.
   */
  append(room: Room, text: string | null, bytes: Uint8Array | null, excluded: Set<Member> | null): void;
  /** The shared log after an id. */
  read(room: Room, afterId: number): Promise<{ lastId: number; entries: Entry[] }>;
}

const DEFAULT_MAX_BUFFERED = 1_048_576;
const DEFAULT_MAX_QUEUED_BYTES = 4 * 1_048_576;
const DEFAULT_MAX_QUEUE_MS = 1_000;
/** history.maxBytes when not given: what one room keeps, whatever its maxMessages. */
const DEFAULT_MAX_HISTORY_BYTES = 1_048_576;

/** How often each server reports its member count of each room through the broker. */
export const PRESENCE_INTERVAL_MS = 1_000;
/** A server's report counts for this long. */
export const PRESENCE_TTL_MS = 3 * PRESENCE_INTERVAL_MS;

/**
 * A set of members that receive broadcasts. A broadcast encodes the WebSocket frame once and the
 * SSE event once, and writes those same bytes to every member, in publish order, without ever
 * waiting for a slow one.
 */
export class Room {
  readonly name: string;
  readonly stats: RoomStats = { broadcasts: 0, compressed: 0, deliveries: 0, skipped: 0, closedSlow: 0, dropped: 0 };
  private readonly members = new Set<RoomMember>();
  private lastId = 0;
  private readonly history: History | null;
  /*
   * Three queues keep the order of broadcasts, one owner each, in the order a broadcast passes them:
   * - `logOrder` (catch-up.ts): entries of the shared log, in id order; a gap is read from the log
   *   first, and what comes meanwhile waits in its inbox.
   * - `queue` (broadcast-queue.ts): broadcasts past this turn's fan-out slice, or behind a
   *   compression, in publish order: one leaves only after the one before it.
   * - `catchUp` (catch-up.ts): per member that reads the shared log, what the fan-out delivered
   *   meanwhile, in delivery order; it gets that after the entries read.
   */
  private readonly logOrder: LogOrder;
  private readonly queue: BroadcastQueue;
  private readonly catchUp = new CatchUp();
  private readonly maxBufferedBytes: number;
  private readonly policy: "skip" | "close";
  private deleted = false;
  /** Members that joined while broadcasts waited, with the last id their replay sent them. */
  private replayedTo: Map<RoomMember, number> | null = null;

  /** @internal */
  constructor(name: string, readonly options: RoomOptions, private readonly link: RoomLink, private readonly totals: RoomTotals) {
    this.name = name;
    this.maxBufferedBytes = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED;
    this.policy = options.slowMemberPolicy ?? "skip";
    for (const name of ["maxBufferedBytes", "maxQueuedBytes", "maxQueueMs"] as const) {
      if (options[name] !== undefined) assertPositiveInteger(`room.${name}`, options[name]);
    }
    assertIntegerIn("room.compressionLevel", options.compressionLevel ?? DEFAULT_DEFLATE_LEVEL, 0, 9);
    if (options.history) {
      assertPositiveInteger("room.history.maxMessages", options.history.maxMessages);
      for (const name of ["maxAgeMs", "maxBytes"] as const) {
        if (options.history[name] !== undefined) assertPositiveInteger(`room.history.${name}`, options.history[name]);
      }
    }
    if (!["skip", "close"].includes(this.policy)) throw new TypeError(`Room slowMemberPolicy must be "skip" or "close"`);
    this.history = options.history
      ? new History(
        { maxMessages: options.history.maxMessages, maxAgeMs: options.history.maxAgeMs, maxBytes: options.history.maxBytes ?? DEFAULT_MAX_HISTORY_BYTES },
        { changed: (bytes) => link.historyChanged(this, bytes), nextOrder: () => link.nextEntryOrder() },
      )
      : null;
    this.queue = new BroadcastQueue({
      maxQueuedBytes: options.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES,
      maxQueueMs: options.maxQueueMs ?? DEFAULT_MAX_QUEUE_MS,
      compressionLevel: options.compressionLevel ?? DEFAULT_DEFLATE_LEVEL,
    }, {
      fanOutQueued: (broadcast) => this.fanOutQueued(broadcast),
      dropped: () => this.dropped(),
      drained: () => {
        this.replayedTo = null;
        this.sweep(Date.now());
      },
    });
    this.logOrder = new LogOrder({
      lastId: () => this.lastId,
      read: (afterId) => link.read(this, afterId),
      first: (id) => {
        // Entries this server numbered itself before it had a shared log do not mix with these.
        this.history?.clear();
        this.markGap(id);
      },
      accept: (entry, excluded) => {
        this.lastId = entry.id;
        this.history?.remember(entry);
        this.deliver(entry.id, entry.text, entry.bytes, excluded);
      },
      gap: (id) => this.markGap(id),
    });
  }

  /** Members on this process. */
  get size(): number {
    return this.members.size;
  }

  /** Member counts other servers reported for this room, by server. @internal */
  readonly remoteCounts = new Map<string, { count: number; at: number }>();

  /**
   * Members on every server. Other servers report their counts through the broker within a
   * second of a change (at once when their last member leaves) and every two seconds anyway, so
   * the figure can be up to about a second old; a server that stopped reporting drops out after
   * three seconds. Without a broker it is `size`.
   */
  async count(): Promise<number> {
    let total = this.members.size;
    const now = Date.now();
    for (const [origin, report] of this.remoteCounts) {
      if (now - report.at > PRESENCE_TTL_MS) this.remoteCounts.delete(origin);
      else total += report.count;
    }
    return total;
  }

  /** The id of the last broadcast (0 before the first). */
  get lastEventId(): number {
    return this.lastId;
  }

  [Symbol.iterator](): IterableIterator<Member> {
    return this.members.values();
  }

  has(member: Member): boolean {
    return this.members.has(member as RoomMember);
  }

  /**
   * Add a member; it leaves by itself when it disconnects. With `lastEventId` (the last broadcast
   * id the client saw) the messages it missed are sent first, in order, or `"resync"` is returned
   * when the history no longer covers them. An SSE member that has not started streaming joins
   * when it starts, and resumes from its request's `Last-Event-ID`.
   */
  add(joining: Member, options: { lastEventId?: string | number } = {}): Joined {
    const member = joining as RoomMember;
    if (this.deleted) {
      // It went away (empty, nothing kept) while the app still held it: it comes back.
      if (!this.link.revive(this)) throw new Error(`Room ${this.name} was deleted, and another room has its name now`);
      this.deleted = false;
    }
    if (member.memberKind === "sse") return member.joinRoom(this, options.lastEventId);
    member.joinedRoom(this);
    return this.attach(member, options.lastEventId);
  }

  /**
   * @internal Make a member (an SSE one once it streams) receive broadcasts, after what it missed
   * since `lastEventId`.
   */
  attach(joining: Member, lastEventId: string | number | undefined): Joined {
    const member = joining as RoomMember;
    this.members.add(member);
    if (lastEventId === undefined || lastEventId === "") return 0;
    const last = Number(lastEventId);
    const local = this.since(last);
    if (local !== "resync" || !this.link.logged(this) || !Number.isSafeInteger(last) || last < 0) {
      if (local === "resync") this.sendResync(member);
      else this.sendEntries(member, local);
      return local === "resync" ? "resync" : local.length;
    }
    // This server's history does not reach back far enough (or the client saw more than it has
    // yet): read the shared log; live broadcasts wait for this member meanwhile.
    const ticket = this.catchUp.begin(member);
    const caughtUp = (): void => {
      setImmediate(() => {
        // After the caller's continuation (it may tell the client to resync first).
        this.sendEntries(member, this.catchUp.finish(member, ticket, upTo));
      });
    };
    let upTo = last;
    return this.link.read(this, last).then(({ lastId, entries }) => {
      if (!this.catchUp.current(member, ticket)) return 0;
      const first = entries[0];
      if (last > lastId || (last < lastId && (first === undefined || first.id > last + 1))) {
        upTo = Math.max(last, lastId);
        this.sendResync(member);
        caughtUp();
        return "resync";
      }
      this.sendEntries(member, entries);
      upTo = entries.at(-1)?.id ?? last;
      caughtUp();
      return entries.length;
    }, () => {
      upTo = -1;
      this.sendResync(member);
      caughtUp();
      return "resync" as const;
    });
  }

  /** Remove a member (done for you on disconnect). */
  remove(leaving: Member): void {
    const member = leaving as RoomMember;
    if (!this.members.delete(member)) return;
    this.catchUp.drop(member);
    this.replayedTo?.delete(member);
    member.leftRoom(this);
    this.sweep(Date.now());
  }

  /**
   * @internal Age the history out; a room with no members that keeps nothing (and was not asked
   * to stay) goes away. Run on every departure and by the registry's timer.
   */
  sweep(now: number): void {
    if (this.deleted) return;
    this.history?.prune(now);
    if (this.members.size > 0 || this.options.keepWhenEmpty || (this.history !== null && this.history.length > 0)) return;
    if (this.logOrder.busy || this.catchUp.busy || this.queue.busy) return;
    this.deleted = true;
    this.link.onEmpty(this);
  }

  /**
   * Send a message to every member (but `except`), here and, through the app's broker, on every
   * other server. Text stays text, bytes go as binary, other values as JSON text. The result
   * counts this process's members.
   */
  broadcast(message: RoomMessage, options: BroadcastOptions = {}): BroadcastResult {
    let text: string | null = null;
    let bytes: Uint8Array | null = null;
    if (typeof message === "string") text = message;
    else if (message instanceof Uint8Array) bytes = message;
    else text = JSON.stringify(message);
    const { except } = options;
    const excluded = except === undefined ? null : Array.isArray(except) ? new Set(except) : new Set([except as Member]);
    if (this.history !== null && this.link.logged(this)) {
      this.link.append(this, text, bytes, excluded);
      return { id: null, queued: true, dropped: false, delivered: 0, skipped: 0, closed: 0 };
    }
    const result = this.deliver(this.nextId(text, bytes), text, bytes, excluded);
    this.link.publish(this, text, bytes);
    return result;
  }

  /** @internal A broadcast made on another process. */
  deliverRemote(text: string | null, bytes: Uint8Array | null): void {
    this.totals.remoteBroadcasts++;
    this.deliver(this.nextId(text, bytes), text, bytes, null);
  }

  /** The id of a broadcast this server numbers itself (no shared log), kept in the history. */
  private nextId(text: string | null, bytes: Uint8Array | null): number {
    const id = ++this.lastId;
    this.history?.remember({ id, at: Date.now(), text, bytes });
    return id;
  }

  /**
   * @internal A broadcast of the shared log, with its id, from this server or another; `excluded`
   * is the `except` of this server's own broadcasts. Entries are delivered in id order: a gap
   * (a message this server did not get) is filled from the log first.
   */
  receiveLogged(entry: Entry, excluded: Set<Member> | null, local: boolean): void {
    if (!local) this.totals.remoteBroadcasts++;
    this.logOrder.receive(entry, excluded);
  }

  /**
   * @internal The broker could not take a broadcast for the shared log: local members get it
   * anyway, without an id (it is in no history).
   */
  deliverUnlogged(text: string | null, bytes: Uint8Array | null, excluded: Set<Member> | null): void {
    this.deliver(null, text, bytes, excluded);
  }

  private deliver(id: number | null, text: string | null, bytes: Uint8Array | null, excluded: Set<Member> | null): BroadcastResult {
    const payloadBytes = text !== null ? Buffer.byteLength(text) : bytes!.byteLength;
    const threshold = this.options.compressionThreshold ?? DEFAULT_DEFLATE_THRESHOLD;
    const windows = threshold !== false && payloadBytes >= threshold ? this.sharedWindows() : null;
    if (!this.queue.busy && windows === null && !sliceSpent()) return this.fanOut(id, text, bytes, excluded, payloadBytes, null);
    // Compressed, behind a broadcast that waits, or past this turn's fan-out slice: delivered in
    // order on a later turn.
    if (!this.queue.push(id, text, bytes, excluded, payloadBytes, windows)) return { id, queued: false, dropped: true, delivered: 0, skipped: 0, closed: 0 };
    return { id, queued: true, dropped: false, delivered: 0, skipped: 0, closed: 0 };
  }

  /** A broadcast of the queue whose turn came. */
  private fanOutQueued(broadcast: QueuedBroadcast): void {
    this.fanOut(broadcast.id, broadcast.text, broadcast.bytes, broadcast.excluded, broadcast.payloadBytes, broadcast.frames);
    if (broadcast.frames !== null && broadcast.frames.size > 0) {
      this.stats.compressed++;
      this.totals.compressed++;
    }
  }

  private dropped(): void {
    this.stats.dropped++;
    this.totals.dropped++;
  }

  /** Window sizes of members that can share one compressed frame, or null when there are none. */
  private sharedWindows(): Set<number> | null {
    let windows: Set<number> | null = null;
    for (const member of this.members) {
      if (member.memberKind === "sse") continue;
      const bits = member.transport?.sharedCompressionWindowBits ?? null;
      if (bits !== null) (windows ??= new Set()).add(bits);
    }
    return windows;
  }

  private fanOut(
    id: number | null, text: string | null, bytes: Uint8Array | null, excluded: Set<Member> | null,
    payloadBytes: number, compressed: Map<number, Buffer> | null,
  ): BroadcastResult {
    const result: BroadcastResult = { id, queued: false, dropped: false, delivered: 0, skipped: 0, closed: 0 };
    let frame: Buffer | null = null;
    let event: string | null = null;
    // Members of an engine that writes to many in one call are gathered for one call per kind. The
    // lists are taken from a pool: a handler run by a close below may broadcast again meanwhile.
    const gathered = gatherPool.pop() ?? { transports: [], streams: [], streamMembers: [] };
    let bulk: BulkSender | null = null;
    let streamBulk: StreamBulkSender | null = null;
    for (const member of this.members) {
      if (excluded !== null && excluded.has(member)) continue;
      if (this.catchUp.hold(member, id, text, bytes)) continue;
      if (this.replayedTo !== null && id !== null && id <= (this.replayedTo.get(member) ?? 0)) continue;
      if (member.memberKind === "sse") {
        event ??= sseEvent(id, text, bytes);
        const sink = member.roomSink;
        const sender = sink?.bulk ?? null;
        if (sender !== null && (streamBulk === null || streamBulk === sender)) {
          streamBulk = sender;
          gathered.streams.push(sink!);
          gathered.streamMembers.push(member);
        } else {
          this.deliverSse(member, event, result);
        }
        continue;
      }
      const transport = member.transport;
      const bits = compressed === null ? null : transport?.sharedCompressionWindowBits ?? null;
      const shared = bits === null ? undefined : compressed!.get(bits);
      if (shared !== undefined) {
        this.deliverWs(member, shared, payloadBytes, result);
        continue;
      }
      const sender = transport?.bulk ?? null;
      if (sender !== null && (bulk === null || bulk === sender)) {
        bulk = sender;
        gathered.transports.push(transport!);
        continue;
      }
      frame ??= text !== null ? encodeFrame(Opcode.Text, text) : encodeFrame(Opcode.Binary, bytes!);
      this.deliverWs(member, frame, payloadBytes, result);
    }
    if (bulk !== null) {
      frame ??= text !== null ? encodeFrame(Opcode.Text, text) : encodeFrame(Opcode.Binary, bytes!);
      const { transports } = gathered;
      const { delivered, over } = bulk.sendToMany(transports, transports.length, frame, payloadBytes, this.maxBufferedBytes);
      result.delivered += delivered;
      for (const transport of over) this.tooSlow(transport.user as WebSocketMember, result);
    }
    if (streamBulk !== null) this.deliverSseInBulk(streamBulk, Buffer.from(event!), gathered.streams, gathered.streamMembers, result);
    gathered.transports.length = 0;
    gathered.streams.length = 0;
    gathered.streamMembers.length = 0;
    gatherPool.push(gathered);
    this.tally(result);
    return result;
  }

  /** One event to the streams of one engine in one call; the slow-member policy for those over the limit. */
  private deliverSseInBulk(
    sender: StreamBulkSender, event: Buffer, streams: readonly EventStreamSink[], members: readonly EventStreamMember[], result: BroadcastResult,
  ): void {
    const { delivered, over } = sender.sendToStreams(streams, streams.length, event, this.maxBufferedBytes);
    result.delivered += delivered;
    if (this.policy === "close") {
      const slow = new Set(over);
      for (const member of members) if (member.roomSink !== null && slow.has(member.roomSink)) member.endStream();
      result.closed += over.length;
    } else {
      result.skipped += over.length;
    }
  }

  /** Close every member: WebSockets with the code, SSE streams end. */
  close(code: number = CloseCode.Normal, reason = ""): void {
    for (const member of [...this.members]) {
      if (member.memberKind === "sse") member.endStream();
      else member.close(code, reason);
    }
  }

  /**
   * The broadcasts after `lastEventId` that this server's history holds, oldest first, or
   * `"resync"` when it does not reach back that far (or the room keeps none). With a shared
   * history, `room.add(member, { lastEventId })` also reads the broker's log.
   */
  since(lastEventId: string | number): Entry[] | "resync" {
    const last = Number(lastEventId);
    if (!Number.isSafeInteger(last) || last < 0 || last > this.lastId) return "resync";
    if (last === this.lastId && (this.lastId > 0 || !this.link.logged(this))) return [];
    return this.history === null ? "resync" : this.history.after(last);
  }

  private sendEntries(member: RoomMember, entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    // Broadcasts still waiting may be among these: the member does not get them twice.
    if (this.queue.busy) (this.replayedTo ??= new Map()).set(member, entries.at(-1)!.id);
    if (member.memberKind === "sse") {
      let out = "";
      for (const entry of entries) out += sseEvent(entry.id, entry.text, entry.bytes);
      member.roomSink?.write(out);
      return;
    }
    for (const entry of entries) {
      if (entry.text !== null) member.sendText(entry.text);
      else member.sendBytes(entry.bytes!);
    }
  }

  /** SSE members get `event: resync` (data: the last id); WebSocket members are told by the caller. */
  private sendResync(member: RoomMember): void {
    if (member.memberKind === "sse") member.roomSink?.write(encodeEvent({ event: "resync", data: String(this.lastId) }));
  }

  private deliverWs(ws: WebSocketMember, frame: Buffer, payloadBytes: number, result: BroadcastResult): void {
    const transport = ws.transport;
    if (transport === null || !transport.isOpen) return;
    if (transport.bufferedAmount + payloadBytes > this.maxBufferedBytes) {
      this.tooSlow(ws, result);
      return;
    }
    const status = transport.sendFrame(frame, payloadBytes);
    if (status === "ok" || status === "backpressure") result.delivered++;
    else result.skipped++;
  }

  /** A member over `maxBufferedBytes`: skipped, or closed with 1013, by the room's policy. */
  private tooSlow(ws: WebSocketMember, result: BroadcastResult): void {
    if (this.policy === "close") {
      ws.close(CloseCode.TryAgainLater, "Too slow for the room");
      result.closed++;
    } else {
      result.skipped++;
    }
  }

  private deliverSse(member: EventStreamMember, event: string, result: BroadcastResult): void {
    const sink = member.roomSink;
    if (sink === null || !sink.isOpen) return;
    if (sink.bufferedBytes + event.length > this.maxBufferedBytes) {
      if (this.policy === "close") {
        member.endStream();
        result.closed++;
      } else {
        result.skipped++;
      }
      return;
    }
    sink.write(event);
    result.delivered++;
  }

  /** @internal Where its oldest entry stands in the registry's order (Infinity: none), for the registry's budget. */
  get oldestEntryOrder(): number {
    return this.history?.oldestOrder ?? Infinity;
  }

  /** @internal Drop the oldest entry (the registry's budget is spent). */
  evictOldest(): void {
    this.history?.dropOldest();
  }

  /** The history is complete only from `id` on (what came before it could not be had). */
  private markGap(id: number): void {
    if (this.history !== null) this.history.completeFrom = id;
  }

  private tally(result: BroadcastResult): void {
    this.stats.broadcasts++;
    this.stats.deliveries += result.delivered;
    this.stats.skipped += result.skipped;
    this.stats.closedSlow += result.closed;
    this.totals.broadcasts++;
    this.totals.deliveries += result.delivered;
    this.totals.skipped += result.skipped;
    this.totals.closedSlow += result.closed;
  }
}


/** What one fan-out gathers for the engines that write to many in one call (reused: see fanOut). */
interface Gathered {
  transports: WebSocketTransport[];
  streams: EventStreamSink[];
  streamMembers: EventStreamMember[];
}
const gatherPool: Gathered[] = [];


function sseEvent(id: number | null, text: string | null, bytes: Uint8Array | null): string {
  const event = text !== null ? { data: text } : { event: "binary", data: Buffer.from(bytes!).toString("base64") };
  return encodeEvent(id === null ? event : { id, ...event });
}
