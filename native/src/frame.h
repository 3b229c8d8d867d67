/*
 * The WebSocket frame parser (RFC 6455), sans I/O: bytes in, events out. Client frames only
 * (a server's parser): masking required, all length forms, RSV/opcode/control-frame rules,
 * fragmentation with interleaved control frames, incremental UTF-8 validation of text, close
 * frame validation, and the frame/message size limits. The engine and the fuzz target use it.
 */
#ifndef CZ_FRAME_H
#define CZ_FRAME_H

#include <stddef.h>
#include <stdint.h>

enum {
  CZ_OP_CONT = 0x0,
  CZ_OP_TEXT = 0x1,
  CZ_OP_BINARY = 0x2,
  CZ_OP_CLOSE = 0x8,
  CZ_OP_PING = 0x9,
  CZ_OP_PONG = 0xA,
};

enum {
  CZ_CLOSE_NORMAL = 1000,
  CZ_CLOSE_GOING_AWAY = 1001,
  CZ_CLOSE_PROTOCOL_ERROR = 1002,
  CZ_CLOSE_NO_STATUS = 1005,
  CZ_CLOSE_ABNORMAL = 1006,
  CZ_CLOSE_INVALID_PAYLOAD = 1007,
  CZ_CLOSE_POLICY_VIOLATION = 1008,
  CZ_CLOSE_TOO_BIG = 1009,
  CZ_CLOSE_INTERNAL_ERROR = 1011,
  CZ_CLOSE_TRY_AGAIN_LATER = 1013,
};

#define CZ_MAX_CONTROL 125
#define CZ_DATA_BINARY 1
#define CZ_DATA_COMPRESSED 2

/* Incremental UTF-8 (RFC 3629): overlong forms, surrogates and code points above U+10FFFF fail. */
typedef struct {
  uint8_t needed; /* continuation bytes still expected */
  uint8_t lower;  /* allowed range of the next continuation byte */
  uint8_t upper;
} cz_utf8_t;

void cz_utf8_reset(cz_utf8_t *u);
/* Returns 0 as soon as the bytes cannot be valid UTF-8. */
int cz_utf8_feed(cz_utf8_t *u, const uint8_t *data, size_t len);
int cz_utf8_valid(const uint8_t *data, size_t len);

typedef struct cz_parser_events {
  /*
   * Payload bytes of the current data message, unmasked, in order. `first`: the message's first
   * bytes; `last`: its final bytes (then the message is complete). A message may come in one call
   * (first and last) or many. `flags`: CZ_DATA_BINARY, CZ_DATA_COMPRESSED (permessage-deflate:
   * the bytes are compressed and their UTF-8 is not checked here). Return nonzero to stop.
   */
  int (*on_data)(void *user, const uint8_t *data, size_t len, int first, int last, int flags);
  /* A complete ping or pong (payload at most 125 bytes, valid during the call). Return nonzero to stop. */
  int (*on_control)(void *user, int opcode, const uint8_t *data, size_t len);
  /* A valid close frame: code 1005 when it had none; the reason is valid during the call. Parsing ends. */
  void (*on_close)(void *user, uint16_t code, const uint8_t *reason, size_t reason_len);
  /* The peer broke the protocol or a limit: fail the connection with this code. Parsing ends. */
  void (*on_error)(void *user, uint16_t code, const char *reason);
} cz_parser_events_t;

typedef struct cz_parser {
  uint64_t max_message;
  uint64_t max_frame;
  uint64_t payload_left;
  uint64_t message_len;
  uint8_t state;
  uint8_t fin;
  uint8_t opcode;
  uint8_t message_opcode; /* 0 when no data message is in progress */
  uint8_t message_frames; /* 0, 1 or 2 (= more than one) frames of the current message so far */
  uint8_t compression;    /* permessage-deflate was negotiated: RSV1 may mark a message */
  uint8_t rsv1;           /* of the current frame */
  uint8_t message_compressed;
  uint8_t have;           /* bytes gathered of the extended length or the mask */
  uint8_t mask_pos;
  uint8_t control_len;
  uint8_t scratch[8];
  uint8_t mask[4];
  cz_utf8_t utf8;
  /*
   * A control frame whose payload comes in more than one piece is gathered here (CZ_MAX_CONTROL
   * bytes, allocated then and freed after the frame); one that comes whole is read in place.
   */
  uint8_t *control;
} cz_parser_t;

void cz_parser_init(cz_parser_t *p, uint64_t max_message, uint64_t max_frame);
/* Free what the parser holds (a control frame cut short). It may not parse afterwards. */
void cz_parser_release(cz_parser_t *p);
/* Take no more input (the connection failed for a reason found after parsing, such as inflation). */
void cz_parser_stop(cz_parser_t *p);
/* Whether the parser takes no more input (a close frame or an error). */
int cz_parser_done(const cz_parser_t *p);
/*
 * Parse `len` bytes (unmasked in place). Returns how many were consumed: all of them, unless a
 * callback asked to stop or parsing ended.
 */
size_t cz_parse(cz_parser_t *p, uint8_t *data, size_t len, const cz_parser_events_t *events, void *user);

/* Close codes a peer may send (RFC 6455 §7.4). */
int cz_valid_close_code(unsigned code);

/* Length of a server frame header (unmasked) for a payload of `len` bytes: 2, 4 or 10. */
size_t cz_header_size(uint64_t len);
/* Write a final, unmasked frame header; returns its length. */
size_t cz_write_header(uint8_t *out, int opcode, uint64_t len, int rsv1);

#endif
