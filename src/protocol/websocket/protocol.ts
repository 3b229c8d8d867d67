/**
 * The WebSocket connection state machine of one endpoint, without I/O (RFC 6455 §5–§7), in both
 * directions. Bytes go in with `receiveData`; messages, control frames and protocol errors come
 * out through a {@link ProtocolHandler}. Messages, pings, pongs and close frames go out with the
 * `send*` methods, and every byte to send (automatic pongs and close echoes too) leaves through
 * the handler's `write`. The transport owns the socket, timers and compression.
 */
import { isUtf8 } from "node:buffer";
import { CloseCode, MAX_CONTROL_PAYLOAD, Opcode, compressedBound, isValidCloseCode } from "./constants.js";
import { encodeClose, encodeFrame, headerLength, truncateReason, unmask, writeHeader } from "./frame.js";
import { Utf8Validator } from "./utf8.js";

/** Where the protocol delivers what it decoded, and the bytes it wants sent. */
export interface ProtocolHandler {
  /** Bytes for the peer, in order. */
  write(data: Uint8Array): void;
  /** A complete message; text is already validated UTF-8. */
  onMessage(data: Buffer, isBinary: boolean): void;
  onPing(payload: Buffer): void;
  onPong(payload: Buffer): void;
  /**
   * The peer's close frame arrived (its code, or 1005 for none). If the close was not sent by us
   * first, the echo has been written already. The state is Closed: the transport should end the
   * TCP connection now (a server, RFC 6455 §7.1.1) or wait for the peer to (a client).
   */
  onClose(code: number, reason: string): void;
  /**
   * The peer broke the protocol or a limit (`error` says which, in a name that stays the same;
   * `reason` says it in words, with details). A close frame with `code` has been written and the
   * state is Closed: the transport ends the connection once it is flushed.
   */
  onError(code: number, reason: string, error: ProtocolError): void;
  /**
   * A compressed message is complete (RFC 7692). The transport inflates it and answers with
   * `completeInflate` or `failInflate`; until then the protocol holds further frames back.
   */
  onCompressedMessage?(payload: Buffer[], isBinary: boolean): void;
  /**
   * Whether the connection can take an automatic pong now (its output is within its limit).
   * When not, a ping goes unanswered: RFC 6455 §5.5.3 lets an endpoint answer only the most
   * recent of several pings, so a peer that pings and never reads cannot grow the output.
   * Missing: always.
   */
  canAnswerPing?(): boolean;
}

/** Limits and negotiated features of a connection. */
export interface ProtocolOptions {
  /** Largest message, after reassembly (and, for compressed messages, before inflating). */
  maxMessageBytes: number;
  /** Largest single frame payload. */
  maxFrameBytes: number;
  /** Servers require masked client frames (§5.1); clients require unmasked ones. */
  isServer: boolean;
  /** permessage-deflate was negotiated: RSV1 marks a compressed message. */
  compression: boolean;
  /** For a client endpoint: a fresh masking key for each frame it sends (§5.3). */
  maskKey?: () => Uint8Array;
}

/**
 * Where the connection is in its closing handshake (RFC 6455 §7): Open; Closing once one side's
 * close frame passed (ours sent, the peer's not yet received); Closed once both passed or the
 * protocol failed the connection. Nothing is sent after Open, except an echo of the peer's close.
 */
export const ConnectionState = { Open: 0, Closing: 1, Closed: 2 } as const;
export type ConnectionState = (typeof ConnectionState)[keyof typeof ConnectionState];

/**
 * Why the protocol failed a connection, in stable names (the reason text may change and carries
 * details); each has its close code in {@link PROTOCOL_ERROR_CODES}.
 */
export type ProtocolError =
  | "reserved-bits"
  | "unnegotiated-rsv1"
  | "reserved-opcode"
  | "fragmented-control-frame"
  | "control-frame-too-long"
  | "continuation-without-message"
  | "interleaved-message"
  | "masking"
  | "bad-length"
  | "frame-too-large"
  | "message-too-large"
  | "invalid-utf8"
  | "bad-close-frame"
  | "invalid-compressed-data"
  | "no-inflater";

/** The close code a connection failed with for each protocol error. */
export const PROTOCOL_ERROR_CODES: Readonly<Record<ProtocolError, CloseCode>> = {
  "reserved-bits": CloseCode.ProtocolError,
  "unnegotiated-rsv1": CloseCode.ProtocolError,
  "reserved-opcode": CloseCode.ProtocolError,
  "fragmented-control-frame": CloseCode.ProtocolError,
  "control-frame-too-long": CloseCode.ProtocolError,
  "continuation-without-message": CloseCode.ProtocolError,
  "interleaved-message": CloseCode.ProtocolError,
  masking: CloseCode.ProtocolError,
  "bad-length": CloseCode.ProtocolError,
  "frame-too-large": CloseCode.MessageTooBig,
  "message-too-large": CloseCode.MessageTooBig,
  "invalid-utf8": CloseCode.InvalidPayload,
  "bad-close-frame": CloseCode.ProtocolError,
  "invalid-compressed-data": CloseCode.InvalidPayload,
  "no-inflater": CloseCode.InternalError,
};

/** Payloads from this size are written after their header, not copied into one frame. */
const COPY_LIMIT = 16 * 1024;

/** Parser states, named after what the next bytes are. */
const State = {
  Header: 0,
  Length16: 1,
  Length64: 2,
  MaskKey: 3,
  Payload: 4,
  /** Waiting for an inflated message from the transport. */
  Inflating: 5,
  /** A close frame was received or a violation found: nothing more is read. */
  Done: 6,
} as const;
type State = (typeof State)[keyof typeof State];

const EMPTY = Buffer.alloc(0);
/** Where a frame's mask is spelled out for `unmask`, which runs at once: one for all connections. */
const MASK = Buffer.alloc(4);

/**
 * One endpoint's protocol state. Per-connection state is flat and set in the constructor; the
 * handler is shared by reference, not a closure per connection.
 */
export class WebSocketProtocol {
  private sent = false;
  private received = false;
  private failed = false;
  private state: State = State.Header;
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  // The frame being read.
  private fin = false;
  private rsv1 = false;
  private opcode = 0;
  private masked = false;
  private payloadLength = 0;
  // The frame's mask as a 32-bit integer: a number in the object, not a Buffer per connection.
  private maskKey = 0;
  // The message being reassembled.
  private messageOpcode = 0;
  private messageCompressed = false;
  private messageLength = 0;
  /**
   * The bytes of a message in more than one frame (or compressed), copied into one buffer that
   * doubles as it fills (up to the message's limit): whatever the fragmentation, a message costs
   * at most twice its size, not an object per fragment (a million 1-byte fragments were 20× that).
   */
  private gathered: Buffer | null = null;
  private utf8: Utf8Validator | null = null;

  constructor(private readonly handler: ProtocolHandler, private readonly options: ProtocolOptions) {}

  /** Feed bytes from the peer. Events are delivered to the handler before this returns. */
  receiveData(data: Buffer): void {
    if (this.state === State.Done || data.length === 0) return;
    this.chunks.push(data);
    this.buffered += data.length;
    if (this.state !== State.Inflating) this.process();
  }

  /** Where the closing handshake is. */
  get connectionState(): ConnectionState {
    if (this.failed || (this.sent && this.received)) return ConnectionState.Closed;
    return this.sent || this.received ? ConnectionState.Closing : ConnectionState.Open;
  }

  /** Whether we sent a close frame. */
  get closeSent(): boolean {
    return this.sent;
  }

  /** Whether the peer's close frame arrived. */
  get closeReceived(): boolean {
    return this.received;
  }

  /** Whether nothing more will be read. */
  get isDone(): boolean {
    return this.state === State.Done;
  }

  /** Send a text message. False (nothing written) once our close was sent. */
  sendText(text: string): boolean {
    return this.sendMessage(false, text, false);
  }

  /** Send a binary message. False (nothing written) once our close was sent. */
  sendBinary(data: Uint8Array): boolean {
    return this.sendMessage(true, data, false);
  }

  /**
   * Send a message in one frame; with `compressed`, a payload the transport deflated (RFC 7692:
   * RSV1 set, the 4 trailing bytes already removed). An unmasked payload of 16 KiB or more is
   * written after its header, not copied: the transport should write both in one call (cork).
   * False (nothing written) once our close was sent.
   */
  sendMessage(isBinary: boolean, payload: string | Uint8Array, compressed: boolean): boolean {
    if (this.sent) return false;
    const opcode = isBinary ? Opcode.Binary : Opcode.Text;
    const mask = this.options.maskKey?.();
    if (mask === undefined && typeof payload !== "string" && payload.byteLength >= COPY_LIMIT) {
      const header = Buffer.allocUnsafe(headerLength(payload.byteLength, false));
      writeHeader(header, 0, opcode, payload.byteLength, true, compressed);
      this.handler.write(header);
      this.handler.write(payload);
      return true;
    }
    this.handler.write(encodeFrame(opcode, payload, mask === undefined ? { rsv1: compressed } : { rsv1: compressed, mask }));
    return true;
  }

  /** Send a ping (payload at most 125 bytes). False once our close was sent. */
  sendPing(payload: string | Uint8Array = EMPTY): boolean {
    return this.sendControl(Opcode.Ping, payload);
  }

  /** Send an unsolicited pong (a heartbeat; RFC 6455 §5.5.3). False once our close was sent. */
  sendPong(payload: string | Uint8Array = EMPTY): boolean {
    return this.sendControl(Opcode.Pong, payload);
  }

  private sendControl(opcode: typeof Opcode.Ping | typeof Opcode.Pong, payload: string | Uint8Array): boolean {
    if (this.sent) return false;
    this.handler.write(this.frame(opcode, payload));
    return true;
  }

  /**
   * Send a close frame (once; later calls do nothing). The reason is cut to 123 bytes. Unless
   * the peer's close came first, the transport should wait for it, then end the connection.
   */
  sendClose(code?: number, reason = ""): void {
    if (this.sent) return;
    this.sent = true;
    this.handler.write(encodeClose(code, truncateReason(reason), this.options.maskKey?.()));
  }

  /** The transport inflated a compressed message. */
  completeInflate(data: Buffer): void {
    if (this.state !== State.Inflating) return;
    this.state = State.Header;
    const isBinary = this.messageOpcode === Opcode.Binary;
    this.resetMessage();
    if (!isBinary && !isUtf8(data)) {
      this.fail("invalid-utf8", "Invalid UTF-8 in text message");
      return;
    }
    this.handler.onMessage(data, isBinary);
    if (this.state === State.Header) this.process();
  }

  /** Inflating failed: the data was not valid deflate, or it inflated past the message limit. */
  failInflate(error: "invalid-compressed-data" | "message-too-large"): void {
    if (this.state !== State.Inflating) return;
    this.fail(error, error === "message-too-large" ? "Message too large" : "Invalid compressed data");
  }

  private process(): void {
    for (;;) {
      switch (this.state) {
        case State.Header:
          if (this.buffered < 2 || !this.readHeader()) return;
          break;
        case State.Length16:
          if (this.buffered < 2) return;
          this.payloadLength = this.consume(2).readUInt16BE(0);
          if (!this.checkLength()) return;
          break;
        case State.Length64: {
          if (this.buffered < 8) return;
          const bytes = this.consume(8);
          const high = bytes.readUInt32BE(0);
          // §5.2: the most significant bit must be 0; above 2^53 is beyond any limit anyway.
          if (high > 0x1fffff) {
            if (high >= 0x80000000) this.fail("bad-length", "Frame length with the most significant bit set");
            else this.fail("frame-too-large", "Frame too large");
            return;
          }
          this.payloadLength = high * 0x1_0000_0000 + bytes.readUInt32BE(4);
          if (!this.checkLength()) return;
          break;
        }
        case State.MaskKey:
          if (this.buffered < 4) return;
          this.maskKey = this.consume(4).readInt32BE(0);
          this.state = State.Payload;
          break;
        case State.Payload: {
          if (this.buffered < this.payloadLength) return;
          const payload = this.payloadLength === 0 ? EMPTY : this.consume(this.payloadLength);
          if (this.masked) {
            MASK.writeInt32BE(this.maskKey, 0);
            unmask(payload, MASK);
          }
          this.state = State.Header;
          this.handleFrame(payload);
          break;
        }
        default:
          return;
      }
    }
  }

  /** Parse the first two header bytes; returns false when the frame was refused. */
  private readHeader(): boolean {
    const first = this.peek(0);
    const second = this.peek(1);
    this.consume(2);
    this.fin = (first & 0x80) !== 0;
    this.rsv1 = (first & 0x40) !== 0;
    this.opcode = first & 0x0f;
    this.masked = (second & 0x80) !== 0;
    this.payloadLength = second & 0x7f;
    const opcode = this.opcode;
    const isControl = opcode >= 0x8;
    // §5.2: RSV2 and RSV3 need an extension that defines them; none is supported.
    if ((first & 0x30) !== 0) return this.fail("reserved-bits", "Reserved bits set");
    if (this.rsv1) {
      // RFC 7692 §6: RSV1 marks the first frame of a compressed data message, only when negotiated.
      if (!this.options.compression || isControl || opcode === Opcode.Continuation) {
        return this.fail("unnegotiated-rsv1", "RSV1 set without a negotiated extension");
      }
    }
    if (isControl) {
      if (opcode > Opcode.Pong) return this.fail("reserved-opcode", `Reserved opcode ${opcode}`);
      // §5.5: control frames are never fragmented and carry at most 125 bytes.
      if (!this.fin) return this.fail("fragmented-control-frame", "Fragmented control frame");
      if (this.payloadLength > MAX_CONTROL_PAYLOAD) return this.fail("control-frame-too-long", "Control frame too long");
    } else if (opcode > Opcode.Binary) {
      return this.fail("reserved-opcode", `Reserved opcode ${opcode}`);
    } else if (opcode === Opcode.Continuation) {
      if (this.messageOpcode === 0) return this.fail("continuation-without-message", "Continuation frame without a message");
    } else if (this.messageOpcode !== 0) {
      return this.fail("interleaved-message", "New data frame inside a fragmented message");
    }
    // §5.1: a server must close on an unmasked client frame; a client on a masked server frame.
    if (this.masked !== this.options.isServer) {
      return this.fail("masking", this.options.isServer ? "Client frame not masked" : "Server frame masked");
    }
    if (this.payloadLength === 126) this.state = State.Length16;
    else if (this.payloadLength === 127) this.state = State.Length64;
    else return this.checkLength();
    return true;
  }

  /** Check the frame length against the limits before any payload is buffered. */
  private checkLength(): boolean {
    const length = this.payloadLength;
    if (this.opcode < 0x8) {
      const { maxFrameBytes, maxMessageBytes } = this.options;
      // A compressed message's limits hold for it inflated (checked while inflating); its bytes
      // on the wire may be more by what deflate adds.
      const compressed = this.opcode === Opcode.Continuation ? this.messageCompressed : this.rsv1;
      if (length > (compressed ? compressedBound(maxFrameBytes) : maxFrameBytes)) return this.fail("frame-too-large", "Frame too large");
      if (this.messageLength + length > (compressed ? compressedBound(maxMessageBytes) : maxMessageBytes)) {
        return this.fail("message-too-large", "Message too large");
      }
    }
    this.state = this.masked ? State.MaskKey : State.Payload;
    return true;
  }

  private handleFrame(payload: Buffer): void {
    switch (this.opcode) {
      case Opcode.Text:
      case Opcode.Binary:
      case Opcode.Continuation:
        this.handleData(payload);
        return;
      case Opcode.Ping:
        // §5.5.2: answer with a pong carrying the same payload, unless closing (or, §5.5.3,
        // while earlier answers still wait to go out).
        if (!this.sent && this.handler.canAnswerPing?.() !== false) this.handler.write(this.frame(Opcode.Pong, payload));
        this.handler.onPing(payload);
        return;
      case Opcode.Pong:
        this.handler.onPong(payload);
        return;
      case Opcode.Close:
        this.handleClose(payload);
        return;
    }
  }

  private handleData(payload: Buffer): void {
    if (this.opcode !== Opcode.Continuation) {
      this.messageOpcode = this.opcode;
      this.messageCompressed = this.rsv1;
    }
    this.messageLength += payload.length;
    const isText = this.messageOpcode === Opcode.Text;
    if (this.messageCompressed) {
      const whole = this.fin && this.gathered === null ? payload : this.gather(payload);
      if (!this.fin) return;
      this.gathered = null;
      this.state = State.Inflating;
      if (this.handler.onCompressedMessage === undefined) {
        this.fail("no-inflater", "No inflater");
        return;
      }
      this.handler.onCompressedMessage([whole], !isText);
      return;
    }
    if (this.fin && this.gathered === null) {
      // The common case: a whole message in one frame.
      this.messageOpcode = 0;
      this.messageLength = 0;
      if (isText && !isUtf8(payload)) {
        this.fail("invalid-utf8", "Invalid UTF-8 in text message");
        return;
      }
      this.handler.onMessage(payload, !isText);
      return;
    }
    // §8.1: a fragmented text message fails as soon as a fragment cannot be valid UTF-8.
    if (isText && !(this.utf8 ??= new Utf8Validator()).feed(payload)) {
      this.fail("invalid-utf8", "Invalid UTF-8 in text message");
      return;
    }
    const data = this.gather(payload);
    if (!this.fin) return;
    if (isText && !this.utf8!.isComplete) {
      this.fail("invalid-utf8", "Text message ends inside a character");
      return;
    }
    this.resetMessage();
    this.handler.onMessage(data, !isText);
  }

  /** Append a fragment to the message's buffer; returns the message so far. */
  private gather(payload: Buffer): Buffer {
    const length = this.messageLength;
    const start = length - payload.length;
    let buffer = this.gathered;
    if (buffer === null || length > buffer.length) {
      // The frame's length was checked against the limit before its payload was read.
      const limit = this.messageCompressed ? compressedBound(this.options.maxMessageBytes) : this.options.maxMessageBytes;
      let capacity = Math.max(buffer?.length ?? 0, 1024);
      while (capacity < length) capacity *= 2;
      const grown = Buffer.allocUnsafe(Math.min(capacity, Math.max(limit, length)));
      buffer?.copy(grown, 0, 0, start);
      this.gathered = buffer = grown;
    }
    payload.copy(buffer, start);
    return buffer.subarray(0, length);
  }

  private handleClose(payload: Buffer): void {
    this.received = true;
    let code: number = CloseCode.NoStatus;
    let reason = "";
    if (payload.length === 1) {
      this.fail("bad-close-frame", "Close frame with a one-byte payload");
      return;
    }
    if (payload.length >= 2) {
      code = payload.readUInt16BE(0);
      if (!isValidCloseCode(code)) {
        this.fail("bad-close-frame", `Invalid close code ${code}`);
        return;
      }
      const reasonBytes = payload.subarray(2);
      if (!isUtf8(reasonBytes)) {
        this.fail("invalid-utf8", "Invalid UTF-8 in close reason");
        return;
      }
      reason = reasonBytes.toString("utf8");
    }
    this.state = State.Done;
    this.dropBuffered();
    // §5.5.1: echo the close; without a code in the peer's frame, answer with none either.
    if (!this.sent) this.sendClose(code === CloseCode.NoStatus ? undefined : code);
    this.handler.onClose(code, reason);
  }

  private frame(opcode: Opcode, payload: string | Uint8Array): Buffer {
    const mask = this.options.maskKey?.();
    return encodeFrame(opcode, payload, mask === undefined ? {} : { mask });
  }

  private resetMessage(): void {
    this.messageOpcode = 0;
    this.messageCompressed = false;
    this.messageLength = 0;
    this.gathered = null;
    this.utf8?.reset();
  }

  /** Fail the connection (§7.1.7): send a close frame with the error's code; read nothing more. */
  private fail(error: ProtocolError, reason: string): false {
    const code = PROTOCOL_ERROR_CODES[error];
    this.state = State.Done;
    this.failed = true;
    this.dropBuffered();
    this.resetMessage();
    this.sendClose(code, reason);
    this.handler.onError(code, reason, error);
    return false;
  }

  private dropBuffered(): void {
    this.chunks.length = 0;
    this.buffered = 0;
  }

  private peek(index: number): number {
    let i = index;
    for (const chunk of this.chunks) {
      if (i < chunk.length) return chunk[i]!;
      i -= chunk.length;
    }
    return 0;
  }

  /** Take `n` buffered bytes: a view when they lie in one chunk, else a copy. */
  private consume(n: number): Buffer {
    this.buffered -= n;
    const first = this.chunks[0]!;
    if (first.length === n) {
      this.chunks.shift();
      return first;
    }
    if (first.length > n) {
      this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let offset = 0;
    while (offset < n) {
      const chunk = this.chunks[0]!;
      const take = Math.min(chunk.length, n - offset);
      chunk.copy(out, offset, 0, take);
      offset += take;
      if (take === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(take);
    }
    return out;
  }
}
