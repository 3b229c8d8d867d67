import { Room, type RoomOptions, type RoomTotals } from "./room.js";

/** The rooms of an app: `app.rooms`. */
export class RoomRegistry {
  private readonly rooms = new Map<string, Room>();
  /** @internal */
  readonly totals: RoomTotals = { broadcasts: 0, deliveries: 0, skipped: 0, closedSlow: 0 };

  /** The room with this name, created with `options` when it does not exist. */
  getOrCreate(name: string, options: RoomOptions = {}): Room {
    let room = this.rooms.get(name);
    if (room === undefined) {
      room = new Room(name, options, (empty) => {
        if (this.rooms.get(empty.name) === empty) this.rooms.delete(empty.name);
      }, this.totals);
      this.rooms.set(name, room);
    }
    return room;
  }

  get(name: string): Room | undefined {
    return this.rooms.get(name);
  }

  /** Delete a room; its members stay connected but leave it. */
  delete(name: string): boolean {
    const room = this.rooms.get(name);
    if (room === undefined) return false;
    for (const member of [...room]) room.remove(member);
    return this.rooms.delete(name);
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
  summary(): { active: number; members: number } & RoomTotals {
    let members = 0;
    for (const room of this.rooms.values()) members += room.size;
    return { active: this.rooms.size, members, ...this.totals };
  }
}
