/*
 * The native WebSocket engine: connections adopted after the HTTP upgrade, on the libuv loop that
 * Node.js runs. Their descriptors sit in an epoll set of the engine's (Linux), which one libuv
 * poll handle watches; the sockets ready in one turn of the loop are read and parsed in C
 * (frame.h) as one batch, and everything sent while handling it, or in one turn of the loop, leaves
 * in one write per connection; pings, idle and close timeouts run on one sweep timer.
 */
#ifndef CZ_ENGINE_H
#define CZ_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "bytes.h"

enum { CZ_SEND_OK = 0, CZ_SEND_BACKPRESSURE = 1, CZ_SEND_DROPPED = 2, CZ_SEND_CLOSED = 3 };
enum { CZ_POLICY_WAIT = 0, CZ_POLICY_DROP = 1, CZ_POLICY_CLOSE = 2 };
/*
 * What a connection carries. A stream is an HTTP response body the engine only writes to (a
 * Server-Sent Events subscriber after its headers): what the client sends is read and dropped,
 * its end is reported as a close with 1006, and a quiet stream gets the profile's heartbeat.
 */
enum { CZ_KIND_WEBSOCKET = 0, CZ_KIND_STREAM = 1 };

/* Policies the node:net engine keeps too: mirrors of src/node/policy.ts (a test checks they agree). */
#define CZ_MAX_HEARTBEAT 64          /* MAX_HEARTBEAT_BYTES */
#define CZ_WAIT_CLOSE_FACTOR 4       /* WAIT_POLICY_CLOSE_FACTOR */
#define CZ_RATE_WINDOW_MS 1000       /* MESSAGE_RATE_WINDOW_MS */

/*
 * Why a connection ended, in the order of END_REASONS in src/node/native/binding.ts: the
 * TCP connection ended without a closing handshake, the peer closed first, the server did (the
 * app, or shutdown), no answer to a ping, no message for idleTimeoutMs, a limit of ours (message
 * size or rate, buffered bytes), the peer broke the protocol.
 */
enum {
  CZ_END_RESET = 0, CZ_END_PEER = 1, CZ_END_SERVER = 2, CZ_END_PING_TIMEOUT = 3,
  CZ_END_IDLE_TIMEOUT = 4, CZ_END_LIMIT = 5, CZ_END_PROTOCOL = 6,
};

/* Limits and timers shared by the connections of one route. */
typedef struct cz_profile {
  uint64_t max_message;
  uint64_t max_frame;
  uint64_t max_buffered;
  uint32_t idle_ms;  /* close (1001) after this long without a message; 0: never */
  uint32_t ping_ms;  /* ping after this long quiet; no answer within as long again: drop; 0: never */
  uint32_t close_ms; /* how long the peer has to answer a close */
  uint32_t max_per_second; /* messages per second; over it: 1008; 0: no limit */
  uint8_t policy;    /* CZ_POLICY_* when a send goes over max_buffered */
  uint8_t kind;      /* CZ_KIND_*; for a stream, ping_ms is the heartbeat period */
  uint8_t heartbeat_len;
  uint8_t heartbeat[CZ_MAX_HEARTBEAT]; /* written to a stream quiet for ping_ms */
} cz_profile_t;

/* permessage-deflate as negotiated for one connection (RFC 7692). */
typedef struct cz_deflate_params {
  uint8_t server_no_context_takeover;
  uint8_t client_no_context_takeover;
  uint8_t server_max_window_bits; /* 9..15 */
  uint8_t client_max_window_bits; /* 9..15 */
  uint32_t threshold;             /* smaller messages are sent uncompressed */
  uint8_t level;                  /* zlib's compression level, 0..9 */
} cz_deflate_params_t;

/* What the engine reports; `begin`/`end` bracket every batch of reports from one loop callback. */
typedef struct cz_engine_events {
  void (*begin)(void *ctx);
  /* The batch's events are all reported: hand them over (before the batch's writes go out). */
  void (*deliver)(void *ctx);
  void (*end)(void *ctx);
  /*
   * A complete message. `owned` is NULL (the bytes are valid during the call) or the buffer they
   * lie in (a message gathered from several reads), which the callee now owns and lets go with
   * cz_bytes_free.
   */
  void (*on_message)(void *ctx, uint32_t id, const uint8_t *data, size_t len, int binary, cz_bytes_t *owned);
  void (*on_ping)(void *ctx, uint32_t id, const uint8_t *data, size_t len);
  void (*on_pong)(void *ctx, uint32_t id, const uint8_t *data, size_t len);
  void (*on_drain)(void *ctx, uint32_t id);
  /*
   * Once per connection: the peer's close code (1005 none, 1006 no close frame) or ours on
   * failure, and why it ended (CZ_END_*).
   */
  void (*on_close)(void *ctx, uint32_t id, uint16_t code, int end, const char *reason, size_t reason_len);
} cz_engine_events_t;

typedef struct cz_engine cz_engine_t;

cz_engine_t *cz_engine_new(uv_loop_t *loop, const cz_engine_events_t *events, void *ctx);
/* Close every connection at once and free the engine once libuv let go of its handles. */
void cz_engine_free(cz_engine_t *e);
/* The engine's buffer pool (bytes.h), open until the engine is freed. */
cz_pool_t *cz_engine_buffers(cz_engine_t *e);
int cz_engine_add_profile(cz_engine_t *e, const cz_profile_t *profile);

/*
 * Adopt `fd` (an accepted TCP socket after the upgrade): a duplicate of it, or, when `owned`, the
 * descriptor itself (then the engine closes it; on an error it is the caller's still). `first` is
 * written first (the 101 response), `head` are bytes already read past the request head;
 * `deflate` is NULL when permessage-deflate was not negotiated. Returns 0 and the connection's
 * id, or a negative libuv error.
 */
int cz_adopt(cz_engine_t *e, int fd, int owned, int profile, const cz_deflate_params_t *deflate, const uint8_t *first,
             size_t first_len, const uint8_t *head, size_t head_len, uint32_t *id);

int cz_send(cz_engine_t *e, uint32_t id, int opcode, const uint8_t *data, size_t len);
/* A frame encoded elsewhere (a broadcast); `payload` bytes count toward the buffer limit. */
int cz_send_frame(cz_engine_t *e, uint32_t id, const uint8_t *frame, size_t len, size_t payload);
/*
 * One frame to many connections (a room broadcast): written at once to each connection with
 * nothing queued, appended to the queue of the others. Connections whose buffered bytes plus
 * `payload` exceed `max_buffered` get nothing; their ids are written to the start of `ids` and
 * counted in `over`. Returns how many got the frame.
 */
size_t cz_broadcast(cz_engine_t *e, uint32_t *ids, size_t count, const uint8_t *frame, size_t len, size_t payload,
                    uint64_t max_buffered, size_t *over);
void cz_ping(cz_engine_t *e, uint32_t id, const uint8_t *data, size_t len);
/*
 * Start the closing handshake (code 0: a close frame without a code). A stream ends instead: its
 * output goes out, then the engine shuts the connection down and reports `code` at the close.
 */
void cz_close(cz_engine_t *e, uint32_t id, uint16_t code, const char *reason, size_t reason_len);
void cz_terminate(cz_engine_t *e, uint32_t id);
void cz_pause(cz_engine_t *e, uint32_t id);
void cz_resume(cz_engine_t *e, uint32_t id);

/* Connections per engine at most (ids carry a slot index below this). */
#define CZ_MAX_SLOTS (1u << 22)
#define CZ_STATE_CLOSED 0xffffffffu
/*
 * Let the engine keep, for every slot, the connection's buffered bytes (capped below
 * CZ_STATE_CLOSED) or CZ_STATE_CLOSED once it takes no more sends: `state` has CZ_MAX_SLOTS entries
 * and the caller reads it without calling in (to decide whether a send can be queued).
 */
void cz_engine_share_state(cz_engine_t *e, uint32_t *state);

typedef struct cz_engine_stats {
  uint64_t connections;
  uint64_t adopted;
  uint64_t messages_in;
  uint64_t messages_out;
  uint64_t bytes_in;
  uint64_t bytes_out;
  uint64_t writes;
} cz_engine_stats_t;

void cz_engine_stats(cz_engine_t *e, cz_engine_stats_t *out);
size_t cz_connection_size(void);
/* A stream's struct: a connection's without the frame parser. */
size_t cz_stream_size(void);

#endif
