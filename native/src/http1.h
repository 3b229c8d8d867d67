/*
 * The HTTP/1.1 request parser (RFC 9112), sans I/O: bytes in, request heads, body bytes and
 * message ends out. Strict, and never more lenient than node:http's parser: CRLF line endings
 * only (a bare CR or LF is refused), no obs-fold, header names are tokens followed at once by
 * ':', values without control characters, one Content-Length of digits, Transfer-Encoding only
 * with chunked last and never beside Content-Length (nor in HTTP/1.0), exactly one Host in
 * HTTP/1.1, hex chunk sizes that fit, CRLF after every chunk, trailers checked as headers are.
 * What it refuses comes with the status to answer (400, 413, 417, 431, 501, 505) and a reason.
 * Incremental: any split of the input gives the same events. The engine and the fuzz target use
 * it; `parseHttp` in the addon exposes it to the differential test against node:http.
 */
#ifndef CZ_HTTP1_H
#define CZ_HTTP1_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  const char *name;
  size_t name_len;
  const char *value;
  size_t value_len;
} cz_http_header_t;

/* A request head; every pointer is valid during the on_head call only. */
typedef struct {
  const char *method;
  size_t method_len;
  const char *target;
  size_t target_len;
  int minor; /* HTTP/1.<minor>: 0 or 1 */
  const cz_http_header_t *headers;
  size_t header_count;
  int keep_alive;      /* the connection stays open after this request */
  int upgrade;         /* Connection: upgrade with an Upgrade header: the parser stops after the head */
  int expect_continue; /* Expect: 100-continue */
  int chunked;         /* the body is chunked */
  int64_t content_length; /* -1 when there is none */
} cz_http_head_t;

typedef struct {
  /* A complete head. Return nonzero to stop after it (cz_http_parse returns what it consumed). */
  int (*on_head)(void *user, const cz_http_head_t *head);
  /* Body bytes, in order, chunked framing removed. Return nonzero to stop. */
  int (*on_body)(void *user, const uint8_t *data, size_t len);
  /* The request is complete (body and trailers). Return nonzero to stop. */
  int (*on_end)(void *user);
} cz_http_events_t;

typedef struct {
  size_t max_head_bytes;   /* request line and headers, and the trailers: over it, 431 */
  size_t max_headers;      /* header fields: over it, 431 */
  uint64_t max_body_bytes; /* a declared or chunked body over it: 413 */
} cz_http_limits_t;

enum {
  CZ_HTTP_HEAD = 0,
  CZ_HTTP_BODY,
  CZ_HTTP_CHUNK_SIZE,
  CZ_HTTP_CHUNK_EXT,
  CZ_HTTP_CHUNK_SIZE_LF,
  CZ_HTTP_CHUNK_DATA,
  CZ_HTTP_CHUNK_DATA_CR,
  CZ_HTTP_CHUNK_DATA_LF,
  CZ_HTTP_TRAILER_START,
  CZ_HTTP_TRAILER_NAME,
  CZ_HTTP_TRAILER_VALUE,
  CZ_HTTP_TRAILER_LF,
  CZ_HTTP_TRAILER_END_LF,
  CZ_HTTP_UPGRADED, /* the rest of the bytes belong to the protocol switched to */
  CZ_HTTP_CLOSED,   /* a request without keep-alive ended: nothing more is read */
  CZ_HTTP_ERROR,
};

typedef struct {
  cz_http_limits_t limits;
  int state;
  /* The head being read: its bytes, and where the line-end scan is. */
  uint8_t *head;
  size_t head_len;
  size_t head_cap;
  int leading; /* still before the request line: empty lines (CRLF) are skipped */
  int leading_cr;
  int eol;     /* 0 in a line, 1 after CR, 2 after CRLF, 3 after CRLF CR */
  cz_http_header_t *headers;
  size_t headers_cap;
  /* The body. */
  uint64_t remaining;  /* of a Content-Length body or of the current chunk */
  uint64_t body_total; /* chunked: the bytes so far, against max_body_bytes */
  int chunk_digits;
  size_t chunk_ext_len;
  size_t trailer_bytes;
  int keep_alive;
  /* Why it stopped with CZ_HTTP_ERROR. */
  int status;
  const char *reason;
} cz_http_parser_t;

void cz_http_init(cz_http_parser_t *p, const cz_http_limits_t *limits);
void cz_http_release(cz_http_parser_t *p);
/*
 * Let go of the buffers kept for the next head (between requests, or while a body is read); the
 * parser makes them again when a head begins. Nothing happens while a head is being gathered.
 */
void cz_http_trim(cz_http_parser_t *p);
/*
 * Feed bytes. Returns how many were consumed: all of them, or fewer when a callback asked to
 * stop, the request switched protocols (CZ_HTTP_UPGRADED: the rest is the new protocol's), the
 * connection is done (CZ_HTTP_CLOSED) or the input was refused (CZ_HTTP_ERROR, with status and
 * reason). Feeding again after a stop goes on from there.
 */
size_t cz_http_parse(cz_http_parser_t *p, const uint8_t *data, size_t len, const cz_http_events_t *ev, void *user);

#endif
