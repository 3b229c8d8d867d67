/* The HTTP/1.1 request parser: see http1.h. */
#include "http1.h"

#include <stdlib.h>
#include <string.h>

/* Chunk extensions of one chunk over this many bytes: 413, as node:http answers. */
#define CZ_MAX_CHUNK_EXT 16384

/* tchar (RFC 9110 §5.6.2): the characters of a token. */
static const uint8_t TCHAR[256] = {
  ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
  ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
  ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
  ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1,
  ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1,
  ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
  ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1,
  ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1,
  ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

/* A field value's characters: HTAB, SP, VCHAR, obs-text. No other control character, no DEL. */
static int value_char(uint8_t c) {
  return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/*
 * The methods node:http's parser knows; it refuses any other with 400, and so does this one.
 * CONNECT is answered 501 in parse_head: the server is no proxy.
 */
static const char *const METHODS[] = {
  "DELETE", "GET", "HEAD", "POST", "PUT", "CONNECT", "OPTIONS", "TRACE", "COPY", "LOCK", "MKCOL",
  "MOVE", "PROPFIND", "PROPPATCH", "SEARCH", "UNLOCK", "BIND", "REBIND", "UNBIND", "ACL", "REPORT",
  "MKACTIVITY", "CHECKOUT", "MERGE", "M-SEARCH", "NOTIFY", "SUBSCRIBE", "UNSUBSCRIBE", "PATCH",
  "PURGE", "MKCALENDAR", "LINK", "UNLINK", "SOURCE", "QUERY",
};

static int known_method(const char *m, size_t len) {
  for (size_t i = 0; i < sizeof METHODS / sizeof METHODS[0]; i++) {
    if (strlen(METHODS[i]) == len && memcmp(METHODS[i], m, len) == 0) return 1;
  }
  return 0;
}

static int lower(int c) {
  return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* Whether [s, s + len) is `token` (given in lower case), in any case. */
static int token_is(const char *s, size_t len, const char *token) {
  size_t n = strlen(token);
  if (len != n) return 0;
  for (size_t i = 0; i < n; i++) {
    if (lower((uint8_t)s[i]) != token[i]) return 0;
  }
  return 1;
}

static int name_is(const cz_http_header_t *h, const char *name) {
  return token_is(h->name, h->name_len, name);
}

static size_t fail(cz_http_parser_t *p, int status, const char *reason, size_t consumed) {
  p->state = CZ_HTTP_ERROR;
  p->status = status;
  p->reason = reason;
  return consumed;
}

void cz_http_init(cz_http_parser_t *p, const cz_http_limits_t *limits) {
  memset(p, 0, sizeof *p);
  p->limits = *limits;
  p->state = CZ_HTTP_HEAD;
  p->leading = 1;
}

void cz_http_release(cz_http_parser_t *p) {
  free(p->head);
  free(p->headers);
  p->head = NULL;
  p->headers = NULL;
  p->head_cap = p->headers_cap = 0;
}

void cz_http_trim(cz_http_parser_t *p) {
  if (p->state == CZ_HTTP_HEAD && p->head_len > 0) return;
  /* Past its head a request's head bytes are not read again (trailers are parsed byte by byte). */
  p->head_len = 0;
  cz_http_release(p);
}

/* One element of a comma-separated list, OWS trimmed: [*s, *s + *len). Returns 0 at the end. */
static int next_element(const char **cursor, const char *end, const char **s, size_t *len) {
  const char *c = *cursor;
  if (c > end) return 0;
  const char *start = c;
  while (c < end && *c != ',') c++;
  const char *stop = c;
  while (start < stop && (*start == ' ' || *start == '\t')) start++;
  while (stop > start && (stop[-1] == ' ' || stop[-1] == '\t')) stop--;
  *s = start;
  *len = (size_t)(stop - start);
  *cursor = c + 1;
  return 1;
}

typedef struct {
  int status;
  const char *reason;
} verdict_t;

static verdict_t refuse(int status, const char *reason) {
  verdict_t v = {status, reason};
  return v;
}

/* Parse the complete head in p->head[0, p->head_len) (it ends with CRLF CRLF) into `head`. */
static verdict_t parse_head(cz_http_parser_t *p, cz_http_head_t *head) {
  const char *s = (const char *)p->head;
  const char *end = s + p->head_len;
  memset(head, 0, sizeof *head);
  head->content_length = -1;

  /* request-line = method SP request-target SP HTTP-version CRLF */
  const char *c = s;
  while (c < end && TCHAR[(uint8_t)*c]) c++;
  if (c == s || c >= end || *c != ' ') return refuse(400, "Invalid method");
  head->method = s;
  head->method_len = (size_t)(c - s);
  if (!known_method(head->method, head->method_len)) return refuse(400, "Invalid method");
  const char *target = ++c;
  while (c < end && (uint8_t)*c > 0x20 && (uint8_t)*c < 0x7f) c++;
  if (c == target || c >= end || *c != ' ') return refuse(400, "Invalid request target");
  head->target = target;
  head->target_len = (size_t)(c - target);
  c++;
  if (end - c < 10 || memcmp(c, "HTTP/", 5) != 0) return refuse(400, "Invalid HTTP version");
  if (c[5] < '0' || c[5] > '9' || c[6] != '.' || c[7] < '0' || c[7] > '9' || c[8] != '\r') return refuse(400, "Invalid HTTP version");
  /* Another major version: 505. HTTP/1.2 and later minors: 400, as node:http answers them. */
  if (c[5] != '1') return refuse(505, "HTTP Version Not Supported");
  if (c[7] != '0' && c[7] != '1') return refuse(400, "Invalid HTTP version");
  head->minor = c[7] - '0';
  c += 10; /* past CRLF */
  if (head->method_len == 7 && memcmp(head->method, "CONNECT", 7) == 0) return refuse(501, "CONNECT is not supported");
  /* origin-form, absolute-form, or asterisk-form for OPTIONS. */
  if (head->target[0] != '/') {
    int asterisk = head->target_len == 1 && head->target[0] == '*' && head->method_len == 7 && memcmp(head->method, "OPTIONS", 7) == 0;
    int absolute = head->target_len > 7 && (token_is(head->target, 7, "http://") || (head->target_len > 8 && token_is(head->target, 8, "https://")));
    if (!asterisk && !absolute) return refuse(400, "Invalid request target");
  }

  size_t count = 0;
  int hosts = 0, lengths = 0, encodings = 0, upgrade_header = 0, connection_upgrade = 0;
  int connection_close = 0, connection_keep_alive = 0;
  while (c < end) {
    if (c[0] == '\r') break; /* the empty line */
    if (*c == ' ' || *c == '\t') return refuse(400, "Obsolete line folding is not allowed");
    const char *name = c;
    while (c < end && TCHAR[(uint8_t)*c]) c++;
    if (c == name || c >= end || *c != ':') return refuse(400, "Invalid header name");
    size_t name_len = (size_t)(c - name);
    c++;
    while (c < end && (*c == ' ' || *c == '\t')) c++;
    const char *value = c;
    while (c < end && *c != '\r') {
      if (!value_char((uint8_t)*c)) return refuse(400, "Invalid header value character");
      c++;
    }
    const char *value_end = c;
    while (value_end > value && (value_end[-1] == ' ' || value_end[-1] == '\t')) value_end--;
    c += 2; /* CRLF: the scan made sure every CR has its LF */
    if (count == p->limits.max_headers) return refuse(431, "Too many header fields");
    if (count == p->headers_cap) {
      size_t cap = p->headers_cap == 0 ? 16 : p->headers_cap * 2;
      cz_http_header_t *grown = realloc(p->headers, cap * sizeof *grown);
      if (grown == NULL) return refuse(503, "Out of memory");
      p->headers = grown;
      p->headers_cap = cap;
    }
    cz_http_header_t *h = &p->headers[count++];
    h->name = name;
    h->name_len = name_len;
    h->value = value;
    h->value_len = (size_t)(value_end - value);

    if (name_is(h, "host")) {
      hosts++;
    } else if (name_is(h, "content-length")) {
      if (++lengths > 1) return refuse(400, "More than one Content-Length");
      if (h->value_len == 0 || h->value_len > 15) return refuse(400, "Invalid Content-Length");
      int64_t n = 0;
      for (size_t i = 0; i < h->value_len; i++) {
        if (h->value[i] < '0' || h->value[i] > '9') return refuse(400, "Invalid Content-Length");
        n = n * 10 + (h->value[i] - '0');
      }
      head->content_length = n;
    } else if (name_is(h, "transfer-encoding")) {
      /* Several Transfer-Encoding fields are one list; chunked must be last, once. */
      const char *cursor = h->value, *e;
      size_t elen;
      while (next_element(&cursor, h->value + h->value_len, &e, &elen)) {
        if (elen == 0) return refuse(400, "Invalid Transfer-Encoding");
        if (head->chunked) return refuse(400, "chunked must be the last transfer coding");
        encodings++;
        if (token_is(e, elen, "chunked")) head->chunked = 1;
      }
    } else if (name_is(h, "connection")) {
      const char *cursor = h->value, *e;
      size_t elen;
      while (next_element(&cursor, h->value + h->value_len, &e, &elen)) {
        if (token_is(e, elen, "close")) connection_close = 1;
        else if (token_is(e, elen, "keep-alive")) connection_keep_alive = 1;
        else if (token_is(e, elen, "upgrade")) connection_upgrade = 1;
      }
    } else if (name_is(h, "upgrade")) {
      upgrade_header = 1;
    } else if (name_is(h, "expect")) {
      if (token_is(h->value, h->value_len, "100-continue")) head->expect_continue = 1;
      else return refuse(417, "Expectation Failed");
    }
  }
  head->headers = p->headers;
  head->header_count = count;
  if (encodings > 0) {
    if (lengths > 0) return refuse(400, "Content-Length and Transfer-Encoding together");
    if (head->minor == 0) return refuse(400, "Transfer-Encoding in an HTTP/1.0 request");
    if (!head->chunked) return refuse(400, "The last transfer coding must be chunked");
    if (encodings > 1) return refuse(501, "Transfer codings other than chunked are not supported");
  }
  if (head->minor == 1 && hosts == 0) return refuse(400, "Missing Host header");
  if (hosts > 1) return refuse(400, "More than one Host header");
  if (head->content_length > 0 && (uint64_t)head->content_length > p->limits.max_body_bytes) return refuse(413, "Content Too Large");
  head->keep_alive = head->minor == 1 ? !connection_close : (connection_keep_alive && !connection_close);
  head->upgrade = connection_upgrade && upgrade_header;
  return refuse(0, NULL);
}

/* Append input to the head buffer. */
static int keep_head(cz_http_parser_t *p, const uint8_t *data, size_t len) {
  if (p->head_len + len > p->head_cap) {
    size_t cap = p->head_cap == 0 ? 1024 : p->head_cap;
    while (cap < p->head_len + len) cap *= 2;
    uint8_t *grown = realloc(p->head, cap);
    if (grown == NULL) return 0;
    p->head = grown;
    p->head_cap = cap;
  }
  memcpy(p->head + p->head_len, data, len);
  p->head_len += len;
  return 1;
}

/* The message ended: report it and get ready for the next, or stop reading. */
static int message_end(cz_http_parser_t *p, const cz_http_events_t *ev, void *user) {
  p->state = p->keep_alive ? CZ_HTTP_HEAD : CZ_HTTP_CLOSED;
  p->head_len = 0;
  p->leading = 1;
  p->leading_cr = 0;
  p->eol = 0;
  return ev->on_end(user);
}

static int hex(uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

size_t cz_http_parse(cz_http_parser_t *p, const uint8_t *data, size_t len, const cz_http_events_t *ev, void *user) {
  size_t i = 0;
  while (i < len) {
    switch (p->state) {
      case CZ_HTTP_HEAD: {
        /* Empty lines before a request line are skipped (RFC 9112 §2.2). */
        while (p->leading && i < len) {
          uint8_t b = data[i];
          if (p->leading_cr) {
            if (b != '\n') return fail(p, 400, "CR without LF", i);
            p->leading_cr = 0;
            i++;
          } else if (b == '\r') {
            p->leading_cr = 1;
            i++;
          } else if (b == '\n') {
            return fail(p, 400, "LF without CR", i);
          } else {
            p->leading = 0;
          }
        }
        if (i == len) return len;
        /* Find the end of the head; every CR must be followed by LF and every LF preceded by CR. */
        size_t start = i;
        int found = 0;
        while (i < len) {
          uint8_t b = data[i++];
          if (b == '\n') {
            if (p->eol == 1) p->eol = 2;
            else if (p->eol == 3) {
              found = 1;
              break;
            } else return fail(p, 400, "LF without CR", i - 1);
          } else if (b == '\r') {
            if (p->eol == 1 || p->eol == 3) return fail(p, 400, "CR without LF", i - 1);
            p->eol = p->eol == 2 ? 3 : 1;
          } else {
            if (p->eol == 1 || p->eol == 3) return fail(p, 400, "CR without LF", i - 1);
            p->eol = 0;
          }
        }
        if (p->head_len + (i - start) > p->limits.max_head_bytes) return fail(p, 431, "Request Header Fields Too Large", i);
        if (!keep_head(p, data + start, i - start)) return fail(p, 503, "Out of memory", i);
        if (!found) return len;
        cz_http_head_t head;
        verdict_t v = parse_head(p, &head);
        if (v.status != 0) return fail(p, v.status, v.reason, i);
        p->keep_alive = head.keep_alive;
        if (head.upgrade) p->state = CZ_HTTP_UPGRADED;
        else if (head.chunked) {
          p->state = CZ_HTTP_CHUNK_SIZE;
          p->chunk_digits = 0;
          p->remaining = 0;
          p->body_total = 0;
          p->chunk_ext_len = 0;
        } else if (head.content_length > 0) {
          p->state = CZ_HTTP_BODY;
          p->remaining = (uint64_t)head.content_length;
        } else {
          p->state = CZ_HTTP_BODY;
          p->remaining = 0;
        }
        int stop = ev->on_head(user, &head);
        if (p->state == CZ_HTTP_UPGRADED) return i;
        if (p->state == CZ_HTTP_BODY && p->remaining == 0) {
          if (message_end(p, ev, user) || stop) return i;
          if (p->state == CZ_HTTP_CLOSED) return i;
        } else if (stop) {
          return i;
        }
        break;
      }
      case CZ_HTTP_BODY: {
        size_t n = len - i;
        if (n > p->remaining) n = (size_t)p->remaining;
        p->remaining -= n;
        int stop = ev->on_body(user, data + i, n);
        i += n;
        if (p->remaining == 0) {
          if (message_end(p, ev, user) || stop || p->state == CZ_HTTP_CLOSED) return i;
        } else if (stop) {
          return i;
        }
        break;
      }
      case CZ_HTTP_CHUNK_SIZE: {
        uint8_t b = data[i];
        int d = hex(b);
        if (d >= 0) {
          if (p->chunk_digits == 16 || (p->remaining >> 60) != 0) return fail(p, 400, "Chunk size too large", i);
          p->remaining = p->remaining * 16 + (uint64_t)d;
          p->chunk_digits++;
          i++;
        } else if (p->chunk_digits == 0) {
          return fail(p, 400, "Invalid chunk size", i);
        } else if (b == ';') {
          p->state = CZ_HTTP_CHUNK_EXT;
          p->chunk_ext_len = 0;
          i++;
        } else if (b == '\r') {
          p->state = CZ_HTTP_CHUNK_SIZE_LF;
          i++;
        } else {
          return fail(p, 400, "Invalid chunk size", i);
        }
        break;
      }
      case CZ_HTTP_CHUNK_EXT: {
        uint8_t b = data[i];
        if (b == '\r') {
          p->state = CZ_HTTP_CHUNK_SIZE_LF;
        } else if (!value_char(b)) {
          return fail(p, 400, "Invalid character in chunk extensions", i);
        } else if (++p->chunk_ext_len > CZ_MAX_CHUNK_EXT) {
          return fail(p, 413, "Chunk extensions too large", i);
        }
        i++;
        break;
      }
      case CZ_HTTP_CHUNK_SIZE_LF: {
        if (data[i] != '\n') return fail(p, 400, "CR without LF", i);
        i++;
        if (p->remaining == 0) {
          p->state = CZ_HTTP_TRAILER_START;
          p->trailer_bytes = 0;
        } else {
          p->body_total += p->remaining;
          if (p->body_total > p->limits.max_body_bytes) return fail(p, 413, "Content Too Large", i);
          p->state = CZ_HTTP_CHUNK_DATA;
        }
        break;
      }
      case CZ_HTTP_CHUNK_DATA: {
        size_t n = len - i;
        if (n > p->remaining) n = (size_t)p->remaining;
        p->remaining -= n;
        int stop = ev->on_body(user, data + i, n);
        i += n;
        if (p->remaining == 0) p->state = CZ_HTTP_CHUNK_DATA_CR;
        if (stop) return i;
        break;
      }
      case CZ_HTTP_CHUNK_DATA_CR:
        if (data[i] != '\r') return fail(p, 400, "Chunk data not followed by CRLF", i);
        p->state = CZ_HTTP_CHUNK_DATA_LF;
        i++;
        break;
      case CZ_HTTP_CHUNK_DATA_LF:
        if (data[i] != '\n') return fail(p, 400, "Chunk data not followed by CRLF", i);
        p->state = CZ_HTTP_CHUNK_SIZE;
        p->chunk_digits = 0;
        p->remaining = 0;
        i++;
        break;
      case CZ_HTTP_TRAILER_START:
      case CZ_HTTP_TRAILER_NAME:
      case CZ_HTTP_TRAILER_VALUE:
      case CZ_HTTP_TRAILER_LF:
      case CZ_HTTP_TRAILER_END_LF: {
        uint8_t b = data[i];
        if (++p->trailer_bytes > p->limits.max_head_bytes) return fail(p, 431, "Trailer fields too large", i);
        switch (p->state) {
          case CZ_HTTP_TRAILER_START:
            if (b == '\r') p->state = CZ_HTTP_TRAILER_END_LF;
            else if (TCHAR[b]) p->state = CZ_HTTP_TRAILER_NAME;
            else if (b == ' ' || b == '\t') return fail(p, 400, "Obsolete line folding is not allowed", i);
            else return fail(p, 400, "Invalid trailer field", i);
            break;
          case CZ_HTTP_TRAILER_NAME:
            if (b == ':') p->state = CZ_HTTP_TRAILER_VALUE;
            else if (!TCHAR[b]) return fail(p, 400, "Invalid trailer field", i);
            break;
          case CZ_HTTP_TRAILER_VALUE:
            if (b == '\r') p->state = CZ_HTTP_TRAILER_LF;
            else if (!value_char(b)) return fail(p, 400, "Invalid trailer field", i);
            break;
          case CZ_HTTP_TRAILER_LF:
            if (b != '\n') return fail(p, 400, "CR without LF", i);
            p->state = CZ_HTTP_TRAILER_START;
            break;
          default: /* CZ_HTTP_TRAILER_END_LF */
            if (b != '\n') return fail(p, 400, "CR without LF", i);
            i++;
            if (message_end(p, ev, user) || p->state == CZ_HTTP_CLOSED) return i;
            continue;
        }
        i++;
        break;
      }
      default: /* UPGRADED, CLOSED, ERROR: nothing more is read */
        return i;
    }
  }
  return i;
}
