/**
 * The broadcasts of one room that wait for delivery: behind a compression, or past this turn's
 * fan-out slice. It keeps publish order: a broadcast leaves only after the one before it, and the
 * first one is compressed (off the event loop) before it is handed to the fan-out scheduler.
 * It is bounded by bytes waiting and by time waited.
 */
import { Opcode } from "../protocol/websocket/constants.js";
import { encodeFrame } from "../protocol/websocket/frame.js";
import { compressMessage } from "../node/websocket/deflate.js";
import { whenReady, type FanOutQueue } from "./fan-out.js";
import type { Member } from "./member.js";

/** A broadcast waiting for delivery. */
export interface QueuedBroadcast {
  id: number | null;
  text: string | null;
  bytes: Uint8Array | null;
  excluded: Set<Member> | null;
  payloadBytes: number;
  /** Window sizes it is compressed for, or null; `frames` holds the compressed frames once done. */
  windows: Set<number> | null;
  frames: Map<number, Buffer> | null;
  /** When it was queued (performance.now()). */
  at: number;
}

/** What a waiting broadcast counts for in `maxQueuedBytes` beyond its payload. */
const OVERHEAD_BYTES = 96;

/** What the queue asks of its room. */
export interface BroadcastQueueRoom {
  /** Deliver a broadcast whose turn came (its `frames` are the compressed ones, if any). */
  fanOutQueued(broadcast: QueuedBroadcast): void;
  /** A broadcast was dropped: the queue was full, or it waited past `maxQueueMs`. */
  dropped(): void;
  /** The last waiting broadcast left. */
  drained(): void;
}

export class BroadcastQueue implements FanOutQueue {
  /** null while nothing waits; the first may be being compressed. */
  private waiting: QueuedBroadcast[] | null = null;
  private bytes = 0;

  constructor(
    private readonly limits: { maxQueuedBytes: number; maxQueueMs: number; compressionLevel: number },
    private readonly room: BroadcastQueueRoom,
  ) {}

  /** Whether broadcasts wait: a new one must then wait behind them. */
  get busy(): boolean {
    return this.waiting !== null;
  }

  /**
   * Queue a broadcast, compressed for `windows` when given; false when it is dropped because the
   * queue holds `maxQueuedBytes` already (the first one waiting is always taken).
   */
  push(
    id: number | null, text: string | null, bytes: Uint8Array | null, excluded: Set<Member> | null,
    payloadBytes: number, windows: Set<number> | null,
  ): boolean {
    const cost = payloadBytes + OVERHEAD_BYTES;
    if (this.waiting !== null && this.bytes + cost > this.limits.maxQueuedBytes) {
      this.room.dropped();
      return false;
    }
    this.bytes += cost;
    const broadcast: QueuedBroadcast = { id, text, bytes, excluded, payloadBytes, windows, frames: null, at: performance.now() };
    if (this.waiting === null) {
      this.waiting = [broadcast];
      this.prepare();
    } else {
      this.waiting.push(broadcast);
    }
    return true;
  }

  /** The fan-out scheduler's turn: deliver the first waiting broadcast; whether the next is ready. */
  deliverNext(): boolean {
    const broadcast = this.waiting!.shift()!;
    this.bytes -= broadcast.payloadBytes + OVERHEAD_BYTES;
    if (performance.now() - broadcast.at > this.limits.maxQueueMs) this.room.dropped();
    else this.room.fanOutQueued(broadcast);
    if (this.waiting!.length === 0) {
      this.waiting = null;
      this.room.drained();
      return false;
    }
    if (this.waiting![0]!.windows === null) return true;
    this.prepare();
    return false;
  }

  /** The first waiting broadcast: compressed first if it needs to be, then handed to the fan-out scheduler. */
  private prepare(): void {
    const broadcast = this.waiting![0]!;
    if (broadcast.windows === null || broadcast.frames !== null) {
      whenReady(this);
      return;
    }
    void compressedFrames(broadcast, this.limits.compressionLevel).then((frames) => {
      broadcast.frames = frames;
      whenReady(this);
    }, () => {
      // Compression failed (it should not): deliver uncompressed rather than lose the message.
      broadcast.frames = new Map();
      whenReady(this);
    });
  }
}

/** One RSV1 frame per window size, each message compressed once (RFC 7692, no context takeover). */
async function compressedFrames(broadcast: QueuedBroadcast, level: number): Promise<Map<number, Buffer>> {
  const payload = broadcast.text !== null ? Buffer.from(broadcast.text) : broadcast.bytes!;
  const opcode = broadcast.text !== null ? Opcode.Text : Opcode.Binary;
  const windows = [...broadcast.windows!];
  const outputs = await Promise.all(windows.map((bits) => compressMessage(payload, bits, level)));
  const frames = new Map<number, Buffer>();
  windows.forEach((bits, i) => frames.set(bits, encodeFrame(opcode, outputs[i]!, { rsv1: true })));
  return frames;
}
