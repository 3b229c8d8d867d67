#include "bytes.h"

#include <stdlib.h>
#include <string.h>

#define MIN_SHIFT 14
#define CLASSES 9
#define CZ_POOL_IDLE_MAX ((size_t)32 << 20)

struct cz_pool {
  cz_bytes_t *idle[CLASSES];
  size_t idle_bytes;
  size_t out; /* pooled buffers not given back yet */
  int closed;
};

static size_t class_size(int cls) {
  return (size_t)1 << (MIN_SHIFT + cls);
}

/* The class for `need` bytes, or -1 when it is not pooled. */
static int class_of(size_t need) {
  if (need < class_size(0)) return -1;
  for (int cls = 0; cls < CLASSES; cls++) {
    if (class_size(cls) >= need) return cls;
  }
  return -1;
}

cz_pool_t *cz_pool_new(void) {
  return calloc(1, sizeof(cz_pool_t));
}

void cz_pool_close(cz_pool_t *pool) {
  if (pool == NULL) return;
  pool->closed = 1;
  for (int cls = 0; cls < CLASSES; cls++) {
    while (pool->idle[cls] != NULL) {
      cz_bytes_t *b = pool->idle[cls];
      pool->idle[cls] = b->next;
      free(b);
    }
  }
  pool->idle_bytes = 0;
  if (pool->out == 0) free(pool);
}

static cz_bytes_t *take(cz_pool_t *pool, int cls) {
  cz_bytes_t *b = pool->idle[cls];
  if (b != NULL) {
    pool->idle[cls] = b->next;
    pool->idle_bytes -= b->cap;
  } else {
    b = malloc(sizeof *b + class_size(cls));
    if (b == NULL) return NULL;
    b->pool = pool;
    b->cap = class_size(cls);
  }
  pool->out++;
  b->next = NULL;
  return b;
}

cz_bytes_t *cz_bytes_reserve(cz_pool_t *pool, cz_bytes_t *b, size_t more) {
  size_t len = b == NULL ? 0 : b->len;
  if (b != NULL && more <= b->cap - len) return b;
  size_t need = len + more;
  if (b != NULL && need < b->cap * 2) need = b->cap * 2;
  int cls = pool != NULL && !pool->closed ? class_of(need) : -1;
  cz_bytes_t *grown;
  if (cls >= 0) {
    grown = take(pool, cls);
    if (grown == NULL) return NULL;
    if (len > 0) memcpy(grown->data, b->data, len);
    cz_bytes_free(b);
  } else if (b == NULL || b->pool == NULL) {
    grown = realloc(b, sizeof *b + need);
    if (grown == NULL) return NULL;
    grown->pool = NULL;
    grown->next = NULL;
    grown->cap = need;
  } else {
    grown = malloc(sizeof *b + need);
    if (grown == NULL) return NULL;
    memcpy(grown->data, b->data, len);
    cz_bytes_free(b);
    grown->pool = NULL;
    grown->next = NULL;
    grown->cap = need;
  }
  grown->len = len;
  return grown;
}

void cz_bytes_free(cz_bytes_t *b) {
  if (b == NULL) return;
  cz_pool_t *pool = b->pool;
  if (pool == NULL) {
    free(b);
    return;
  }
  pool->out--;
  if (!pool->closed && pool->idle_bytes + b->cap <= CZ_POOL_IDLE_MAX) {
    int cls = class_of(b->cap);
    b->next = pool->idle[cls];
    pool->idle[cls] = b;
    pool->idle_bytes += b->cap;
    return;
  }
  free(b);
  if (pool->closed && pool->out == 0) free(pool);
}
