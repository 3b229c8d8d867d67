/**
 * One copy of strings that many long-lived connections hold alike (header values such as
 * `websocket` or the Host, client addresses, paths): V8 makes a new string for each request, and
 * an idle connection would otherwise keep its own copies. The table is bounded: when it is full it
 * starts again, so values that never repeat (keys, tokens) cost at most the table.
 */
const MAX_LENGTH = 256;
const MAX_ENTRIES = 2048;
let table = new Map<string, string>();

/** The shared copy of `value` (itself the first time it is seen). */
export function intern(value: string): string {
  if (value.length > MAX_LENGTH) return value;
  const known = table.get(value);
  if (known !== undefined) return known;
  if (table.size >= MAX_ENTRIES) table = new Map();
  table.set(value, value);
  return value;
}
