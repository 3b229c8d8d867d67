/*
 * The native HTTP/1.1 server: the listening socket and every plain HTTP/1.1 connection, on the
 * libuv loop that Node.js runs. Like the WebSocket engine (engine.h) it keeps the descriptors in
 * an epoll set of its own that one libuv poll handle watches: no libuv handle per connection.
 * Requests are parsed in C (http1.h) and reported head, body and end; responses are bytes the
 * caller writes (a head, a body, chunks the server frames), which leave in one write per
 * connection and turn of the loop.
 *
 * One request per connection is in flight at a time: the next pipelined request is parsed once
 * the response to this one ended, so responses go out in the order of the requests. A refusal of
 * the parser is answered here with its status (the caller never sees the request), and a
 * connection whose reader went away is reported closed.
 */
#ifndef CZ_SERVER_H
#define CZ_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "http1.h"

typedef struct cz_server cz_server_t;

/* Limits and timers; 0 for a timeout: none. */
typedef struct cz_server_options {
  cz_http_limits_t limits;
  uint32_t max_connections;  /* accepted beyond it: closed at once */
  uint32_t headers_timeout_ms; /* a request head not complete this long after its first byte: 408 */
  uint32_t request_timeout_ms; /* a request (head and body) not received this long after it began: 408 */
  uint32_t keep_alive_timeout_ms; /* a connection without a request this long: closed */
  uint32_t max_pipelined_bytes; /* bytes read ahead while a response is in flight; then reading waits */
  uint32_t splice_loopback; /* file regions to peers on this host go by sendfile too (else: copied, faster there) */
} cz_server_options_t;

/* Why a connection ended, as reported to on_close. */
enum { CZ_SERVER_END_PEER = 0, CZ_SERVER_END_SERVER = 1, CZ_SERVER_END_TIMEOUT = 2, CZ_SERVER_END_REFUSED = 3 };

typedef struct cz_server_events {
  /* `begin` and `end` bracket every batch of reports from one loop callback. */
  void (*begin)(void *ctx);
  void (*end)(void *ctx);
  /*
   * A request head on connection `id`; pointers are valid during the call. `peer` is the
   * client's address as text and `port` its port on the connection's first request, NULL and
   * 0 on the ones after it.
   */
  void (*on_request)(void *ctx, uint32_t id, const cz_http_head_t *head, const char *peer, uint16_t port);
  /* Body bytes of the current request (valid during the call). */
  void (*on_body)(void *ctx, uint32_t id, const uint8_t *data, size_t len);
  /* The current request's body is complete. */
  void (*on_body_end)(void *ctx, uint32_t id);
  /* The output of a connection over its threshold went out (see cz_server_write). */
  void (*on_drain)(void *ctx, uint32_t id);
  /* A connection that had a request reported ended (once); `end` is CZ_SERVER_END_*. */
  void (*on_close)(void *ctx, uint32_t id, int end);
  /*
   * Inside a batch, after a connection's input was read and parsed and a request or body bytes
   * of it were reported: what the reports queued (promise jobs) may run now, before the next
   * connection's requests, as node:http runs them after each socket's read. Optional.
   */
  void (*after_reads)(void *ctx);
} cz_server_events_t;

cz_server_t *cz_server_new(uv_loop_t *loop, const cz_server_options_t *options, const cz_server_events_t *events, void *ctx);
/*
 * Bind and listen on `host` (an IPv4 or IPv6 literal) and `port` (0: any); SO_REUSEPORT when
 * `reuse_port` (workers sharing a port). Returns 0 and the bound port, or a negative errno.
 */
int cz_server_listen(cz_server_t *s, const char *host, uint16_t port, int backlog, int reuse_port, uint16_t *bound);
/* Stop accepting (the listening socket closes); connections go on. */
void cz_server_stop_accepting(cz_server_t *s);
/* Close every connection that waits for its next request. */
void cz_server_close_idle(cz_server_t *s);
/* Close every connection at once. */
void cz_server_close_all(cz_server_t *s);
/* Set the most connections held (accepted beyond it: closed at once). */
void cz_server_set_max_connections(cz_server_t *s, uint32_t max);

enum {
  CZ_WRITE_CHUNK = 1 << 0, /* frame the bytes as one chunk (RFC 9112 §7.1); empty bytes: nothing */
  CZ_WRITE_LAST = 1 << 1,  /* after the bytes, the last chunk (`0` CRLF CRLF) */
  CZ_WRITE_END = 1 << 2,   /* the response is complete */
  CZ_WRITE_CLOSE = 1 << 3, /* close the connection once this output went out */
};
/*
 * Write bytes of the current response of connection `id` (its head first). The bytes are copied:
 * the caller's buffer is free again on return. With CZ_WRITE_END the
 * response is complete: the next pipelined request is parsed, or the connection closes when it
 * does not stay open. Returns the connection's buffered bytes after the write, or -1 when the
 * connection is gone. When the buffered bytes exceed `drain_over`, on_drain reports when they are
 * all out.
 */
int64_t cz_server_write(cz_server_t *s, uint32_t id, const uint8_t *data, size_t len, int flags, size_t drain_over);
/*
 * As cz_server_write, without the copy: the caller keeps the bytes unchanged until the server
 * calls release(ctx) — once the kernel took them, or the connection went (also when this call
 * fails: then before it returns).
 */
typedef void (*cz_release_t)(void *ctx);
int64_t cz_server_write_external(cz_server_t *s, uint32_t id, const uint8_t *data, size_t len, int flags, size_t drain_over,
                                 cz_release_t release, void *ctx);
/*
 * As cz_server_write, with bytes [offset, offset + len) of the file open as `fd` for body: the
 * server keeps a duplicate of the descriptor (the caller may close its own at once) and sends
 * the region with sendfile(2) when its turn comes. A file that ends before the region does
 * closes the connection.
 */
int64_t cz_server_write_file(cz_server_t *s, uint32_t id, int fd, uint64_t offset, uint64_t len, int flags, size_t drain_over);
/*
 * Give up connection `id` (a protocol switch): its descriptor leaves the server, which forgets
 * the connection without reporting it; the bytes read past the request head are copied to
 * `*rest` (malloc'd, the caller frees it; NULL when none). Returns the descriptor, or -1.
 */
int cz_server_detach(cz_server_t *s, uint32_t id, uint8_t **rest, size_t *rest_len);
/* Bytes connection `id` holds that the kernel did not take yet (coalesced or queued); -1 when gone. */
int64_t cz_server_buffered(cz_server_t *s, uint32_t id);
/* Cut a connection now (a response that failed after its head). */
void cz_server_destroy(cz_server_t *s, uint32_t id);
/* Stop and resume reading a connection's body (its consumer is slower than the client). */
void cz_server_pause(cz_server_t *s, uint32_t id);
void cz_server_resume(cz_server_t *s, uint32_t id);

typedef struct cz_server_stats {
  uint64_t accepted;
  uint64_t connections; /* open now */
  uint64_t requests;
  uint64_t refused;     /* answered by the parser's refusal, or a timeout */
  uint64_t bytes_in;
  uint64_t bytes_out;
  uint64_t writes;
} cz_server_stats_t;

void cz_server_stats(cz_server_t *s, cz_server_stats_t *out);
/* Close everything and free the server once libuv let go of its handles. */
void cz_server_free(cz_server_t *s);

#endif
