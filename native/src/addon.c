/*
 * Node-API glue of the native engine: JavaScript calls in (adopt, send, close, ...), engine
 * events out to one handler object, inside one callback scope per batch of events (so that
 * promise jobs and nextTicks run after each batch, as after any I/O callback).
 */
#include <node_api.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "frame.h"
#include "http1.h"
#include "js_batch.h"
#include "server_binding.h"

#define INBOX_BYTES (256 * 1024)
#define OUTBOX_BYTES (256 * 1024)
#define RECORD_FIELDS 5
/* Messages this large skip the inbox: one Buffer made straight from the engine's bytes. */
#define LARGE_MESSAGE (16 * 1024)
#define MAX_RECORDS 8192

typedef struct {
  napi_env env;
  cz_engine_t *engine;
  cz_js_batch_t js; /* the handlers: { onBatch, onLarge } */
  uint8_t *scratch;
  size_t scratch_cap;
  /*
   * Events of a batch, handed to JavaScript in one call: records of RECORD_FIELDS uint32s in
   * `records`, payloads in `inbox` (both Buffers JavaScript reads). `outbox` is where
   * JavaScript writes short texts to send.
   */
  napi_ref inbox_ref;
  napi_ref records_ref;
  napi_ref outbox_ref;
  napi_ref state_ref;
  uint8_t *inbox;
  uint32_t *records;
  uint8_t *outbox;
  size_t inbox_len;
  uint32_t record_count;
  uint8_t spill[LARGE_MESSAGE]; /* a record's bytes while the records before it are delivered */
} addon_t;

/* Kinds of records; the JavaScript side (src/node/native/connection.ts) reads the same numbers. */
enum { R_TEXT = 0, R_BINARY = 1, R_PING = 2, R_PONG = 3, R_DRAIN = 4, R_CLOSE = 5 };

#define CHECK(call)                                  \
  do {                                               \
    if ((call) != napi_ok) return throw_last(env);   \
  } while (0)

static napi_value throw_last(napi_env env) {
  const napi_extended_error_info *info = NULL;
  napi_get_last_error_info(env, &info);
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) napi_throw_error(env, "ERR_CATZILLA_NATIVE", info != NULL && info->error_message != NULL ? info->error_message : "Node-API call failed");
  return NULL;
}

static addon_t *get_addon(napi_env env) {
  void *data = NULL;
  napi_get_instance_data(env, &data);
  return data;
}

/* ---- engine events -> JavaScript ---- */

static void ev_begin(void *ctx) {
  cz_js_batch_begin(&((addon_t *)ctx)->js);
}

static void ev_end(void *ctx) {
  cz_js_batch_end(&((addon_t *)ctx)->js);
}

static void call(addon_t *a, const char *name, size_t argc, napi_value *argv);

static void release_bytes(napi_env env, void *data, void *hint) {
  (void)env;
  (void)data;
  cz_bytes_free(hint);
}

/*
 * A Buffer over a large message: over the engine's buffer it was gathered in (`owned`), else over
 * a copy in one of the engine's pooled buffers; the buffer is let go when the Buffer is collected
 * (a fresh allocation of 16 KiB or more page-faults on every message, which costs more than the copy).
 */
static napi_value large_buffer(addon_t *a, const uint8_t *data, size_t len, cz_bytes_t *owned) {
  napi_env env = a->env;
  napi_value out = NULL;
  cz_bytes_t *b = owned != NULL ? owned : cz_bytes_reserve(cz_engine_buffers(a->engine), NULL, len);
  if (b != NULL) {
    if (b != owned) data = memcpy(b->data, data, len);
    if (napi_create_external_buffer(env, len, (void *)data, release_bytes, b, &out) == napi_ok) return out;
  }
  void *copy;
  napi_create_buffer_copy(env, len, data, &copy, &out);
  cz_bytes_free(b);
  return out;
}

/* Hand the batch's records to JavaScript: onBatch(count). */
static void deliver(addon_t *a) {
  if (a->record_count == 0) return;
  napi_value argv[1];
  napi_create_uint32(a->env, a->record_count, &argv[0]);
  a->record_count = 0;
  a->inbox_len = 0;
  call(a, "onBatch", 1, argv);
}

static void ev_deliver(void *ctx) {
  deliver(ctx);
}

/*
 * Add a record with `len` payload bytes; a large message goes on its own (onLarge), after the
 * records before it.
 *
 * `data` is valid only until the engine runs again, and handing over the records before this one
 * runs JavaScript, which may send: a compressed send reuses the engine's zlib buffer, where an
 * inflated message lies. So the bytes are taken (into the message's own Buffer, or the spill
 * buffer) before the records before them are delivered.
 */
static void record(addon_t *a, uint32_t kind, uint32_t id, const uint8_t *data, size_t len, uint32_t code, cz_bytes_t *owned) {
  if ((kind == R_TEXT || kind == R_BINARY) && len >= LARGE_MESSAGE) {
    napi_value argv[3];
    argv[1] = large_buffer(a, data, len, owned);
    deliver(a);
    napi_create_uint32(a->env, id, &argv[0]);
    napi_get_boolean(a->env, kind == R_BINARY, &argv[2]);
    call(a, "onLarge", 3, argv);
    return;
  }
  /* Shorter than LARGE_MESSAGE: a smaller message, or a control frame's payload (RFC 6455 §5.5: at most 125 bytes). */
  if (a->record_count == MAX_RECORDS || a->inbox_len + len > INBOX_BYTES) {
    if (len > 0) data = memcpy(a->spill, data, len);
    deliver(a);
  }
  uint32_t *r = a->records + (size_t)a->record_count * RECORD_FIELDS;
  r[0] = kind;
  r[1] = id;
  r[2] = (uint32_t)a->inbox_len;
  r[3] = (uint32_t)len;
  r[4] = code;
  if (len > 0) memcpy(a->inbox + a->inbox_len, data, len);
  a->inbox_len += len;
  a->record_count++;
  cz_bytes_free(owned);
}

static void call(addon_t *a, const char *name, size_t argc, napi_value *argv) {
  cz_js_batch_call(&a->js, name, argc, argv);
}

static napi_value u32(napi_env env, uint32_t v) {
  napi_value out;
  napi_create_uint32(env, v, &out);
  return out;
}

static napi_value bytes(napi_env env, const uint8_t *data, size_t len) {
  napi_value out;
  void *copy;
  napi_create_buffer_copy(env, len, len == 0 ? "" : (const void *)data, &copy, &out);
  return out;
}

static void ev_message(void *ctx, uint32_t id, const uint8_t *data, size_t len, int binary, cz_bytes_t *owned) {
  record(ctx, binary ? R_BINARY : R_TEXT, id, data, len, 0, owned);
}

static void ev_ping(void *ctx, uint32_t id, const uint8_t *data, size_t len) {
  record(ctx, R_PING, id, data, len, 0, NULL);
}

static void ev_pong(void *ctx, uint32_t id, const uint8_t *data, size_t len) {
  record(ctx, R_PONG, id, data, len, 0, NULL);
}

static void ev_drain(void *ctx, uint32_t id) {
  record(ctx, R_DRAIN, id, NULL, 0, 0, NULL);
}

/* The close record's code field: the close code in the low 16 bits, why it ended (CZ_END_*) above them. */
static void ev_close(void *ctx, uint32_t id, uint16_t code, int end, const char *reason, size_t reason_len) {
  record(ctx, R_CLOSE, id, (const uint8_t *)reason, reason_len, (uint32_t)code | ((uint32_t)end << 16), NULL);
}

static const cz_engine_events_t events = {ev_begin, ev_deliver, ev_end, ev_message, ev_ping, ev_pong, ev_drain, ev_close};

/* ---- argument helpers ---- */

static int arg_u32(napi_env env, napi_value v, uint32_t *out) {
  return napi_get_value_uint32(env, v, out) == napi_ok;
}

static int arg_f64(napi_env env, napi_value v, double *out) {
  return napi_get_value_double(env, v, out) == napi_ok;
}

/* Bytes of a Buffer or any TypedArray/DataView. */
static int arg_bytes(napi_env env, napi_value v, const uint8_t **data, size_t *len) {
  bool is = false;
  napi_is_buffer(env, v, &is);
  if (is) return napi_get_buffer_info(env, v, (void **)data, len) == napi_ok;
  napi_is_typedarray(env, v, &is);
  if (is) {
    napi_typedarray_type type;
    size_t length, offset;
    napi_value ab;
    void *base;
    if (napi_get_typedarray_info(env, v, &type, &length, &base, &ab, &offset) != napi_ok) return 0;
    size_t element = 1;
    switch (type) {
      case napi_int16_array: case napi_uint16_array: element = 2; break;
      case napi_int32_array: case napi_uint32_array: case napi_float32_array: element = 4; break;
      case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: element = 8; break;
      default: element = 1;
    }
    *data = base;
    *len = length * element;
    return 1;
  }
  return 0;
}

/* A string's UTF-8 in the addon's scratch buffer. */
static int arg_utf8(napi_env env, addon_t *a, napi_value v, const uint8_t **data, size_t *len) {
  size_t n;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &n) != napi_ok) return 0;
  if (n + 1 > a->scratch_cap) {
    size_t cap = a->scratch_cap == 0 ? 4096 : a->scratch_cap;
    while (cap < n + 1) cap *= 2;
    uint8_t *s = realloc(a->scratch, cap);
    if (s == NULL) return 0;
    a->scratch = s;
    a->scratch_cap = cap;
  }
  size_t written;
  if (napi_get_value_string_utf8(env, v, (char *)a->scratch, n + 1, &written) != napi_ok) return 0;
  *data = a->scratch;
  *len = written;
  return 1;
}

#define ARGS(n)                     \
  size_t argc = n;                  \
  napi_value argv[n];               \
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL)); \
  addon_t *a = get_addon(env);      \
  if (a == NULL || a->engine == NULL) { napi_throw_error(env, "ERR_CATZILLA_NATIVE", "The native engine is not initialised"); return NULL; }

static napi_value type_error(napi_env env, const char *message) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
  return NULL;
}

/* ---- JavaScript API ---- */

/* init(handlers) -> { inbox, records, outbox, state } */
static napi_value js_init(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  addon_t *a = get_addon(env);
  if (argc < 1) return type_error(env, "init(handlers)");
  if (cz_js_batch_set_handlers(&a->js, argv[0]) != 0) return throw_last(env);
  napi_value inbox, records, outbox, state, out;
  if (a->inbox_ref == NULL) {
    CHECK(napi_create_buffer(env, INBOX_BYTES, (void **)&a->inbox, &inbox));
    CHECK(napi_create_reference(env, inbox, 1, &a->inbox_ref));
    CHECK(napi_create_buffer(env, (size_t)MAX_RECORDS * RECORD_FIELDS * 4, (void **)&a->records, &records));
    CHECK(napi_create_reference(env, records, 1, &a->records_ref));
    CHECK(napi_create_buffer(env, OUTBOX_BYTES, (void **)&a->outbox, &outbox));
    CHECK(napi_create_reference(env, outbox, 1, &a->outbox_ref));
    /* Pages of slots never used are never touched: they cost address space, not memory. */
    uint32_t *shared;
    CHECK(napi_create_buffer(env, (size_t)CZ_MAX_SLOTS * 4, (void **)&shared, &state));
    CHECK(napi_create_reference(env, state, 1, &a->state_ref));
    cz_engine_share_state(a->engine, shared);
  }
  CHECK(napi_get_reference_value(env, a->inbox_ref, &inbox));
  CHECK(napi_get_reference_value(env, a->records_ref, &records));
  CHECK(napi_get_reference_value(env, a->outbox_ref, &outbox));
  CHECK(napi_get_reference_value(env, a->state_ref, &state));
  CHECK(napi_create_object(env, &out));
  CHECK(napi_set_named_property(env, out, "inbox", inbox));
  CHECK(napi_set_named_property(env, out, "records", records));
  CHECK(napi_set_named_property(env, out, "outbox", outbox));
  CHECK(napi_set_named_property(env, out, "state", state));
  return out;
}

/* sendOutbox(id, binary, length) -> status: `length` bytes JavaScript wrote at the outbox's start */
static napi_value js_send_outbox(napi_env env, napi_callback_info info) {
  ARGS(3);
  uint32_t id, binary, len;
  if (argc < 3 || !arg_u32(env, argv[0], &id) || !arg_u32(env, argv[1], &binary) || !arg_u32(env, argv[2], &len) || len > OUTBOX_BYTES || a->outbox == NULL) {
    return type_error(env, "sendOutbox(id, binary, length)");
  }
  return u32(env, (uint32_t)cz_send(a->engine, id, binary ? CZ_OP_BINARY : CZ_OP_TEXT, a->outbox, len));
}

/*
 * sendQueued(bytes): the sends JavaScript queued in the outbox, each [id u32][length << 1 | binary
 * u32][payload, padded to 4 bytes], in order.
 */
static napi_value js_send_queued(napi_env env, napi_callback_info info) {
  ARGS(1);
  uint32_t used;
  if (argc < 1 || !arg_u32(env, argv[0], &used) || used > OUTBOX_BYTES || a->outbox == NULL) return type_error(env, "sendQueued(bytes)");
  uint32_t at = 0;
  while (at + 8 <= used) {
    uint32_t id, word;
    memcpy(&id, a->outbox + at, 4);
    memcpy(&word, a->outbox + at + 4, 4);
    uint32_t len = word >> 1;
    if (len > used - at - 8) return type_error(env, "sendQueued: an entry runs past the bytes given");
    cz_send(a->engine, id, (word & 1) ? CZ_OP_BINARY : CZ_OP_TEXT, a->outbox + at + 8, len);
    at += 8 + ((len + 3) & ~3u);
  }
  return NULL;
}

/* The index of a profile (the same settings share one), or a RangeError past MAX_PROFILES. */
static napi_value add_profile(napi_env env, addon_t *a, const cz_profile_t *p) {
  int index = cz_engine_add_profile(a->engine, p);
  if (index < 0) {
    napi_throw_range_error(env, "ERR_CATZILLA_NATIVE", "Too many distinct option sets for the native engine");
    return NULL;
  }
  return u32(env, (uint32_t)index);
}

/* profile(maxMessage, maxFrame, maxBuffered, idleMs, pingMs, closeMs, maxPerSecond, policy) -> index */
static napi_value js_profile(napi_env env, napi_callback_info info) {
  ARGS(8);
  double v[8];
  if (argc < 8) return type_error(env, "profile() takes 8 numbers");
  for (int i = 0; i < 8; i++) if (!arg_f64(env, argv[i], &v[i]) || v[i] < 0) return type_error(env, "profile() takes 8 non-negative numbers");
  cz_profile_t p;
  memset(&p, 0, sizeof p);
  p.max_message = (uint64_t)v[0];
  p.max_frame = (uint64_t)v[1];
  p.max_buffered = (uint64_t)v[2];
  p.idle_ms = (uint32_t)v[3];
  p.ping_ms = (uint32_t)v[4];
  p.close_ms = (uint32_t)v[5];
  p.max_per_second = (uint32_t)v[6];
  p.policy = (uint8_t)v[7];
  return add_profile(env, a, &p);
}

/* streamProfile(maxBuffered, heartbeatMs, closeMs, heartbeat) -> index: for response streams (SSE) */
static napi_value js_stream_profile(napi_env env, napi_callback_info info) {
  ARGS(4);
  double v[3];
  const uint8_t *heartbeat;
  size_t heartbeat_len;
  if (argc < 4 || !arg_bytes(env, argv[3], &heartbeat, &heartbeat_len) || heartbeat_len > CZ_MAX_HEARTBEAT) {
    return type_error(env, "streamProfile(maxBuffered, heartbeatMs, closeMs, heartbeat of at most 64 bytes)");
  }
  for (int i = 0; i < 3; i++) if (!arg_f64(env, argv[i], &v[i]) || v[i] < 0) return type_error(env, "streamProfile() takes 3 non-negative numbers");
  cz_profile_t p;
  memset(&p, 0, sizeof p);
  p.kind = CZ_KIND_STREAM;
  p.max_buffered = (uint64_t)v[0];
  p.ping_ms = (uint32_t)v[1];
  p.close_ms = (uint32_t)v[2];
  p.policy = CZ_POLICY_WAIT;
  p.heartbeat_len = (uint8_t)heartbeat_len;
  if (heartbeat_len > 0) memcpy(p.heartbeat, heartbeat, heartbeat_len);
  return add_profile(env, a, &p);
}

/*
 * adopt(fd, profile, first, head, deflate, threshold[, owned]) -> id; deflate: 0 when not
 * negotiated, else serverNoContextTakeover | clientNoContextTakeover << 1 | serverBits << 8 |
 * clientBits << 16 | level << 24. `owned`: the engine takes the descriptor itself (one the
 * native HTTP server let go), not a duplicate; it stays the caller's when adopt throws.
 */
static napi_value js_adopt(napi_env env, napi_callback_info info) {
  ARGS(7);
  uint32_t fd, profile, deflate_bits, threshold, owned = 0;
  const uint8_t *first = NULL, *head = NULL;
  size_t first_len = 0, head_len = 0;
  if (argc < 6 || !arg_u32(env, argv[0], &fd) || !arg_u32(env, argv[1], &profile) ||
      !arg_bytes(env, argv[2], &first, &first_len) || !arg_bytes(env, argv[3], &head, &head_len) ||
      !arg_u32(env, argv[4], &deflate_bits) || !arg_u32(env, argv[5], &threshold) ||
      (argc > 6 && !arg_u32(env, argv[6], &owned))) {
    return type_error(env, "adopt(fd, profile, first, head, deflate, threshold[, owned])");
  }
  cz_deflate_params_t deflate = {
    (uint8_t)(deflate_bits & 1), (uint8_t)((deflate_bits >> 1) & 1),
    (uint8_t)((deflate_bits >> 8) & 0xff), (uint8_t)((deflate_bits >> 16) & 0xff), threshold,
    (uint8_t)((deflate_bits >> 24) & 0xff),
  };
  uint32_t id;
  int err = cz_adopt(a->engine, (int)fd, owned != 0, (int)profile, deflate_bits == 0 ? NULL : &deflate, first, first_len, head,
                     head_len, &id);
  if (err != 0) {
    napi_throw_error(env, uv_err_name(err), uv_strerror(err));
    return NULL;
  }
  return u32(env, id);
}

/* sendText(id, string) / sendBinary(id, bytes) -> status */
static napi_value js_send_text(napi_env env, napi_callback_info info) {
  ARGS(2);
  uint32_t id;
  const uint8_t *data;
  size_t len;
  if (argc < 2 || !arg_u32(env, argv[0], &id) || !arg_utf8(env, a, argv[1], &data, &len)) return type_error(env, "sendText(id, text)");
  return u32(env, (uint32_t)cz_send(a->engine, id, CZ_OP_TEXT, data, len));
}

static napi_value js_send_binary(napi_env env, napi_callback_info info) {
  ARGS(2);
  uint32_t id;
  const uint8_t *data;
  size_t len;
  if (argc < 2 || !arg_u32(env, argv[0], &id) || !arg_bytes(env, argv[1], &data, &len)) return type_error(env, "sendBinary(id, bytes)");
  return u32(env, (uint32_t)cz_send(a->engine, id, CZ_OP_BINARY, data, len));
}

/* sendFrame(id, frame, payloadBytes) -> status */
static napi_value js_send_frame(napi_env env, napi_callback_info info) {
  ARGS(3);
  uint32_t id;
  double payload;
  const uint8_t *data;
  size_t len;
  if (argc < 3 || !arg_u32(env, argv[0], &id) || !arg_bytes(env, argv[1], &data, &len) || !arg_f64(env, argv[2], &payload)) {
    return type_error(env, "sendFrame(id, frame, payloadBytes)");
  }
  return u32(env, (uint32_t)cz_send_frame(a->engine, id, data, len, (size_t)payload));
}

/* broadcast(ids: Uint32Array, count, frame, payloadBytes, maxBuffered, result: Uint32Array) */
static napi_value js_broadcast(napi_env env, napi_callback_info info) {
  ARGS(6);
  uint32_t count;
  double payload, max_buffered;
  const uint8_t *ids_bytes, *frame, *result_bytes;
  size_t ids_len, frame_len, result_len;
  if (argc < 6 || !arg_bytes(env, argv[0], &ids_bytes, &ids_len) || !arg_u32(env, argv[1], &count) ||
      !arg_bytes(env, argv[2], &frame, &frame_len) || !arg_f64(env, argv[3], &payload) || !arg_f64(env, argv[4], &max_buffered) ||
      !arg_bytes(env, argv[5], &result_bytes, &result_len) || (size_t)count * 4 > ids_len || result_len < 8) {
    return type_error(env, "broadcast(ids, count, frame, payloadBytes, maxBuffered, result)");
  }
  size_t over = 0;
  size_t delivered = cz_broadcast(a->engine, (uint32_t *)ids_bytes, count, frame, frame_len, (size_t)payload, (uint64_t)max_buffered, &over);
  uint32_t *result = (uint32_t *)result_bytes;
  result[0] = (uint32_t)delivered;
  result[1] = (uint32_t)over;
  return NULL;
}

/* ping(id, payload) */
static napi_value js_ping(napi_env env, napi_callback_info info) {
  ARGS(2);
  uint32_t id;
  const uint8_t *data;
  size_t len;
  if (argc < 2 || !arg_u32(env, argv[0], &id)) return type_error(env, "ping(id, payload)");
  if (!arg_bytes(env, argv[1], &data, &len) && !arg_utf8(env, a, argv[1], &data, &len)) return type_error(env, "ping(id, payload)");
  cz_ping(a->engine, id, data, len);
  return NULL;
}

/* close(id, code, reason) — code 0: a close frame without a code */
static napi_value js_close(napi_env env, napi_callback_info info) {
  ARGS(3);
  uint32_t id, code;
  const uint8_t *reason;
  size_t len;
  if (argc < 3 || !arg_u32(env, argv[0], &id) || !arg_u32(env, argv[1], &code) || !arg_utf8(env, a, argv[2], &reason, &len)) {
    return type_error(env, "close(id, code, reason)");
  }
  cz_close(a->engine, id, (uint16_t)code, (const char *)reason, len);
  return NULL;
}

#define ID_ONLY(name, fn)                                                   \
  static napi_value name(napi_env env, napi_callback_info info) {          \
    ARGS(1);                                                                \
    uint32_t id;                                                            \
    if (argc < 1 || !arg_u32(env, argv[0], &id)) return type_error(env, "expected a connection id"); \
    fn(a->engine, id);                                                      \
    return NULL;                                                            \
  }

ID_ONLY(js_terminate, cz_terminate)
ID_ONLY(js_pause, cz_pause)
ID_ONLY(js_resume, cz_resume)

static void set_number(napi_env env, napi_value object, const char *name, double value) {
  napi_value v;
  napi_create_double(env, value, &v);
  napi_set_named_property(env, object, name, v);
}

static napi_value js_stats(napi_env env, napi_callback_info info) {
  ARGS(1);
  (void)argv;
  cz_engine_stats_t s;
  cz_engine_stats(a->engine, &s);
  napi_value out;
  CHECK(napi_create_object(env, &out));
  set_number(env, out, "connections", (double)s.connections);
  set_number(env, out, "adopted", (double)s.adopted);
  set_number(env, out, "messagesIn", (double)s.messages_in);
  set_number(env, out, "messagesOut", (double)s.messages_out);
  set_number(env, out, "bytesIn", (double)s.bytes_in);
  set_number(env, out, "bytesOut", (double)s.bytes_out);
  set_number(env, out, "writes", (double)s.writes);
  set_number(env, out, "connectionBytes", (double)cz_connection_size());
  set_number(env, out, "streamBytes", (double)cz_stream_size());
  return out;
}

/* ---- the parser on its own, for differential tests against the TypeScript codec ---- */

typedef struct {
  napi_env env;
  napi_value events;
  uint32_t count;
  uint8_t *message;
  size_t len;
  size_t cap;
} parse_run_t;

static void push_event(parse_run_t *r, size_t argc, napi_value *argv) {
  napi_value event;
  napi_create_array_with_length(r->env, argc, &event);
  for (size_t i = 0; i < argc; i++) napi_set_element(r->env, event, (uint32_t)i, argv[i]);
  napi_set_element(r->env, r->events, r->count++, event);
}

static napi_value str(napi_env env, const char *s, size_t len) {
  napi_value out;
  napi_create_string_utf8(env, s, len, &out);
  return out;
}

/* Append bytes to the message being gathered. Returns 0 when memory ran out. */
static int run_append(parse_run_t *r, const uint8_t *data, size_t len) {
  if (r->len + len > r->cap) {
    size_t cap = r->cap == 0 ? 256 : r->cap;
    while (cap < r->len + len) cap *= 2;
    uint8_t *m = realloc(r->message, cap);
    if (m == NULL) return 0;
    r->message = m;
    r->cap = cap;
  }
  if (len > 0) memcpy(r->message + r->len, data, len);
  r->len += len;
  return 1;
}

static int t_data(void *user, const uint8_t *data, size_t len, int first, int last, int flags) {
  parse_run_t *r = user;
  if (first) r->len = 0;
  if (!run_append(r, data, len)) return 1;
  if (last) {
    napi_value argv[3] = {str(r->env, "message", 7), bytes(r->env, r->message, r->len), NULL};
    napi_get_boolean(r->env, (flags & CZ_DATA_BINARY) != 0, &argv[2]);
    push_event(r, 3, argv);
    r->len = 0;
  }
  return 0;
}

static int t_control(void *user, int opcode, const uint8_t *data, size_t len) {
  parse_run_t *r = user;
  napi_value argv[2] = {str(r->env, opcode == CZ_OP_PING ? "ping" : "pong", 4), bytes(r->env, data, len)};
  push_event(r, 2, argv);
  return 0;
}

static void t_close(void *user, uint16_t code, const uint8_t *reason, size_t len) {
  parse_run_t *r = user;
  napi_value argv[3] = {str(r->env, "close", 5), u32(r->env, code), str(r->env, (const char *)reason, len)};
  push_event(r, 3, argv);
}

static void t_error(void *user, uint16_t code, const char *reason) {
  parse_run_t *r = user;
  napi_value argv[3] = {str(r->env, "error", 5), u32(r->env, code), str(r->env, reason, strlen(reason))};
  push_event(r, 3, argv);
}

static const cz_parser_events_t test_events = {t_data, t_control, t_close, t_error};

/* parse(chunks, maxMessage, maxFrame) -> events, feeding the chunks one by one */
static napi_value js_parse(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  double max_message, max_frame;
  uint32_t n;
  if (argc < 3 || napi_get_array_length(env, argv[0], &n) != napi_ok || !arg_f64(env, argv[1], &max_message) || !arg_f64(env, argv[2], &max_frame)) {
    return type_error(env, "parse(chunks, maxMessage, maxFrame)");
  }
  cz_parser_t parser;
  cz_parser_init(&parser, (uint64_t)max_message, (uint64_t)max_frame);
  parse_run_t run = {env, NULL, 0, NULL, 0, 0};
  CHECK(napi_create_array(env, &run.events));
  for (uint32_t i = 0; i < n && !cz_parser_done(&parser); i++) {
    napi_value chunk;
    const uint8_t *data;
    size_t len;
    if (napi_get_element(env, argv[0], i, &chunk) != napi_ok || !arg_bytes(env, chunk, &data, &len)) {
      free(run.message);
      cz_parser_release(&parser);
      return type_error(env, "chunks must be Buffers");
    }
    uint8_t *copy = malloc(len == 0 ? 1 : len);
    if (copy == NULL) break;
    memcpy(copy, data, len);
    size_t done = 0;
    while (done < len && !cz_parser_done(&parser)) done += cz_parse(&parser, copy + done, len - done, &test_events, &run);
    free(copy);
  }
  free(run.message);
  cz_parser_release(&parser);
  return run.events;
}

/* ---- the HTTP/1.1 parser on its own, for the differential test against node:http ---- */

static napi_value latin1(napi_env env, const char *s, size_t len) {
  napi_value out;
  napi_create_string_latin1(env, s, len, &out);
  return out;
}

static int h_head(void *user, const cz_http_head_t *head) {
  parse_run_t *r = user;
  napi_env env = r->env;
  napi_value headers;
  napi_create_array_with_length(env, head->header_count * 2, &headers);
  for (size_t i = 0; i < head->header_count; i++) {
    const cz_http_header_t *h = &head->headers[i];
    napi_set_element(env, headers, (uint32_t)(2 * i), latin1(env, h->name, h->name_len));
    napi_set_element(env, headers, (uint32_t)(2 * i + 1), latin1(env, h->value, h->value_len));
  }
  napi_value argv[10] = {str(env, "head", 4), latin1(env, head->method, head->method_len), latin1(env, head->target, head->target_len),
    u32(env, (uint32_t)head->minor), headers, NULL, NULL, NULL, NULL, NULL};
  napi_get_boolean(env, head->keep_alive, &argv[5]);
  napi_get_boolean(env, head->upgrade, &argv[6]);
  napi_get_boolean(env, head->expect_continue, &argv[7]);
  napi_get_boolean(env, head->chunked, &argv[8]);
  napi_create_double(env, (double)head->content_length, &argv[9]);
  push_event(r, 10, argv);
  r->len = 0;
  return 0;
}

static int h_body(void *user, const uint8_t *data, size_t len) {
  return !run_append(user, data, len);
}

static int h_end(void *user) {
  parse_run_t *r = user;
  napi_value argv[2] = {str(r->env, "end", 3), bytes(r->env, r->message, r->len)};
  push_event(r, 2, argv);
  r->len = 0;
  return 0;
}

static const cz_http_events_t http_test_events = {h_head, h_body, h_end};

/*
 * parseHttp(chunks, maxHeadBytes, maxHeaders, maxBodyBytes) -> events, feeding the chunks one by
 * one: ["head", method, target, minor, [name, value, ...], keepAlive, upgrade, expectContinue,
 * chunked, contentLength], ["end", body], then ["error", status, reason], ["upgraded", bytes
 * left] or ["closed", bytes left] where the parser stopped.
 */
static napi_value js_parse_http(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  double max_head, max_headers, max_body;
  uint32_t n;
  if (argc < 4 || napi_get_array_length(env, argv[0], &n) != napi_ok || !arg_f64(env, argv[1], &max_head) ||
      !arg_f64(env, argv[2], &max_headers) || !arg_f64(env, argv[3], &max_body)) {
    return type_error(env, "parseHttp(chunks, maxHeadBytes, maxHeaders, maxBodyBytes)");
  }
  cz_http_limits_t limits = {(size_t)max_head, (size_t)max_headers, max_body >= 1.8e19 ? UINT64_MAX : (uint64_t)max_body};
  cz_http_parser_t parser;
  cz_http_init(&parser, &limits);
  parse_run_t run = {env, NULL, 0, NULL, 0, 0};
  CHECK(napi_create_array(env, &run.events));
  size_t left = 0;
  for (uint32_t i = 0; i < n; i++) {
    napi_value chunk;
    const uint8_t *data;
    size_t len;
    if (napi_get_element(env, argv[0], i, &chunk) != napi_ok || !arg_bytes(env, chunk, &data, &len)) {
      free(run.message);
      cz_http_release(&parser);
      return type_error(env, "chunks must be Buffers");
    }
    if (parser.state == CZ_HTTP_ERROR || parser.state == CZ_HTTP_UPGRADED || parser.state == CZ_HTTP_CLOSED) {
      left += len;
      continue;
    }
    /* A copy of exactly the chunk's bytes: reading past it shows under AddressSanitizer. */
    uint8_t *copy = malloc(len == 0 ? 1 : len);
    if (copy == NULL) break;
    memcpy(copy, data, len);
    size_t done = 0;
    while (done < len) {
      size_t step = cz_http_parse(&parser, copy + done, len - done, &http_test_events, &run);
      done += step;
      if (parser.state == CZ_HTTP_ERROR || parser.state == CZ_HTTP_UPGRADED || parser.state == CZ_HTTP_CLOSED) break;
      if (step == 0) break;
    }
    left += len - done;
    free(copy);
  }
  if (parser.state == CZ_HTTP_ERROR) {
    napi_value e[3] = {str(env, "error", 5), u32(env, (uint32_t)parser.status), str(env, parser.reason, strlen(parser.reason))};
    push_event(&run, 3, e);
  } else if (parser.state == CZ_HTTP_UPGRADED || parser.state == CZ_HTTP_CLOSED) {
    napi_value e[2] = {parser.state == CZ_HTTP_UPGRADED ? str(env, "upgraded", 8) : str(env, "closed", 6), u32(env, (uint32_t)left)};
    push_event(&run, 2, e);
  }
  free(run.message);
  cz_http_release(&parser);
  return run.events;
}

/* ---- module ---- */

static void cleanup(void *data) {
  addon_t *a = data;
  if (a->engine != NULL) cz_engine_free(a->engine);
  a->engine = NULL;
  cz_js_batch_destroy(&a->js);
  if (a->inbox_ref != NULL) napi_delete_reference(a->env, a->inbox_ref);
  if (a->records_ref != NULL) napi_delete_reference(a->env, a->records_ref);
  if (a->outbox_ref != NULL) napi_delete_reference(a->env, a->outbox_ref);
  if (a->state_ref != NULL) napi_delete_reference(a->env, a->state_ref);
  free(a->scratch);
  free(a);
}

static void finalize_instance(napi_env env, void *data, void *hint) {
  (void)env;
  (void)data;
  (void)hint;
  /* Freed by the cleanup hook, which runs once the environment is torn down. */
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  addon_t *a = calloc(1, sizeof *a);
  if (a == NULL) return NULL;
  a->env = env;
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return NULL;
  a->engine = cz_engine_new(loop, &events, a);
  if (a->engine == NULL) return NULL;
  if (cz_js_batch_init(&a->js, env, "catzilla.websocket") != 0) return NULL;
  napi_set_instance_data(env, a, finalize_instance, NULL);
  napi_add_env_cleanup_hook(env, cleanup, a);

  napi_property_descriptor props[] = {
    {"init", NULL, js_init, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"profile", NULL, js_profile, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"streamProfile", NULL, js_stream_profile, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"adopt", NULL, js_adopt, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"sendText", NULL, js_send_text, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"sendQueued", NULL, js_send_queued, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"sendOutbox", NULL, js_send_outbox, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"sendBinary", NULL, js_send_binary, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"sendFrame", NULL, js_send_frame, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"broadcast", NULL, js_broadcast, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"ping", NULL, js_ping, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"close", NULL, js_close, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"terminate", NULL, js_terminate, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"pause", NULL, js_pause, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"resume", NULL, js_resume, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"stats", NULL, js_stats, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"parse", NULL, js_parse, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"parseHttp", NULL, js_parse_http, NULL, NULL, NULL, napi_default_jsproperty, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  cz_register_server(env, exports);
  return exports;
}
