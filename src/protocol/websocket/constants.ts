/** WebSocket opcodes (RFC 6455 §5.2). */
export const Opcode = {
  Continuation: 0x0,
  Text: 0x1,
  Binary: 0x2,
  Close: 0x8,
  Ping: 0x9,
  Pong: 0xa,
} as const;
export type Opcode = (typeof Opcode)[keyof typeof Opcode];

/** Close codes (RFC 6455 §7.4.1, IANA registry). */
export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  ProtocolError: 1002,
  UnsupportedData: 1003,
  /** Never sent: stands for "the close frame had no code". */
  NoStatus: 1005,
  /** Never sent: stands for "the connection closed without a close frame". */
  Abnormal: 1006,
  InvalidPayload: 1007,
  PolicyViolation: 1008,
  MessageTooBig: 1009,
  MandatoryExtension: 1010,
  InternalError: 1011,
  ServiceRestart: 1012,
  TryAgainLater: 1013,
  BadGateway: 1014,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** Connection states, as `WebSocket.readyState` names them. */
export const ReadyState = {
  Connecting: 0,
  Open: 1,
  Closing: 2,
  Closed: 3,
} as const;
export type ReadyState = (typeof ReadyState)[keyof typeof ReadyState];

/** RFC 6455 §5.5: control frames carry at most 125 bytes. */
export const MAX_CONTROL_PAYLOAD = 125;

/**
 * The most bytes a compressed message (or frame) of `limit` bytes inflated may take on the wire:
 * zlib's bound for the costliest encoding a compressor picks (fixed Huffman codes, 9-bit
 * literals: about 13% more), plus block headers. A compressed message's limits apply to it
 * inflated, checked while inflating; on the wire it may take up to this, so that a message
 * within the limits is never refused for what deflate added (RFC 7692). The C parser
 * (native/src/frame.c, compressed_bound) computes the same.
 */
export function compressedBound(limit: number): number {
  return limit + Math.floor(limit / 8) + Math.floor(limit / 256) + Math.floor(limit / 512) + 64;
}

/**
 * Whether a close code may appear in a received close frame (RFC 6455 §7.4): 1000–1003,
 * 1007–1014 and the registered/private range 3000–4999. 1004–1006 and 1015 are reserved for
 * local use, 1016–2999 are unassigned.
 */
export function isValidCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

/** Whether an application may send this close code: 1000, 3000–4999 (and the 1001–1014 it can mean). */
export function isSendableCloseCode(code: number): boolean {
  return Number.isInteger(code) && isValidCloseCode(code);
}

/**
 * permessage-deflate defaults, for connections and room broadcasts alike: messages of at least
 * this many bytes are compressed (smaller ones cost more to compress than they save)...
 */
export const DEFAULT_DEFLATE_THRESHOLD = 1024;
/** ...at zlib level 6 (zlib's own default: most of level 9's ratio at a fraction of its time). */
export const DEFAULT_DEFLATE_LEVEL = 6;
