/*
 * Reports from C to a JavaScript handler object, in batches: every batch runs inside one handle
 * scope and one callback scope, so that promise jobs and nextTicks run after each batch, as
 * after any I/O callback, or at a checkpoint inside it. The WebSocket engine's glue (addon.c)
 * and the HTTP server's (server_binding.c) report through it.
 */
#ifndef CZ_JS_BATCH_H
#define CZ_JS_BATCH_H

#include <node_api.h>
#include <stddef.h>

/* Handler functions looked up once each: a call costs no property lookup (and no name string). */
#define CZ_JS_BATCH_FUNCTIONS 8

typedef struct cz_js_batch {
  napi_env env;
  napi_ref handlers; /* the handler object; NULL until set */
  const char *names[CZ_JS_BATCH_FUNCTIONS]; /* by address: callers pass string literals */
  napi_ref functions[CZ_JS_BATCH_FUNCTIONS];
  int function_count;
  napi_ref resource;
  napi_async_context context;
  napi_handle_scope scope;
  napi_callback_scope callback_scope;
  napi_value handler_object; /* valid inside a batch */
} cz_js_batch_t;

/* Make the async context the batches run in (`name` as async_hooks sees it). Returns 0 or -1. */
int cz_js_batch_init(cz_js_batch_t *b, napi_env env, const char *name);
/* Set (or replace) the handler object; its functions are looked up on first call, once. Returns 0 or -1. */
int cz_js_batch_set_handlers(cz_js_batch_t *b, napi_value handlers);
void cz_js_batch_begin(cz_js_batch_t *b);
void cz_js_batch_end(cz_js_batch_t *b);
/*
 * Inside a batch: run the promise jobs and nextTicks queued so far, as the end of the batch would,
 * and go on in the same batch.
 */
void cz_js_batch_checkpoint(cz_js_batch_t *b);
/* Call handlers[name](...argv) inside a batch; what it throws is the process's uncaught exception. */
void cz_js_batch_call(cz_js_batch_t *b, const char *name, size_t argc, napi_value *argv);
void cz_js_batch_destroy(cz_js_batch_t *b);

#endif
