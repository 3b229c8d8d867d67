/**
 * Checks of option values. Each error names the option and the value it got, so bad options fail
 * at startup with a RangeError that says what to fix.
 */

/** A positive safe integer. */
export function assertPositiveInteger(name: string, value: unknown): asserts value is number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value <= 0) {
    throw new RangeError(`Option ${name} must be a positive integer, got ${String(value)}`);
  }
}

/** A safe integer of 0 or more. */
export function assertNonNegativeInteger(name: string, value: unknown): asserts value is number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`Option ${name} must be a non-negative integer, got ${String(value)}`);
  }
}

/** An integer in `min..max`. */
export function assertIntegerIn(name: string, value: unknown, min: number, max: number): asserts value is number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`Option ${name} must be an integer in ${min}..${max}, got ${String(value)}`);
  }
}
