/**
 * What one room keeps of its recent broadcasts, for clients that come back: at most
 * `maxMessages`, none older than `maxAgeMs`, at most `maxBytes` (the newest entry always stays),
 * and within the registry's budget for all rooms (it drops the entry that is oldest of all).
 */

/** One broadcast as history keeps it. */
export interface RoomEntry {
  id: number;
  /** When this server delivered it (ms since the epoch). */
  at: number;
  text: string | null;
  bytes: Uint8Array | null;
}

/** What a history tells its owner: how its size changed, and the registry's order of entries. */
export interface HistoryBudget {
  /** The history grew (or shrank) by `bytes`. */
  changed(bytes: number): void;
  /** A number that grows with every entry any room keeps: which entry of all rooms is oldest. */
  nextOrder(): number;
}

/** What an entry counts for in `maxBytes`: characters of text, bytes of binary. */
function entrySize(entry: RoomEntry): number {
  return entry.text !== null ? entry.text.length : entry.bytes?.byteLength ?? 0;
}

export class History {
  private readonly entries: RoomEntry[] = [];
  /** Beside `entries`: when each came, in the registry's order of all rooms' entries. */
  private readonly order: number[] = [];
  private bytes = 0;
  /** The history is complete from this id on (a gap that could not be filled moves it). */
  completeFrom = 0;

  constructor(
    private readonly limits: { maxMessages: number; maxAgeMs?: number | undefined; maxBytes: number },
    private readonly budget: HistoryBudget,
  ) {}

  get length(): number {
    return this.entries.length;
  }

  /** Where its oldest entry stands in the registry's order (Infinity: none). */
  get oldestOrder(): number {
    return this.order[0] ?? Infinity;
  }

  /** Keep a broadcast (the newest), dropping what the limits no longer allow. */
  remember(entry: RoomEntry): void {
    this.entries.push(entry);
    this.order.push(this.budget.nextOrder());
    const size = entrySize(entry);
    this.bytes += size;
    while (this.entries.length > this.limits.maxMessages || (this.entries.length > 1 && this.bytes > this.limits.maxBytes)) this.dropOldest();
    this.prune(entry.at);
    // Told after its own limits are met: the registry's budget then sees what the room keeps.
    this.budget.changed(size);
  }

  /** Drop what is older than `maxAgeMs`. */
  prune(now: number): void {
    const maxAge = this.limits.maxAgeMs;
    if (maxAge === undefined) return;
    while (this.entries.length > 0 && now - this.entries[0]!.at > maxAge) this.dropOldest();
  }

  /**
   * The entries after `last`, oldest first, or "resync" when the history does not reach back to
   * the one after it.
   */
  after(last: number): RoomEntry[] | "resync" {
    this.prune(Date.now());
    const first = this.entries[0];
    if (first === undefined || Math.max(first.id, this.completeFrom) > last + 1) return "resync";
    return this.entries.filter((e) => e.id > last);
  }

  /** Forget everything (entries numbered here before the room had a shared log). */
  clear(): void {
    this.entries.length = 0;
    this.order.length = 0;
    this.budget.changed(-this.bytes);
    this.bytes = 0;
  }

  dropOldest(): void {
    if (this.entries.length === 0) return;
    this.order.shift();
    const size = entrySize(this.entries.shift()!);
    this.bytes -= size;
    this.budget.changed(-size);
  }
}
