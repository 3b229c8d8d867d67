#include "frame.h"

#include <stdlib.h>
#include <string.h>

enum { S_HEADER, S_HEADER2, S_LEN16, S_LEN64, S_MASK, S_PAYLOAD, S_DONE };

void cz_utf8_reset(cz_utf8_t *u) {
  u->needed = 0;
  u->lower = 0x80;
  u->upper = 0xbf;
}

int cz_utf8_feed(cz_utf8_t *u, const uint8_t *data, size_t len) {
  uint8_t needed = u->needed, lower = u->lower, upper = u->upper;
  size_t i = 0;
  for (;;) {
    if (needed == 0) {
      /* ASCII runs, eight bytes at a time. */
      while (i + 8 <= len) {
        uint64_t word;
        memcpy(&word, data + i, 8);
        if (word & 0x8080808080808080ull) break;
        i += 8;
      }
      while (i < len && data[i] < 0x80) i++;
      if (i == len) break;
      uint8_t byte = data[i++];
      if (byte >= 0xc2 && byte <= 0xdf) {
        needed = 1;
      } else if (byte >= 0xe0 && byte <= 0xef) {
        needed = 2;
        if (byte == 0xe0) lower = 0xa0;      /* overlong three-byte form */
        else if (byte == 0xed) upper = 0x9f; /* surrogates */
      } else if (byte >= 0xf0 && byte <= 0xf4) {
        needed = 3;
        if (byte == 0xf0) lower = 0x90;      /* overlong four-byte form */
        else if (byte == 0xf4) upper = 0x8f; /* above U+10FFFF */
      } else {
        cz_utf8_reset(u);
        return 0;
      }
      continue;
    }
    if (i == len) break;
    uint8_t byte = data[i++];
    if (byte < lower || byte > upper) {
      cz_utf8_reset(u);
      return 0;
    }
    lower = 0x80;
    upper = 0xbf;
    needed--;
  }
  u->needed = needed;
  u->lower = lower;
  u->upper = upper;
  return 1;
}

int cz_utf8_valid(const uint8_t *data, size_t len) {
  cz_utf8_t u;
  cz_utf8_reset(&u);
  return cz_utf8_feed(&u, data, len) && u.needed == 0;
}

int cz_valid_close_code(unsigned code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

void cz_parser_init(cz_parser_t *p, uint64_t max_message, uint64_t max_frame) {
  memset(p, 0, sizeof *p);
  p->max_message = max_message;
  p->max_frame = max_frame;
  p->state = S_HEADER;
  cz_utf8_reset(&p->utf8);
}

void cz_parser_release(cz_parser_t *p) {
  free(p->control);
  p->control = NULL;
  p->state = S_DONE;
}

void cz_parser_stop(cz_parser_t *p) {
  p->state = S_DONE;
}

int cz_parser_done(const cz_parser_t *p) {
  return p->state == S_DONE;
}

static size_t fail(cz_parser_t *p, const cz_parser_events_t *ev, void *user, uint16_t code, const char *reason) {
  p->state = S_DONE;
  ev->on_error(user, code, reason);
  return 0;
}

/*
 * The most bytes a compressed message (or frame) of `limit` bytes inflated may take on the wire:
 * zlib's bound for fixed Huffman codes with 9-bit literals, plus block headers. The same as
 * compressedBound in src/protocol/websocket/constants.ts.
 */
static uint64_t compressed_bound(uint64_t limit) {
  uint64_t bound = limit + limit / 8 + limit / 256 + limit / 512 + 64;
  return bound < limit ? UINT64_MAX : bound;
}

/*
 * The frame's length is known: check it against the limits (data frames) before any payload. A
 * compressed message's limits hold for it inflated (checked while inflating); on the wire it may
 * take more by what deflate adds.
 */
static int length_known(cz_parser_t *p, const cz_parser_events_t *ev, void *user) {
  if (p->opcode < 0x8) {
    int compressed = p->opcode == CZ_OP_CONT ? p->message_compressed : p->rsv1;
    uint64_t max_frame = compressed ? compressed_bound(p->max_frame) : p->max_frame;
    uint64_t max_message = compressed ? compressed_bound(p->max_message) : p->max_message;
    if (p->payload_left > max_frame) return fail(p, ev, user, CZ_CLOSE_TOO_BIG, "Frame too large"), 0;
    if (p->message_len + p->payload_left > max_message) return fail(p, ev, user, CZ_CLOSE_TOO_BIG, "Message too large"), 0;
  }
  p->state = S_MASK;
  p->have = 0;
  return 1;
}

static void unmask(uint8_t *data, size_t len, const uint8_t mask[4], uint8_t pos) {
  size_t i = 0;
  /* Byte by byte until the mask lines up with the start, then eight bytes at a time. */
  while (i < len && pos != 0) {
    data[i++] ^= mask[pos];
    pos = (pos + 1) & 3;
  }
  size_t aligned = i; /* mask[0] applies here */
  if (len - i >= 8) {
    uint8_t m8[8] = {mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3]};
    uint64_t m;
    memcpy(&m, m8, 8);
    for (; i + 8 <= len; i += 8) {
      uint64_t w;
      memcpy(&w, data + i, 8);
      w ^= m;
      memcpy(data + i, &w, 8);
    }
  }
  for (; i < len; i++) data[i] ^= mask[(i - aligned) & 3];
}

/* A complete control frame, its payload `d` (`n` bytes). Returns 0 to go on, nonzero to stop. */
static int control_frame(cz_parser_t *p, const cz_parser_events_t *ev, void *user, const uint8_t *d, size_t n) {
  if (p->opcode != CZ_OP_CLOSE) return ev->on_control(user, p->opcode, d, n);
  if (n == 1) return fail(p, ev, user, CZ_CLOSE_PROTOCOL_ERROR, "Close frame with a one-byte payload"), 1;
  uint16_t code = CZ_CLOSE_NO_STATUS;
  if (n >= 2) {
    code = (uint16_t)((d[0] << 8) | d[1]);
    if (!cz_valid_close_code(code)) return fail(p, ev, user, CZ_CLOSE_PROTOCOL_ERROR, "Invalid close code"), 1;
    if (!cz_utf8_valid(d + 2, n - 2)) return fail(p, ev, user, CZ_CLOSE_INVALID_PAYLOAD, "Invalid UTF-8 in close reason"), 1;
  }
  p->state = S_DONE;
  ev->on_close(user, code, n >= 2 ? d + 2 : d, n >= 2 ? n - 2 : 0);
  return 1;
}

/*
 * Payload bytes of a data frame, unmasked (none for an empty frame): message bookkeeping, UTF-8 of
 * uncompressed text, then the event. Returns nonzero to stop parsing.
 */
static int data_payload(cz_parser_t *p, const cz_parser_events_t *ev, void *user, const uint8_t *chunk, size_t n) {
  int first = 0;
  if (p->opcode != CZ_OP_CONT && p->message_opcode == 0) {
    p->message_opcode = p->opcode;
    p->message_compressed = p->rsv1;
    first = 1;
  }
  int binary = p->message_opcode == CZ_OP_BINARY;
  int compressed = p->message_compressed;
  int last = p->fin && p->payload_left == 0;
  p->message_len += n;
  if (!binary && !compressed && !cz_utf8_feed(&p->utf8, chunk, n)) {
    fail(p, ev, user, CZ_CLOSE_INVALID_PAYLOAD, "Invalid UTF-8 in text message");
    return 1;
  }
  if (last && !binary && !compressed && p->utf8.needed != 0) {
    fail(p, ev, user, CZ_CLOSE_INVALID_PAYLOAD, p->message_frames == 0 ? "Invalid UTF-8 in text message" : "Text message ends inside a character");
    return 1;
  }
  if (p->payload_left == 0) {
    p->state = S_HEADER;
    if (!p->fin && p->message_frames < 2) p->message_frames++;
  }
  if (last) {
    p->message_opcode = 0;
    p->message_frames = 0;
    p->message_len = 0;
    cz_utf8_reset(&p->utf8);
  }
  if (ev->on_data(user, chunk, n, first, last, (binary ? CZ_DATA_BINARY : 0) | (compressed ? CZ_DATA_COMPRESSED : 0))) return 1;
  return p->state == S_DONE;
}

size_t cz_parse(cz_parser_t *p, uint8_t *data, size_t len, const cz_parser_events_t *ev, void *user) {
  size_t i = 0;
  while (i < len) {
    switch (p->state) {
      case S_HEADER: {
        uint8_t b = data[i++];
        p->fin = (b & 0x80) != 0;
        p->opcode = b & 0x0f;
        p->rsv1 = (b & 0x40) != 0;
        /* §5.2: RSV2 and RSV3 need an extension that defines them; none is supported. */
        if (b & 0x30) return fail(p, ev, user, CZ_CLOSE_PROTOCOL_ERROR, "Reserved bits set"), i;
        /* RFC 7692 §6: RSV1 marks the first frame of a compressed data message, only when negotiated. */
        if (p->rsv1 && (!p->compression || p->opcode >= 0x8 || p->opcode == CZ_OP_CONT)) {
          return fail(p, ev, user, CZ_CLOSE_PROTOCOL_ERROR, "RSV1 set without a negotiated extension"), i;
        }
        if (p->opcode >= 0x8) {
          if (p->opcode > CZ_OP_PONG) return fail(p, ev, user, CZ_CLOSE_PROTOCOL_ERROR, "Reserved opcode"), i;
          if (!p->fin) return fail(p, ev, user, CZ_CLOSE_PROTOCOL_ERROR, "Fragmented control frame"), i;
        } else if (p->opcode > CZ_OP_BINARY) {
          return fail(p, ev, user, CZ_CLOSE_PROTOCOL_ERROR, "Reserved opcode"), i;
        } else if (p->opcode == CZ_OP_CONT) {
          if (p->message_opcode == 0) return fail(p, ev, user, CZ_CLOSE_PROTOCOL_ERROR, "Continuation frame without a message"), i;
        } else if (p->message_opcode != 0) {
          return fail(p, ev, user, CZ_CLOSE_PROTOCOL_ERROR, "New data frame inside a fragmented message"), i;
        }
        p->state = S_HEADER2;
        break;
      }
      case S_HEADER2: {
        uint8_t b = data[i++];
        if (!(b & 0x80)) return fail(p, ev, user, CZ_CLOSE_PROTOCOL_ERROR, "Client frame not masked"), i;
        uint8_t n = b & 0x7f;
        if (p->opcode >= 0x8 && n > CZ_MAX_CONTROL) return fail(p, ev, user, CZ_CLOSE_PROTOCOL_ERROR, "Control frame too long"), i;
        p->have = 0;
        if (n == 126) {
          p->state = S_LEN16;
        } else if (n == 127) {
          p->state = S_LEN64;
        } else {
          p->payload_left = n;
          if (!length_known(p, ev, user)) return i;
        }
        break;
      }
      case S_LEN16:
      case S_LEN64: {
        uint8_t need = p->state == S_LEN16 ? 2 : 8;
        while (p->have < need && i < len) p->scratch[p->have++] = data[i++];
        if (p->have < need) return i;
        uint64_t v = 0;
        for (uint8_t k = 0; k < need; k++) v = (v << 8) | p->scratch[k];
        /* §5.2: the most significant bit of a 64-bit length must be 0. */
        if (need == 8 && (v >> 63)) return fail(p, ev, user, CZ_CLOSE_PROTOCOL_ERROR, "Frame too large"), i;
        p->payload_left = v;
        if (!length_known(p, ev, user)) return i;
        break;
      }
      case S_MASK:
        while (p->have < 4 && i < len) p->mask[p->have++] = data[i++];
        if (p->have < 4) return i;
        p->mask_pos = 0;
        p->control_len = 0;
        p->state = S_PAYLOAD;
        if (p->payload_left == 0) goto frame_end;
        break;
      case S_PAYLOAD: {
        size_t n = len - i;
        if ((uint64_t)n > p->payload_left) n = (size_t)p->payload_left;
        uint8_t *chunk = data + i;
        unmask(chunk, n, p->mask, p->mask_pos);
        p->mask_pos = (uint8_t)((p->mask_pos + n) & 3);
        p->payload_left -= n;
        i += n;
        if (p->opcode >= 0x8) {
          if (p->payload_left == 0 && p->control_len == 0) {
            /* The whole payload is in this piece: read in place. */
            p->state = S_HEADER;
            if (control_frame(p, ev, user, chunk, n)) return i;
            break;
          }
          if (p->control == NULL && (p->control = malloc(CZ_MAX_CONTROL)) == NULL) {
            return fail(p, ev, user, CZ_CLOSE_INTERNAL_ERROR, "Out of memory"), i;
          }
          memcpy(p->control + p->control_len, chunk, n);
          p->control_len = (uint8_t)(p->control_len + n);
          if (p->payload_left == 0) goto frame_end;
          break;
        }
        if (data_payload(p, ev, user, chunk, n)) return i;
        break;
      }
      default: /* S_DONE */
        return i;
    }
    continue;
  frame_end:
    p->state = S_HEADER;
    if (p->opcode >= 0x8) {
      static const uint8_t none[1] = {0};
      uint8_t *gathered = p->control;
      p->control = NULL;
      int stop = control_frame(p, ev, user, gathered != NULL ? gathered : none, p->control_len);
      free(gathered);
      if (stop) return i;
    } else {
      /* An empty data frame. */
      if (data_payload(p, ev, user, data + i, 0)) return i;
    }
  }
  return i;
}

size_t cz_header_size(uint64_t len) {
  return len < 126 ? 2 : len < 65536 ? 4 : 10;
}

size_t cz_write_header(uint8_t *out, int opcode, uint64_t len, int rsv1) {
  out[0] = (uint8_t)(0x80 | (rsv1 ? 0x40 : 0) | (opcode & 0x0f));
  if (len < 126) {
    out[1] = (uint8_t)len;
    return 2;
  }
  if (len < 65536) {
    out[1] = 126;
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
    return 4;
  }
  out[1] = 127;
  for (int k = 0; k < 8; k++) out[2 + k] = (uint8_t)(len >> (56 - 8 * k));
  return 10;
}
