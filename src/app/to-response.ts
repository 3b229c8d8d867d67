import { InvalidResponseError } from "../errors.js";
import { JSONResponse, Response } from "../responses/response.js";
import type { ResponseLike } from "./router.js";

/**
 * Turn what a handler returned into a Response.
 * @throws InvalidResponseError for what JSON would turn into `{}` or `null` (a generator, a Map,
 *   a function, a Promise in a field, ...): the request gets a 500 and the log says what it was.
 */
export function toResponse(value: ResponseLike): Response {
  if (value instanceof Response) return value;
  if (value === undefined) return new Response(null, { status: 204 });
  if (typeof value === "string" || value instanceof Uint8Array) return new Response(value);
  assertJSONValue(value);
  return new JSONResponse(value);
}

/** The value and its fields (one level: where a forgotten `await` puts a Promise) must be JSON. */
function assertJSONValue(value: unknown): void {
  const problem = notJSON(value);
  if (problem !== null) throw new InvalidResponseError(problem[0], problem[1]);
  if (typeof value !== "object" || value === null || Array.isArray(value) || typeof (value as { toJSON?: unknown }).toJSON === "function") return;
  for (const key in value) {
    const field = notJSON((value as Record<string, unknown>)[key]);
    if (field !== null) throw new InvalidResponseError(`an object whose field ${JSON.stringify(key)} is ${field[0]}`, field[1]);
  }
}

/** What a value is and what to do instead, when JSON would not carry it; null when it would. */
function notJSON(value: unknown): [what: string, hint: string] | null {
  switch (typeof value) {
    case "function":
      return ["a function", "call it and return its result"];
    case "symbol":
      return ["a symbol", ""];
    case "bigint":
      return ["a bigint", "return it as a number or a string"];
    case "object": {
      if (value === null || Array.isArray(value) || ArrayBuffer.isView(value)) return null;
      if (typeof (value as { then?: unknown }).then === "function") return ["a Promise", "await it"];
      if (value instanceof Map) return ["a Map", "return Object.fromEntries(map)"];
      if (value instanceof Set) return ["a Set", "return [...set]"];
      if (Symbol.asyncIterator in value || Symbol.iterator in value || value instanceof ReadableStream) {
        return ["a generator, iterator or stream", "return new StreamingResponse(it) to stream it"];
      }
      return null;
    }
    default:
      return null;
  }
}
