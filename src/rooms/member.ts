/**
 * What a room knows of its members: two kinds behind small interfaces (a WebSocket session, an
 * SSE response), each reached through the engine's sink for it (transport.ts). Rooms import no
 * member class; members know rooms only as `MemberRoom`.
 */
import type { EventStreamSink, WebSocketTransport } from "../transport.js";

/** Result of joining with a last-seen id: how many missed messages were replayed, or "resync". */
export type ReplayResult = number | "resync";

/**
 * What `room.add` returns: at once when this server's history answers, or a promise when the
 * room's shared history (in the broker) must be read first. `await` it either way.
 */
export type Joined = ReplayResult | Promise<ReplayResult>;

/**
 * A room member, as the public API names it: a WebSocket session (`WebSocket`) or an SSE
 * response (`EventSourceResponse`); `instanceof` tells which.
 */
export interface Member {
  /** Which kind of member it is. */
  readonly memberKind: "websocket" | "sse";
}

/** A room as its members see it. */
export interface MemberRoom {
  readonly name: string;
  /** Remove a member (it left, or its connection ended). */
  remove(member: Member): void;
  /** Make a member receive broadcasts, after what it missed since `lastEventId`. */
  attach(member: Member, lastEventId: string | number | undefined): Joined;
}

/** A WebSocket session as a room member: broadcasts go to its transport as encoded frames. */
export interface WebSocketMember extends Member {
  readonly memberKind: "websocket";
  /** Null before the session is accepted and after it ended. */
  readonly transport: WebSocketTransport | null;
  sendText(text: string): unknown;
  sendBytes(bytes: Uint8Array): unknown;
  close(code?: number, reason?: string): void;
  joinedRoom(room: MemberRoom): void;
  leftRoom(room: MemberRoom): void;
}

/** An SSE response as a room member: broadcasts go to its sink as encoded events. */
export interface EventStreamMember extends Member {
  readonly memberKind: "sse";
  /** Where events go while it streams; null before and after. */
  readonly roomSink: EventStreamSink | null;
  /** Join now if it streams, else when it starts (then from its request's Last-Event-ID). */
  joinRoom(room: MemberRoom, lastEventId: string | number | undefined): Joined;
  leftRoom(room: MemberRoom): void;
  /** End the stream from the server's side (the room closed, or it is too slow for the room). */
  endStream(): void;
}

export type RoomMember = WebSocketMember | EventStreamMember;

/** The rooms one member is in, as a member keeps them: one room without a set (the usual case), or a set. */
export type Memberships<R> = R | Set<R> | null;

/** `joined` with `room` in it. */
export function withRoom<R>(joined: Memberships<R>, room: R): Memberships<R> {
  if (joined === null || joined === room) return room;
  if (joined instanceof Set) return joined.add(room);
  return new Set([joined, room]);
}

/** `joined` without `room`. */
export function withoutRoom<R>(joined: Memberships<R>, room: R): Memberships<R> {
  if (joined === room) return null;
  if (joined instanceof Set) joined.delete(room);
  return joined;
}

/** The rooms, as a list that leaving them does not change. */
export function roomsOf<R>(joined: Memberships<R>): R[] {
  return joined === null ? [] : joined instanceof Set ? [...joined] : [joined];
}
