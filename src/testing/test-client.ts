import type { Catzilla } from "../app/app.js";
import { TestWebSocket, type TestWebSocketOptions } from "./websocket-client.js";

/**
 * Drives an app over real sockets on an ephemeral port of 127.0.0.1, for users' own tests.
 * @example
 * const client = new TestClient(app);
 * const res = await client.get("/hello");
 * const ws = await client.websocket("/echo");
 * ws.sendText("hi");
 * assert.equal(await ws.receiveText({ timeout: 1000 }), "hi");
 * await client.close();
 */
export class TestClient {
  private base: Promise<string> | null = null;
  private readonly sockets = new Set<TestWebSocket>();

  constructor(private readonly app: Catzilla) {}

  /** `http://127.0.0.1:port`, starting the app on first use. */
  url(): Promise<string> {
    return (this.base ??= this.app.listen({ port: 0, host: "127.0.0.1" }).then((address) => address.url));
  }

  /** `fetch` against the app. */
  async request(path: string, init?: RequestInit): Promise<globalThis.Response> {
    return fetch(`${await this.url()}${path}`, init);
  }

  get(path: string, init?: RequestInit): Promise<globalThis.Response> {
    return this.request(path, { ...init, method: "GET" });
  }

  post(path: string, body?: RequestInit["body"], init?: RequestInit): Promise<globalThis.Response> {
    return this.request(path, { ...init, method: "POST", ...(body === undefined ? {} : { body }) });
  }

  /** Open a WebSocket to a path of the app. */
  async websocket(path: string, options?: TestWebSocketOptions): Promise<TestWebSocket> {
    const url = (await this.url()).replace(/^http/, "ws");
    const ws = await TestWebSocket.connect(`${url}${path}`, options);
    this.sockets.add(ws);
    return ws;
  }

  /** Same as {@link websocket}, named like the other calls of this API. */
  connect(path: string, options?: TestWebSocketOptions): Promise<TestWebSocket> {
    return this.websocket(path, options);
  }

  /** Close open test WebSockets and shut the app down. */
  async close(): Promise<void> {
    await Promise.all([...this.sockets].map((ws) => ws.close().catch(() => undefined)));
    if (this.base !== null) await this.app.close();
  }
}
