import { deflateRaw, constants as zlibConstants } from "node:zlib";
import { Opcode, CloseCode } from "../protocol/websocket/constants.js";
import { encodeFrame } from "../protocol/websocket/frame.js";
import { encodeEvent } from "../protocol/sse.js";
import type { WebSocket } from "../websocket/session.js";
import { EventSourceResponse, type EventItem, type EventSourceOptions } from "../responses/event-source.js";
import type { StreamController } from "../responses/streaming.js";

/** What a room delivers: text, bytes, or a value sent as JSON text. */
export type RoomMessage = string | Uint8Array | object | number | boolean | null;

/** Options of a room. */
export interface RoomOptions {
  /** Keep the room when its last member leaves (rooms with history are always kept). @default false */
  keepWhenEmpty?: boolean;
  /** Bytes a member may hold unsent before the slow-member policy applies to it. @default 1048576 */
  maxBufferedBytes?: number;
  /**
   * What a broadcast does for a member over `maxBufferedBytes`: `"skip"` (the member misses this
   * message; counted in `stats.skipped`) or `"close"` (WebSocket members are closed with 1013,
   * SSE members are cut). A broadcast never waits for a slow member. @default "skip"
   */
  slowMemberPolicy?: "skip" | "close";
  /** Keep recent broadcasts so that reconnecting clients get what they missed. @default null */
  history?: { maxMessages: number; maxAgeMs?: number } | null;
  /**
   * Broadcasts of at least this many bytes are compressed once per window size for members whose
   * connection negotiated permessage-deflate with `server_no_context_takeover` (others get the
   * uncompressed frame). Compression runs off the event loop; later broadcasts wait behind it so
   * that every member still gets them in publish order. `false` turns it off.
   * @default 1024
   */
  compressionThreshold?: number | false;
}

/** Options of one broadcast. */
export interface BroadcastOptions {
  /** Members that do not get this message (usually the sender). */
  except?: Member | readonly Member[];
}

/** What one broadcast did. */
export interface BroadcastResult {
  /** The broadcast's id, increasing by one per broadcast of this room. */
  id: number;
  /**
   * Whether delivery happens later: the message is being compressed, or waits behind one that
   * is. The counts are then 0 here and go to `room.stats` when it is delivered.
   */
  queued: boolean;
  delivered: number;
  skipped: number;
  closed: number;
}

/** Result of joining with a last-seen id: how many missed messages were replayed, or "resync". */
export type ReplayResult = number | "resync";

/** A room member: a WebSocket session or an SSE stream. */
export type Member = WebSocket<any> | EventSourceResponse;

interface Entry {
  id: number;
  at: number;
  text: string | null;
  bytes: Uint8Array | null;
}

/** Counters of a room. */
export interface RoomStats {
  broadcasts: number;
  /** Broadcasts sent compressed to members with a shared compression context. */
  compressed: number;
  deliveries: number;
  skipped: number;
  closedSlow: number;
}

/** Room-level counters shared by a registry. @internal */
export interface RoomTotals extends RoomStats {
  /** Broadcasts that could not be handed to the broker (it was unreachable). */
  brokerFailures: number;
  /** Broadcasts that arrived from other processes through the broker. */
  remoteBroadcasts: number;
}

/** What a room needs from its registry to reach other processes. @internal */
export interface RoomLink {
  onEmpty(room: Room): void;
  /** Hand a broadcast to the broker, if there is one. */
  publish(room: Room, text: string | null, bytes: Uint8Array | null): void;
}

const DEFAULT_MAX_BUFFERED = 1_048_576;

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
  readonly stats: RoomStats = { broadcasts: 0, compressed: 0, deliveries: 0, skipped: 0, closedSlow: 0 };
  private readonly members = new Set<Member>();
  private lastId = 0;
  private readonly history: Entry[] | null;
  private readonly maxBufferedBytes: number;
  private readonly policy: "skip" | "close";
  private deleted = false;

  /** @internal */
  constructor(name: string, readonly options: RoomOptions, private readonly link: RoomLink, private readonly totals: RoomTotals) {
    this.name = name;
    this.history = options.history ? [] : null;
    this.maxBufferedBytes = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED;
    this.policy = options.slowMemberPolicy ?? "skip";
    if (options.history && (!Number.isInteger(options.history.maxMessages) || options.history.maxMessages <= 0)) {
      throw new RangeError(`Room history.maxMessages must be a positive integer, got ${options.history.maxMessages}`);
    }
    if (!["skip", "close"].includes(this.policy)) throw new TypeError(`Room slowMemberPolicy must be "skip" or "close"`);
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
    return this.members.has(member);
  }

  /**
   * Add a member; it leaves by itself when it disconnects. With `lastEventId` (the last broadcast
   * id the client saw) the messages it missed are sent first, in order, or `"resync"` is returned
   * when the history no longer covers them. An SSE member that has not started streaming joins
   * when it starts, and resumes from its request's `Last-Event-ID`.
   */
  add(member: Member, options: { lastEventId?: string | number } = {}): ReplayResult {
    if (this.deleted) throw new Error(`Room ${this.name} was deleted`);
    if (isSse(member)) return member.joinRoom(this, options.lastEventId);
    this.members.add(member);
    member.joinedRoom(this);
    return options.lastEventId === undefined ? 0 : this.replay(member, options.lastEventId);
  }

  /**
   * An SSE response that is a member of this room: it receives every broadcast (`id:` is the
   * broadcast id) until the client leaves, and on reconnect gets what it missed after its
   * Last-Event-ID (or an `event: resync` when the history does not reach back).
   * @example app.get("/live/{game}", (req) => app.rooms.getOrCreate(req.params.game).eventSource());
   */
  eventSource(options: EventSourceOptions = {}): EventSourceResponse {
    const response = new EventSourceResponse(untilClientLeaves, options);
    this.add(response);
    return response;
  }

  /** Remove a member (done for you on disconnect). */
  remove(member: Member): void {
    if (!this.members.delete(member)) return;
    if (isSse(member)) member.leftRoom(this);
    else member.leftRoom(this);
    if (this.members.size === 0 && !this.options.keepWhenEmpty && this.history === null) {
      this.deleted = true;
      this.link.onEmpty(this);
    }
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
    const result = this.deliver(text, bytes, options.except);
    this.link.publish(this, text, bytes);
    return result;
  }

  /** @internal A broadcast made on another process. */
  deliverRemote(text: string | null, bytes: Uint8Array | null): void {
    this.totals.remoteBroadcasts++;
    this.deliver(text, bytes, undefined);
  }

  private deliver(text: string | null, bytes: Uint8Array | null, except: BroadcastOptions["except"]): BroadcastResult {
    const id = ++this.lastId;
    if (this.history !== null) this.remember({ id, at: Date.now(), text, bytes });
    const excluded = except === undefined ? null : Array.isArray(except) ? new Set(except) : new Set([except as Member]);
    const payloadBytes = text !== null ? Buffer.byteLength(text) : bytes!.byteLength;
    const threshold = this.options.compressionThreshold ?? 1024;
    const windows = threshold !== false && payloadBytes >= threshold ? this.sharedWindows() : null;
    if (this.pending !== null || windows !== null) {
      // Compressed, or behind a compressed one: delivered in order once the compression is done.
      const job = { id, text, bytes, excluded, payloadBytes, windows };
      (this.pending ??= []).push(job);
      if (this.pending.length === 1) this.runPending();
      return { id, queued: true, delivered: 0, skipped: 0, closed: 0 };
    }
    return this.fanOut(id, text, bytes, excluded, payloadBytes, null);
  }

  /** Broadcasts waiting for a compression ahead of them, in publish order. */
  private pending: Array<{
    id: number; text: string | null; bytes: Uint8Array | null; excluded: Set<Member> | null;
    payloadBytes: number; windows: Set<number> | null;
  }> | null = null;

  private runPending(): void {
    const job = this.pending?.[0];
    if (job === undefined) {
      this.pending = null;
      return;
    }
    const payload = job.text !== null ? Buffer.from(job.text) : job.bytes!;
    const windows = job.windows === null ? [] : [...job.windows];
    void Promise.all(windows.map((bits) => compress(payload, bits))).then((outputs) => {
      const frames = new Map<number, Buffer>();
      windows.forEach((bits, i) => frames.set(bits, encodeFrame(job.text !== null ? Opcode.Text : Opcode.Binary, outputs[i]!, { rsv1: true })));
      this.fanOut(job.id, job.text, job.bytes, job.excluded, job.payloadBytes, frames);
      if (frames.size > 0) {
        this.stats.compressed++;
        this.totals.compressed++;
      }
      this.pending!.shift();
      this.runPending();
    }, () => {
      // Compression failed (it should not): deliver uncompressed rather than lose the message.
      this.fanOut(job.id, job.text, job.bytes, job.excluded, job.payloadBytes, null);
      this.pending!.shift();
      this.runPending();
    });
  }

  /** Window sizes of members that can share one compressed frame, or null when there are none. */
  private sharedWindows(): Set<number> | null {
    let windows: Set<number> | null = null;
    for (const member of this.members) {
      if (isSse(member)) continue;
      const bits = member.transport?.sharedCompressionWindowBits ?? null;
      if (bits !== null) (windows ??= new Set()).add(bits);
    }
    return windows;
  }

  private fanOut(
    id: number, text: string | null, bytes: Uint8Array | null, excluded: Set<Member> | null,
    payloadBytes: number, compressed: Map<number, Buffer> | null,
  ): BroadcastResult {
    const result: BroadcastResult = { id, queued: false, delivered: 0, skipped: 0, closed: 0 };
    let frame: Buffer | null = null;
    let event: string | null = null;
    for (const member of this.members) {
      if (excluded !== null && excluded.has(member)) continue;
      if (isSse(member)) {
        event ??= sseEvent(id, text, bytes);
        this.deliverSse(member, event, result);
        continue;
      }
      const bits = compressed === null ? null : member.transport?.sharedCompressionWindowBits ?? null;
      const shared = bits === null ? undefined : compressed!.get(bits);
      if (shared !== undefined) {
        this.deliverWs(member, shared, payloadBytes, result);
      } else {
        frame ??= text !== null ? encodeFrame(Opcode.Text, text) : encodeFrame(Opcode.Binary, bytes!);
        this.deliverWs(member, frame, payloadBytes, result);
      }
    }
    this.tally(result);
    return result;
  }

  /** Close every member: WebSockets with the code, SSE streams end. */
  close(code: number = CloseCode.Normal, reason = ""): void {
    for (const member of [...this.members]) {
      if (isSse(member)) member.endStream();
      else member.close(code, reason);
    }
  }

  /**
   * The broadcasts after `lastEventId`, oldest first, or `"resync"` when the history does not
   * reach back that far (or the room keeps none).
   */
  since(lastEventId: string | number): Entry[] | "resync" {
    const last = Number(lastEventId);
    if (!Number.isSafeInteger(last) || last < 0 || last > this.lastId) return "resync";
    if (last === this.lastId) return [];
    if (this.history === null) return "resync";
    this.prune(Date.now());
    const first = this.history[0];
    if (first === undefined || first.id > last + 1) return "resync";
    return this.history.filter((e) => e.id > last);
  }

  /** @internal Send missed messages to one WebSocket member. */
  private replay(ws: WebSocket<any>, lastEventId: string | number): ReplayResult {
    const missed = this.since(lastEventId);
    if (missed === "resync") return "resync";
    for (const entry of missed) {
      if (entry.text !== null) ws.sendText(entry.text);
      else ws.sendBytes(entry.bytes!);
    }
    return missed.length;
  }

  /** @internal Missed messages for an SSE member, as event text (with a resync event when too old). */
  replayText(lastEventId: string | number | undefined): string {
    if (lastEventId === undefined || lastEventId === "") return "";
    const missed = this.since(lastEventId);
    if (missed === "resync") return encodeEvent({ event: "resync", data: String(this.lastId) });
    let out = "";
    for (const entry of missed) out += sseEvent(entry.id, entry.text, entry.bytes);
    return out;
  }

  /** @internal An SSE member started streaming. */
  attachSse(member: EventSourceResponse): void {
    this.members.add(member);
  }

  private deliverWs(ws: WebSocket<any>, frame: Buffer, payloadBytes: number, result: BroadcastResult): void {
    const transport = ws.transport;
    if (transport === null || !transport.isOpen) return;
    if (transport.bufferedAmount + payloadBytes > this.maxBufferedBytes) {
      if (this.policy === "close") {
        ws.close(CloseCode.TryAgainLater, "Too slow for the room");
        result.closed++;
      } else {
        result.skipped++;
      }
      return;
    }
    const status = transport.sendFrame(frame, payloadBytes);
    if (status === "ok" || status === "backpressure") result.delivered++;
    else result.skipped++;
  }

  private deliverSse(member: EventSourceResponse, event: string, result: BroadcastResult): void {
    const writer = member.roomWriter;
    if (writer === null || writer.aborted !== null) return;
    if (writer.bufferedBytes + event.length > this.maxBufferedBytes) {
      if (this.policy === "close") {
        member.endStream();
        result.closed++;
      } else {
        result.skipped++;
      }
      return;
    }
    writer.push(event);
    writer.flush();
    result.delivered++;
  }

  private remember(entry: Entry): void {
    const history = this.history!;
    history.push(entry);
    if (history.length > this.options.history!.maxMessages) history.shift();
    this.prune(entry.at);
  }

  private prune(now: number): void {
    const maxAge = this.options.history?.maxAgeMs;
    if (maxAge === undefined || this.history === null) return;
    while (this.history.length > 0 && now - this.history[0]!.at > maxAge) this.history.shift();
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

function isSse(member: Member): member is EventSourceResponse {
  return "joinRoom" in member;
}

function sseEvent(id: number, text: string | null, bytes: Uint8Array | null): string {
  return text !== null
    ? encodeEvent({ id, data: text })
    : encodeEvent({ id, event: "binary", data: Buffer.from(bytes!).toString("base64") });
}

/** The producer of a room-only SSE subscriber: nothing of its own until the client leaves. */
async function* untilClientLeaves(stream: StreamController): AsyncGenerator<EventItem> {
  if (!stream.signal.aborted) await new Promise((resolve) => stream.signal.addEventListener("abort", resolve, { once: true }));
}

const TRAILER_LENGTH = 4;

/** One message compressed on its own (no context takeover), as RFC 7692 §7.2.1 sends it. */
function compress(payload: Uint8Array, windowBits: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    deflateRaw(payload, { windowBits, finishFlush: zlibConstants.Z_SYNC_FLUSH }, (error, output) => {
      if (error !== null) reject(error);
      else resolve(output.subarray(0, output.length - TRAILER_LENGTH));
    });
  });
}
