#define _GNU_SOURCE
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#include "bytes.h"
#include "frame.h"

#define READ_SLAB (256 * 1024)
/* Inflated bytes of one message made on the loop; the rest is made on the thread pool. */
#define INLINE_INFLATE (256 * 1024)
/* Sends this large (before compression) are compressed on the thread pool. */
#define DEFLATE_INLINE_MAX (64 * 1024)
#define INDEX_BITS 22
#define INDEX_MASK ((1u << INDEX_BITS) - 1)
_Static_assert(CZ_MAX_SLOTS == (1u << INDEX_BITS), "engine.h's CZ_MAX_SLOTS is the slot count");
#define DIRECT_WRITE_MIN (16 * 1024)
#define MAX_PROFILES 256
/* Output buffers of at least POOL_MIN bytes are reused (fresh large allocations page-fault). */
#define POOL_MIN (16 * 1024)
#define POOL_MAX_BYTES (4 * 1024 * 1024)
#define POOL_SIZE 64
/* Readiness events taken from the engine's epoll set per turn of the loop. */
#define EVENT_BATCH 256

enum {
  F_CLOSE_SENT = 1 << 0,
  F_CLOSE_RECEIVED = 1 << 1,
  F_FINISHED = 1 << 2,   /* on_close was reported */
  F_CLOSING = 1 << 3,    /* uv_close was called */
  F_PAUSED = 1 << 4,
  F_DIRTY = 1 << 5,      /* on the engine's list of connections with output to flush */
  F_OVER_LIMIT = 1 << 6, /* a send went over max_buffered: report the drain */
  F_ENDING = 1 << 7,     /* close handshake over (or failed): shut down once the output is out */
  F_SHUT = 1 << 8,       /* shutdown requested */
  F_STOP = 1 << 9,       /* stop parsing the current read */
  F_READING = 1 << 10,   /* reading started (after the bytes read before adoption) */
  F_WANT_WRITE = 1 << 11, /* the kernel took part of the output: the rest goes at the next EPOLLOUT */
  F_PING_SENT = 1 << 12,  /* a ping of ours waits for its answer */
  F_BUSY = 1 << 13,       /* a message is being inflated on the thread pool: parsing waits for it */
  F_DEFER = 1 << 14,      /* compressions run on the thread pool: what is written meanwhile waits behind them */
  F_ECHO_CLOSE = 1 << 15  /* the peer's close is echoed once the batch's handlers ran */
};
/* What stops reading and parsing: the caller's pause, or an inflation on the thread pool. */
#define F_HELD (F_PAUSED | F_BUSY)

/* Reads of READ_SLAB bytes one connection gets per turn of the loop before the others' turn. */
#define READS_PER_TURN 8
/*
 * The work one connection gets done per turn of the loop, in units: a message or a control frame
 * (each is a call into JavaScript) costs TURN_COST_MESSAGE, a piece of a fragmented message 1.
 * Past it, what it sent waits (kept, and parsed from where it stopped) for the next turn, so that
 * a client that floods small messages, pings or 1-byte fragments cannot hold the loop for the
 * others: 1,024 messages, or 16,384 fragments, per turn.
 */
#define TURN_BUDGET 16384
#define TURN_COST_MESSAGE 16

typedef struct cz_conn cz_conn_t;

/*
 * zlib work of one message on the libuv thread pool: the rest of an inflation that went past
 * INLINE_INFLATE bytes, or the compression of a send of DEFLATE_INLINE_MAX bytes or more. The
 * worker touches only the job and its stream, and allocates with malloc (never from the pool).
 */
typedef struct cz_zjob cz_zjob_t;
struct cz_zjob {
  uv_work_t work;
  cz_conn_t *conn; /* NULL once the connection is freed: the job then only cleans up */
  z_stream *z;     /* the connection's stream; the job's own once the connection is freed */
  cz_zjob_t *next; /* the compression after this one */
  cz_bytes_t *input;
  cz_bytes_t *output; /* inflation: the message; compression: the frame, from `frame_off` */
  cz_bytes_t *after;  /* compression: what was written after this message, before the next */
  uint64_t max;       /* inflation: maxMessageBytes */
  size_t frame_off;
  const char *reason; /* with `code`, when the work failed */
  uint16_t code;
  uint8_t inflating;  /* 1: an inflation; 0: a compression */
  uint8_t binary;     /* inflation: the message's type */
  uint8_t opcode;     /* compression: the frame's */
  uint8_t ended;      /* inflation: the stream ended (a final block) */
  uint8_t reset;      /* compression: start the next message afresh (server_no_context_takeover) */
  uint8_t started;
};

/* permessage-deflate state of a connection: the streams are made when first needed. */
typedef struct {
  cz_deflate_params_t params;
  z_stream *inflater;
  z_stream *deflater;
  cz_zjob_t *inflation;   /* while F_BUSY */
  cz_zjob_t *first, *last; /* compressions in order, while F_DEFER: the first runs on the pool */
  size_t pending;          /* bytes the compressions hold (their input and what waits behind): buffered */
} cz_deflate_t;

/*
 * A connection is its socket's descriptor and this struct: no libuv handle per connection (libuv's
 * TCP handle alone is 248 bytes). The engine's epoll set holds the descriptors and one libuv poll
 * handle watches the set on Node's loop.
 */
struct cz_conn {
  cz_engine_t *engine;
  const cz_profile_t *profile;
  cz_conn_t *next_dirty;
  uint8_t *out; /* output not yet taken by the kernel: out[out_off, out_off + out_len) */
  size_t out_off;
  size_t out_len;
  size_t out_cap;
  /* Times in milliseconds of the loop's clock, cut to 32 bits: compared by difference (wraps in 49 days). */
  uint32_t last_received;
  uint32_t last_message; /* a stream: when it last wrote */
  uint32_t ending_since;
  int fd; /* -1 once closed */
  uint32_t id;
  uint16_t flags;
  uint16_t peer_code;
  const char *fail_reason; /* our reason when we failed the connection */
  /* A stream (CZ_KIND_STREAM) is allocated without the rest: it never parses nor sends frames. */
  cz_bytes_t *message; /* a message that comes in pieces (or compressed), gathered until its end */
  cz_bytes_t *input;   /* bytes read but not parsed (the head, or a read cut by a pause) */
  uint32_t ping_sent;  /* when the ping went out, while F_PING_SENT */
  uint32_t rate_start;
  uint32_t rate_count;
  uint8_t end;         /* why it ends (CZ_END_*), once known; 0 (reset) until then */
  cz_deflate_t *deflate; /* NULL unless permessage-deflate was negotiated */
  cz_parser_t parser;
};

typedef struct {
  uint8_t *data;
  size_t cap;
} cz_block_t;

struct cz_engine {
  uv_loop_t *loop;
  cz_engine_events_t events;
  void *ctx;
  cz_conn_t **slots;
  uint16_t *generations;
  uint32_t *free_slots;
  uint32_t slot_count;
  uint32_t slot_cap;
  uint32_t free_count;
  cz_conn_t *dirty;
  /* Connections to start or resume reading (bytes kept in `input` go first), on the next idle. */
  uint32_t *starting;
  uint32_t starting_len;
  uint32_t starting_cap;
  int batch_depth;
  int flushing; /* in the flush at the end of a batch: its events were delivered already */
  /* Closed connections, reported and freed on the next idle (nothing up the stack holds them then). */
  cz_conn_t **closed; /* slot_cap entries */
  uint32_t closed_len;
  int epfd;
  uv_poll_t poller; /* the epoll set, on Node's loop */
  uv_idle_t flusher;
  uv_timer_t sweeper;
  uint64_t sweep_period;
  int handles_open;
  int freeing;
  uint8_t *zbuf; /* inflated or deflated output of one message, shared: zlib runs synchronously */
  size_t zbuf_cap;
  cz_block_t pool[POOL_SIZE];
  int pool_len;
  cz_pool_t *buffers; /* for messages and held input (bytes.h) */
  cz_profile_t profiles[MAX_PROFILES];
  int profile_count;
  cz_engine_stats_t stats;
  uint32_t *state; /* shared with the caller, by slot: buffered bytes, or CZ_STATE_CLOSED */
  uint32_t turn_work;  /* work done for the connection being read, this turn (TURN_BUDGET) */
  uint8_t slab[READ_SLAB];
};

static uint32_t now_ms(cz_engine_t *e) {
  return (uint32_t)uv_now(e->loop);
}

size_t cz_connection_size(void) {
  return sizeof(cz_conn_t);
}

size_t cz_stream_size(void) {
  return offsetof(cz_conn_t, message);
}

/* ---- batches of events: the addon opens one JavaScript scope per batch ---- */

static void flush_dirty(cz_engine_t *e);

static void begin(cz_engine_t *e) {
  if (e->batch_depth++ == 0) e->events.begin(e->ctx);
}

static void end(cz_engine_t *e) {
  if (e->batch_depth == 1) {
    /* Handlers run now, so that what they send leaves with this batch's writes. */
    e->events.deliver(e->ctx);
    e->flushing = 1;
    flush_dirty(e);
    e->flushing = 0;
  }
  if (--e->batch_depth == 0) e->events.end(e->ctx);
}

/* ---- connections by id ---- */

static cz_conn_t *find(cz_engine_t *e, uint32_t id) {
  uint32_t index = id & INDEX_MASK;
  if (index >= e->slot_count) return NULL;
  cz_conn_t *c = e->slots[index];
  return c != NULL && c->id == id ? c : NULL;
}

static int take_slot(cz_engine_t *e, cz_conn_t *c) {
  uint32_t index;
  if (e->free_count > 0) {
    index = e->free_slots[--e->free_count];
  } else {
    if (e->slot_count == INDEX_MASK) return UV_EMFILE;
    if (e->slot_count == e->slot_cap) {
      uint32_t cap = e->slot_cap == 0 ? 1024 : e->slot_cap * 2;
      cz_conn_t **slots = realloc(e->slots, cap * sizeof *slots);
      if (slots == NULL) return UV_ENOMEM;
      e->slots = slots;
      uint16_t *gens = realloc(e->generations, cap * sizeof *gens);
      if (gens == NULL) return UV_ENOMEM;
      e->generations = gens;
      uint32_t *free_slots = realloc(e->free_slots, cap * sizeof *free_slots);
      if (free_slots == NULL) return UV_ENOMEM;
      e->free_slots = free_slots;
      /* A closed connection keeps its slot until it is reaped: room for all of them, so that closing never allocates. */
      cz_conn_t **closed = realloc(e->closed, cap * sizeof *closed);
      if (closed == NULL) return UV_ENOMEM;
      e->closed = closed;
      e->slot_cap = cap;
    }
    index = e->slot_count++;
    e->generations[index] = 0;
  }
  uint16_t gen = (uint16_t)((e->generations[index] + 1) & ((1u << (32 - INDEX_BITS)) - 1));
  if (gen == 0) gen = 1;
  e->generations[index] = gen;
  e->slots[index] = c;
  c->id = ((uint32_t)gen << INDEX_BITS) | index;
  return 0;
}

static void release_slot(cz_engine_t *e, cz_conn_t *c) {
  uint32_t index = c->id & INDEX_MASK;
  e->slots[index] = NULL;
  if (e->state != NULL) e->state[index] = CZ_STATE_CLOSED;
  e->free_slots[e->free_count++] = index;
}

static void do_close(cz_conn_t *c);
static void job_free(cz_zjob_t *j, int own_stream);
static void on_idle(uv_idle_t *idle);
static void reap(cz_engine_t *e);
static cz_conn_t *find(cz_engine_t *e, uint32_t id);

/* ---- output ---- */

static size_t buffered(const cz_conn_t *c) {
  return c->out_len + ((c->flags & F_DEFER) ? c->deflate->pending : 0);
}

static int is_open(const cz_conn_t *c);

/* What the caller can read without a call: the connection's buffered bytes, or that it is closed. */
static void publish(const cz_conn_t *c) {
  uint32_t *state = c->engine->state;
  if (state == NULL || c->id == 0) return;
  size_t n = buffered(c);
  state[c->id & INDEX_MASK] = !is_open(c) ? CZ_STATE_CLOSED : n >= CZ_STATE_CLOSED ? CZ_STATE_CLOSED - 1 : (uint32_t)n;
}

static void mark_dirty(cz_conn_t *c) {
  if (c->flags & F_DIRTY) return;
  c->flags |= F_DIRTY;
  cz_engine_t *e = c->engine;
  c->next_dirty = e->dirty;
  e->dirty = c;
  /* Outside a batch, the idle handle flushes before the loop waits for I/O again. */
  if (e->batch_depth == 0 && !uv_is_active((uv_handle_t *)&e->flusher)) uv_idle_start(&e->flusher, on_idle);
}

/* A pooled buffer of at least `need` bytes, or NULL. */
static uint8_t *pool_take(cz_engine_t *e, size_t need, size_t *cap) {
  for (int i = e->pool_len - 1; i >= 0; i--) {
    if (e->pool[i].cap < need) continue;
    uint8_t *data = e->pool[i].data;
    *cap = e->pool[i].cap;
    e->pool[i] = e->pool[--e->pool_len];
    return data;
  }
  return NULL;
}

static void pool_give(cz_engine_t *e, uint8_t *data, size_t cap) {
  if (data == NULL) return;
  if (cap >= POOL_MIN && cap <= POOL_MAX_BYTES && e->pool_len < POOL_SIZE && !e->freeing) {
    e->pool[e->pool_len].data = data;
    e->pool[e->pool_len].cap = cap;
    e->pool_len++;
    return;
  }
  free(data);
}

/* Room for `n` bytes at the end of the output. */
static uint8_t *reserve_out(cz_conn_t *c, size_t n) {
  if (c->out == NULL && c->out_len + n >= POOL_MIN) c->out = pool_take(c->engine, c->out_len + n, &c->out_cap);
  if (c->out_off + c->out_len + n > c->out_cap) {
    if (c->out_off > 0) {
      memmove(c->out, c->out + c->out_off, c->out_len);
      c->out_off = 0;
    }
    if (c->out_len + n > c->out_cap) {
      size_t cap = c->out_cap == 0 ? 512 : c->out_cap;
      while (cap < c->out_len + n) cap *= 2;
      uint8_t *out = realloc(c->out, cap);
      if (out == NULL) return NULL;
      c->out = out;
      c->out_cap = cap;
    }
  }
  uint8_t *at = c->out + c->out_off + c->out_len;
  c->out_len += n;
  mark_dirty(c);
  publish(c);
  return at;
}

/* Room for `n` bytes to send: after the output, or, while compressions run, behind the last one. */
static uint8_t *reserve(cz_conn_t *c, size_t n) {
  if (!(c->flags & F_DEFER)) return reserve_out(c, n);
  cz_deflate_t *d = c->deflate;
  cz_bytes_t *after = cz_bytes_reserve(c->engine->buffers, d->last->after, n);
  if (after == NULL) return NULL;
  d->last->after = after;
  uint8_t *at = after->data + after->len;
  after->len += n;
  d->pending += n;
  publish(c);
  return at;
}

static int append_frame(cz_conn_t *c, int opcode, const uint8_t *data, size_t len) {
  size_t header = cz_header_size(len);
  uint8_t *at = reserve(c, header + len);
  if (at == NULL) return -1;
  cz_write_header(at, opcode, len, 0);
  if (len > 0) memcpy(at + header, data, len);
  c->engine->stats.messages_out++;
  return 0;
}

static void flush(cz_conn_t *c);
static void send_close(cz_conn_t *c, uint16_t code, const char *reason, size_t reason_len);
static void end_connection(cz_conn_t *c);

/* A send went over the limit earlier and the output fell below it again: report it once. */
static void check_drain(cz_conn_t *c) {
  if ((c->flags & F_OVER_LIMIT) && buffered(c) < c->profile->max_buffered) {
    c->flags &= ~F_OVER_LIMIT;
    cz_engine_t *e = c->engine;
    if (c->flags & F_FINISHED) return;
    e->events.on_drain(e->ctx, c->id);
    /* Reported after the batch's events went out: the next idle delivers it. */
    if (e->flushing && !uv_is_active((uv_handle_t *)&e->flusher)) uv_idle_start(&e->flusher, on_idle);
  }
}

static void maybe_shutdown(cz_conn_t *c) {
  if (!(c->flags & F_ENDING) || (c->flags & (F_SHUT | F_CLOSING)) || buffered(c) > 0) return;
  c->flags |= F_SHUT;
  if (shutdown(c->fd, SHUT_WR) != 0) do_close(c);
}

/* The output is out: an idle connection keeps no output buffer. */
static void output_done(cz_conn_t *c) {
  c->out_len = 0;
  c->out_off = 0;
  pool_give(c->engine, c->out, c->out_cap);
  c->out = NULL;
  c->out_cap = 0;
  c->flags &= ~F_WANT_WRITE;
}

/* A write the kernel refused: a peer gone (EPIPE, ECONNRESET) ends the connection with 1006. */
static void write_failed(cz_conn_t *c) {
  c->out_len = 0;
  if (c->peer_code == 0 && !(c->flags & F_FINISHED)) c->peer_code = CZ_CLOSE_ABNORMAL;
  do_close(c);
}

/* Hand the output to the kernel: what it takes now; the rest when the socket is writable again. */
static void flush(cz_conn_t *c) {
  if (c->flags & F_CLOSING) return;
  if (c->flags & F_ECHO_CLOSE) {
    /* The peer's close (on_peer_close); without a code in its frame, the answer has none either. */
    c->flags &= ~F_ECHO_CLOSE;
    send_close(c, c->peer_code == CZ_CLOSE_NO_STATUS ? 0 : c->peer_code, "", 0);
    end_connection(c);
  }
  if (c->out_len == 0) {
    check_drain(c);
    return;
  }
  cz_engine_t *e = c->engine;
  ssize_t n = send(c->fd, c->out + c->out_off, c->out_len, MSG_NOSIGNAL);
  e->stats.writes++;
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      write_failed(c);
      return;
    }
    n = 0;
  }
  e->stats.bytes_out += (uint64_t)n;
  c->out_off += (size_t)n;
  c->out_len -= (size_t)n;
  if (c->out_len == 0) {
    output_done(c);
    publish(c);
    check_drain(c);
    maybe_shutdown(c);
  } else {
    c->flags |= F_WANT_WRITE;
    publish(c);
  }
}

static void flush_dirty(cz_engine_t *e) {
  while (e->dirty != NULL) {
    cz_conn_t *c = e->dirty;
    e->dirty = c->next_dirty;
    c->flags &= ~F_DIRTY;
    /* One waiting for the socket to be writable is flushed when it is (on_ready). */
    if (!(c->flags & F_WANT_WRITE)) flush(c);
  }
}

static void start_reading(cz_conn_t *c);

static void on_idle(uv_idle_t *idle) {
  cz_engine_t *e = idle->data;
  uv_idle_stop(idle);
  begin(e);
  /* Closed in an earlier callback: nothing holds them now. Those closed below wait for the next idle. */
  reap(e);
  /* Those scheduled meanwhile (a connection that had its share of reads) wait for the next idle. */
  uint32_t count = e->starting_len;
  for (uint32_t i = 0; i < count; i++) {
    cz_conn_t *c = find(e, e->starting[i]);
    if (c != NULL) start_reading(c);
  }
  e->starting_len -= count;
  memmove(e->starting, e->starting + count, e->starting_len * sizeof *e->starting);
  end(e);
}

static void schedule_start(cz_engine_t *e, cz_conn_t *c) {
  if (e->starting_len == e->starting_cap) {
    uint32_t cap = e->starting_cap == 0 ? 64 : e->starting_cap * 2;
    uint32_t *starting = realloc(e->starting, cap * sizeof *starting);
    if (starting == NULL) {
      do_close(c);
      return;
    }
    e->starting = starting;
    e->starting_cap = cap;
  }
  e->starting[e->starting_len++] = c->id;
  if (!uv_is_active((uv_handle_t *)&e->flusher)) uv_idle_start(&e->flusher, on_idle);
}

/* ---- closing ---- */

static int is_stream(const cz_conn_t *c) {
  return c->profile->kind == CZ_KIND_STREAM;
}

/* Report the end once: with our reason when we failed the connection, else the peer's (if any). */
static void report_close_with(cz_conn_t *c, const uint8_t *peer_reason, size_t peer_reason_len) {
  if (c->flags & F_FINISHED) return;
  c->flags |= F_FINISHED;
  cz_engine_t *e = c->engine;
  const char *reason = (const char *)peer_reason;
  size_t reason_len = peer_reason_len;
  if (c->fail_reason != NULL) {
    reason = c->fail_reason;
    reason_len = strlen(reason);
  }
  e->events.on_close(e->ctx, c->id, c->peer_code, is_stream(c) ? CZ_END_RESET : c->end, reason, reason_len);
}

/* The first cause of the end is the one reported (a stream has no such field). */
static void set_end(cz_conn_t *c, int end) {
  if (!is_stream(c) && c->end == CZ_END_RESET) c->end = (uint8_t)end;
}

static void report_close(cz_conn_t *c) {
  report_close_with(c, (const uint8_t *)"", 0);
}

/* Drop the connection at once, without a closing handshake, reporting `code` and `reason`. */
static void drop(cz_conn_t *c, uint16_t code, const char *reason) {
  c->fail_reason = reason;
  c->peer_code = code;
  do_close(c);
}

static void free_conn(cz_conn_t *c) {
  free(c->out);
  if (!is_stream(c)) {
    cz_bytes_free(c->message);
    cz_bytes_free(c->input);
    cz_parser_release(&c->parser);
    if (c->deflate != NULL) {
      /* A job running on the thread pool keeps its stream and frees it when it is done. */
      cz_deflate_t *d = c->deflate;
      if (d->inflation != NULL) {
        d->inflation->conn = NULL;
        d->inflater = NULL;
      }
      for (cz_zjob_t *j = d->first, *next; j != NULL; j = next) {
        next = j->next;
        if (j->started) {
          j->conn = NULL;
          d->deflater = NULL;
        } else {
          job_free(j, 0);
        }
      }
      if (c->deflate->inflater != NULL) inflateEnd(c->deflate->inflater);
      if (c->deflate->deflater != NULL) deflateEnd(c->deflate->deflater);
      free(c->deflate->inflater);
      free(c->deflate->deflater);
      free(c->deflate);
    }
  }
  free(c);
}

/* Report and free the connections closed since the last time (on idle, in a batch). */
static void reap(cz_engine_t *e) {
  while (e->closed_len > 0) {
    cz_conn_t *c = e->closed[--e->closed_len];
    report_close(c);
    release_slot(e, c);
    e->stats.connections--;
    if (e->stats.connections == 0) uv_unref((uv_handle_t *)&e->poller);
    free_conn(c);
  }
}

static void do_close(cz_conn_t *c) {
  if (c->flags & F_CLOSING) return;
  c->flags |= F_CLOSING;
  publish(c);
  cz_engine_t *e = c->engine;
  epoll_ctl(e->epfd, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  c->fd = -1;
  if (e->freeing) return;
  e->closed[e->closed_len++] = c;
  if (!uv_is_active((uv_handle_t *)&e->flusher)) uv_idle_start(&e->flusher, on_idle);
}

static void send_close(cz_conn_t *c, uint16_t code, const char *reason, size_t reason_len) {
  if (c->flags & F_CLOSE_SENT) return;
  c->flags |= F_CLOSE_SENT;
  publish(c);
  if (reason_len > 123) reason_len = 123;
  /* Cut the reason on a character boundary. */
  while (reason_len > 0 && reason_len < strlen(reason) && ((uint8_t)reason[reason_len] & 0xc0) == 0x80) reason_len--;
  uint8_t payload[125];
  size_t n = 0;
  if (code != 0) {
    payload[0] = (uint8_t)(code >> 8);
    payload[1] = (uint8_t)code;
    memcpy(payload + 2, reason, reason_len);
    n = 2 + reason_len;
  }
  append_frame(c, CZ_OP_CLOSE, payload, n);
  c->engine->stats.messages_out--;
  c->ending_since = now_ms(c->engine);
}

/* Both close frames passed, or the connection failed: the server closes the TCP connection. */
static void end_connection(cz_conn_t *c) {
  c->flags |= F_ENDING;
  publish(c);
  c->ending_since = now_ms(c->engine);
  maybe_shutdown(c);
}

/* ---- parser events ---- */

static int count_message(cz_conn_t *c) {
  uint32_t limit = c->profile->max_per_second;
  if (limit == 0) return 1;
  uint32_t now = c->last_received;
  if (now - c->rate_start >= CZ_RATE_WINDOW_MS) {
    c->rate_start = now;
    c->rate_count = 0;
  }
  if (++c->rate_count <= limit) return 1;
  set_end(c, CZ_END_LIMIT);
  cz_close(c->engine, c->id, CZ_CLOSE_POLICY_VIOLATION, "Message rate limit exceeded", 27);
  return 0;
}

static void on_error(void *user, uint16_t code, const char *reason);
static void deliver_compressed(cz_conn_t *c, const uint8_t *data, size_t len, int binary);

/* A complete message, within the rate limit, to JavaScript; `owned` (or NULL) goes with it. */
/* Count work for the connection being read: past its share of this turn, parsing stops (and goes on at the next). */
static void spend(cz_conn_t *c, uint32_t units) {
  cz_engine_t *e = c->engine;
  e->turn_work += units;
  if (e->turn_work >= TURN_BUDGET) c->flags |= F_STOP;
}

static void deliver_message(cz_conn_t *c, const uint8_t *data, size_t len, int binary, cz_bytes_t *owned) {
  if (!count_message(c)) {
    cz_bytes_free(owned);
    return;
  }
  cz_engine_t *e = c->engine;
  c->last_message = c->last_received;
  e->stats.messages_in++;
  e->events.on_message(e->ctx, c->id, data, len, binary, owned);
  spend(c, TURN_COST_MESSAGE);
}

static int on_data(void *user, const uint8_t *data, size_t len, int first, int last, int flags) {
  cz_conn_t *c = user;
  int binary = (flags & CZ_DATA_BINARY) != 0;
  int compressed = (flags & CZ_DATA_COMPRESSED) != 0;
  if (first && last) {
    /* Whole in this read: delivered (or inflated) from where it is. */
    if (compressed) deliver_compressed(c, data, len, binary);
    else deliver_message(c, data, len, binary, NULL);
  } else {
    /*
     * Gathered with room for the rest of its first frame (all of a message of one frame), up to
     * one read's worth past what came: a peer that announces a large frame and sends it slowly
     * holds no more than it sent plus that.
     */
    spend(c, 1);
    size_t more = len;
    if (first) {
      if (c->message != NULL) c->message->len = 0;
      more += c->parser.payload_left < READ_SLAB ? (size_t)c->parser.payload_left : READ_SLAB;
    }
    cz_bytes_t *m = cz_bytes_reserve(c->engine->buffers, c->message, more);
    if (m == NULL) {
      drop(c, CZ_CLOSE_INTERNAL_ERROR, "Out of memory");
      return 1;
    }
    c->message = m;
    memcpy(m->data + m->len, data, len);
    m->len += len;
    if (last) {
      /* Delivered in the buffer it was gathered in; an idle connection keeps no message buffer. */
      c->message = NULL;
      if (compressed) {
        deliver_compressed(c, m->data, m->len, binary);
        cz_bytes_free(m);
      } else {
        deliver_message(c, m->data, m->len, binary, m);
      }
    }
  }
  return (c->flags & (F_CLOSING | F_HELD | F_STOP)) != 0;
}

/* Room for `need` bytes in the engine's zlib output buffer. */
static int zbuf_reserve(cz_engine_t *e, size_t need) {
  if (need <= e->zbuf_cap) return 1;
  size_t cap = e->zbuf_cap == 0 ? 65536 : e->zbuf_cap;
  while (cap < need) cap *= 2;
  uint8_t *b = realloc(e->zbuf, cap);
  if (b == NULL) return 0;
  e->zbuf = b;
  e->zbuf_cap = cap;
  return 1;
}

/* What one inflate() call means for a message: 0 go on, 1 input used up, 2 the stream ended, -1 bad data. */
static int inflate_result(const z_stream *z, int rc) {
  if (rc == Z_STREAM_END) return 2;
  if ((rc == Z_BUF_ERROR || rc == Z_OK) && z->avail_in == 0 && z->avail_out > 0) return 1;
  if ((rc != Z_OK && rc != Z_BUF_ERROR) || (rc == Z_BUF_ERROR && z->avail_out > 0)) return -1;
  return 0;
}

/* A message inflated (`ended`: by a final block): the stream is made ready for the next, the message delivered. */
static void inflated(cz_conn_t *c, int ended, const uint8_t *data, size_t len, int binary, cz_bytes_t *owned) {
  cz_deflate_t *d = c->deflate;
  if (d->params.client_no_context_takeover) {
    /* Every message stands alone: an idle connection keeps no inflater. */
    inflateEnd(d->inflater);
    free(d->inflater);
    d->inflater = NULL;
  } else if (ended) {
    /* A final block: the next message starts a new stream. */
    inflateReset(d->inflater);
  }
  if (!binary && !cz_utf8_valid(data, len)) {
    cz_bytes_free(owned);
    on_error(c, CZ_CLOSE_INVALID_PAYLOAD, "Invalid UTF-8 in text message");
    cz_parser_stop(&c->parser);
    return;
  }
  deliver_message(c, data, len, binary, owned);
}

static void queue_job(cz_engine_t *e, cz_zjob_t *j);

/*
 * Inflate a compressed message (RFC 7692 §7.2.2: with the 00 00 ff ff tail put back), counting
 * the output as it comes: past maxMessageBytes the connection fails with 1009, so a compression
 * bomb costs at most the limit. The first INLINE_INFLATE bytes come out on the loop (most messages
 * end there); the rest on the thread pool, while the connection's parsing waits (F_BUSY).
 */
static void deliver_compressed(cz_conn_t *c, const uint8_t *data, size_t len, int binary) {
  cz_engine_t *e = c->engine;
  cz_deflate_t *d = c->deflate;
  uint64_t max = c->profile->max_message;
  if (d->inflater == NULL) {
    d->inflater = calloc(1, sizeof *d->inflater);
    if (d->inflater == NULL || inflateInit2(d->inflater, -(int)d->params.client_max_window_bits) != Z_OK) {
      free(d->inflater);
      d->inflater = NULL;
      on_error(c, CZ_CLOSE_INTERNAL_ERROR, "Out of memory");
      return;
    }
  }
  z_stream *z = d->inflater;
  static const uint8_t tail[4] = {0x00, 0x00, 0xff, 0xff};
  size_t produced = 0;
  int result = 0;
  for (int part = 0; part < 2 && result != 2; part++) {
    z->next_in = part == 0 ? (Bytef *)data : (Bytef *)tail;
    z->avail_in = part == 0 ? (uInt)len : 4;
    for (;;) {
      /* Room for one more byte than the limit: output past it means the message is too large. */
      size_t room = (size_t)(max + 1 - produced);
      size_t chunk = room < 65536 ? room : 65536;
      if (!zbuf_reserve(e, produced + chunk)) {
        on_error(c, CZ_CLOSE_INTERNAL_ERROR, "Out of memory");
        return;
      }
      z->next_out = e->zbuf + produced;
      z->avail_out = (uInt)chunk;
      int rc = inflate(z, Z_SYNC_FLUSH);
      produced += chunk - z->avail_out;
      if (produced > max) {
        on_error(c, CZ_CLOSE_TOO_BIG, "Message too large");
        cz_parser_stop(&c->parser);
        return;
      }
      result = inflate_result(z, rc);
      if (result < 0) {
        on_error(c, CZ_CLOSE_INVALID_PAYLOAD, "Invalid compressed data");
        cz_parser_stop(&c->parser);
        return;
      }
      if (result != 0) break;
      if (produced >= INLINE_INFLATE) {
        /* The rest on the thread pool: the input left (and the tail), the output so far. */
        cz_zjob_t *j = calloc(1, sizeof *j);
        size_t rest = z->avail_in + (part == 0 ? 4 : 0);
        if (j != NULL) {
          j->input = cz_bytes_reserve(NULL, NULL, rest);
          j->output = cz_bytes_reserve(NULL, NULL, produced * 2);
        }
        if (j == NULL || j->input == NULL || j->output == NULL) {
          if (j != NULL) job_free(j, 0);
          on_error(c, CZ_CLOSE_INTERNAL_ERROR, "Out of memory");
          cz_parser_stop(&c->parser);
          return;
        }
        memcpy(j->input->data, z->next_in, z->avail_in);
        if (part == 0) memcpy(j->input->data + z->avail_in, tail, 4);
        j->input->len = rest;
        memcpy(j->output->data, e->zbuf, produced);
        j->output->len = produced;
        j->conn = c;
        j->z = z;
        j->max = max;
        j->inflating = 1;
        j->binary = (uint8_t)binary;
        d->inflation = j;
        c->flags |= F_BUSY;
        queue_job(e, j);
        return;
      }
    }
  }
  inflated(c, result == 2, e->zbuf, produced, binary, NULL);
}

/* On the thread pool: inflate the rest of a message. */
static void inflate_work(uv_work_t *work) {
  cz_zjob_t *j = work->data;
  z_stream *z = j->z;
  z->next_in = j->input->data;
  z->avail_in = (uInt)j->input->len;
  for (;;) {
    size_t room = (size_t)(j->max + 1 - j->output->len);
    size_t chunk = room < INLINE_INFLATE ? room : INLINE_INFLATE;
    cz_bytes_t *out = cz_bytes_reserve(NULL, j->output, chunk);
    if (out == NULL) {
      j->code = CZ_CLOSE_INTERNAL_ERROR;
      j->reason = "Out of memory";
      return;
    }
    j->output = out;
    z->next_out = out->data + out->len;
    z->avail_out = (uInt)chunk;
    int rc = inflate(z, Z_SYNC_FLUSH);
    out->len += chunk - z->avail_out;
    if (out->len > j->max) {
      j->code = CZ_CLOSE_TOO_BIG;
      j->reason = "Message too large";
      return;
    }
    int result = inflate_result(z, rc);
    if (result < 0) {
      j->code = CZ_CLOSE_INVALID_PAYLOAD;
      j->reason = "Invalid compressed data";
      return;
    }
    if (result != 0) {
      j->ended = result == 2;
      return;
    }
  }
}

/* Back on the loop: the message goes out (unless the connection closed meanwhile), and the connection's parsing goes on. */
static void after_inflate(cz_conn_t *c, cz_zjob_t *j) {
  cz_engine_t *e = c->engine;
  c->deflate->inflation = NULL;
  c->flags &= ~F_BUSY;
  if (c->flags & F_CLOSING) return;
  begin(e);
  if (j->code != 0) {
    on_error(c, j->code, j->reason);
    cz_parser_stop(&c->parser);
  } else {
    cz_bytes_t *out = j->output;
    j->output = NULL;
    inflated(c, j->ended, out->data, out->len, j->binary, out);
  }
  if (!(c->flags & (F_HELD | F_CLOSING))) schedule_start(e, c);
  end(e);
}

/* The connection's compressor, made when first needed; NULL without memory. */
static z_stream *deflater(cz_conn_t *c) {
  cz_deflate_t *d = c->deflate;
  if (d->deflater == NULL) {
    d->deflater = calloc(1, sizeof *d->deflater);
    if (d->deflater == NULL ||
        deflateInit2(d->deflater, d->params.level, Z_DEFLATED, -(int)d->params.server_max_window_bits, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
      free(d->deflater);
      d->deflater = NULL;
    }
  }
  return d->deflater;
}

/*
 * Room to compress `len` bytes with one sync flush, plus the flush's empty block. compressBound
 * holds for zlib's default window only: with a smaller one (server_max_window_bits below 15),
 * incompressible input goes out in stored blocks no longer than the window, and the bound is
 * deflateBound's for that case (fixed blocks with 9-bit literals, about 13% over). Computed from
 * the parameters, not the stream: a compression of the same stream may be running on the pool.
 */
static size_t deflate_room(const cz_deflate_params_t *p, size_t len) {
  size_t bound = p->server_max_window_bits == 15 ? compressBound((uLong)len) : len + (len >> 3) + (len >> 8) + (len >> 9) + 4;
  return bound + 16;
}

/*
 * Compress one message into `out` (`room` bytes) with the 00 00 ff ff tail cut (RFC 7692 §7.2.1).
 * Returns the compressed length, or -1.
 */
static long compress_into(z_stream *z, int reset, const uint8_t *data, size_t len, uint8_t *out, size_t room) {
  z->next_in = (Bytef *)data;
  z->avail_in = (uInt)len;
  z->next_out = out;
  z->avail_out = (uInt)room;
  int rc = deflate(z, Z_SYNC_FLUSH);
  if (rc != Z_OK || z->avail_in != 0 || z->avail_out == 0) return -1;
  size_t n = room - z->avail_out;
  if (reset) deflateReset(z);
  return n >= 4 ? (long)(n - 4) : 0;
}

/* Compress one message into the engine's zlib buffer; returns the compressed length, or -1. */
static long compress_message(cz_conn_t *c, const uint8_t *data, size_t len) {
  cz_engine_t *e = c->engine;
  z_stream *z = deflater(c);
  if (z == NULL) return -1;
  size_t room = deflate_room(&c->deflate->params, len);
  if (!zbuf_reserve(e, room)) return -1;
  return compress_into(z, c->deflate->params.server_no_context_takeover, data, len, e->zbuf, room);
}

/* On the thread pool: compress one message into its frame (the header goes in front of the payload). */
static void deflate_work(uv_work_t *work) {
  cz_zjob_t *j = work->data;
  cz_bytes_t *out = j->output;
  long n = compress_into(j->z, j->reset, j->input->data, j->input->len, out->data + 10, out->cap - 10);
  if (n < 0) {
    j->code = CZ_CLOSE_INTERNAL_ERROR;
    j->reason = "Compression failed";
    return;
  }
  j->frame_off = 10 - cz_header_size((uint64_t)n);
  cz_write_header(out->data + j->frame_off, j->opcode, (uint64_t)n, 1);
  out->len = 10 + (size_t)n;
}

/*
 * A compression failed: the connection fails with a close frame in the failed message's place.
 * What waits behind it goes (a close frame among it too), and so do the compressions after it,
 * none of which has started.
 */
static void compression_failed(cz_conn_t *c, uint16_t code, const char *reason) {
  cz_deflate_t *d = c->deflate;
  for (cz_zjob_t *j = d->first, *next; j != NULL; j = next) {
    next = j->next;
    job_free(j, 0);
  }
  d->first = d->last = NULL;
  d->pending = 0;
  c->flags &= ~(F_DEFER | F_CLOSE_SENT);
  on_error(c, code, reason);
}

/*
 * Back on the loop: the frame joins the output, then what was written after it; the next
 * compression starts. A compression that failed fails the connection.
 */
static void after_deflate(cz_conn_t *c, cz_zjob_t *j) {
  cz_engine_t *e = c->engine;
  cz_deflate_t *d = c->deflate;
  d->first = j->next;
  if (d->first == NULL) {
    d->last = NULL;
    c->flags &= ~F_DEFER;
  }
  d->pending -= j->input->len + (j->after != NULL ? j->after->len : 0);
  if (c->flags & F_CLOSING) return;
  begin(e);
  if (j->code != 0) {
    compression_failed(c, j->code, j->reason);
  } else {
    size_t n = j->output->len - j->frame_off;
    size_t more = j->after != NULL ? j->after->len : 0;
    uint8_t *at = reserve_out(c, n + more);
    if (at == NULL) {
      drop(c, CZ_CLOSE_INTERNAL_ERROR, "Out of memory");
    } else {
      memcpy(at, j->output->data + j->frame_off, n);
      if (more > 0) memcpy(at + n, j->after->data, more);
      e->stats.messages_out++;
      if (d->first != NULL) queue_job(e, d->first);
    }
  }
  end(e);
}

static void job_free(cz_zjob_t *j, int own_stream) {
  if (own_stream && j->z != NULL) {
    if (j->inflating) inflateEnd(j->z);
    else deflateEnd(j->z);
    free(j->z);
  }
  cz_bytes_free(j->input);
  cz_bytes_free(j->output);
  cz_bytes_free(j->after);
  free(j);
}

static void job_work(uv_work_t *work) {
  cz_zjob_t *j = work->data;
  if (j->inflating) inflate_work(work);
  else deflate_work(work);
}

static void job_done(uv_work_t *work, int status) {
  (void)status;
  cz_zjob_t *j = work->data;
  cz_conn_t *c = j->conn;
  if (c == NULL) {
    /* The connection went while the job ran: the job had the stream to itself, and ends it. */
    job_free(j, 1);
    return;
  }
  if (j->inflating) after_inflate(c, j);
  else after_deflate(c, j);
  job_free(j, 0);
}

static void queue_job(cz_engine_t *e, cz_zjob_t *j) {
  j->work.data = j;
  j->started = 1;
  /* It fails only without a work callback. */
  uv_queue_work(e->loop, &j->work, job_work, job_done);
}

/* A send to compress on the thread pool, after those before it; what is written meanwhile waits behind it. */
static int queue_compression(cz_conn_t *c, int opcode, const uint8_t *data, size_t len) {
  cz_engine_t *e = c->engine;
  cz_deflate_t *d = c->deflate;
  z_stream *z = deflater(c);
  cz_zjob_t *j = z != NULL ? calloc(1, sizeof *j) : NULL;
  if (j == NULL) return -1;
  j->input = cz_bytes_reserve(e->buffers, NULL, len);
  j->output = cz_bytes_reserve(e->buffers, NULL, 10 + deflate_room(&d->params, len));
  if (j->input == NULL || j->output == NULL) {
    job_free(j, 0);
    return -1;
  }
  memcpy(j->input->data, data, len);
  j->input->len = len;
  j->conn = c;
  j->z = z;
  j->opcode = (uint8_t)opcode;
  j->reset = d->params.server_no_context_takeover;
  if (d->last != NULL) d->last->next = j;
  else d->first = j;
  d->last = j;
  d->pending += len;
  c->flags |= F_DEFER;
  publish(c);
  if (d->first == j) queue_job(e, j);
  return 0;
}

static int on_control(void *user, int opcode, const uint8_t *data, size_t len) {
  cz_conn_t *c = user;
  cz_engine_t *e = c->engine;
  if (opcode == CZ_OP_PING) {
    /*
     * §5.5.2: answer with a pong carrying the same payload, unless closing; §5.5.3: only while
     * the output is within its limit (answering the most recent ping only is allowed), so that a
     * peer that pings and never reads cannot grow it.
     */
    if (!(c->flags & F_CLOSE_SENT) && buffered(c) <= c->profile->max_buffered) {
      append_frame(c, CZ_OP_PONG, data, len);
      e->stats.messages_out--;
    }
    e->events.on_ping(e->ctx, c->id, data, len);
  } else {
    c->flags &= ~F_PING_SENT;
    e->events.on_pong(e->ctx, c->id, data, len);
  }
  spend(c, TURN_COST_MESSAGE);
  return (c->flags & (F_CLOSING | F_HELD | F_STOP)) != 0;
}

static void on_peer_close(void *user, uint16_t code, const uint8_t *reason, size_t reason_len) {
  cz_conn_t *c = user;
  /*
   * §5.5.1: echo the close, once the handlers of the batch ran (flush): what they sent in answer
   * to the messages that came before the close, in the same read, goes out before the echo.
   */
  c->flags |= F_CLOSE_RECEIVED | F_ECHO_CLOSE;
  c->peer_code = code;
  set_end(c, CZ_END_PEER);
  mark_dirty(c);
  /* The reason lives as long as this call: it is reported now. */
  report_close_with(c, reason, reason_len);
}

static void on_error(void *user, uint16_t code, const char *reason) {
  cz_conn_t *c = user;
  set_end(c, code == CZ_CLOSE_TOO_BIG || code == CZ_CLOSE_POLICY_VIOLATION ? CZ_END_LIMIT : CZ_END_PROTOCOL);
  c->peer_code = code;
  c->fail_reason = reason;
  send_close(c, code, reason, strlen(reason));
  end_connection(c);
  report_close(c);
}

static const cz_parser_events_t parser_events = {on_data, on_control, on_peer_close, on_error};

/* ---- reading ---- */

/* Whether the connection being read had its share of messages this turn. */
static int turn_used(const cz_conn_t *c) {
  return c->engine->turn_work >= TURN_BUDGET;
}

/* Parse bytes; what is left when the connection pauses (or had its share of this turn) is kept. */
static void consume(cz_conn_t *c, uint8_t *data, size_t len) {
  size_t done = 0;
  while (done < len && !cz_parser_done(&c->parser) && !(c->flags & (F_CLOSING | F_HELD)) && !turn_used(c)) {
    c->flags &= ~F_STOP;
    done += cz_parse(&c->parser, data + done, len - done, &parser_events, c);
  }
  if (done < len && ((c->flags & F_HELD) || turn_used(c)) && !(c->flags & F_CLOSING) && !cz_parser_done(&c->parser)) {
    cz_bytes_t *input = cz_bytes_reserve(c->engine->buffers, NULL, len - done);
    if (input == NULL) {
      do_close(c);
      return;
    }
    memcpy(input->data, data + done, len - done);
    input->len = len - done;
    c->input = input;
  }
}

/*
 * Read what the socket has. The descriptor is edge-triggered: the engine reads until a read comes
 * back short (the socket is empty; new bytes bring a new event), or the connection pauses, or it had
 * its share of this turn (then it goes on at the next idle).
 */
static void read_some(cz_conn_t *c) {
  cz_engine_t *e = c->engine;
  e->turn_work = 0;
  if (!is_stream(c) && c->input != NULL) {
    /* The bytes kept from before (the head, or a read cut by a pause or by its share) go first. */
    cz_bytes_t *input = c->input;
    c->input = NULL;
    c->last_received = now_ms(e);
    consume(c, input->data, input->len);
    cz_bytes_free(input);
  }
  for (int reads = 0; reads < READS_PER_TURN && !turn_used(c); reads++) {
    if (c->flags & (F_CLOSING | F_HELD)) return;
    ssize_t n = recv(c->fd, e->slab, READ_SLAB, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      /* The end or a reset: a peer that leaves without a close frame ends with 1006. */
      if (!(c->flags & F_FINISHED) && c->peer_code == 0) c->peer_code = CZ_CLOSE_ABNORMAL;
      do_close(c);
      return;
    }
    c->last_received = now_ms(e);
    e->stats.bytes_in += (uint64_t)n;
    /* A stream's client has nothing to say; what it sends anyway is dropped. */
    if (!is_stream(c) && !cz_parser_done(&c->parser)) consume(c, e->slab, (size_t)n);
    /* Its share of messages is used up: the rest of this read is kept, and it goes on next turn. */
    if (turn_used(c)) break;
    if ((size_t)n < READ_SLAB) return;
  }
  if (!(c->flags & (F_CLOSING | F_HELD))) schedule_start(e, c);
}

/* The epoll set has events: one batch for all the connections that are ready. */
static void on_ready(uv_poll_t *poller, int status, int events) {
  (void)status;
  (void)events;
  cz_engine_t *e = poller->data;
  struct epoll_event ready[EVENT_BATCH];
  int n = epoll_wait(e->epfd, ready, EVENT_BATCH, 0);
  if (n <= 0) return;
  begin(e);
  for (int i = 0; i < n; i++) {
    cz_conn_t *c = find(e, (uint32_t)ready[i].data.u64);
    if (c == NULL || (c->flags & F_CLOSING)) continue;
    uint32_t got = ready[i].events;
    if ((got & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && c->out_len > 0) flush(c);
    /* Bytes that come while paused stay in the socket; resuming reads them (start_reading). */
    if ((got & (EPOLLIN | EPOLLERR | EPOLLHUP)) && (c->flags & (F_READING | F_HELD | F_CLOSING)) == F_READING) read_some(c);
  }
  end(e);
}

/* ---- sweep: pings, dead peers, idle connections, close timeouts ---- */

static void on_sweep(uv_timer_t *timer) {
  cz_engine_t *e = timer->data;
  uint32_t now = now_ms(e);
  begin(e);
  for (uint32_t i = 0; i < e->slot_count; i++) {
    cz_conn_t *c = e->slots[i];
    if (c == NULL || (c->flags & F_CLOSING)) continue;
    const cz_profile_t *p = c->profile;
    if (c->flags & (F_CLOSE_SENT | F_ENDING)) {
      /* A peer that does not answer the close, or does not close its side, is dropped. */
      if (now - c->ending_since >= p->close_ms) {
        if (c->peer_code == 0) c->peer_code = CZ_CLOSE_ABNORMAL;
        do_close(c);
      }
      continue;
    }
    if (is_stream(c)) {
      /* A quiet stream gets a heartbeat, unless the client is not even taking what it has. */
      if (p->ping_ms > 0 && now - c->last_message >= p->ping_ms && buffered(c) == 0) {
        uint8_t *at = reserve(c, p->heartbeat_len);
        if (at != NULL) memcpy(at, p->heartbeat, p->heartbeat_len);
        c->last_message = now;
      }
      continue;
    }
    if (p->idle_ms > 0 && now - c->last_message >= p->idle_ms) {
      set_end(c, CZ_END_IDLE_TIMEOUT);
      cz_close(e, c->id, CZ_CLOSE_GOING_AWAY, "Idle timeout", 12);
      continue;
    }
    if (p->ping_ms == 0) continue;
    if (c->flags & F_PING_SENT) {
      /* Nothing came since the ping, for as long as the ping period: the peer is gone. */
      int heard = (int32_t)(c->last_received - c->ping_sent) >= 0;
      if (now - c->ping_sent >= p->ping_ms && !heard) {
        c->peer_code = CZ_CLOSE_ABNORMAL;
        c->fail_reason = "Ping timeout";
        set_end(c, CZ_END_PING_TIMEOUT);
        do_close(c);
      } else if (heard) {
        c->flags &= ~F_PING_SENT;
      }
      continue;
    }
    if (now - c->last_received >= p->ping_ms) {
      c->ping_sent = now;
      c->flags |= F_PING_SENT;
      cz_ping(e, c->id, NULL, 0);
    }
  }
  end(e);
}

static void schedule_sweep(cz_engine_t *e, const cz_profile_t *p) {
  uint64_t shortest = p->close_ms;
  if (p->idle_ms > 0 && p->idle_ms < shortest) shortest = p->idle_ms;
  if (p->ping_ms > 0 && p->ping_ms < shortest) shortest = p->ping_ms;
  uint64_t period = shortest / 4 < 50 ? 50 : shortest / 4;
  if (uv_is_active((uv_handle_t *)&e->sweeper) && period >= e->sweep_period) return;
  e->sweep_period = period;
  uv_timer_start(&e->sweeper, on_sweep, period, period);
}

/* ---- the engine ---- */

cz_engine_t *cz_engine_new(uv_loop_t *loop, const cz_engine_events_t *events, void *ctx) {
  cz_engine_t *e = calloc(1, sizeof *e);
  if (e == NULL) return NULL;
  e->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (e->epfd < 0 || uv_poll_init(loop, &e->poller, e->epfd) != 0) {
    if (e->epfd >= 0) close(e->epfd);
    free(e);
    return NULL;
  }
  e->poller.data = e;
  uv_poll_start(&e->poller, UV_READABLE, on_ready);
  /* It keeps the loop alive while there are connections (as their sockets would). */
  uv_unref((uv_handle_t *)&e->poller);
  e->loop = loop;
  e->events = *events;
  e->ctx = ctx;
  uv_idle_init(loop, &e->flusher);
  e->flusher.data = e;
  uv_unref((uv_handle_t *)&e->flusher);
  uv_timer_init(loop, &e->sweeper);
  e->sweeper.data = e;
  uv_unref((uv_handle_t *)&e->sweeper);
  e->handles_open = 3;
  e->buffers = cz_pool_new();
  if (e->buffers == NULL) {
    cz_engine_free(e);
    return NULL;
  }
  return e;
}

cz_pool_t *cz_engine_buffers(cz_engine_t *e) {
  return e->buffers;
}

static void after_engine_handle(uv_handle_t *handle) {
  cz_engine_t *e = handle->data;
  if (--e->handles_open > 0) return;
  close(e->epfd);
  free(e);
}

void cz_engine_free(cz_engine_t *e) {
  e->freeing = 1;
  /* The caller's memory goes with it; the closes below must not write there. */
  e->state = NULL;
  for (uint32_t i = 0; i < e->slot_count; i++) {
    cz_conn_t *c = e->slots[i];
    if (c == NULL) continue;
    do_close(c);
    free_conn(c);
  }
  free(e->slots);
  free(e->generations);
  free(e->free_slots);
  free(e->starting);
  free(e->closed);
  e->starting = NULL;
  e->closed = NULL;
  e->closed_len = 0;
  for (int i = 0; i < e->pool_len; i++) free(e->pool[i].data);
  e->pool_len = 0;
  /* Buffers the caller still holds come back to the pool after this, which frees it last. */
  cz_pool_close(e->buffers);
  e->buffers = NULL;
  free(e->zbuf);
  e->zbuf = NULL;
  e->zbuf_cap = 0;
  e->starting_len = 0;
  e->slots = NULL;
  e->slot_count = 0;
  uv_close((uv_handle_t *)&e->poller, after_engine_handle);
  uv_close((uv_handle_t *)&e->flusher, after_engine_handle);
  uv_close((uv_handle_t *)&e->sweeper, after_engine_handle);
}

int cz_engine_add_profile(cz_engine_t *e, const cz_profile_t *profile) {
  for (int i = 0; i < e->profile_count; i++) {
    if (memcmp(&e->profiles[i], profile, sizeof *profile) == 0) return i;
  }
  if (e->profile_count == MAX_PROFILES) return -1;
  e->profiles[e->profile_count] = *profile;
  return e->profile_count++;
}

int cz_adopt(cz_engine_t *e, int fd, int owned, int profile, const cz_deflate_params_t *deflate, const uint8_t *first,
             size_t first_len, const uint8_t *head, size_t head_len, uint32_t *id) {
  if (profile < 0 || profile >= e->profile_count) return UV_EINVAL;
  int stream = e->profiles[profile].kind == CZ_KIND_STREAM;
  if (stream && deflate != NULL) return UV_EINVAL;
  if (deflate != NULL && (deflate->server_max_window_bits < 9 || deflate->server_max_window_bits > 15 ||
                          deflate->client_max_window_bits < 9 || deflate->client_max_window_bits > 15 || deflate->level > 9)) {
    return UV_EINVAL;
  }
  int copy = owned ? fd : fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return -errno;
  int flags = fcntl(copy, F_GETFL);
  if (flags < 0 || ((flags & O_NONBLOCK) == 0 && fcntl(copy, F_SETFL, flags | O_NONBLOCK) != 0)) {
    int err = -errno;
    if (!owned) close(copy);
    return err;
  }
  cz_conn_t *c = calloc(1, stream ? cz_stream_size() : sizeof *c);
  if (c == NULL) {
    if (!owned) close(copy);
    return UV_ENOMEM;
  }
  c->fd = copy;
  c->engine = e;
  c->profile = &e->profiles[profile];
  if (!stream) cz_parser_init(&c->parser, c->profile->max_message, c->profile->max_frame);
  if (deflate != NULL) {
    c->deflate = calloc(1, sizeof *c->deflate);
    if (c->deflate == NULL) {
      if (!owned) close(copy);
      free(c);
      return UV_ENOMEM;
    }
    c->deflate->params = *deflate;
    c->parser.compression = 1;
  }
  int err = take_slot(e, c);
  if (err != 0) {
    if (!owned) close(copy);
    free(c->deflate);
    free(c);
    return err;
  }
  if (e->stats.connections++ == 0) uv_ref((uv_handle_t *)&e->poller);
  e->stats.adopted++;
  publish(c);
  int on = 1;
  setsockopt(copy, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  /* Once for the connection's life: edge-triggered, readable and writable. */
  struct epoll_event ev = {0};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
  ev.data.u64 = c->id;
  if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, copy, &ev) != 0) {
    c->peer_code = CZ_CLOSE_ABNORMAL;
    do_close(c);
    *id = c->id;
    return 0;
  }
  c->last_received = c->last_message = now_ms(e);
  *id = c->id;
  schedule_sweep(e, c->profile);
  if (first_len > 0) {
    uint8_t *at = reserve(c, first_len);
    if (at != NULL) memcpy(at, first, first_len);
  }
  /* Reading starts on the next idle, after the caller knows the id; the head goes first. */
  if (head_len > 0 && !stream) {
    c->input = cz_bytes_reserve(e->buffers, NULL, head_len);
    if (c->input == NULL) {
      do_close(c);
      return 0;
    }
    memcpy(c->input->data, head, head_len);
    c->input->len = head_len;
  }
  schedule_start(e, c);
  return 0;
}

/* Reading starts (after adoption) or goes on (after a pause). */
static void start_reading(cz_conn_t *c) {
  if (c->flags & (F_HELD | F_CLOSING)) return;
  c->flags |= F_READING;
  /* Edge-triggered: what came before reading started (or while paused) brings no new event. */
  read_some(c);
}

/*
 * Write `a` then `b` (either may be empty) to the kernel now, without copying; what it does not
 * take joins the queue. For a connection with nothing queued. Returns -1 when it failed.
 */
static int write_now(cz_conn_t *c, const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len) {
  cz_engine_t *e = c->engine;
  struct iovec parts[2] = {{(void *)a, a_len}, {(void *)b, b_len}};
  struct msghdr message = {0};
  message.msg_iov = parts;
  message.msg_iovlen = b_len > 0 ? 2 : 1;
  ssize_t n = sendmsg(c->fd, &message, MSG_NOSIGNAL);
  e->stats.writes++;
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      write_failed(c);
      return -1;
    }
    n = 0;
  }
  e->stats.bytes_out += (uint64_t)n;
  size_t written = (size_t)n;
  if (written >= a_len + b_len) return 0;
  uint8_t *at = reserve(c, a_len + b_len - written);
  if (at == NULL) return -1;
  if (written < a_len) {
    memcpy(at, a + written, a_len - written);
    if (b_len > 0) memcpy(at + a_len - written, b, b_len);
  } else {
    memcpy(at, b + (written - a_len), b_len - (written - a_len));
  }
  /* The kernel's buffer is full: the rest goes when the socket is writable. */
  c->flags |= F_WANT_WRITE;
  return 0;
}

static int admit(cz_conn_t *c, size_t len) {
  size_t total = buffered(c) + len;
  uint64_t limit = c->profile->max_buffered;
  if (total <= limit) return CZ_SEND_OK;
  switch (c->profile->policy) {
    case CZ_POLICY_DROP:
      c->flags |= F_OVER_LIMIT;
      return CZ_SEND_DROPPED;
    case CZ_POLICY_CLOSE:
      set_end(c, CZ_END_LIMIT);
      cz_close(c->engine, c->id, CZ_CLOSE_POLICY_VIOLATION, "Send buffer limit exceeded", 26);
      return CZ_SEND_CLOSED;
    default:
      if (total > limit * CZ_WAIT_CLOSE_FACTOR) {
        set_end(c, CZ_END_LIMIT);
        cz_close(c->engine, c->id, CZ_CLOSE_POLICY_VIOLATION, "Send buffer limit exceeded", 26);
        return CZ_SEND_CLOSED;
      }
      c->flags |= F_OVER_LIMIT;
      return CZ_SEND_BACKPRESSURE;
  }
}

static int is_open(const cz_conn_t *c) {
  /*
   * A stream that ended takes nothing more (F_ENDING); neither does a WebSocket closing. One whose
   * peer closed takes what the batch's handlers send until the echo (F_ECHO_CLOSE), though the
   * close is reported already.
   */
  if (c == NULL || (c->flags & (F_CLOSE_SENT | F_CLOSING | F_ENDING))) return 0;
  return !(c->flags & F_FINISHED) || (c->flags & F_ECHO_CLOSE);
}

int cz_send(cz_engine_t *e, uint32_t id, int opcode, const uint8_t *data, size_t len) {
  cz_conn_t *c = find(e, id);
  if (!is_open(c) || is_stream(c)) return CZ_SEND_CLOSED;
  int status = admit(c, len);
  if (status == CZ_SEND_DROPPED || status == CZ_SEND_CLOSED) return status;
  if (c->deflate != NULL && len >= c->deflate->params.threshold) {
    /* A large message, or one behind those, is compressed on the thread pool. */
    if (len >= DEFLATE_INLINE_MAX || (c->flags & F_DEFER)) {
      if (queue_compression(c, opcode, data, len) == 0) return status;
      cz_close(e, id, CZ_CLOSE_INTERNAL_ERROR, "Compression failed", 18);
      return CZ_SEND_CLOSED;
    }
    long n = compress_message(c, data, len);
    if (n < 0) {
      cz_close(e, id, CZ_CLOSE_INTERNAL_ERROR, "Compression failed", 18);
      return CZ_SEND_CLOSED;
    }
    size_t header = cz_header_size((uint64_t)n);
    uint8_t *at = reserve(c, header + (size_t)n);
    if (at == NULL) return CZ_SEND_CLOSED;
    cz_write_header(at, opcode, (uint64_t)n, 1);
    memcpy(at + header, e->zbuf, (size_t)n);
    e->stats.messages_out++;
    return status;
  }
  if (len >= DIRECT_WRITE_MIN && buffered(c) == 0) {
    /* A large payload with nothing queued: header and payload straight to the kernel, no copy. */
    uint8_t header[10];
    size_t header_len = cz_write_header(header, opcode, len, 0);
    if (write_now(c, header, header_len, data, len) != 0) return CZ_SEND_CLOSED;
    e->stats.messages_out++;
    /* Over the limit but all written: the drain is reported on the next flush. */
    if (c->flags & F_OVER_LIMIT) mark_dirty(c);
    return status;
  }
  if (append_frame(c, opcode, data, len) != 0) return CZ_SEND_CLOSED;
  return status;
}

int cz_send_frame(cz_engine_t *e, uint32_t id, const uint8_t *frame, size_t len, size_t payload) {
  cz_conn_t *c = find(e, id);
  if (!is_open(c)) return CZ_SEND_CLOSED;
  int status = admit(c, payload);
  if (status == CZ_SEND_DROPPED || status == CZ_SEND_CLOSED) return status;
  uint8_t *at = reserve(c, len);
  if (at == NULL) return CZ_SEND_CLOSED;
  memcpy(at, frame, len);
  e->stats.messages_out++;
  if (is_stream(c)) c->last_message = now_ms(e);
  return status;
}

size_t cz_broadcast(cz_engine_t *e, uint32_t *ids, size_t count, const uint8_t *frame, size_t len, size_t payload,
                    uint64_t max_buffered, size_t *over) {
  size_t delivered = 0;
  *over = 0;
  for (size_t i = 0; i < count; i++) {
    cz_conn_t *c = find(e, ids[i]);
    if (!is_open(c)) continue;
    if (buffered(c) + payload > max_buffered) {
      ids[(*over)++] = ids[i];
      continue;
    }
    if (buffered(c) == 0) {
      /* One system call per member, no copy: what a loop of sends would cost at best. */
      if (write_now(c, frame, len, NULL, 0) != 0) continue;
    } else {
      uint8_t *at = reserve(c, len);
      if (at == NULL) continue;
      memcpy(at, frame, len);
    }
    e->stats.messages_out++;
    if (is_stream(c)) c->last_message = now_ms(e);
    delivered++;
  }
  return delivered;
}

void cz_ping(cz_engine_t *e, uint32_t id, const uint8_t *data, size_t len) {
  cz_conn_t *c = find(e, id);
  if (!is_open(c) || is_stream(c)) return;
  if (len > CZ_MAX_CONTROL) len = CZ_MAX_CONTROL;
  append_frame(c, CZ_OP_PING, data, len);
  e->stats.messages_out--;
}

void cz_close(cz_engine_t *e, uint32_t id, uint16_t code, const char *reason, size_t reason_len) {
  cz_conn_t *c = find(e, id);
  if (c == NULL || (c->flags & (F_CLOSE_SENT | F_CLOSING | F_FINISHED))) return;
  if (is_stream(c)) {
    if (c->flags & F_ENDING) return;
    c->peer_code = code;
    end_connection(c);
    return;
  }
  set_end(c, CZ_END_SERVER);
  send_close(c, code, reason, reason_len);
  if (c->flags & F_CLOSE_RECEIVED) end_connection(c);
}

void cz_terminate(cz_engine_t *e, uint32_t id) {
  cz_conn_t *c = find(e, id);
  if (c == NULL) return;
  if (c->peer_code == 0) c->peer_code = CZ_CLOSE_ABNORMAL;
  set_end(c, CZ_END_SERVER);
  do_close(c);
}

void cz_pause(cz_engine_t *e, uint32_t id) {
  cz_conn_t *c = find(e, id);
  if (c == NULL || (c->flags & (F_PAUSED | F_CLOSING))) return;
  c->flags |= F_PAUSED;
}

void cz_resume(cz_engine_t *e, uint32_t id) {
  cz_conn_t *c = find(e, id);
  if (c == NULL || !(c->flags & F_PAUSED) || (c->flags & F_CLOSING)) return;
  c->flags &= ~F_PAUSED;
  schedule_start(e, c);
}

void cz_engine_share_state(cz_engine_t *e, uint32_t *state) {
  e->state = state;
}

void cz_engine_stats(cz_engine_t *e, cz_engine_stats_t *out) {
  *out = e->stats;
}
