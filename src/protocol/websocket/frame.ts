/**
 * Building WebSocket frames (RFC 6455 §5.2). Server frames are not masked; a client (tests, the
 * test client) passes a masking key.
 */
import { Opcode } from "./constants.js";

/** Bytes of the frame header for a payload of `length` bytes. */
export function headerLength(length: number, masked: boolean): number {
  return (length < 126 ? 2 : length < 65536 ? 4 : 10) + (masked ? 4 : 0);
}

/** Write a frame header at `offset` of `target`; returns the offset just after it. */
export function writeHeader(
  target: Uint8Array,
  offset: number,
  opcode: Opcode,
  length: number,
  fin: boolean,
  rsv1: boolean,
  mask?: Uint8Array,
): number {
  target[offset] = (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode;
  const maskBit = mask === undefined ? 0 : 0x80;
  if (length < 126) {
    target[offset + 1] = maskBit | length;
    offset += 2;
  } else if (length < 65536) {
    target[offset + 1] = maskBit | 126;
    target[offset + 2] = length >>> 8;
    target[offset + 3] = length & 0xff;
    offset += 4;
  } else {
    target[offset + 1] = maskBit | 127;
    // Lengths are below 2^53; the high 32 bits are written from the division.
    const high = Math.floor(length / 0x1_0000_0000);
    target[offset + 2] = high >>> 24;
    target[offset + 3] = (high >>> 16) & 0xff;
    target[offset + 4] = (high >>> 8) & 0xff;
    target[offset + 5] = high & 0xff;
    target[offset + 6] = length >>> 24;
    target[offset + 7] = (length >>> 16) & 0xff;
    target[offset + 8] = (length >>> 8) & 0xff;
    target[offset + 9] = length & 0xff;
    offset += 10;
  }
  if (mask !== undefined) {
    target.set(mask.subarray(0, 4), offset);
    offset += 4;
  }
  return offset;
}

/**
 * A whole frame in one buffer. Text is written as UTF-8 straight into the frame.
 * With `mask` the payload is masked (client to server).
 */
export function encodeFrame(
  opcode: Opcode,
  payload: string | Uint8Array,
  options: { fin?: boolean; rsv1?: boolean; mask?: Uint8Array } = {},
): Buffer {
  const length = typeof payload === "string" ? Buffer.byteLength(payload) : payload.byteLength;
  const masked = options.mask !== undefined;
  const frame = Buffer.allocUnsafe(headerLength(length, masked) + length);
  const start = writeHeader(frame, 0, opcode, length, options.fin ?? true, options.rsv1 ?? false, options.mask);
  if (typeof payload === "string") frame.write(payload, start, "utf8");
  else frame.set(payload, start);
  if (masked) unmask(frame, options.mask!, start, start + length);
  return frame;
}

/** A close frame with a code and a UTF-8 reason (at most 123 bytes), or none for no code. */
export function encodeClose(code?: number, reason = "", mask?: Uint8Array): Buffer {
  if (code === undefined) return encodeFrame(Opcode.Close, new Uint8Array(0), mask === undefined ? {} : { mask });
  const payload = Buffer.allocUnsafe(2 + Buffer.byteLength(reason));
  payload.writeUInt16BE(code, 0);
  payload.write(reason, 2, "utf8");
  return encodeFrame(Opcode.Close, payload, mask === undefined ? {} : { mask });
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** XOR `data[start..end)` with the 4-byte masking key, in place (RFC 6455 §5.3). */
export function unmask(data: Uint8Array, mask: Uint8Array, start = 0, end = data.length): void {
  let i = start;
  if (end - start >= 64) {
    // Word-aligned 32-bit XOR for the bulk of large payloads; bytes before and after one by one.
    while (((data.byteOffset + i) & 3) !== 0) {
      data[i] = data[i]! ^ mask[(i - start) & 3]!;
      i++;
    }
    const phase = (i - start) & 3;
    const b0 = mask[phase]!;
    const b1 = mask[(phase + 1) & 3]!;
    const b2 = mask[(phase + 2) & 3]!;
    const b3 = mask[(phase + 3) & 3]!;
    const word = LITTLE_ENDIAN ? b0 | (b1 << 8) | (b2 << 16) | (b3 << 24) : (b0 << 24) | (b1 << 16) | (b2 << 8) | b3;
    const words = (end - i) >>> 2;
    const view = new Int32Array(data.buffer, data.byteOffset + i, words);
    for (let w = 0; w < words; w++) view[w] = view[w]! ^ word;
    i += words * 4;
  }
  for (; i < end; i++) data[i] = data[i]! ^ mask[(i - start) & 3]!;
}

/** Cut a reason to at most `max` UTF-8 bytes without splitting a character. */
export function truncateReason(reason: string, max = 123): string {
  if (Buffer.byteLength(reason) <= max) return reason;
  let out = "";
  let bytes = 0;
  for (const ch of reason) {
    const size = Buffer.byteLength(ch);
    if (bytes + size > max) break;
    out += ch;
    bytes += size;
  }
  return out;
}
