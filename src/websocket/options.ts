import type { DeflateOptions } from "../protocol/websocket/extensions.js";
import type { OverLimitPolicy } from "../transport.js";
import { DEFAULT_DEFLATE_LEVEL, DEFAULT_DEFLATE_THRESHOLD } from "../protocol/websocket/constants.js";
import { assertIntegerIn, assertNonNegativeInteger, assertPositiveInteger } from "../validate.js";

/** permessage-deflate settings (RFC 7692). */
export interface PerMessageDeflateOptions extends DeflateOptions {
  /**
   * Messages smaller than this many bytes are sent uncompressed.
   * @default 1024
   */
  threshold?: number;
  /**
   * zlib level the server compresses its messages with: 1 is the fastest (about 3.5× level 6 on
   * JSON, for output about 8% larger), 9 the smallest and slowest, 0 stores without compressing.
   * @default 6
   */
  level?: number;
}

/** WebSocket limits and timers; app-wide in `new Catzilla({ websocket })`, per route in `app.websocket(path, handler, options)`. */
export interface WebSocketOptions {
  /** Largest message a peer may send (after reassembly and inflating); over it: close 1009. @default 1048576 */
  maxMessageBytes?: number;
  /** Largest frame a peer may send; over it: close 1009. @default maxMessageBytes */
  maxFrameBytes?: number;
  /** Bytes a connection may hold unsent before `overLimitPolicy` applies. @default 1048576 */
  maxBufferedBytes?: number;
  /** What a send over `maxBufferedBytes` does. @default "wait" */
  overLimitPolicy?: OverLimitPolicy;
  /** Close (1001) a connection that sent no message for this long; 0 for never. @default 0 */
  idleTimeoutMs?: number;
  /** Time a handler has to `accept()` (or reject) after the upgrade request arrived; then 408. @default 10000 */
  handshakeTimeoutMs?: number;
  /** Time the peer has to answer a close frame before the connection is dropped. @default 5000 */
  closeTimeoutMs?: number;
  /** Ping a quiet connection this often; drop it (1006) when the pong does not come within as long again. 0 for never. @default 30000 */
  pingIntervalMs?: number;
  /** Messages per second a connection may send; over it: close 1008. 0 for no limit. @default 0 */
  maxMessagesPerSecond?: number;
  /** Most open WebSocket connections; further upgrades get 503. @default 10000 */
  maxConnections?: number;
  /** Most open WebSocket connections from one client address; further upgrades get 429. @default 256 */
  maxConnectionsPerClient?: number;
  /** Allowed `Origin` values; others get 403. `null` allows any (and requests without Origin). @default null */
  origins?: readonly string[] | null;
  /** Subprotocols this route speaks, in order of preference. @default [] */
  subprotocols?: readonly string[];
  /** permessage-deflate: `false`, `true` (defaults) or settings. @default false */
  perMessageDeflate?: boolean | PerMessageDeflateOptions;
  /** Messages a pull-style handler may have waiting before the connection stops reading. @default 64 */
  maxQueuedMessages?: number;
  /**
   * Event-style routes: whether the upgrade request (`ws.request`, and `headers`, `query`,
   * `params`, `cookies`, `path`) stays available after `onOpen`. `false` lets it go when
   * `onOpen` returns, about a third of what an idle connection costs; copy what later handlers
   * need into `ws.state` in `onOpen` or in middleware. Reading it afterwards throws. A handler
   * function (pull style) keeps it while it runs either way. @default true
   */
  keepRequest?: boolean;
}

export type ResolvedWebSocketOptions = Required<Omit<WebSocketOptions, "perMessageDeflate">> & {
  perMessageDeflate: PerMessageDeflateOptions | null;
};

/** Defaults of {@link WebSocketOptions}. */
export const WEBSOCKET_DEFAULTS = Object.freeze({
  maxMessageBytes: 1_048_576,
  maxBufferedBytes: 1_048_576,
  overLimitPolicy: "wait" as OverLimitPolicy,
  idleTimeoutMs: 0,
  handshakeTimeoutMs: 10_000,
  closeTimeoutMs: 5_000,
  pingIntervalMs: 30_000,
  maxMessagesPerSecond: 0,
  maxConnections: 10_000,
  maxConnectionsPerClient: 256,
  origins: null,
  subprotocols: [] as readonly string[],
  maxQueuedMessages: 64,
  keepRequest: true,
});

const POSITIVE = ["maxMessageBytes", "maxFrameBytes", "maxBufferedBytes", "handshakeTimeoutMs", "closeTimeoutMs",
  "maxConnections", "maxConnectionsPerClient", "maxQueuedMessages"] as const;
const NON_NEGATIVE = ["idleTimeoutMs", "pingIntervalMs", "maxMessagesPerSecond"] as const;

const KNOWN = new Set<string>([...Object.keys(WEBSOCKET_DEFAULTS), "maxFrameBytes", "perMessageDeflate"]);
const KNOWN_DEFLATE = new Set(["threshold", "level", "serverNoContextTakeover", "clientNoContextTakeover", "serverMaxWindowBits", "clientMaxWindowBits"]);

function assertKnown(names: Iterable<string>, known: Set<string>, prefix: string): void {
  for (const name of names) {
    if (!known.has(name)) throw new TypeError(`Unknown option ${prefix}${name} (known: ${[...known].join(", ")})`);
  }
}

/** Merge route options over app options over defaults, and validate. @throws TypeError, RangeError naming the option */
export function resolveWebSocketOptions(...layers: Array<WebSocketOptions | undefined>): ResolvedWebSocketOptions {
  const merged: WebSocketOptions = { ...WEBSOCKET_DEFAULTS };
  for (const layer of layers) {
    if (layer === undefined) continue;
    assertKnown(Object.keys(layer), KNOWN, "websocket.");
    for (const [key, value] of Object.entries(layer)) if (value !== undefined) (merged as Record<string, unknown>)[key] = value;
  }
  merged.maxFrameBytes ??= merged.maxMessageBytes;
  for (const name of POSITIVE) assertPositiveInteger(`websocket.${name}`, merged[name]);
  for (const name of NON_NEGATIVE) assertNonNegativeInteger(`websocket.${name}`, merged[name]);
  const strings = (value: unknown): boolean => Array.isArray(value) && value.every((v) => typeof v === "string");
  if (merged.origins !== null && !strings(merged.origins)) throw new TypeError(`Option websocket.origins must be an array of strings or null, got ${String(merged.origins)}`);
  if (!strings(merged.subprotocols)) throw new TypeError(`Option websocket.subprotocols must be an array of strings, got ${String(merged.subprotocols)}`);
  if (typeof merged.keepRequest !== "boolean") throw new TypeError(`Option websocket.keepRequest must be a boolean, got ${String(merged.keepRequest)}`);
  if (!["wait", "drop", "close"].includes(merged.overLimitPolicy!)) {
    throw new TypeError(`Option websocket.overLimitPolicy must be "wait", "drop" or "close", got ${String(merged.overLimitPolicy)}`);
  }
  const deflate = merged.perMessageDeflate;
  if (typeof deflate === "object" && deflate !== null) assertKnown(Object.keys(deflate), KNOWN_DEFLATE, "websocket.perMessageDeflate.");
  else if (deflate !== undefined && typeof deflate !== "boolean") {
    throw new TypeError(`Option websocket.perMessageDeflate must be a boolean or an object, got ${String(deflate)}`);
  }
  const perMessageDeflate = deflate === true ? { threshold: DEFAULT_DEFLATE_THRESHOLD, level: DEFAULT_DEFLATE_LEVEL }
    : deflate === false || deflate === undefined ? null : { threshold: DEFAULT_DEFLATE_THRESHOLD, level: DEFAULT_DEFLATE_LEVEL, ...deflate };
  if (perMessageDeflate !== null) {
    assertNonNegativeInteger("websocket.perMessageDeflate.threshold", perMessageDeflate.threshold);
    assertIntegerIn("websocket.perMessageDeflate.level", perMessageDeflate.level, 0, 9);
    for (const flag of ["serverNoContextTakeover", "clientNoContextTakeover"] as const) {
      const value = perMessageDeflate[flag];
      if (value !== undefined && typeof value !== "boolean") throw new TypeError(`Option websocket.perMessageDeflate.${flag} must be a boolean, got ${String(value)}`);
    }
    for (const bits of ["serverMaxWindowBits", "clientMaxWindowBits"] as const) {
      const value = perMessageDeflate[bits];
      if (value !== undefined) assertIntegerIn(`websocket.perMessageDeflate.${bits}`, value, 9, 15);
    }
  }
  return { ...(merged as Required<WebSocketOptions>), perMessageDeflate };
}
