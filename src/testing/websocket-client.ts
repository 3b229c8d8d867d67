import { connect, type Socket } from "node:net";
import { randomBytes } from "node:crypto";
import { WebSocketDisconnect, WebSocketException, WebSocketTimeoutError } from "../errors.js";
import { CloseCode } from "../protocol/websocket/constants.js";
import { WebSocketProtocol } from "../protocol/websocket/protocol.js";
import { acceptKey } from "../node/websocket/accept-key.js";

/** Options of {@link TestWebSocket.connect}. */
export interface TestWebSocketOptions {
  headers?: Record<string, string>;
  subprotocols?: string[];
  /** Largest message accepted from the server. @default 67108864 */
  maxMessageBytes?: number;
}

type Received = { data: string | Buffer } | { closed: WebSocketDisconnect };

/**
 * A WebSocket client for tests, on a real socket: masked frames, the close handshake, and
 * `receive*({ timeout })` that fail instead of hanging.
 */
export class TestWebSocket {
  /** The subprotocol the server chose. */
  subprotocol: string | undefined;
  /** The close code the connection ended with; 0 while connected. */
  closeCode = 0;
  closeReason = "";
  private readonly inbox: Received[] = [];
  private waiter: ((item: Received) => void) | null = null;
  private protocol!: WebSocketProtocol;

  private constructor(private readonly socket: Socket) {}

  /**
   * Open a connection; rejects with the HTTP status when the server refuses the upgrade.
   * @example const ws = await TestWebSocket.connect("ws://127.0.0.1:8000/echo");
   */
  static async connect(url: string, options: TestWebSocketOptions = {}): Promise<TestWebSocket> {
    const target = new URL(url);
    const socket = connect(Number(target.port || 80), target.hostname);
    socket.setNoDelay(true);
    const client = new TestWebSocket(socket);
    const key = randomBytes(16).toString("base64");
    const headers: Record<string, string> = {
      Host: target.host, Upgrade: "websocket", Connection: "Upgrade",
      "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "13", ...options.headers,
    };
    if (options.subprotocols !== undefined) headers["Sec-WebSocket-Protocol"] = options.subprotocols.join(", ");
    let request = `GET ${target.pathname}${target.search} HTTP/1.1\r\n`;
    for (const [name, value] of Object.entries(headers)) request += `${name}: ${value}\r\n`;
    socket.write(request + "\r\n");
    const { head, rest } = await new Promise<{ head: string; rest: Buffer }>((resolve, reject) => {
      let buffered = Buffer.alloc(0);
      const onData = (data: Buffer): void => {
        buffered = Buffer.concat([buffered, data]);
        const end = buffered.indexOf("\r\n\r\n");
        if (end < 0) return;
        socket.off("data", onData);
        socket.off("error", reject);
        resolve({ head: buffered.subarray(0, end).toString("latin1"), rest: buffered.subarray(end + 4) });
      };
      socket.on("data", onData);
      socket.once("error", reject);
      socket.once("close", () => reject(new WebSocketException("Connection closed during the handshake")));
    });
    const status = Number(head.split(" ")[1]);
    if (status !== 101) {
      socket.destroy();
      throw new WebSocketException(`The server refused the upgrade with HTTP ${status}`, `CZ_WS_REFUSED_${status}`);
    }
    const accept = /\r\nsec-websocket-accept:\s*(\S+)/i.exec(head)?.[1];
    if (accept !== acceptKey(key)) {
      socket.destroy();
      throw new WebSocketException("Wrong Sec-WebSocket-Accept");
    }
    client.subprotocol = /\r\nsec-websocket-protocol:\s*(\S+)/i.exec(head)?.[1];
    client.attach(options.maxMessageBytes ?? 64 * 1024 * 1024, rest);
    return client;
  }

  /** Whether the connection is open. */
  get isConnected(): boolean {
    return this.closeCode === 0 && !this.socket.destroyed;
  }

  sendText(text: string): void {
    this.protocol.sendText(text);
  }

  sendBytes(data: Uint8Array): void {
    this.protocol.sendBinary(data);
  }

  sendJson(value: unknown): void {
    this.sendText(JSON.stringify(value));
  }

  /** The next message. @throws WebSocketDisconnect when the connection ended, WebSocketTimeoutError after `timeout` ms. */
  async receive(options: { timeout?: number } = {}): Promise<string | Buffer> {
    const timeout = options.timeout ?? 5_000;
    const item = this.inbox.shift() ?? (await new Promise<Received | null>((resolve) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        resolve(null);
      }, timeout);
      this.waiter = (received) => {
        clearTimeout(timer);
        resolve(received);
      };
    }));
    if (item === null) throw new WebSocketTimeoutError(timeout);
    if ("closed" in item) {
      this.inbox.unshift(item);
      throw item.closed;
    }
    return item.data;
  }

  async receiveText(options?: { timeout?: number }): Promise<string> {
    const message = await this.receive(options);
    if (typeof message !== "string") throw new WebSocketException("Expected text, got binary");
    return message;
  }

  async receiveBytes(options?: { timeout?: number }): Promise<Buffer> {
    const message = await this.receive(options);
    if (typeof message === "string") throw new WebSocketException("Expected binary, got text");
    return message;
  }

  async receiveJson<T = unknown>(options?: { timeout?: number }): Promise<T> {
    return JSON.parse(await this.receiveText(options)) as T;
  }

  /** Close with a code and wait (up to 5 s) for the server to end the connection. */
  async close(code: number = CloseCode.Normal, reason = ""): Promise<void> {
    if (this.socket.destroyed) return;
    const ended = new Promise((resolve) => this.socket.once("close", resolve));
    this.protocol.sendClose(code, reason);
    const timer = setTimeout(() => this.socket.destroy(), 5_000);
    await ended;
    clearTimeout(timer);
  }

  private attach(maxMessageBytes: number, rest: Buffer): void {
    const socket = this.socket;
    this.protocol = new WebSocketProtocol({
      write: (data) => void socket.write(data),
      onMessage: (data, isBinary) => this.push({ data: isBinary ? data : data.toString("utf8") }),
      onPing: () => undefined,
      onPong: () => undefined,
      onClose: (code, reason) => this.end(code, reason),
      onError: (code, reason) => this.end(code, reason),
    }, { maxMessageBytes, maxFrameBytes: maxMessageBytes, isServer: false, compression: false, maskKey: () => randomBytes(4) });
    socket.on("data", (data: Buffer) => this.protocol.receiveData(data));
    socket.on("error", () => undefined);
    socket.once("close", () => this.end(CloseCode.Abnormal, ""));
    if (rest.length > 0) this.protocol.receiveData(rest);
  }

  private end(code: number, reason: string): void {
    if (this.closeCode !== 0) return;
    this.closeCode = code;
    this.closeReason = reason;
    this.push({ closed: new WebSocketDisconnect(code, reason) });
    if (this.protocol.closeReceived) this.socket.end();
  }

  private push(item: Received): void {
    const waiter = this.waiter;
    if (waiter !== null) {
      this.waiter = null;
      waiter(item);
    } else {
      this.inbox.push(item);
    }
  }
}
