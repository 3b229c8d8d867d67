/// <reference types="node" preserve="true" />
export { TestClient } from "./test-client.js";
export { TestWebSocket } from "./websocket-client.js";
export type { TestWebSocketOptions } from "./websocket-client.js";
