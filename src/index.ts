/// <reference types="node" preserve="true" />
export { Catzilla } from "./app/app.js";
export { toResponse } from "./app/to-response.js";
export type { Middleware, ErrorHandler, RoomHandlers } from "./app/app.js";
export type { ListenOptions, ListeningAddress } from "./app/server.js";
export { Router } from "./app/router.js";
export { cors } from "./app/cors.js";
export type { CorsOptions, CorsOrigin } from "./app/cors.js";
export type { Handler, IncludeOptions, JSONValueLike, ResponseLike, RouteOptions, RouterOptions, WebSocketHandler, WebSocketRouteOptions, WebSocketSchemas } from "./app/router.js";
export type { StandardSchemaV1, InferInput, InferOutput, JSONSchema } from "./request/standard-schema.js";
export type { RequestSchemas, Validated } from "./request/validation.js";
export type { RouteDoc, ResponseDoc, WebSocketRouteDoc } from "./docs/route-doc.js";
export type { DocumentInfo, OpenAPIDocument } from "./docs/openapi.js";
export type { AsyncAPIDocument } from "./docs/asyncapi.js";
export type { DocsPageOptions } from "./docs/page.js";
export type { PathParams } from "./request/route-pattern.js";
export { Request, parseCookies } from "./request/request.js";
export type { ClientAddress } from "./request/request.js";
export type { IncomingRequest, RequestConnection } from "./http-engine.js";
export type { Dependency, DependencyMap, Resolved, Resolve } from "./request/dependencies.js";
export {
  Response, TextResponse, HTMLResponse, JSONResponse, RedirectResponse,
} from "./responses/response.js";
export type { ResponseInit, CookieOptions } from "./responses/response.js";
export { ResponseHeaders } from "./responses/headers.js";
export type { HeadersInit } from "./responses/headers.js";
export { StreamingResponse } from "./responses/streaming.js";
export type { Chunk, ChunkSource, StreamBody, StreamController, StreamingOptions } from "./responses/streaming.js";
export { EventSourceResponse, jsonEvent } from "./responses/event-source.js";
export type { EventItem, EventSourceOptions } from "./responses/event-source.js";
export { FileResponse, streamFileRange } from "./responses/file.js";
export type { FileResponseOptions } from "./responses/file.js";
export type { StaticOptions } from "./responses/static.js";
export { encodeEvent } from "./protocol/sse.js";
export type { ServerSentEvent } from "./protocol/sse.js";
export { parseRange } from "./protocol/range.js";
export type { ByteRange, RangeResult } from "./protocol/range.js";
export {
  CatzillaError, HTTPError, BodyTooLargeError, InvalidJSONError, TooManyRequestsError,
  StreamingError, ClientDisconnectError, InvalidResponseError, RoomLimitError, RequestValidationError,
} from "./errors.js";
export type { ValidationIssue } from "./errors.js";
export { DEFAULTS } from "./options.js";
export type { AppOptions, EngineChoice, HttpEngineChoice, RateLimitOptions, Logger } from "./options.js";
export type { Stats, StreamStats, HttpStats, ConnectionStats, MemoryStats } from "./metrics/stats.js";
export { renderPrometheus } from "./metrics/prometheus.js";
export { WebSocket } from "./websocket/session.js";
export type { Message, AcceptOptions, ReceiveOptions, ReceiveJsonOptions, WebSocketListener } from "./websocket/session.js";
export type { WebSocketMiddleware } from "./websocket/engine.js";
export { WEBSOCKET_DEFAULTS } from "./websocket/options.js";
export type { WebSocketOptions, PerMessageDeflateOptions } from "./websocket/options.js";
export type { SendStatus, OverLimitPolicy, WebSocketTransport, TransportEvents } from "./transport.js";
export { CloseCode, Opcode, ReadyState } from "./protocol/websocket/constants.js";
export { WebSocketDisconnect, WebSocketException, WebSocketInvalidJSONError, WebSocketTimeoutError, WebSocketValidationError } from "./errors.js";
export type { WebSocketStats } from "./metrics/stats.js";
export { Room } from "./rooms/room.js";
export type { RoomOptions, RoomMessage, BroadcastOptions, BroadcastResult, ReplayResult, Joined, RoomEntry, Member, RoomStats } from "./rooms/room.js";
export { RoomRegistry } from "./rooms/registry.js";
export type { RoomsStats } from "./metrics/stats.js";
export { MemoryBus } from "./rooms/broker.js";
export type { Broker, BrokerLog, LogEntry, LogLimits } from "./rooms/broker.js";
