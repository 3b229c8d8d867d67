{
  "targets": [
    {
      "target_name": "catzilla",
      "sources": ["native/src/addon.c", "native/src/bytes.c", "native/src/engine.c", "native/src/frame.c", "native/src/http1.c", "native/src/server.c", "native/src/server_binding.c", "native/src/js_batch.c"],
      "include_dirs": ["native/src"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-fvisibility=hidden"],
      "cflags!": ["-fno-exceptions"],
      "conditions": [
        ["OS!='linux'", { "sources!": ["native/src/addon.c", "native/src/bytes.c", "native/src/engine.c", "native/src/frame.c", "native/src/http1.c", "native/src/server.c", "native/src/server_binding.c", "native/src/js_batch.c"] }]
      ]
    }
  ]
}
