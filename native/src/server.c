#define _GNU_SOURCE
#include "server.h"
#include "bytes.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <unistd.h>

#define READ_SLAB (64 * 1024)
#define FILE_SCRATCH (256 * 1024)
#define EVENT_BATCH 256
/* Connections accepted per readiness of the listening socket, before the others' turn. */
#define ACCEPTS_PER_TURN 128
/* Reads one connection gets per turn of the loop. */
#define READS_PER_TURN 4
#define INDEX_BITS 22
#define INDEX_MASK ((1u << INDEX_BITS) - 1)
#define LISTENER_ID 0xffffffffu
/* How long a connection we ended has to close its side after our FIN before it is closed. */
#define LINGER_MS 2000
/* Rounds of "resume the connections whose response ended, flush" per loop callback. */
#define SETTLE_ROUNDS 8

enum {
  C_ACTIVE = 1 << 0,     /* a request was reported and is not finished */
  C_RESPONDED = 1 << 1,  /* its response ended */
  C_BODY_DONE = 1 << 2,  /* its body is all read */
  C_STARTED = 1 << 3,    /* bytes of its response were written */
  C_KNOWN = 1 << 4,      /* a request was reported: the close is reported too */
  C_PAUSED = 1 << 5,
  C_WANT_DRAIN = 1 << 6,
  C_CLOSE_AFTER = 1 << 7, /* end the connection once the output went out */
  C_LINGER = 1 << 8,     /* our FIN went out: waiting for the peer's */
  C_CLOSING = 1 << 9,    /* the descriptor is closed; freed on the next idle */
  C_DIRTY = 1 << 10,
  C_RESUME = 1 << 11,    /* on the list of connections to parse again */
  C_PARSING = 1 << 12,
  C_KEEP = 1 << 13,      /* the current request lets the connection stay open */
  C_LOOPBACK = 1 << 14,  /* the peer is on this host: file regions are copied, not spliced */
  C_BLOCKED = 1 << 15,   /* the last flush left output the kernel did not take: EPOLLOUT says when */
};

/*
 * Output queued before the connection's output buffer: buffers sealed because an external piece
 * came after them, external pieces (bytes the caller keeps alive until `release`), and regions of
 * files (sent with sendfile(2) from a descriptor of the server's own).
 */
typedef struct seg seg_t;
struct seg {
  seg_t *next;
  uint8_t *data;
  size_t off; /* bytes [off, len) are still to go (of the file, for a file region) */
  size_t len;
  cz_bytes_t *sealed; /* a sealed output buffer (data lies in it); NULL for an external piece */
  cz_release_t release;
  void *release_ctx;
  int file_fd; /* a file region's descriptor (a duplicate, closed with the segment), else -1 */
};

typedef struct conn conn_t;
struct conn {
  cz_server_t *server;
  int fd;
  uint32_t id;
  uint32_t flags;
  uint32_t interest; /* the epoll events asked for */
  uint32_t since;    /* when the connection went idle, the head began, the request began, or the FIN went */
  uint8_t end;       /* CZ_SERVER_END_* to report */
  uint8_t *in;       /* bytes read and not parsed: in[in_off, in_len) */
  size_t in_off;
  size_t in_len;
  size_t in_cap;
  seg_t *segs; /* output before `out`, in order */
  seg_t *segs_tail;
  size_t segs_bytes;
  cz_bytes_t *out; /* output not taken by the kernel: out->data[out_off, out_off + out_len), after `segs` */
  size_t out_off;
  size_t out_len;
  size_t drain_over;
  conn_t *next_dirty;
  struct sockaddr_storage peer;
  cz_http_parser_t parser;
};

struct cz_server {
  uv_loop_t *loop;
  cz_server_options_t options;
  cz_server_events_t events;
  void *ctx;
  int epfd;
  int listen_fd;
  uv_poll_t poller;
  uv_idle_t idler;
  uv_timer_t sweeper;
  int handles_open;
  int batch_depth;
  int freeing;
  int reported; /* a request or body bytes were reported since after_reads last ran */
  int free_requested; /* cz_server_free was called inside a batch: it runs when the batch ends */
  conn_t **slots;
  uint16_t *generations;
  uint32_t *free_slots;
  uint32_t slot_count, slot_cap, free_count;
  conn_t *dirty;
  uint32_t *resume;
  uint32_t resume_len, resume_cap;
  conn_t **closed; /* slot_cap entries */
  uint32_t closed_len;
  cz_server_stats_t stats;
  /* Output buffers, reused across connections (bytes.h: a fresh large one page-faults). */
  cz_pool_t *buffers;
  uint8_t *scratch; /* FILE_SCRATCH bytes, for file regions copied to loopback peers; made on first use */
  uint8_t slab[READ_SLAB];
};

static uint32_t now_ms(cz_server_t *s) {
  return (uint32_t)uv_now(s->loop);
}

static conn_t *find(cz_server_t *s, uint32_t id) {
  uint32_t index = id & INDEX_MASK;
  if (index >= s->slot_count) return NULL;
  conn_t *c = s->slots[index];
  return c != NULL && c->id == id && !(c->flags & C_CLOSING) ? c : NULL;
}

static void on_idle(uv_idle_t *idle);

/* Run on_idle soon: for what JavaScript did outside a batch of ours (a timer's write, a close). */
static void wake(cz_server_t *s) {
  if (!uv_is_active((uv_handle_t *)&s->idler)) uv_idle_start(&s->idler, on_idle);
}

/* The server keeps the loop alive while it listens or holds connections, as node:http's does. */
static void update_ref(cz_server_t *s) {
  if (s->listen_fd >= 0 || s->stats.connections > 0) uv_ref((uv_handle_t *)&s->poller);
  else uv_unref((uv_handle_t *)&s->poller);
}

static void begin(cz_server_t *s) {
  if (s->batch_depth++ == 0 && s->events.begin != NULL) s->events.begin(s->ctx);
}

static void settle(cz_server_t *s);
static void free_now(cz_server_t *s);

/*
 * Close a batch: parse again what waits, flush, and hand the batch over (which runs JavaScript's
 * promise jobs); what those wrote goes out in another round, before the loop goes on.
 */
static void end(cz_server_t *s) {
  if (s->batch_depth > 1) {
    s->batch_depth--;
    return;
  }
  settle(s);
  if (s->events.end != NULL) s->events.end(s->ctx);
  for (int round = 0; round < SETTLE_ROUNDS && (s->dirty != NULL || s->resume_len > 0); round++) {
    if (s->events.begin != NULL) s->events.begin(s->ctx);
    settle(s);
    if (s->events.end != NULL) s->events.end(s->ctx);
  }
  s->batch_depth = 0;
  if (s->free_requested) {
    free_now(s);
    return;
  }
  if (s->dirty != NULL || s->resume_len > 0) wake(s);
}

/* ---- output ---- */

static void close_conn(conn_t *c, cz_server_t *s, int end);

/* Bytes of output not taken by the kernel yet. */
static size_t queued(const conn_t *c) {
  return c->segs_bytes + c->out_len;
}

static void set_interest(cz_server_t *s, conn_t *c) {
  uint32_t want = EPOLLRDHUP;
  int reading = !(c->flags & C_PAUSED) && c->in_len - c->in_off <= s->options.max_pipelined_bytes
                && c->parser.state != CZ_HTTP_UPGRADED;
  if (reading || (c->flags & C_LINGER)) want |= EPOLLIN;
  /* Output not tried yet waits on the dirty list, which flushes it this turn: asking for
     EPOLLOUT only after the kernel refused some keeps a response from costing two epoll_ctl. */
  if (queued(c) > 0 && (c->flags & C_BLOCKED)) want |= EPOLLOUT;
  if (want == c->interest) return;
  struct epoll_event ev = {.events = want, .data.u64 = c->id};
  epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev);
  c->interest = want;
}

static void mark_dirty(cz_server_t *s, conn_t *c) {
  if (c->flags & C_DIRTY) return;
  c->flags |= C_DIRTY;
  c->next_dirty = s->dirty;
  s->dirty = c;
  if (s->batch_depth == 0) wake(s);
}

static int reserve_out(conn_t *c, size_t n) {
  cz_bytes_t *b = c->out;
  if (b != NULL && c->out_off > 0 && c->out_off + c->out_len + n > b->cap) {
    memmove(b->data, b->data + c->out_off, c->out_len);
    c->out_off = 0;
  }
  if (b != NULL) b->len = c->out_off + c->out_len;
  b = cz_bytes_reserve(c->server->buffers, b, n);
  if (b == NULL) return -1;
  c->out = b;
  return 0;
}

static int append_out(conn_t *c, const void *data, size_t len) {
  if (len == 0) return 0;
  if (reserve_out(c, len) != 0) return -1;
  memcpy(c->out->data + c->out_off + c->out_len, data, len);
  c->out_len += len;
  return 0;
}

/* A chunk's size line (RFC 9112 §7.1: the size in hex, CRLF); its data and a CRLF follow. */
static int append_chunk_size(conn_t *c, size_t len) {
  char size[24];
  int n = snprintf(size, sizeof size, "%zx\r\n", len);
  return append_out(c, size, (size_t)n);
}

/* Frame bytes as one chunk of the output. */
static int append_chunk(conn_t *c, const uint8_t *data, size_t len) {
  if (len == 0) return 0;
  return append_chunk_size(c, len) | append_out(c, data, len) | append_out(c, "\r\n", 2);
}

/*
 * The output went out: a connection we end sends its FIN and waits for the peer's; a waiting
 * writer is told (last: what it writes then is output again).
 */
static void output_done(cz_server_t *s, conn_t *c) {
  c->out_off = 0;
  /* Output buffers of idle connections are let go: an idle connection keeps only its struct. */
  if (c->out != NULL && (c->out->cap > 16 * 1024 || !(c->flags & C_ACTIVE))) {
    cz_bytes_free(c->out);
    c->out = NULL;
  }
  if ((c->flags & C_CLOSE_AFTER) && !(c->flags & C_LINGER) && !(c->flags & C_ACTIVE)) {
    c->flags |= C_LINGER;
    c->since = now_ms(s);
    shutdown(c->fd, SHUT_WR);
  }
  if ((c->flags & C_WANT_DRAIN) && (c->flags & C_KNOWN)) {
    c->flags &= ~C_WANT_DRAIN;
    s->events.on_drain(s->ctx, c->id);
  }
}

static void seg_free(seg_t *g) {
  if (g->file_fd >= 0) close(g->file_fd);
  else if (g->release != NULL) g->release(g->release_ctx);
  else cz_bytes_free(g->sealed);
  free(g);
}

/* Queue bytes [off, len) of `data` after what is queued (the output buffer is sealed before). */
static int push_seg(conn_t *c, uint8_t *data, size_t off, size_t len, cz_bytes_t *sealed, cz_release_t release, void *ctx) {
  seg_t *g = malloc(sizeof *g);
  if (g == NULL) return -1;
  g->next = NULL;
  g->data = data;
  g->off = off;
  g->len = len;
  g->sealed = sealed;
  g->release = release;
  g->release_ctx = ctx;
  g->file_fd = -1;
  if (c->segs_tail != NULL) c->segs_tail->next = g;
  else c->segs = g;
  c->segs_tail = g;
  c->segs_bytes += len - off;
  return 0;
}

/* The output buffer's bytes become a segment, so that what comes next goes after them. */
static int seal_out(conn_t *c) {
  if (c->out_len == 0) return 0;
  if (push_seg(c, c->out->data, c->out_off, c->out_off + c->out_len, c->out, NULL, NULL) != 0) return -1;
  c->out = NULL;
  c->out_off = c->out_len = 0;
  return 0;
}

/* Take `n` bytes the kernel accepted off the front of the output. */
static void consume_out(conn_t *c, size_t n) {
  while (n > 0 && c->segs != NULL) {
    seg_t *g = c->segs;
    size_t left = g->len - g->off;
    size_t take = n < left ? n : left;
    g->off += take;
    c->segs_bytes -= take;
    n -= take;
    if (g->off < g->len) return;
    c->segs = g->next;
    if (c->segs == NULL) c->segs_tail = NULL;
    seg_free(g);
  }
  c->out_off += n;
  c->out_len -= n;
}

#define FLUSH_IOV 16
/* The most one flush sends: other connections get their turn. */
#define FLUSH_MAX (4u << 20)
#define FLUSH_ROUNDS 8

/* Whether the peer is on this host (127.0.0.0/8, ::1, or the former as an IPv4-mapped address). */
static int is_loopback(const struct sockaddr_storage *peer) {
  if (peer->ss_family == AF_INET) return (ntohl(((const struct sockaddr_in *)peer)->sin_addr.s_addr) >> 24) == 127;
  if (peer->ss_family != AF_INET6) return 0;
  const struct in6_addr *a = &((const struct sockaddr_in6 *)peer)->sin6_addr;
  return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
}

/*
 * A file region to a peer on this host: read into the server's scratch buffer and sent from it,
 * as much as the socket takes now (what it does not take is read again next time). Over
 * loopback two copies are faster than sendfile's splice (docs/http-engine.md), and nothing is
 * held for a connection between turns.
 */
static ssize_t copy_file(conn_t *c, seg_t *g, size_t *asked) {
  cz_server_t *s = c->server;
  if (s->scratch == NULL && (s->scratch = malloc(FILE_SCRATCH)) == NULL) return -1;
  size_t left = g->len - g->off;
  ssize_t r = pread(g->file_fd, s->scratch, left < FILE_SCRATCH ? left : FILE_SCRATCH, (off_t)g->off);
  if (r <= 0) return r == 0 ? -2 : -1;
  *asked = (size_t)r;
  ssize_t n = send(c->fd, s->scratch, (size_t)r, MSG_NOSIGNAL);
  if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
  return n;
}

/*
 * One call to the kernel: a file region at the front with sendfile(2), else the bytes up to the
 * next file region (or the end) with sendmsg. `asked` gets what was offered. -1 when the
 * connection failed, -2 when a file ended before its region did (it changed while being sent).
 */
static ssize_t send_front(conn_t *c, size_t *asked) {
  seg_t *g = c->segs;
  if (g != NULL && g->file_fd >= 0) {
    off_t at = (off_t)g->off;
    size_t left = g->len - g->off;
    *asked = left < FLUSH_MAX ? left : FLUSH_MAX;
    if (c->flags & C_LOOPBACK) return copy_file(c, g, asked);
    ssize_t n = sendfile(c->fd, g->file_fd, &at, *asked);
    if (n == 0) return -2;
    if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
    return n;
  }
  struct iovec iov[FLUSH_IOV];
  int count = 0;
  *asked = 0;
  for (; g != NULL && g->file_fd < 0 && count < FLUSH_IOV; g = g->next) {
    iov[count].iov_base = g->data + g->off;
    iov[count++].iov_len = g->len - g->off;
    *asked += g->len - g->off;
  }
  /* The output buffer comes after every segment. */
  if (g == NULL && c->out_len > 0 && count < FLUSH_IOV) {
    iov[count].iov_base = c->out->data + c->out_off;
    iov[count++].iov_len = c->out_len;
    *asked += c->out_len;
  }
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = iov;
  msg.msg_iovlen = (size_t)count;
  ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
  if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
  return n;
}

static void flush(cz_server_t *s, conn_t *c) {
  if (c->flags & C_CLOSING) return;
  size_t sent = 0;
  for (int round = 0; round < FLUSH_ROUNDS && queued(c) > 0 && sent < FLUSH_MAX; round++) {
    size_t asked;
    ssize_t n = send_front(c, &asked);
    s->stats.writes++;
    if (n < 0) {
      close_conn(c, s, CZ_SERVER_END_PEER);
      return;
    }
    s->stats.bytes_out += (uint64_t)n;
    consume_out(c, (size_t)n);
    sent += (size_t)n;
    /* The kernel took less than it was offered: it is full. */
    if ((size_t)n < asked) break;
  }
  if (queued(c) == 0) {
    c->flags &= ~C_BLOCKED;
    output_done(s, c);
  } else {
    c->flags |= C_BLOCKED;
  }
  if (!(c->flags & C_CLOSING)) set_interest(s, c);
}

static void flush_dirty(cz_server_t *s) {
  while (s->dirty != NULL) {
    conn_t *c = s->dirty;
    s->dirty = c->next_dirty;
    c->flags &= ~C_DIRTY;
    flush(s, c);
  }
}

/* ---- slots ---- */

static int take_slot(cz_server_t *s, conn_t *c) {
  uint32_t index;
  if (s->free_count > 0) {
    index = s->free_slots[--s->free_count];
  } else {
    if (s->slot_count == s->slot_cap) {
      uint32_t cap = s->slot_cap == 0 ? 1024 : s->slot_cap * 2;
      if (cap > (1u << INDEX_BITS)) return -1;
      conn_t **slots = realloc(s->slots, cap * sizeof *slots);
      if (slots == NULL) return -1;
      s->slots = slots;
      uint16_t *generations = realloc(s->generations, cap * sizeof *generations);
      if (generations == NULL) return -1;
      s->generations = generations;
      uint32_t *free_slots = realloc(s->free_slots, cap * sizeof *free_slots);
      if (free_slots == NULL) return -1;
      s->free_slots = free_slots;
      /* Room for every connection on the closed list: closing never needs memory. */
      conn_t **closed = realloc(s->closed, cap * sizeof *closed);
      if (closed == NULL) return -1;
      s->closed = closed;
      s->slot_cap = cap;
    }
    index = s->slot_count++;
    s->generations[index] = 0;
  }
  uint16_t generation = (uint16_t)((s->generations[index] + 1) & ((1u << (32 - INDEX_BITS)) - 1));
  /* An id is never LISTENER_ID nor 0. */
  if (generation == 0 || (generation == (1u << (32 - INDEX_BITS)) - 1 && index == INDEX_MASK)) generation = 1;
  s->generations[index] = generation;
  s->slots[index] = c;
  c->id = ((uint32_t)generation << INDEX_BITS) | index;
  return 0;
}

static void free_conn(cz_server_t *s, conn_t *c) {
  uint32_t index = c->id & INDEX_MASK;
  s->slots[index] = NULL;
  s->free_slots[s->free_count++] = index;
  cz_http_release(&c->parser);
  free(c->in);
  cz_bytes_free(c->out);
  for (seg_t *g = c->segs, *next; g != NULL; g = next) {
    next = g->next;
    seg_free(g);
  }
  free(c);
}

/* ---- closing ---- */

/* Free a connection on the next idle, when nothing up the stack holds it (reap). */
static void defer_free(cz_server_t *s, conn_t *c) {
  s->closed[s->closed_len++] = c;
  wake(s);
}

static void close_conn(conn_t *c, cz_server_t *s, int end) {
  if (c->flags & C_CLOSING) return;
  c->flags |= C_CLOSING;
  c->end = (uint8_t)end;
  epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  c->fd = -1;
  s->stats.connections--;
  if (s->freeing) return;
  update_ref(s);
  defer_free(s, c);
}

/* Report and free the connections closed since the last time: nothing up the stack holds them. */
static void reap(cz_server_t *s) {
  /* A closed connection may still be on the dirty list (closed after a write): off it first. */
  flush_dirty(s);
  while (s->closed_len > 0) {
    conn_t *c = s->closed[--s->closed_len];
    if (c->flags & C_KNOWN) s->events.on_close(s->ctx, c->id, c->end);
    free_conn(s, c);
  }
}

/* Answer with a status and no body, and end the connection: the caller never sees the request. */
static void refuse(cz_server_t *s, conn_t *c, int status, const char *reason) {
  s->stats.refused++;
  c->parser.state = CZ_HTTP_ERROR;
  if ((c->flags & C_ACTIVE) && (c->flags & C_STARTED)) {
    /* A body broke its framing after the response began: the connection is cut. */
    close_conn(c, s, CZ_SERVER_END_REFUSED);
    return;
  }
  char line[160];
  int n = snprintf(line, sizeof line, "HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", status, reason);
  /* After what is queued already (an earlier pipelined response). */
  append_out(c, line, (size_t)n);
  /* A request the caller has is over for it: what it writes now goes nowhere. */
  c->flags = (c->flags & ~(C_ACTIVE | C_RESPONDED | C_BODY_DONE | C_STARTED)) | C_CLOSE_AFTER;
  c->end = CZ_SERVER_END_REFUSED;
  c->in_off = c->in_len = 0;
  mark_dirty(s, c);
}

static const char *reason_phrase(int status) {
  switch (status) {
    case 400: return "Bad Request";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
  }
}

/* ---- requests ---- */

typedef struct {
  cz_server_t *s;
  conn_t *c;
} parse_ctx_t;

static int p_head(void *user, const cz_http_head_t *head) {
  parse_ctx_t *p = user;
  cz_server_t *s = p->s;
  conn_t *c = p->c;
  s->stats.requests++;
  int first = !(c->flags & C_KNOWN);
  c->flags = (c->flags & ~(C_RESPONDED | C_BODY_DONE | C_STARTED | C_KEEP)) | C_ACTIVE | C_KNOWN;
  if (head->keep_alive) c->flags |= C_KEEP;
  c->since = now_ms(s);
  /* Expect: 100-continue: the client waits for this before it sends the body. */
  if (head->expect_continue && (head->chunked || head->content_length > 0) && append_out(c, "HTTP/1.1 100 Continue\r\n\r\n", 25) == 0) {
    mark_dirty(s, c);
  }
  /* The caller knows the connection's peer from its first request: it is given once. */
  char peer[INET6_ADDRSTRLEN] = "";
  uint16_t port = 0;
  if (first && c->peer.ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)&c->peer;
    inet_ntop(AF_INET, &a->sin_addr, peer, sizeof peer);
    port = ntohs(a->sin_port);
  } else if (first && c->peer.ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&c->peer;
    inet_ntop(AF_INET6, &a->sin6_addr, peer, sizeof peer);
    port = ntohs(a->sin6_port);
  }
  s->reported = 1;
  s->events.on_request(s->ctx, c->id, head, first ? peer : NULL, port);
  /* The handler may have cut the connection. */
  return (c->flags & C_CLOSING) ? 1 : 0;
}

static int p_body(void *user, const uint8_t *data, size_t len) {
  parse_ctx_t *p = user;
  conn_t *c = p->c;
  /* A body whose response already ended is read and dropped. */
  if (!(c->flags & C_RESPONDED)) {
    p->s->reported = 1;
    p->s->events.on_body(p->s->ctx, c->id, data, len);
  }
  return (c->flags & (C_CLOSING | C_PAUSED)) ? 1 : 0;
}

static void finish_request(cz_server_t *s, conn_t *c);

static int p_end(void *user) {
  parse_ctx_t *p = user;
  conn_t *c = p->c;
  c->flags |= C_BODY_DONE;
  if (!(c->flags & C_RESPONDED)) {
    p->s->reported = 1;
    p->s->events.on_body_end(p->s->ctx, c->id);
    /* The next pipelined request waits for this response. */
    if (!(c->flags & C_RESPONDED)) return 1;
  }
  finish_request(p->s, c);
  return (c->flags & (C_CLOSING | C_CLOSE_AFTER)) ? 1 : 0;
}

static const cz_http_events_t parse_events = {p_head, p_body, p_end};

/* Whether the held input may be parsed now. */
static int can_parse(const conn_t *c) {
  if (c->flags & (C_CLOSING | C_PAUSED | C_PARSING | C_CLOSE_AFTER)) return 0;
  if ((c->flags & C_ACTIVE) && (c->flags & C_BODY_DONE)) return 0;
  int state = c->parser.state;
  return state != CZ_HTTP_UPGRADED && state != CZ_HTTP_CLOSED && state != CZ_HTTP_ERROR;
}

/* Parse what is held, as far as the connection's state lets it. */
static void feed(cz_server_t *s, conn_t *c) {
  parse_ctx_t p = {s, c};
  while (c->in_off < c->in_len && can_parse(c)) {
    c->flags |= C_PARSING;
    size_t used = cz_http_parse(&c->parser, c->in + c->in_off, c->in_len - c->in_off, &parse_events, &p);
    c->flags &= ~C_PARSING;
    if (c->flags & C_CLOSING) return;
    c->in_off += used;
    if (c->parser.state == CZ_HTTP_ERROR) {
      refuse(s, c, c->parser.status, reason_phrase(c->parser.status));
      return;
    }
    if (used == 0) break;
  }
  if (c->in_off == c->in_len) {
    c->in_off = c->in_len = 0;
    if (c->in_cap > READ_SLAB || !(c->flags & C_ACTIVE)) {
      free(c->in);
      c->in = NULL;
      c->in_cap = 0;
    }
  }
  set_interest(s, c);
}

/* Parse the connection's held input again at the end of the batch (or on the next idle). */
static void schedule_parse(cz_server_t *s, conn_t *c) {
  if (c->flags & C_RESUME) return;
  if (s->resume_len == s->resume_cap) {
    uint32_t cap = s->resume_cap == 0 ? 64 : s->resume_cap * 2;
    uint32_t *resume = realloc(s->resume, cap * sizeof *resume);
    if (resume == NULL) {
      close_conn(c, s, CZ_SERVER_END_SERVER);
      return;
    }
    s->resume = resume;
    s->resume_cap = cap;
  }
  c->flags |= C_RESUME;
  s->resume[s->resume_len++] = c->id;
  if (s->batch_depth == 0) wake(s);
}

/* The request and its response are both done: the connection waits for the next one, or ends. */
static void finish_request(cz_server_t *s, conn_t *c) {
  c->flags &= ~(C_ACTIVE | C_RESPONDED | C_BODY_DONE | C_STARTED);
  c->since = now_ms(s);
  /* An upgrade the caller answered without switching: the bytes after it are not HTTP's. */
  if (!(c->flags & C_KEEP) || c->parser.state == CZ_HTTP_CLOSED || c->parser.state == CZ_HTTP_UPGRADED) c->flags |= C_CLOSE_AFTER;
  if (c->flags & C_CLOSE_AFTER) {
    c->in_off = c->in_len = 0;
    mark_dirty(s, c);
    return;
  }
  if (c->in_len > c->in_off && !(c->flags & C_PARSING)) schedule_parse(s, c);
  if (!(c->flags & C_CLOSING)) set_interest(s, c);
}

static int hold(conn_t *c, const uint8_t *data, size_t len) {
  if (c->in_off > 0 && c->in_len + len > c->in_cap) {
    memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
    c->in_len -= c->in_off;
    c->in_off = 0;
  }
  if (c->in_len + len > c->in_cap) {
    size_t cap = c->in_cap < 4096 ? 4096 : c->in_cap;
    while (cap < c->in_len + len) cap *= 2;
    uint8_t *in = realloc(c->in, cap);
    if (in == NULL) return -1;
    c->in = in;
    c->in_cap = cap;
  }
  memcpy(c->in + c->in_len, data, len);
  c->in_len += len;
  return 0;
}

static void read_conn(cz_server_t *s, conn_t *c) {
  for (int i = 0; i < READS_PER_TURN; i++) {
    if (c->flags & C_CLOSING) return;
    ssize_t n = recv(c->fd, s->slab, READ_SLAB, 0);
    if (n == 0) {
      close_conn(c, s, (c->flags & C_LINGER) ? c->end : CZ_SERVER_END_PEER);
      return;
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
      close_conn(c, s, CZ_SERVER_END_PEER);
      return;
    }
    s->stats.bytes_in += (uint64_t)n;
    /* After our FIN (or a refusal) what comes is dropped. */
    if (c->flags & (C_LINGER | C_CLOSE_AFTER)) continue;
    int state = c->parser.state;
    if (state == CZ_HTTP_CLOSED || state == CZ_HTTP_ERROR) continue;
    if (!(c->flags & C_ACTIVE) && c->in_len == c->in_off && c->parser.head_len == 0) c->since = now_ms(s);
    if (hold(c, s->slab, (size_t)n) != 0) {
      close_conn(c, s, CZ_SERVER_END_SERVER);
      return;
    }
    feed(s, c);
    if ((size_t)n < READ_SLAB || c->in_len - c->in_off > s->options.max_pipelined_bytes) break;
  }
}

static void accept_some(cz_server_t *s) {
  for (int i = 0; i < ACCEPTS_PER_TURN; i++) {
    struct sockaddr_storage peer;
    socklen_t peer_len = sizeof peer;
    int fd = accept4(s->listen_fd, (struct sockaddr *)&peer, &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    if (s->stats.connections >= s->options.max_connections) {
      close(fd);
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conn_t *c = calloc(1, sizeof *c);
    if (c != NULL) c->server = s;
    if (c == NULL || take_slot(s, c) != 0) {
      free(c);
      close(fd);
      continue;
    }
    c->fd = fd;
    c->peer = peer;
    if (!s->options.splice_loopback && is_loopback(&peer)) c->flags |= C_LOOPBACK;
    c->since = now_ms(s);
    cz_http_init(&c->parser, &s->options.limits);
    c->interest = EPOLLIN | EPOLLRDHUP;
    struct epoll_event ev = {.events = c->interest, .data.u64 = c->id};
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
      close(fd);
      s->slots[c->id & INDEX_MASK] = NULL;
      s->free_slots[s->free_count++] = c->id & INDEX_MASK;
      free(c);
      continue;
    }
    s->stats.accepted++;
    s->stats.connections++;
  }
  update_ref(s);
}

/*
 * A connection's input is parsed and its requests (or body bytes) were reported: what they
 * queued runs now, before the next connection's requests, not after all of the batch's.
 */
static void after_reads(cz_server_t *s) {
  if (!s->reported) return;
  s->reported = 0;
  if (s->events.after_reads != NULL) s->events.after_reads(s->ctx);
}

/* Parse again the connections whose response ended, then flush: until nothing is left, or a bound. */
static void settle(cz_server_t *s) {
  for (int round = 0; round < SETTLE_ROUNDS && (s->resume_len > 0 || s->dirty != NULL); round++) {
    uint32_t count = s->resume_len;
    for (uint32_t i = 0; i < count; i++) {
      conn_t *c = find(s, s->resume[i]);
      if (c == NULL) continue;
      c->flags &= ~C_RESUME;
      feed(s, c);
      after_reads(s);
    }
    if (count > 0) {
      s->resume_len -= count;
      memmove(s->resume, s->resume + count, s->resume_len * sizeof *s->resume);
    }
    flush_dirty(s);
  }
  if (s->resume_len > 0 || s->dirty != NULL) wake(s);
}

static void on_ready(uv_poll_t *poller, int status, int events) {
  (void)status;
  (void)events;
  cz_server_t *s = poller->data;
  struct epoll_event ready[EVENT_BATCH];
  int n = epoll_wait(s->epfd, ready, EVENT_BATCH, 0);
  if (n <= 0) return;
  begin(s);
  for (int i = 0; i < n; i++) {
    uint32_t id = (uint32_t)ready[i].data.u64;
    if (id == LISTENER_ID) {
      if (s->listen_fd >= 0) accept_some(s);
      continue;
    }
    conn_t *c = find(s, id);
    if (c == NULL) continue;
    uint32_t got = ready[i].events;
    if ((got & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && queued(c) > 0) flush(s, c);
    if (c->flags & C_CLOSING) continue;
    if (got & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) {
      if (c->interest & EPOLLIN) {
        read_conn(s, c);
        after_reads(s);
      } else if (got & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)) {
        /* Not reading (paused, or the pipeline is full), and the peer is gone. */
        close_conn(c, s, CZ_SERVER_END_PEER);
      }
    }
  }
  end(s);
}

static void on_idle(uv_idle_t *idle) {
  cz_server_t *s = idle->data;
  uv_idle_stop(idle);
  begin(s);
  reap(s);
  end(s);
}

/*
 * Buffers a connection holds without use go (a long stream, an idle keep-alive connection): the
 * unparsed input when all of it was parsed, the output when it all went, the parser's head
 * buffers between heads. What needs them makes them again.
 */
static void trim(conn_t *c) {
  if (c->in != NULL && c->in_off == c->in_len) {
    free(c->in);
    c->in = NULL;
    c->in_off = c->in_len = c->in_cap = 0;
  }
  if (c->out != NULL && c->out_len == 0) {
    cz_bytes_free(c->out);
    c->out = NULL;
    c->out_off = 0;
  }
  if (!(c->flags & C_PARSING)) cz_http_trim(&c->parser);
}

static void on_sweep(uv_timer_t *timer) {
  cz_server_t *s = timer->data;
  uint32_t now = now_ms(s);
  const cz_server_options_t *o = &s->options;
  begin(s);
  for (uint32_t i = 0; i < s->slot_count; i++) {
    conn_t *c = s->slots[i];
    if (c == NULL || (c->flags & C_CLOSING)) continue;
    uint32_t age = now - c->since;
    trim(c);
    if (c->flags & C_LINGER) {
      if (age >= LINGER_MS) close_conn(c, s, c->end);
    } else if (c->flags & C_ACTIVE) {
      if (!(c->flags & C_BODY_DONE) && o->request_timeout_ms > 0 && age >= o->request_timeout_ms) {
        refuse(s, c, 408, "Request Timeout");
      }
    } else if (c->flags & C_CLOSE_AFTER) {
      /* Its output does not go out: a reader that stopped reading. */
      if (age >= LINGER_MS + o->keep_alive_timeout_ms) close_conn(c, s, CZ_SERVER_END_TIMEOUT);
    } else if (c->parser.head_len > 0 || c->in_len > c->in_off) {
      if (o->headers_timeout_ms > 0 && age >= o->headers_timeout_ms) refuse(s, c, 408, "Request Timeout");
    } else if (o->keep_alive_timeout_ms > 0 && age >= o->keep_alive_timeout_ms) {
      close_conn(c, s, CZ_SERVER_END_TIMEOUT);
    }
  }
  end(s);
}

/* ---- the server ---- */

cz_server_t *cz_server_new(uv_loop_t *loop, const cz_server_options_t *options, const cz_server_events_t *events, void *ctx) {
  cz_server_t *s = calloc(1, sizeof *s);
  if (s == NULL) return NULL;
  s->epfd = epoll_create1(EPOLL_CLOEXEC);
  s->listen_fd = -1;
  s->buffers = cz_pool_new();
  if (s->epfd < 0 || s->buffers == NULL || uv_poll_init(loop, &s->poller, s->epfd) != 0) {
    if (s->epfd >= 0) close(s->epfd);
    cz_pool_close(s->buffers);
    free(s);
    return NULL;
  }
  s->loop = loop;
  s->options = *options;
  if (s->options.max_pipelined_bytes == 0) s->options.max_pipelined_bytes = 64 * 1024;
  s->events = *events;
  s->ctx = ctx;
  s->poller.data = s;
  uv_poll_start(&s->poller, UV_READABLE, on_ready);
  uv_idle_init(loop, &s->idler);
  s->idler.data = s;
  uv_timer_init(loop, &s->sweeper);
  s->sweeper.data = s;
  uv_unref((uv_handle_t *)&s->sweeper);
  s->handles_open = 3;
  update_ref(s);
  uint32_t shortest = 1000;
  uint32_t timeouts[] = {options->headers_timeout_ms, options->request_timeout_ms, options->keep_alive_timeout_ms};
  for (int i = 0; i < 3; i++) if (timeouts[i] > 0 && timeouts[i] < shortest * 4) shortest = timeouts[i] / 4;
  if (shortest < 25) shortest = 25;
  uv_timer_start(&s->sweeper, on_sweep, shortest, shortest);
  return s;
}

int cz_server_listen(cz_server_t *s, const char *host, uint16_t port, int backlog, int reuse_port, uint16_t *bound) {
  struct sockaddr_storage addr;
  memset(&addr, 0, sizeof addr);
  socklen_t addr_len;
  struct sockaddr_in *v4 = (struct sockaddr_in *)&addr;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&addr;
  if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    addr_len = sizeof *v4;
  } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    addr_len = sizeof *v6;
  } else {
    return -EINVAL;
  }
  int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuse_port) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&addr, addr_len) != 0 || listen(fd, backlog) != 0) {
    int error = errno;
    close(fd);
    return -error;
  }
  socklen_t len = sizeof addr;
  getsockname(fd, (struct sockaddr *)&addr, &len);
  *bound = ntohs(addr.ss_family == AF_INET ? v4->sin_port : v6->sin6_port);
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = LISTENER_ID};
  if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
    int error = errno;
    close(fd);
    return -error;
  }
  s->listen_fd = fd;
  update_ref(s);
  return 0;
}

void cz_server_stop_accepting(cz_server_t *s) {
  if (s->listen_fd < 0) return;
  epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->listen_fd, NULL);
  close(s->listen_fd);
  s->listen_fd = -1;
  update_ref(s);
}

void cz_server_close_idle(cz_server_t *s) {
  for (uint32_t i = 0; i < s->slot_count; i++) {
    conn_t *c = s->slots[i];
    if (c == NULL || (c->flags & (C_CLOSING | C_ACTIVE)) || queued(c) > 0) continue;
    if (c->parser.head_len > 0 || c->in_len > c->in_off) continue;
    close_conn(c, s, CZ_SERVER_END_SERVER);
  }
}

void cz_server_close_all(cz_server_t *s) {
  for (uint32_t i = 0; i < s->slot_count; i++) {
    conn_t *c = s->slots[i];
    if (c != NULL && !(c->flags & C_CLOSING)) close_conn(c, s, CZ_SERVER_END_SERVER);
  }
}

void cz_server_set_max_connections(cz_server_t *s, uint32_t max) {
  s->options.max_connections = max;
}

/* What every write does after its bytes are queued. */
static int64_t wrote(cz_server_t *s, conn_t *c, int flags, size_t drain_over) {
  c->flags |= C_STARTED;
  if (flags & CZ_WRITE_CLOSE) c->flags |= C_CLOSE_AFTER;
  int64_t buffered = (int64_t)queued(c);
  if ((size_t)buffered > drain_over) c->flags |= C_WANT_DRAIN;
  mark_dirty(s, c);
  if (flags & CZ_WRITE_END) {
    c->flags |= C_RESPONDED;
    /* A response that ends before its request's body was read: the connection cannot be reused
       unless the body is read to its end, which the parser goes on doing while it is kept. */
    if (c->flags & C_BODY_DONE) {
      finish_request(s, c);
    } else if (c->flags & C_CLOSE_AFTER) {
      c->flags &= ~C_ACTIVE;
      c->since = now_ms(s);
    } else if (c->flags & C_PAUSED) {
      /* The rest of the body is read and dropped. */
      cz_server_resume(s, c->id);
    }
  }
  return buffered;
}

static conn_t *writable(cz_server_t *s, uint32_t id) {
  conn_t *c = find(s, id);
  return c == NULL || !(c->flags & C_ACTIVE) || (c->flags & C_RESPONDED) ? NULL : c;
}

int64_t cz_server_write(cz_server_t *s, uint32_t id, const uint8_t *data, size_t len, int flags, size_t drain_over) {
  conn_t *c = writable(s, id);
  if (c == NULL) return -1;
  int failed = (flags & CZ_WRITE_CHUNK) ? append_chunk(c, data, len) : append_out(c, data, len);
  if (flags & CZ_WRITE_LAST) failed |= append_out(c, "0\r\n\r\n", 5);
  if (failed) {
    close_conn(c, s, CZ_SERVER_END_SERVER);
    return -1;
  }
  return wrote(s, c, flags, drain_over);
}

/* After a piece queued between the output buffers: the chunk's end, the last chunk, the report. */
static int64_t after_piece(cz_server_t *s, conn_t *c, int chunked, int failed, int flags, size_t drain_over) {
  if (chunked) failed |= append_out(c, "\r\n", 2);
  if (flags & CZ_WRITE_LAST) failed |= append_out(c, "0\r\n\r\n", 5);
  if (failed) {
    close_conn(c, s, CZ_SERVER_END_SERVER);
    return -1;
  }
  return wrote(s, c, flags, drain_over);
}

int64_t cz_server_write_external(cz_server_t *s, uint32_t id, const uint8_t *data, size_t len, int flags, size_t drain_over,
                                 cz_release_t release, void *ctx) {
  conn_t *c = writable(s, id);
  if (c == NULL) {
    release(ctx);
    return -1;
  }
  int chunked = (flags & CZ_WRITE_CHUNK) && len > 0;
  int failed = chunked ? append_chunk_size(c, len) : 0;
  failed |= seal_out(c);
  if (failed || push_seg(c, (uint8_t *)data, 0, len, NULL, release, ctx) != 0) {
    release(ctx);
    close_conn(c, s, CZ_SERVER_END_SERVER);
    return -1;
  }
  return after_piece(s, c, chunked, failed, flags, drain_over);
}

int64_t cz_server_write_file(cz_server_t *s, uint32_t id, int fd, uint64_t offset, uint64_t len, int flags, size_t drain_over) {
  conn_t *c = writable(s, id);
  if (c == NULL) return -1;
  int chunked = (flags & CZ_WRITE_CHUNK) && len > 0;
  int failed = chunked ? append_chunk_size(c, (size_t)len) : 0;
  failed |= seal_out(c);
  if (!failed && len > 0) {
    int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    failed = copy < 0 || push_seg(c, NULL, (size_t)offset, (size_t)(offset + len), NULL, NULL, NULL) != 0;
    if (failed && copy >= 0) close(copy);
    if (!failed) c->segs_tail->file_fd = copy;
  }
  return after_piece(s, c, chunked, failed, flags, drain_over);
}

int cz_server_detach(cz_server_t *s, uint32_t id, uint8_t **rest, size_t *rest_len) {
  conn_t *c = find(s, id);
  *rest = NULL;
  *rest_len = 0;
  /* Output that is more than one buffer (a response was written): not a protocol switch's. */
  if (c == NULL || (c->flags & C_PARSING) || c->segs != NULL) return -1;
  size_t held = c->in_len - c->in_off;
  if (held > 0) {
    *rest = malloc(held);
    if (*rest == NULL) return -1;
    memcpy(*rest, c->in + c->in_off, held);
    *rest_len = held;
  }
  int fd = c->fd;
  epoll_ctl(s->epfd, EPOLL_CTL_DEL, fd, NULL);
  /* What is still queued for it goes first, blocking briefly: a 100 Continue at most. */
  if (c->out_len > 0) (void)!send(fd, c->out->data + c->out_off, c->out_len, MSG_NOSIGNAL);
  c->fd = -1;
  c->flags |= C_CLOSING;
  c->flags &= ~C_KNOWN;
  s->stats.connections--;
  update_ref(s);
  /* It may still be on the dirty list: freed by the next idle, as closed connections are (unreported). */
  defer_free(s, c);
  return fd;
}

int64_t cz_server_buffered(cz_server_t *s, uint32_t id) {
  conn_t *c = find(s, id);
  return c == NULL ? -1 : (int64_t)queued(c);
}

void cz_server_destroy(cz_server_t *s, uint32_t id) {
  conn_t *c = find(s, id);
  if (c != NULL) close_conn(c, s, CZ_SERVER_END_SERVER);
}

void cz_server_pause(cz_server_t *s, uint32_t id) {
  conn_t *c = find(s, id);
  if (c == NULL || (c->flags & C_PAUSED)) return;
  c->flags |= C_PAUSED;
  set_interest(s, c);
}

void cz_server_resume(cz_server_t *s, uint32_t id) {
  conn_t *c = find(s, id);
  if (c == NULL || !(c->flags & C_PAUSED)) return;
  c->flags &= ~C_PAUSED;
  if (c->in_len > c->in_off) schedule_parse(s, c);
  if (!(c->flags & C_CLOSING)) set_interest(s, c);
}

void cz_server_stats(cz_server_t *s, cz_server_stats_t *out) {
  *out = s->stats;
}

static void after_close(uv_handle_t *handle) {
  cz_server_t *s = handle->data;
  if (--s->handles_open > 0) return;
  close(s->epfd);
  free(s->slots);
  free(s->generations);
  free(s->free_slots);
  free(s->resume);
  free(s->closed);
  free(s);
}

void cz_server_free(cz_server_t *s) {
  /* Called from a report (a handler that closes the server): the batch still walks the server. */
  if (s->batch_depth > 0) {
    s->free_requested = 1;
    return;
  }
  free_now(s);
}

static void free_now(cz_server_t *s) {
  s->freeing = 1;
  cz_server_stop_accepting(s);
  reap(s);
  for (uint32_t i = 0; i < s->slot_count; i++) {
    conn_t *c = s->slots[i];
    if (c == NULL) continue;
    close_conn(c, s, CZ_SERVER_END_SERVER);
    free_conn(s, c);
  }
  /* Every buffer is back: the pool goes with its idle ones. */
  cz_pool_close(s->buffers);
  s->buffers = NULL;
  free(s->scratch);
  s->scratch = NULL;
  uv_close((uv_handle_t *)&s->poller, after_close);
  uv_close((uv_handle_t *)&s->idler, after_close);
  uv_close((uv_handle_t *)&s->sweeper, after_close);
}
