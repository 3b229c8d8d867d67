/**
 * Order against the broker's shared log, for a room whose history is that log:
 * - `LogOrder` takes the log's entries as they come (from this server or another) and hands them
 *   on in id order; when one arrives past a gap (a message this server did not get), the gap is
 *   read from the log first, and what comes meanwhile waits in its inbox.
 * - `CatchUp` holds, per member that reads the log because this server's history does not reach
 *   back far enough, what the fan-out delivered meanwhile; the member gets it after the entries
 *   read, without the ones those already covered.
 */
import type { RoomEntry } from "./history.js";
import type { Member } from "./member.js";

/** What the log gives after an id: its last id, and the entries it still holds. */
export interface LogRead {
  lastId: number;
  entries: RoomEntry[];
}

/** What `LogOrder` asks of its room. */
export interface LogOrderRoom {
  /** The id of the last entry the room took. */
  lastId(): number;
  /** The shared log after an id. */
  read(afterId: number): Promise<LogRead>;
  /** The first entry this server sees: what it numbered itself before does not mix with the log. */
  first(id: number): void;
  /** An entry in id order, with the `except` of this server's own broadcast. */
  accept(entry: RoomEntry, excluded: Set<Member> | null): void;
  /** The history is complete only from `id` on (what came before it could not be had). */
  gap(id: number): void;
}

export class LogOrder {
  /** Entries that came while a gap before them is read; they keep id order and go on once it is in. */
  private inbox: Array<[RoomEntry, Set<Member> | null]> | null = null;
  /** Whether this server has seen an entry of the log yet (the first sets the baseline). */
  private seen = false;

  constructor(private readonly room: LogOrderRoom) {}

  /** Whether a gap is being read. */
  get busy(): boolean {
    return this.inbox !== null;
  }

  receive(entry: RoomEntry, excluded: Set<Member> | null): void {
    if (this.inbox !== null) {
      this.inbox.push([entry, excluded]);
      return;
    }
    const lastId = this.room.lastId();
    if (this.seen && entry.id <= lastId) return;
    if (this.seen && entry.id > lastId + 1) {
      this.inbox = [[entry, excluded]];
      void this.fillGap();
      return;
    }
    this.take(entry, excluded);
  }

  private async fillGap(): Promise<void> {
    try {
      const { entries } = await this.room.read(this.room.lastId());
      const first = entries[0];
      if (first !== undefined && first.id > this.room.lastId() + 1) this.room.gap(first.id);
      for (const entry of entries) if (entry.id > this.room.lastId()) this.take(entry, null);
    } catch {
      // The log cannot be read: the gap stays, the history is complete only after it.
    }
    const inbox = this.inbox!;
    this.inbox = null;
    for (const [entry, excluded] of inbox) {
      if (entry.id > this.room.lastId() + 1) this.room.gap(entry.id);
      if (entry.id > this.room.lastId()) this.take(entry, excluded);
    }
  }

  private take(entry: RoomEntry, excluded: Set<Member> | null): void {
    if (!this.seen) {
      this.seen = true;
      this.room.first(entry.id);
    }
    this.room.accept(entry, excluded);
  }
}

/** One member's catch-up: what the fan-out delivered while its entries were read. */
export type CatchUpTicket = RoomEntry[];

export class CatchUp {
  /** Per member catching up, what it missed meanwhile, in delivery order; null when no one is. */
  private waiting: Map<Member, CatchUpTicket> | null = null;

  /** Whether any member is catching up. */
  get busy(): boolean {
    return this.waiting !== null;
  }

  /** A member starts reading the log: live broadcasts wait for it from now on. */
  begin(member: Member): CatchUpTicket {
    const ticket: CatchUpTicket = [];
    (this.waiting ??= new Map()).set(member, ticket);
    return ticket;
  }

  /** Whether `member` is catching up; a broadcast with an id then waits for it. */
  hold(member: Member, id: number | null, text: string | null, bytes: Uint8Array | null): boolean {
    const ticket = this.waiting?.get(member);
    if (ticket === undefined) return false;
    if (id !== null) ticket.push({ id, at: 0, text, bytes });
    return true;
  }

  /** Whether this catch-up is still the member's (it did not leave or join again meanwhile). */
  current(member: Member, ticket: CatchUpTicket): boolean {
    return this.waiting?.get(member) === ticket;
  }

  /** The catch-up is over: what waited after `upTo` (the last id the read sent it), for the member to get. */
  finish(member: Member, ticket: CatchUpTicket, upTo: number): RoomEntry[] {
    if (!this.current(member, ticket)) return [];
    this.drop(member);
    return ticket.filter((entry) => entry.id > upTo);
  }

  /** The member left. */
  drop(member: Member): void {
    if (this.waiting === null) return;
    this.waiting.delete(member);
    if (this.waiting.size === 0) this.waiting = null;
  }
}
