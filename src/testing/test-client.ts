import type { Catzilla } from "../app/app.js";
import type { Dependency } from "../request/dependencies.js";
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
  /** What the app's overrides were before this client changed them (undefined: none). */
  private readonly replaced = new Map<Dependency<any>, Dependency<any> | undefined>();

  constructor(private readonly app: Catzilla) {}

  /**
   * Resolve `dependency` as `replacement` in every route of the app (HTTP and WebSocket, guards,
   * dependencies of dependencies) until `restore()` or `close()`, as FastAPI's
   * `app.dependency_overrides[dep] = replacement` does.
   * @example
   * client.override(currentUser, () => ({ id: 1, name: "test" }));
   */
  override<T>(dependency: Dependency<T>, replacement: Dependency<T>): this {
    const overrides = this.app.dependencyOverrides;
    if (!this.replaced.has(dependency)) this.replaced.set(dependency, overrides.get(dependency));
    overrides.set(dependency, replacement);
    return this;
  }

  /** Undo this client's overrides: one dependency's, or all of them. */
  restore(dependency?: Dependency<any>): void {
    const overrides = this.app.dependencyOverrides;
    for (const [original, before] of this.replaced) {
      if (dependency !== undefined && original !== dependency) continue;
      if (before === undefined) overrides.delete(original);
      else overrides.set(original, before);
      this.replaced.delete(original);
    }
  }

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

  /** Close open test WebSockets, undo this client's overrides and shut the app down. */
  async close(): Promise<void> {
    await Promise.all([...this.sockets].map((ws) => ws.close().catch(() => undefined)));
    this.restore();
    if (this.base !== null) await this.app.close();
  }
}
