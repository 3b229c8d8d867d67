#include "js_batch.h"

int cz_js_batch_init(cz_js_batch_t *b, napi_env env, const char *name) {
  b->env = env;
  napi_value resource, text;
  if (napi_create_object(env, &resource) != napi_ok || napi_create_reference(env, resource, 1, &b->resource) != napi_ok) return -1;
  if (napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &text) != napi_ok) return -1;
  return napi_async_init(env, resource, text, &b->context) == napi_ok ? 0 : -1;
}

static void forget_functions(cz_js_batch_t *b) {
  for (int i = 0; i < b->function_count; i++) napi_delete_reference(b->env, b->functions[i]);
  b->function_count = 0;
}

int cz_js_batch_set_handlers(cz_js_batch_t *b, napi_value handlers) {
  if (b->handlers != NULL) napi_delete_reference(b->env, b->handlers);
  b->handlers = NULL;
  forget_functions(b);
  return napi_create_reference(b->env, handlers, 1, &b->handlers) == napi_ok ? 0 : -1;
}

void cz_js_batch_begin(cz_js_batch_t *b) {
  napi_env env = b->env;
  napi_open_handle_scope(env, &b->scope);
  napi_value resource;
  napi_get_reference_value(env, b->resource, &resource);
  napi_open_callback_scope(env, resource, b->context, &b->callback_scope);
  if (b->handlers != NULL) napi_get_reference_value(env, b->handlers, &b->handler_object);
}

void cz_js_batch_end(cz_js_batch_t *b) {
  napi_close_callback_scope(b->env, b->callback_scope);
  napi_close_handle_scope(b->env, b->scope);
  b->handler_object = NULL;
}

void cz_js_batch_checkpoint(cz_js_batch_t *b) {
  napi_env env = b->env;
  napi_close_callback_scope(env, b->callback_scope);
  napi_value resource;
  napi_get_reference_value(env, b->resource, &resource);
  napi_open_callback_scope(env, resource, b->context, &b->callback_scope);
}

/* handlers[name], from the ones looked up already or looked up now; 0 or -1. */
static int function_of(cz_js_batch_t *b, const char *name, napi_value *fn) {
  napi_env env = b->env;
  for (int i = 0; i < b->function_count; i++) {
    if (b->names[i] == name) return napi_get_reference_value(env, b->functions[i], fn) == napi_ok ? 0 : -1;
  }
  if (napi_get_named_property(env, b->handler_object, name, fn) != napi_ok) return -1;
  if (b->function_count < CZ_JS_BATCH_FUNCTIONS && napi_create_reference(env, *fn, 1, &b->functions[b->function_count]) == napi_ok) {
    b->names[b->function_count++] = name;
  }
  return 0;
}

void cz_js_batch_call(cz_js_batch_t *b, const char *name, size_t argc, napi_value *argv) {
  napi_env env = b->env;
  napi_value fn;
  if (b->handler_object == NULL || function_of(b, name, &fn) != 0) return;
  if (napi_call_function(env, b->handler_object, fn, argc, argv, NULL) == napi_pending_exception) {
    napi_value error;
    napi_get_and_clear_last_exception(env, &error);
    napi_fatal_exception(env, error);
  }
}

void cz_js_batch_destroy(cz_js_batch_t *b) {
  if (b->context != NULL) napi_async_destroy(b->env, b->context);
  if (b->handlers != NULL) napi_delete_reference(b->env, b->handlers);
  forget_functions(b);
  if (b->resource != NULL) napi_delete_reference(b->env, b->resource);
  b->context = NULL;
  b->handlers = NULL;
  b->resource = NULL;
}
