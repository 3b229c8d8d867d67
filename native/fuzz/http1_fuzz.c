/*
 * libFuzzer target for the HTTP/1.1 request parser: the input is fed in pieces whose sizes come
 * from its first bytes, under limits that also come from it. The parser must never read or write
 * out of bounds, and its events must be consistent: body bytes and ends only inside a request,
 * no more body than a Content-Length says, heads within the limits, nothing consumed after it
 * stopped, and a refusal always with a status of 400 and up.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Inative/src native/fuzz/http1_fuzz.c native/src/http1.c
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http1.h"

typedef struct {
  cz_http_limits_t limits;
  int in_request;
  int64_t content_length;
  uint64_t body;
} state_t;

static void touch(const void *data, size_t len) {
  volatile uint8_t sink = 0;
  for (size_t i = 0; i < len; i++) sink ^= ((const uint8_t *)data)[i];
  (void)sink;
}

static int on_head(void *user, const cz_http_head_t *head) {
  state_t *s = user;
  if (s->in_request) abort();
  if (head->header_count > s->limits.max_headers) abort();
  if (head->minor != 0 && head->minor != 1) abort();
  if (head->chunked && head->content_length >= 0) abort();
  touch(head->method, head->method_len);
  touch(head->target, head->target_len);
  for (size_t i = 0; i < head->header_count; i++) {
    touch(head->headers[i].name, head->headers[i].name_len);
    touch(head->headers[i].value, head->headers[i].value_len);
    if (head->headers[i].name_len == 0) abort();
  }
  s->in_request = !head->upgrade;
  s->content_length = head->chunked ? -1 : head->content_length;
  s->body = 0;
  return 0;
}

static int on_body(void *user, const uint8_t *data, size_t len) {
  state_t *s = user;
  if (!s->in_request) abort();
  touch(data, len);
  s->body += len;
  if (s->content_length >= 0 && s->body > (uint64_t)s->content_length) abort();
  if (s->body > s->limits.max_body_bytes) abort();
  return 0;
}

static int on_end(void *user) {
  state_t *s = user;
  if (!s->in_request) abort();
  if (s->content_length >= 0 && s->body != (uint64_t)s->content_length) abort();
  s->in_request = 0;
  return 0;
}

static const cz_http_events_t events = {on_head, on_body, on_end};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 3) return 0;
  state_t s;
  memset(&s, 0, sizeof s);
  s.limits.max_head_bytes = 64 + (size_t)data[0] * 64;
  s.limits.max_headers = 1 + data[1] % 64;
  s.limits.max_body_bytes = (uint64_t)data[2] * 97;
  uint8_t split = data[2];
  data += 3;
  size -= 3;
  cz_http_parser_t p;
  cz_http_init(&p, &s.limits);
  size_t at = 0;
  size_t piece = 1 + split % 17;
  while (at < size) {
    size_t n = size - at < piece ? size - at : piece;
    /* A copy of exactly the piece: reading past it shows under AddressSanitizer. */
    uint8_t *copy = malloc(n);
    memcpy(copy, data + at, n);
    size_t done = cz_http_parse(&p, copy, n, &events, &s);
    free(copy);
    if (done > n) abort();
    if (done < n && p.state != CZ_HTTP_ERROR && p.state != CZ_HTTP_UPGRADED && p.state != CZ_HTTP_CLOSED) abort();
    if (p.state == CZ_HTTP_ERROR) {
      if (p.status < 400 || p.status > 599 || p.reason == NULL) abort();
      break;
    }
    if (p.state == CZ_HTTP_UPGRADED || p.state == CZ_HTTP_CLOSED) break;
    if (p.head_len > s.limits.max_head_bytes) abort();
    /* Half the inputs let go of the parser's buffers between pieces, as the server's sweep does. */
    if (split & 1) cz_http_trim(&p);
    at += n;
    piece = 1 + (piece * 7 + split) % 29;
  }
  cz_http_release(&p);
  return 0;
}
