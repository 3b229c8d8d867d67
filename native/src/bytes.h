/*
 * Byte buffers the engine gathers messages and held input in, and that large messages reach
 * JavaScript in (a Buffer over the bytes, given back when the Buffer is collected), so that a
 * message gathered from many reads is not copied again on its way out.
 *
 * Buffers of 16 KiB to 4 MiB come in power-of-two classes from a pool and go back to it: a fresh
 * allocation that large page-faults on every message once malloc has given its memory back to
 * the system, which costs more than the copy the buffer saves. Smaller and larger ones are
 * malloc'd to size. At most CZ_POOL_IDLE_MAX bytes wait for reuse. A closed pool frees its idle
 * buffers at once and itself when the last buffer out comes back.
 */
#ifndef CZ_BYTES_H
#define CZ_BYTES_H

#include <stddef.h>
#include <stdint.h>

typedef struct cz_pool cz_pool_t;

typedef struct cz_bytes {
  cz_pool_t *pool;       /* where it goes back to; NULL: malloc'd to size */
  struct cz_bytes *next; /* in the pool's idle list */
  size_t len;
  size_t cap;
  uint8_t data[];
} cz_bytes_t;

cz_pool_t *cz_pool_new(void);
void cz_pool_close(cz_pool_t *pool);
/*
 * `b` (NULL: a new, empty buffer) with room for `more` bytes past its length, or NULL without
 * memory (then `b` stays as it was).
 */
cz_bytes_t *cz_bytes_reserve(cz_pool_t *pool, cz_bytes_t *b, size_t more);
/* Back to its pool, or freed. NULL is ignored. */
void cz_bytes_free(cz_bytes_t *b);

#endif
