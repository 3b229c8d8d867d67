/*
 * Node-API glue of the native HTTP server (server.h): `createHttpServer(handlers, options)` makes
 * one and returns its handle; the other functions take that handle. The server's reports reach
 * the handler object inside one callback scope per batch (promise jobs run after each batch, as
 * after any I/O callback):
 *   onRequest(id, method, target, minor, flags, contentLength, fields, peer, port)
 *     (fields: "name\nvalue\n..." in the order they came, "" for none)
 *     (peer and port: on a connection's first request only; undefined and 0 after it)
 *   onBody(id, bytes), onBodyEnd(id), onDrain(id), onClose(id, end)
 * `flags` has bit 0 keep-alive, bit 1 upgrade, bit 2 Expect: 100-continue, bit 3 chunked.
 */
#include <node_api.h>
#include <stdlib.h>
#include <string.h>

#include "js_batch.h"
#include "server.h"
#include "server_binding.h"

typedef struct {
  napi_env env;
  cz_server_t *server;
  cz_js_batch_t js;
  int closed; /* close() was called: what the server still reports in this batch is dropped */
  int depth;  /* batches open: the handlers and the async context stay until the last ends */
  char *scratch; /* a string's bytes while they are written */
  size_t scratch_cap;
} binding_t;

/*
 * Every server made, open or closed, by handle (a handle is its index plus one, a number): a
 * handle may outlive its server's close (and then throws, without touching freed memory), so
 * the structs are freed when the environment goes. Apps make one server per listen.
 */
static binding_t **bindings = NULL;
static uint32_t binding_count = 0;

/* write()'s flag for a string of latin1 text (a head) instead of UTF-8 (a body). */
#define WRITE_LATIN1 (1u << 8)
/* write()'s flag for bytes the server keeps a reference to instead of copying them. */
#define WRITE_EXTERNAL (1u << 9)

typedef struct {
  napi_env env;
  napi_ref ref;
} held_t;

/* The kernel took the bytes of a Buffer written without a copy (or the connection went). */
static void release_held(void *ctx) {
  held_t *h = ctx;
  napi_delete_reference(h->env, h->ref);
  free(h);
}

static void b_begin(void *ctx) {
  binding_t *b = ctx;
  b->depth++;
  cz_js_batch_begin(&b->js);
}

static void b_end(void *ctx) {
  binding_t *b = ctx;
  cz_js_batch_end(&b->js);
  if (--b->depth == 0 && b->closed) cz_js_batch_destroy(&b->js);
}

static void b_after_reads(void *ctx) {
  binding_t *b = ctx;
  if (!b->closed) cz_js_batch_checkpoint(&b->js);
}

static void call(binding_t *b, const char *name, size_t argc, napi_value *argv) {
  cz_js_batch_call(&b->js, name, argc, argv);
}

static napi_value u32(napi_env env, uint32_t v) {
  napi_value out;
  napi_create_uint32(env, v, &out);
  return out;
}

/* A connection's buffered bytes (or -1: gone), as write() and buffered() answer. */
static napi_value number(napi_env env, int64_t v) {
  napi_value out;
  napi_create_double(env, (double)v, &out);
  return out;
}

static napi_value latin1(napi_env env, const char *s, size_t len) {
  napi_value out;
  napi_create_string_latin1(env, len == 0 ? "" : s, len, &out);
  return out;
}

/* The scratch buffer, at least `n` bytes (made on first use, even for none); NULL when out of memory. */
static char *scratch(binding_t *b, size_t n) {
  if (n > b->scratch_cap || b->scratch == NULL) {
    size_t cap = b->scratch_cap == 0 ? 4096 : b->scratch_cap;
    while (cap < n) cap *= 2;
    char *bigger = realloc(b->scratch, cap);
    if (bigger == NULL) return NULL;
    b->scratch = bigger;
    b->scratch_cap = cap;
  }
  return b->scratch;
}

/*
 * The head's fields as one string, "name\nvalue\nname\nvalue" (the parser lets no LF into a
 * name or a value): one string for JavaScript to split, instead of an array set element by
 * element through Node-API.
 */
static napi_value joined_fields(binding_t *b, const cz_http_head_t *head) {
  size_t n = 0;
  for (size_t i = 0; i < head->header_count; i++) n += head->headers[i].name_len + head->headers[i].value_len + 2;
  char *text = scratch(b, n);
  if (text == NULL) return NULL;
  size_t at = 0;
  for (size_t i = 0; i < head->header_count; i++) {
    const cz_http_header_t *h = &head->headers[i];
    if (i > 0) text[at++] = '\n';
    memcpy(text + at, h->name, h->name_len);
    at += h->name_len;
    text[at++] = '\n';
    memcpy(text + at, h->value, h->value_len);
    at += h->value_len;
  }
  return latin1(b->env, text, at);
}

static void b_request(void *ctx, uint32_t id, const cz_http_head_t *head, const char *peer, uint16_t port) {
  binding_t *b = ctx;
  if (b->closed) return;
  napi_env env = b->env;
  napi_value argv[9];
  argv[0] = u32(env, id);
  argv[1] = latin1(env, head->method, head->method_len);
  argv[2] = latin1(env, head->target, head->target_len);
  argv[3] = u32(env, (uint32_t)head->minor);
  argv[4] = u32(env, (uint32_t)((head->keep_alive ? 1 : 0) | (head->upgrade ? 2 : 0) | (head->expect_continue ? 4 : 0) | (head->chunked ? 8 : 0)));
  napi_create_double(env, (double)head->content_length, &argv[5]);
  if ((argv[6] = joined_fields(b, head)) == NULL) {
    /* Out of memory for the fields: the connection goes, the request unseen. */
    cz_server_destroy(b->server, id);
    return;
  }
  if (peer != NULL) argv[7] = latin1(env, peer, strlen(peer));
  else napi_get_undefined(env, &argv[7]);
  argv[8] = u32(env, port);
  call(b, "onRequest", 9, argv);
}

static void b_body(void *ctx, uint32_t id, const uint8_t *data, size_t len) {
  binding_t *b = ctx;
  if (b->closed) return;
  napi_value argv[2];
  argv[0] = u32(b->env, id);
  void *copy;
  napi_create_buffer_copy(b->env, len, data, &copy, &argv[1]);
  call(b, "onBody", 2, argv);
}

static void b_body_end(void *ctx, uint32_t id) {
  binding_t *b = ctx;
  if (b->closed) return;
  napi_value argv[1] = {u32(b->env, id)};
  call(b, "onBodyEnd", 1, argv);
}

static void b_drain(void *ctx, uint32_t id) {
  binding_t *b = ctx;
  if (b->closed) return;
  napi_value argv[1] = {u32(b->env, id)};
  call(b, "onDrain", 1, argv);
}

static void b_close(void *ctx, uint32_t id, int end) {
  binding_t *b = ctx;
  if (b->closed) return;
  napi_value argv[2] = {u32(b->env, id), u32(b->env, (uint32_t)end)};
  call(b, "onClose", 2, argv);
}

static const cz_server_events_t server_events = {b_begin, b_end, b_request, b_body, b_body_end, b_drain, b_close, b_after_reads};

/* ---- arguments ---- */

#define CHECK(call)                                                                    \
  do {                                                                                 \
    if ((call) != napi_ok) {                                                           \
      napi_throw_error(env, "ERR_CATZILLA_NATIVE", "Node-API call failed");            \
      return NULL;                                                                     \
    }                                                                                  \
  } while (0)

static napi_value fail(napi_env env, const char *message) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
  return NULL;
}

/* The server of a handle; NULL (and a thrown error) when it was closed. */
static binding_t *arg_server(napi_env env, napi_value v) {
  uint32_t handle = 0;
  if (napi_get_value_uint32(env, v, &handle) != napi_ok || handle == 0 || handle > binding_count) {
    fail(env, "not a native HTTP server handle");
    return NULL;
  }
  binding_t *b = bindings[handle - 1];
  if (b->server == NULL) {
    napi_throw_error(env, "ERR_CATZILLA_NATIVE", "The native HTTP server is closed");
    return NULL;
  }
  return b;
}

/* The arguments of a call whose first is a server handle: `argc`, `argv` and the server `b`. */
#define SERVER_ARGS(n)                                               \
  size_t argc = n;                                                   \
  napi_value argv[n];                                                \
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));       \
  binding_t *b = arg_server(env, argv[0]);                           \
  if (b == NULL) return NULL

/* A number option, or `fallback` when it is not given. */
/* The arguments (handle, number) of most functions: the server, or NULL with an error thrown. */
static binding_t *server_and_number(napi_env env, napi_callback_info info, uint32_t *number, const char *usage) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) {
    fail(env, usage);
    return NULL;
  }
  binding_t *b = arg_server(env, argv[0]);
  if (b != NULL && napi_get_value_uint32(env, argv[1], number) != napi_ok) {
    fail(env, usage);
    return NULL;
  }
  return b;
}

/* A number option, or `fallback` when it is not given. */
static double option(napi_env env, napi_value options, const char *name, double fallback) {
  napi_value v;
  double out;
  bool has = false;
  if (napi_has_named_property(env, options, name, &has) != napi_ok || !has) return fallback;
  if (napi_get_named_property(env, options, name, &v) != napi_ok || napi_get_value_double(env, v, &out) != napi_ok) return fallback;
  return out;
}

/* Close what is still open (a worker that exits without closing) and free every struct. */
static void cleanup(void *data) {
  (void)data;
  for (uint32_t i = 0; i < binding_count; i++) {
    binding_t *b = bindings[i];
    if (b->server != NULL) {
      cz_server_free(b->server);
      cz_js_batch_destroy(&b->js);
    }
    free(b->scratch);
    free(b);
  }
  free(bindings);
  bindings = NULL;
  binding_count = 0;
}

/* ---- functions ---- */

/* createHttpServer(handlers, options) -> handle */
static napi_value js_create(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) return fail(env, "createHttpServer(handlers, options)");
  cz_server_options_t o;
  memset(&o, 0, sizeof o);
  o.limits.max_head_bytes = (uint32_t)option(env, argv[1], "maxHeaderBytes", 16 * 1024);
  o.limits.max_headers = (uint32_t)option(env, argv[1], "maxHeaders", 100);
  o.limits.max_body_bytes = (uint64_t)option(env, argv[1], "maxBodyBytes", 1024.0 * 1024 * 1024);
  o.max_connections = (uint32_t)option(env, argv[1], "maxConnections", 10000);
  o.headers_timeout_ms = (uint32_t)option(env, argv[1], "headersTimeoutMs", 60000);
  o.request_timeout_ms = (uint32_t)option(env, argv[1], "requestTimeoutMs", 300000);
  o.keep_alive_timeout_ms = (uint32_t)option(env, argv[1], "keepAliveTimeoutMs", 5000);
  o.max_pipelined_bytes = (uint32_t)option(env, argv[1], "maxPipelinedBytes", 64 * 1024);
  o.splice_loopback = option(env, argv[1], "spliceLoopback", 0) != 0;
  binding_t *b = calloc(1, sizeof *b);
  if (b == NULL) {
    napi_throw_error(env, "ERR_CATZILLA_NATIVE", "out of memory");
    return NULL;
  }
  b->env = env;
  uv_loop_t *loop;
  napi_value handle;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || cz_js_batch_init(&b->js, env, "catzilla.http") != 0
      || cz_js_batch_set_handlers(&b->js, argv[0]) != 0) {
    cz_js_batch_destroy(&b->js);
    free(b);
    napi_throw_error(env, "ERR_CATZILLA_NATIVE", "Node-API call failed");
    return NULL;
  }
  b->server = cz_server_new(loop, &o, &server_events, b);
  if (b->server == NULL) {
    cz_js_batch_destroy(&b->js);
    free(b);
    napi_throw_error(env, "ERR_CATZILLA_NATIVE", "could not create the native HTTP server");
    return NULL;
  }
  binding_t **grown = realloc(bindings, (binding_count + 1) * sizeof *grown);
  if (grown == NULL) {
    cz_server_free(b->server);
    b->server = NULL;
    napi_throw_error(env, "ERR_CATZILLA_NATIVE", "out of memory");
    return NULL;
  }
  bindings = grown;
  bindings[binding_count++] = b;
  CHECK(napi_create_uint32(env, binding_count, &handle));
  return handle;
}

/* listen(handle, host, port, backlog, reusePort) -> bound port; throws with the errno's code */
static napi_value js_listen(napi_env env, napi_callback_info info) {
  SERVER_ARGS(5);
  char host[64];
  size_t host_len;
  uint32_t port, backlog;
  bool reuse;
  if (napi_get_value_string_utf8(env, argv[1], host, sizeof host, &host_len) != napi_ok || napi_get_value_uint32(env, argv[2], &port) != napi_ok
      || napi_get_value_uint32(env, argv[3], &backlog) != napi_ok || napi_get_value_bool(env, argv[4], &reuse) != napi_ok || port > 65535) {
    return fail(env, "listen(handle, host, port, backlog, reusePort)");
  }
  uint16_t bound = 0;
  int rc = cz_server_listen(b->server, host, (uint16_t)port, (int)backlog, reuse, &bound);
  if (rc < 0) {
    napi_value error, code, message;
    const char *text = uv_strerror(uv_translate_sys_error(-rc));
    napi_create_string_utf8(env, uv_err_name(uv_translate_sys_error(-rc)), NAPI_AUTO_LENGTH, &code);
    napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, code, message, &error);
    napi_throw(env, error);
    return NULL;
  }
  return u32(env, bound);
}

/* write(handle, id, bytes | string, flags, drainOver) -> buffered bytes, or -1 when the connection is gone */
static napi_value js_write(napi_env env, napi_callback_info info) {
  SERVER_ARGS(5);
  uint32_t id, flags;
  double drain_over;
  if (napi_get_value_uint32(env, argv[1], &id) != napi_ok || napi_get_value_uint32(env, argv[3], &flags) != napi_ok
      || napi_get_value_double(env, argv[4], &drain_over) != napi_ok) {
    return fail(env, "write(handle, id, data, flags, drainOver)");
  }
  napi_valuetype type;
  napi_typeof(env, argv[2], &type);
  const uint8_t *data = NULL;
  size_t len = 0;
  char *text = NULL;
  if (type == napi_string) {
    /* Heads are latin1 text; a string body is UTF-8. */
    size_t n;
    bool latin = (flags & WRITE_LATIN1) != 0;
    if ((latin ? napi_get_value_string_latin1(env, argv[2], NULL, 0, &n) : napi_get_value_string_utf8(env, argv[2], NULL, 0, &n)) != napi_ok) {
      return fail(env, "write: data");
    }
    if ((text = scratch(b, n + 1)) == NULL) return fail(env, "write: out of memory");
    if (latin) napi_get_value_string_latin1(env, argv[2], text, n + 1, &len);
    else napi_get_value_string_utf8(env, argv[2], text, n + 1, &len);
    data = (const uint8_t *)text;
  } else if (type != napi_undefined && type != napi_null) {
    bool is = false;
    napi_is_typedarray(env, argv[2], &is);
    if (!is) return fail(env, "write: data must be a string or a Uint8Array");
    napi_typedarray_type kind;
    napi_value ab;
    size_t offset;
    void *base;
    if (napi_get_typedarray_info(env, argv[2], &kind, &len, &base, &ab, &offset) != napi_ok || kind != napi_uint8_array) {
      return fail(env, "write: data must be a string or a Uint8Array");
    }
    data = base;
    if ((flags & WRITE_EXTERNAL) && len > 0) {
      held_t *h = malloc(sizeof *h);
      if (h == NULL) return fail(env, "write: out of memory");
      h->env = env;
      if (napi_create_reference(env, argv[2], 1, &h->ref) != napi_ok) {
        free(h);
        return fail(env, "write: data");
      }
      return number(env, cz_server_write_external(b->server, id, data, len, (int)(flags & 0xff), (size_t)drain_over, release_held, h));
    }
  }
  return number(env, cz_server_write(b->server, id, data, len, (int)(flags & 0xff), (size_t)drain_over));
}

/* writeFile(handle, id, fd, offset, length, flags, drainOver) -> buffered bytes, or -1 when the connection is gone */
static napi_value js_write_file(napi_env env, napi_callback_info info) {
  SERVER_ARGS(7);
  uint32_t id, fd, flags;
  double offset, length, drain_over;
  if (argc < 7 || napi_get_value_uint32(env, argv[1], &id) != napi_ok || napi_get_value_uint32(env, argv[2], &fd) != napi_ok
      || napi_get_value_double(env, argv[3], &offset) != napi_ok || napi_get_value_double(env, argv[4], &length) != napi_ok
      || napi_get_value_uint32(env, argv[5], &flags) != napi_ok || napi_get_value_double(env, argv[6], &drain_over) != napi_ok
      || !(offset >= 0 && offset <= 9007199254740991.0) || !(length >= 0 && length <= 9007199254740991.0 - offset)) {
    return fail(env, "writeFile(handle, id, fd, offset, length, flags, drainOver)");
  }
  return number(env, cz_server_write_file(b->server, id, (int)fd, (uint64_t)offset, (uint64_t)length, (int)(flags & 0xff), (size_t)drain_over));
}

#define ID_CALL(fn, call)                                                   \
  static napi_value fn(napi_env env, napi_callback_info info) {             \
    uint32_t id;                                                            \
    binding_t *b = server_and_number(env, info, &id, #fn "(handle, id)");   \
    if (b != NULL) call(b->server, id);                                     \
    return NULL;                                                            \
  }

/* detach(handle, id) -> [fd, rest] for a protocol switch, or null when the connection is gone */
static napi_value js_detach(napi_env env, napi_callback_info info) {
  uint32_t id;
  binding_t *b = server_and_number(env, info, &id, "serverDetach(handle, id)");
  if (b == NULL) return NULL;
  uint8_t *rest;
  size_t rest_len;
  int fd = cz_server_detach(b->server, id, &rest, &rest_len);
  napi_value out, bytes;
  if (fd < 0) {
    napi_get_null(env, &out);
    return out;
  }
  void *copy;
  napi_status made = napi_create_buffer_copy(env, rest_len, rest_len == 0 ? "" : (const void *)rest, &copy, &bytes);
  free(rest);
  CHECK(made);
  CHECK(napi_create_array_with_length(env, 2, &out));
  napi_set_element(env, out, 0, u32(env, (uint32_t)fd));
  napi_set_element(env, out, 1, bytes);
  return out;
}

/* buffered(handle, id) -> bytes the connection holds, or -1 when it is gone */
static napi_value js_buffered(napi_env env, napi_callback_info info) {
  uint32_t id;
  binding_t *b = server_and_number(env, info, &id, "serverBuffered(handle, id)");
  if (b == NULL) return NULL;
  return number(env, cz_server_buffered(b->server, id));
}

ID_CALL(js_destroy, cz_server_destroy)
ID_CALL(js_pause, cz_server_pause)
ID_CALL(js_resume, cz_server_resume)

#define SERVER_CALL(fn, call)                                               \
  static napi_value fn(napi_env env, napi_callback_info info) {             \
    SERVER_ARGS(1);                                                         \
    call(b->server);                                                        \
    return NULL;                                                            \
  }

SERVER_CALL(js_stop_accepting, cz_server_stop_accepting)
SERVER_CALL(js_close_idle, cz_server_close_idle)
SERVER_CALL(js_close_all, cz_server_close_all)

static napi_value js_set_max_connections(napi_env env, napi_callback_info info) {
  uint32_t max;
  binding_t *b = server_and_number(env, info, &max, "serverSetMaxConnections(handle, max)");
  if (b != NULL) cz_server_set_max_connections(b->server, max);
  return NULL;
}

static void set_number(napi_env env, napi_value object, const char *name, double value) {
  napi_value v;
  napi_create_double(env, value, &v);
  napi_set_named_property(env, object, name, v);
}

static napi_value js_stats(napi_env env, napi_callback_info info) {
  SERVER_ARGS(1);
  cz_server_stats_t st;
  cz_server_stats(b->server, &st);
  napi_value out;
  CHECK(napi_create_object(env, &out));
  set_number(env, out, "accepted", (double)st.accepted);
  set_number(env, out, "connections", (double)st.connections);
  set_number(env, out, "requests", (double)st.requests);
  set_number(env, out, "refused", (double)st.refused);
  set_number(env, out, "bytesIn", (double)st.bytes_in);
  set_number(env, out, "bytesOut", (double)st.bytes_out);
  set_number(env, out, "writes", (double)st.writes);
  return out;
}

/* close(handle): every connection is cut and the server freed; the handle is dead after. */
static napi_value js_close(napi_env env, napi_callback_info info) {
  SERVER_ARGS(1);
  b->closed = 1;
  cz_server_free(b->server);
  b->server = NULL;
  if (b->depth == 0) cz_js_batch_destroy(&b->js);
  free(b->scratch);
  b->scratch = NULL;
  b->scratch_cap = 0;
  return NULL;
}

void cz_register_server(napi_env env, napi_value exports) {
  napi_add_env_cleanup_hook(env, cleanup, NULL);
  napi_property_descriptor props[] = {
    {"createHttpServer", NULL, js_create, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"serverListen", NULL, js_listen, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"serverWrite", NULL, js_write, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"serverWriteFile", NULL, js_write_file, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"serverDetach", NULL, js_detach, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"serverBuffered", NULL, js_buffered, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"serverDestroy", NULL, js_destroy, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"serverPause", NULL, js_pause, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"serverResume", NULL, js_resume, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"serverStopAccepting", NULL, js_stop_accepting, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"serverCloseIdle", NULL, js_close_idle, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"serverCloseAll", NULL, js_close_all, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"serverSetMaxConnections", NULL, js_set_max_connections, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"serverStats", NULL, js_stats, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"serverClose", NULL, js_close, NULL, NULL, NULL, napi_default_jsproperty, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
