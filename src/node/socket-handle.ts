/**
 * What it takes to move a node:net socket's descriptor to the native engine: node:net keeps its
 * handle (and the descriptor) to itself, so these reach into it, in one place.
 */
import type { Socket } from "node:net";

type SocketInternals = Socket & {
  _handle?: { fd?: number; reading?: boolean; readStop?: () => number; readStart?: () => number } | null;
  encrypted?: boolean;
};

/** Whether a socket's descriptor can be handed over: a plain TCP socket with one, still open. */
export function canHandOver(socket: Socket): boolean {
  const s = socket as SocketInternals;
  return s.encrypted !== true && typeof s._handle?.fd === "number" && s._handle.fd >= 0 && !socket.destroyed;
}

/** A socket node:net stopped reading: its descriptor, and the bytes it read but did not deliver. */
export interface HeldSocket {
  readonly fd: number;
  /** What node:net read and did not deliver yet, after `head`. */
  readonly bytes: Buffer;
}

/**
 * Stop node:net reading a socket (canHandOver said yes) and take what it read but did not
 * deliver, after `head`: from here the descriptor's bytes are the next owner's.
 */
export function holdSocket(socket: Socket, head: Buffer): HeldSocket {
  const handle = (socket as SocketInternals)._handle!;
  handle.reading = false;
  handle.readStop?.();
  const pending: Buffer[] = head.length > 0 ? [head] : [];
  while (socket.readableLength > 0) {
    const chunk = socket.read() as Buffer | null;
    if (chunk === null) break;
    pending.push(chunk);
  }
  return { fd: handle.fd!, bytes: pending.length === 1 ? pending[0]! : Buffer.concat(pending) };
}

/**
 * Undo holdSocket when the next owner could not take the socket: its handle reads again. (A read
 * request would not do it: net.Socket thinks a read is under way and does not start the handle.)
 */
export function releaseSocket(socket: Socket): void {
  const handle = (socket as SocketInternals)._handle;
  if (handle === null || handle === undefined) return;
  handle.reading = true;
  const err = handle.readStart?.() ?? 0;
  if (err < 0) socket.destroy();
}

/** The descriptor lives on, duplicated, in C: node:net's socket and everything on it go. */
export function letGo(socket: Socket): void {
  socket.removeAllListeners();
  socket.on("error", ignore);
  socket.destroy();
}

function ignore(): void {}
