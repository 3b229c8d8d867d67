/*
 * libFuzzer target for the frame parser: the input is fed in pieces whose sizes come from its
 * first bytes, under limits that also come from it; the parser must never read or write out of
 * bounds, and its events must be consistent (messages within the limit, control payloads within
 * 125 bytes, nothing after the end).
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Inative/src native/fuzz/parser_fuzz.c native/src/frame.c
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

typedef struct {
  uint64_t max_message;
  uint64_t message_len;
  int in_message;
  int ended;
} state_t;

static int on_data(void *user, const uint8_t *data, size_t len, int first, int last, int flags) {
  state_t *s = user;
  (void)flags;
  if (s->ended) abort();
  if (first) {
    if (s->in_message) abort();
    s->in_message = 1;
    s->message_len = 0;
  } else if (!s->in_message) {
    abort();
  }
  /* Touch every byte: out-of-bounds pointers show up under AddressSanitizer. */
  volatile uint8_t sink = 0;
  for (size_t i = 0; i < len; i++) sink ^= data[i];
  (void)sink;
  s->message_len += len;
  if (s->message_len > s->max_message) abort();
  if (last) s->in_message = 0;
  return 0;
}

static int on_control(void *user, int opcode, const uint8_t *data, size_t len) {
  state_t *s = user;
  if (s->ended || len > CZ_MAX_CONTROL || (opcode != CZ_OP_PING && opcode != CZ_OP_PONG)) abort();
  volatile uint8_t sink = 0;
  for (size_t i = 0; i < len; i++) sink ^= data[i];
  (void)sink;
  return 0;
}

static void on_close(void *user, uint16_t code, const uint8_t *reason, size_t len) {
  state_t *s = user;
  if (s->ended || len > CZ_MAX_CONTROL - 2) abort();
  if (code != CZ_CLOSE_NO_STATUS && !cz_valid_close_code(code)) abort();
  if (!cz_utf8_valid(reason, len)) abort();
  s->ended = 1;
}

static void on_error(void *user, uint16_t code, const char *reason) {
  state_t *s = user;
  if (s->ended || reason == NULL || code < 1000) abort();
  s->ended = 1;
}

static const cz_parser_events_t events = {on_data, on_control, on_close, on_error};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 3) return 0;
  state_t s = {0};
  s.max_message = 1 + ((size_t)data[0] << 8 | data[1]) * 16;
  size_t step = 1 + data[2];
  data += 3;
  size -= 3;
  cz_parser_t parser;
  cz_parser_init(&parser, s.max_message, s.max_message);
  /* A private copy per piece: the parser unmasks in place, and pieces must not overlap. */
  for (size_t at = 0; at < size && !cz_parser_done(&parser);) {
    size_t n = size - at < step ? size - at : step;
    uint8_t *piece = malloc(n);
    if (piece == NULL) {
      cz_parser_release(&parser);
      return 0;
    }
    memcpy(piece, data + at, n);
    size_t done = 0;
    while (done < n && !cz_parser_done(&parser)) {
      size_t used = cz_parse(&parser, piece + done, n - done, &events, &s);
      if (used > n - done) abort();
      done += used;
    }
    free(piece);
    at += n;
  }
  if (cz_parser_done(&parser) != s.ended) abort();
  cz_parser_release(&parser);
  return 0;
}
