import { jsonSchemaOf, type JSONSchema, type StandardSchemaV1 } from "../request/standard-schema.js";
import { RoutePattern } from "../request/route-pattern.js";
import type { WebSocketRouteDefinition } from "../websocket/route.js";
import type { DocumentInfo } from "./openapi.js";
import { SchemaCollector } from "./json-schema.js";
import { pathWords, uniqueName } from "./names.js";

/** An AsyncAPI 3.0 document, as a plain object. */
export type AsyncAPIDocument = Record<string, unknown> & { asyncapi: "3.0.0"; channels: Record<string, unknown> };

const CONVERTER_NOTE: Record<string, string> = {
  str: "a path segment",
  int: "a whole number (digits)",
  float: "a number (digits, an optional fraction)",
  uuid: "a UUID",
  path: "the rest of the path, slashes included",
};

/**
 * The AsyncAPI 3.0 document of a set of WebSocket routes: one channel per route (its address with
 * parameters, the upgrade's query and headers as WebSocket bindings, the messages each way), a
 * `receive` operation for what clients send and a `send` operation for what the server sends.
 * Rooms (`app.room()`) are channels whose messages every member of a path's room receives.
 */
export function asyncAPIDocument(routes: readonly WebSocketRouteDefinition[], info: DocumentInfo = {}): AsyncAPIDocument {
  const schemas = new SchemaCollector("#/components/schemas/");
  const channels: Record<string, unknown> = {};
  const operations: Record<string, unknown> = {};
  const ids = new Set<string>();
  for (const route of routes) {
    const doc = route.doc;
    if (doc.includeInSchema === false) continue;
    const pattern = new RoutePattern(route.path);
    const id = uniqueName(pathWords(pattern.template) || "root", ids);
    const room = route.kind === "room";
    const channel: Record<string, unknown> = { address: pattern.template };
    if (doc.summary !== undefined) channel.summary = doc.summary;
    const description = doc.description ?? (room ? "A room per path: every connection joins the room its path names; what one member sends is broadcast to the room." : undefined);
    if (description !== undefined) channel.description = description;
    const parameters: Record<string, unknown> = {};
    for (const { name, converter } of pattern.parameters) parameters[name] = { description: CONVERTER_NOTE[converter] };
    if (Object.keys(parameters).length > 0) channel.parameters = parameters;
    const tags = [...(doc.tags ?? []), ...(room ? ["room"] : [])];
    if (tags.length > 0) channel.tags = tags.map((name) => ({ name }));

    const messages: Record<string, unknown> = {};
    messages.clientMessage = message("Client message", "What a client sends on this channel.", route.message, schemas);
    const sends = doc.sends ?? (room ? route.message ?? undefined : undefined);
    if (sends !== undefined || room) {
      messages.serverMessage = message("Server message", room ? "What the room broadcasts to its members." : "What the server sends on this channel.", sends ?? null, schemas);
    }
    channel.messages = messages;

    const binding: Record<string, unknown> = { method: "GET", bindingVersion: "0.1.0" };
    const query = objectSchema(route.schema?.query, schemas);
    if (query !== null) binding.query = query;
    const headers = objectSchema(route.schema?.headers, schemas);
    if (headers !== null) binding.headers = headers;
    channel.bindings = { ws: binding };
    channels[id] = channel;

    operations[`${id}_receive`] = {
      action: "receive",
      channel: { $ref: `#/channels/${id}` },
      summary: `Messages clients send on ${pattern.template}`,
      messages: [{ $ref: `#/channels/${id}/messages/clientMessage` }],
    };
    if ("serverMessage" in messages) {
      operations[`${id}_send`] = {
        action: "send",
        channel: { $ref: `#/channels/${id}` },
        summary: room ? `Broadcasts to the room of ${pattern.template}` : `Messages the server sends on ${pattern.template}`,
        messages: [{ $ref: `#/channels/${id}/messages/serverMessage` }],
      };
    }
  }
  schemas.finish();
  const document: AsyncAPIDocument = {
    asyncapi: "3.0.0",
    info: { title: info.title ?? "Catzilla API", version: info.version ?? "0.1.0", ...(info.description === undefined ? {} : { description: info.description }) },
    defaultContentType: "application/json",
    channels,
    operations,
  };
  const servers = serversOf(info.servers ?? []);
  if (servers !== null) document.servers = servers;
  if (Object.keys(schemas.components).length > 0) document.components = { schemas: schemas.components };
  return document;
}

function message(title: string, description: string, schema: StandardSchemaV1 | null, schemas: SchemaCollector): Record<string, unknown> {
  if (schema === null) {
    return { title, description: `${description} Text or binary frames; no schema given.`, contentType: "text/plain" };
  }
  return { title, description: `${description} JSON, validated: one that does not match closes the connection with 1007.`, contentType: "application/json", payload: schemas.embed(schema) };
}

function objectSchema(schema: StandardSchemaV1 | undefined, schemas: SchemaCollector): JSONSchema | null {
  if (schema === undefined || jsonSchemaOf(schema) === null) return null;
  const embedded = schemas.embed(schema);
  return embedded.type === "object" ? embedded : null;
}

/** AsyncAPI servers from URLs: `wss://live.example.com/api` → host, protocol and pathname. */
function serversOf(urls: readonly string[]): Record<string, unknown> | null {
  if (urls.length === 0) return null;
  const servers: Record<string, unknown> = {};
  urls.forEach((text, i) => {
    const url = new URL(text);
    const protocol = url.protocol === "https:" || url.protocol === "wss:" ? "wss" : "ws";
    const server: Record<string, unknown> = { host: url.host, protocol };
    if (url.pathname !== "/") server.pathname = url.pathname.replace(/\/$/, "");
    servers[i === 0 ? "main" : `server${i + 1}`] = server;
  });
  return servers;
}

