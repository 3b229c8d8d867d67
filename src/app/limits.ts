import type { RateLimitOptions } from "../options.js";

/**
 * Fixed-window request counter per client address. Memory is bounded by the addresses seen in
 * the current and previous window; older entries are swept once per window.
 */
export class RateLimiter {
  private current = new Map<string, number>();
  private windowStartedAt = Date.now();

  constructor(private readonly options: RateLimitOptions) {}

  /**
   * Count one request. Returns 0 when it is allowed, otherwise the seconds until the window
   * resets (for Retry-After).
   */
  take(address: string, now = Date.now()): number {
    if (now - this.windowStartedAt >= this.options.windowMs) {
      this.current = new Map();
      this.windowStartedAt = now;
    }
    const count = (this.current.get(address) ?? 0) + 1;
    this.current.set(address, count);
    if (count <= this.options.requests) return 0;
    return (this.windowStartedAt + this.options.windowMs - now) / 1000;
  }
}

/** Concurrent stream counts per client address. */
export class StreamSlots {
  private readonly counts = new Map<string, number>();

  constructor(private readonly limit: number) {}

  acquire(address: string): boolean {
    const count = this.counts.get(address) ?? 0;
    if (count >= this.limit) return false;
    this.counts.set(address, count + 1);
    return true;
  }

  release(address: string): void {
    const count = this.counts.get(address) ?? 0;
    if (count <= 1) this.counts.delete(address);
    else this.counts.set(address, count - 1);
  }
}
