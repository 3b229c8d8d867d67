/**
 * Incremental UTF-8 validation (RFC 3629), fed fragment by fragment, failing on the first byte
 * that cannot start or continue a valid sequence: overlong forms, surrogates (U+D800–U+DFFF) and
 * code points above U+10FFFF.
 */

// State of the decoder: how many continuation bytes are still expected, and the allowed range of
// the next one (the first continuation byte is narrower after E0, ED, F0 and F4).
const ACCEPT = 0;

/** A validator for one message; `reset()` makes it ready for the next. */
export class Utf8Validator {
  private needed = 0;
  private lower = 0x80;
  private upper = 0xbf;

  /** Feed bytes; returns false as soon as they cannot be valid UTF-8. */
  feed(bytes: Uint8Array, start = 0, end = bytes.length): boolean {
    let needed = this.needed;
    let lower = this.lower;
    let upper = this.upper;
    for (let i = start; i < end; i++) {
      const byte = bytes[i]!;
      if (needed === ACCEPT) {
        if (byte < 0x80) continue;
        if (byte >= 0xc2 && byte <= 0xdf) {
          needed = 1;
        } else if (byte >= 0xe0 && byte <= 0xef) {
          needed = 2;
          if (byte === 0xe0) lower = 0xa0; // overlong three-byte form
          else if (byte === 0xed) upper = 0x9f; // surrogates
        } else if (byte >= 0xf0 && byte <= 0xf4) {
          needed = 3;
          if (byte === 0xf0) lower = 0x90; // overlong four-byte form
          else if (byte === 0xf4) upper = 0x8f; // above U+10FFFF
        } else {
          return this.fail();
        }
        continue;
      }
      if (byte < lower || byte > upper) return this.fail();
      lower = 0x80;
      upper = 0xbf;
      needed--;
    }
    this.needed = needed;
    this.lower = lower;
    this.upper = upper;
    return true;
  }

  /** Whether the bytes fed so far end on a complete code point. */
  get isComplete(): boolean {
    return this.needed === ACCEPT;
  }

  reset(): void {
    this.needed = ACCEPT;
    this.lower = 0x80;
    this.upper = 0xbf;
  }

  private fail(): false {
    this.reset();
    return false;
  }
}

const shared = new Utf8Validator();

/** Validate a complete byte sequence. */
export function isValidUtf8(bytes: Uint8Array): boolean {
  shared.reset();
  const ok = shared.feed(bytes) && shared.isComplete;
  shared.reset();
  return ok;
}
