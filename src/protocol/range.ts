/**
 * Byte ranges and conditional requests (RFC 9110 §13, §14). Pure functions over header values.
 */

/** An inclusive byte range: `start` and `end` are both offsets of bytes that are sent. */
export interface ByteRange {
  start: number;
  end: number;
}

/** What a Range header asks for, against a representation of a known length. */
export type RangeResult =
  | { type: "none" }
  | { type: "ranges"; ranges: ByteRange[] }
  | { type: "malformed" }
  | { type: "unsatisfiable" };

const DIGITS = /^\d+$/;

/**
 * Parse a `Range` header against a representation of `size` bytes (RFC 9110 §14.1.2).
 *
 * - `none`: no header, or a unit other than `bytes` (§14.2: an unknown unit is ignored).
 * - `malformed`: the header does not parse; a server ignores it and sends the whole representation.
 * - `unsatisfiable`: no range overlaps the representation; the answer is 416.
 * - `ranges`: the satisfiable ranges in request order, each clamped to the representation. When
 *   some of them overlap, they are all coalesced (§14.2 allows it) into ranges sorted by start
 *   that neither overlap nor touch: sixteen `0-` ask for the representation once, not sixteen
 *   times.
 */
export function parseRange(header: string | undefined, size: number): RangeResult {
  if (header === undefined) return { type: "none" };
  const eq = header.indexOf("=");
  if (eq < 0) return { type: "malformed" };
  if (header.slice(0, eq).trim().toLowerCase() !== "bytes") return { type: "none" };
  const ranges: ByteRange[] = [];
  let specs = 0;
  for (const raw of header.slice(eq + 1).split(",")) {
    const spec = raw.trim();
    // RFC 9110 §5.6.1: empty list elements are allowed and ignored.
    if (spec === "") continue;
    specs++;
    const dash = spec.indexOf("-");
    if (dash < 0) return { type: "malformed" };
    const first = spec.slice(0, dash).trim();
    const last = spec.slice(dash + 1).trim();
    if (first === "") {
      // Suffix range: the last N bytes; a suffix longer than the representation means all of it.
      if (!DIGITS.test(last)) return { type: "malformed" };
      const suffix = Number(last);
      if (suffix > 0 && size > 0) ranges.push({ start: Math.max(0, size - suffix), end: size - 1 });
      continue;
    }
    if (!DIGITS.test(first) || (last !== "" && !DIGITS.test(last))) return { type: "malformed" };
    const start = Number(first);
    const end = last === "" ? Infinity : Number(last);
    if (end < start) return { type: "malformed" };
    if (start < size) ranges.push({ start, end: Math.min(end, size - 1) });
  }
  if (specs === 0) return { type: "malformed" };
  if (ranges.length === 0) return { type: "unsatisfiable" };
  return { type: "ranges", ranges: overlaps(ranges) ? coalesce(ranges) : ranges };
}

function overlaps(ranges: readonly ByteRange[]): boolean {
  for (let i = 0; i < ranges.length; i++) {
    for (let j = i + 1; j < ranges.length; j++) {
      if (ranges[i]!.start <= ranges[j]!.end && ranges[j]!.start <= ranges[i]!.end) return true;
    }
  }
  return false;
}

/** Sorted by start, overlapping and adjacent ranges merged. */
function coalesce(ranges: readonly ByteRange[]): ByteRange[] {
  const sorted = [...ranges].sort((a, b) => a.start - b.start);
  const out: ByteRange[] = [{ ...sorted[0]! }];
  for (const range of sorted.slice(1)) {
    const last = out[out.length - 1]!;
    if (range.start <= last.end + 1) last.end = Math.max(last.end, range.end);
    else out.push({ ...range });
  }
  return out;
}

/** Current validators of a representation. */
export interface Validators {
  /** A strong entity tag including its quotes, e.g. `"1f-18c4a"`. */
  etag?: string;
  /** Last modification time in milliseconds since the epoch. */
  lastModified?: number;
}

/** Request headers that carry preconditions, lower-cased as node:http delivers them. */
export interface ConditionalHeaders {
  "if-match"?: string;
  "if-none-match"?: string;
  "if-modified-since"?: string;
  "if-unmodified-since"?: string;
  "if-range"?: string;
}

function opaqueTag(tag: string): string {
  return tag.startsWith("W/") ? tag.slice(2) : tag;
}

function listMatches(header: string, etag: string | undefined, strong: boolean): boolean {
  if (header.trim() === "*") return etag !== undefined;
  if (etag === undefined) return false;
  if (strong && etag.startsWith("W/")) return false;
  const current = opaqueTag(etag);
  for (const raw of header.split(",")) {
    const tag = raw.trim();
    if (strong ? tag === current : opaqueTag(tag) === current) return true;
  }
  return false;
}

function seconds(ms: number): number {
  return Math.floor(ms / 1000);
}

/**
 * Evaluate preconditions in the order of RFC 9110 §13.2.2 for a GET or HEAD request.
 * Returns the status that ends the request (304 or 412), or 0 to go on.
 */
export function evaluatePreconditions(
  headers: ConditionalHeaders,
  validators: Validators,
  method: string,
): 0 | 304 | 412 {
  const { etag, lastModified } = validators;
  const ifMatch = headers["if-match"];
  if (ifMatch !== undefined) {
    if (!listMatches(ifMatch, etag, true)) return 412;
  } else {
    const ius = headers["if-unmodified-since"];
    const date = ius === undefined ? NaN : Date.parse(ius);
    if (!Number.isNaN(date) && lastModified !== undefined && seconds(lastModified) > seconds(date)) {
      return 412;
    }
  }
  const isRead = method === "GET" || method === "HEAD";
  const inm = headers["if-none-match"];
  if (inm !== undefined) {
    // §13.1.2: If-None-Match uses the weak comparison.
    if (listMatches(inm, etag, false)) return isRead ? 304 : 412;
  } else if (isRead) {
    const ims = headers["if-modified-since"];
    const date = ims === undefined ? NaN : Date.parse(ims);
    if (!Number.isNaN(date) && lastModified !== undefined && seconds(lastModified) <= seconds(date)) {
      return 304;
    }
  }
  return 0;
}

/**
 * RFC 9110 §13.1.5: whether a Range request's `If-Range` still holds. An entity tag must match by
 * strong comparison (a weak tag never does); a date must equal the Last-Modified date exactly.
 * Without an `If-Range` header the range applies.
 */
export function ifRangeHolds(ifRange: string | undefined, validators: Validators): boolean {
  if (ifRange === undefined) return true;
  const value = ifRange.trim();
  if (value.startsWith('"') || value.startsWith("W/")) {
    return validators.etag !== undefined && !value.startsWith("W/") && !validators.etag.startsWith("W/")
      && value === validators.etag;
  }
  const date = Date.parse(value);
  return !Number.isNaN(date) && validators.lastModified !== undefined
    && seconds(date) === seconds(validators.lastModified);
}

/** An IMF-fixdate (RFC 9110 §5.6.7) for a time in milliseconds. */
export function httpDate(ms: number): string {
  return new Date(ms).toUTCString();
}
