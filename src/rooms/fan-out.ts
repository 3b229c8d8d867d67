/**
 * How much of each turn of the event loop room broadcasts may take. Fan-out runs at once while
 * the turn's slice lasts; after that, broadcasts wait in their room's queue and are delivered on
 * the following turns, a slice per turn shared by every waiting room in turn (one broadcast each,
 * round robin), so that requests and messages of everyone else are answered in between.
 */

/** Fan-out time of one turn (ms): a broadcast started within it runs to its end. */
export const FANOUT_SLICE_MS = 4;

/** What the scheduler asks of a room with broadcasts waiting. */
export interface FanOutQueue {
  /** Deliver the next waiting broadcast; whether another one is ready now. */
  deliverNext(): boolean;
}

let sliceStart = -1;
let resetScheduled = false;
const ready: FanOutQueue[] = [];
let drainScheduled = false;

function resetSlice(): void {
  resetScheduled = false;
  sliceStart = -1;
}

/** Whether this turn's slice is spent; the first call of a turn starts it. */
export function sliceSpent(): boolean {
  const now = performance.now();
  if (sliceStart < 0) {
    sliceStart = now;
    if (!resetScheduled) {
      resetScheduled = true;
      setImmediate(resetSlice);
    }
    return false;
  }
  return now - sliceStart > FANOUT_SLICE_MS;
}

/** A room has a broadcast ready: it is delivered in a later slice, in turn with the others. */
export function whenReady(queue: FanOutQueue): void {
  ready.push(queue);
  if (!drainScheduled) {
    drainScheduled = true;
    setImmediate(drain);
  }
}

function drain(): void {
  drainScheduled = false;
  // Each drain delivers at least one broadcast, so that waiting rooms always move.
  let first = true;
  while (ready.length > 0 && (first || !sliceSpent())) {
    first = false;
    const queue = ready.shift()!;
    if (queue.deliverNext()) ready.push(queue);
  }
  if (ready.length > 0) {
    drainScheduled = true;
    setImmediate(drain);
  }
}
