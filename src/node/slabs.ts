/**
 * Reusable buffers that streamed bodies coalesce small chunks into, shared by both HTTP engines'
 * body writers: a slab is taken when a stream has bytes to coalesce and given back once they are
 * written (node:http: when the socket took them; the native engine: at once, the C side copies).
 */

/** Size of the reusable buffers small chunks are coalesced into, at the default chunkSize. */
export const SLAB_BYTES = 64 * 1024;
/** The smallest slab: chunk sizes below it share this class. */
const MIN_SLAB_BYTES = 4 * 1024;
/**
 * Bytes a stream may have handed to its socket that the kernel did not take yet (slabs and large
 * chunks in flight) before its producer waits: what a stream whose reader stopped holds in user
 * space, whatever its chunkSize (up to 64 KiB). More in flight would let one fast reader's write
 * go out in fewer system calls, at the price of more memory held by every paused one.
 */
export const MAX_IN_FLIGHT_BYTES = 64 * 1024;
/** Bytes of slabs kept for reuse, over all sizes. */
const POOL_MAX_BYTES = 4 * 1024 * 1024;
/** Free slabs by size (powers of two from MIN_SLAB_BYTES to SLAB_BYTES). */
const pool = new Map<number, Buffer[]>();
let pooledBytes = 0;

/**
 * The slab for a chunk size: a power of two up to SLAB_BYTES (a paused stream pins one slab, so
 * a small chunkSize keeps it small), the chunk size itself above.
 */
export function slabSizeFor(chunkSize: number): number {
  if (chunkSize > SLAB_BYTES) return chunkSize;
  let size = MIN_SLAB_BYTES;
  while (size < chunkSize) size *= 2;
  return size;
}

export function takeSlab(size: number): Buffer {
  const slab = pool.get(size)?.pop();
  if (slab !== undefined) {
    pooledBytes -= size;
    return slab;
  }
  // Slabs are long-lived and reused, so they get their own memory instead of the shared pool.
  return Buffer.allocUnsafeSlow(size);
}

export function giveSlab(slab: Buffer): void {
  const size = slab.length;
  if (size > SLAB_BYTES || pooledBytes + size > POOL_MAX_BYTES) return;
  let free = pool.get(size);
  if (free === undefined) pool.set(size, (free = []));
  free.push(slab);
  pooledBytes += size;
}
