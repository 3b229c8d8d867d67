/* The native HTTP server's functions on the addon's exports (server_binding.c). */
#ifndef CZ_SERVER_BINDING_H
#define CZ_SERVER_BINDING_H

#include <node_api.h>

void cz_register_server(napi_env env, napi_value exports);

#endif
