/**
 * Policies both engines keep: the node:net engine (node/websocket/) reads them here, the native
 * engine mirrors them in native/src/engine.h (CZ_ names), and a test checks that the two agree.
 */

/** Under the "wait" over-limit policy, a sender that never waits is closed (1008) at this many times `maxBufferedBytes`. */
export const WAIT_POLICY_CLOSE_FACTOR = 4;
/** `maxMessagesPerSecond` counts messages in windows of this many milliseconds. */
export const MESSAGE_RATE_WINDOW_MS = 1_000;
/** The longest heartbeat an engine-owned SSE stream writes. */
export const MAX_HEARTBEAT_BYTES = 64;
