/**
 * Type tests (checked by `npm run typecheck`, never run): what a handler may return. Each
 * `@ts-expect-error` fails the type check if the line stops being an error.
 */
import { Catzilla, StreamingResponse } from "../../src/index.js";

const app = new Catzilla();
function* rows(): Generator<string> {
  yield "a";
}
async function* tokens(): AsyncGenerator<string> {
  yield "a";
}

// Accepted: responses, text, bytes, JSON values, nothing, and promises of them.
app.get("/text", () => "text");
app.get("/bytes", () => Buffer.from("x"));
app.get("/json", () => ({ id: 1, tags: ["a"], next: "cursor", when: new Date() }));
app.get("/array", () => [1, 2, 3]);
app.get("/number", () => 42);
app.get("/none", () => undefined);
app.get("/async", async () => ({ ok: true }));
app.get("/stream", () => new StreamingResponse(rows()));
interface User { id: number; name: string }
const user: User = { id: 1, name: "a" };
app.get("/interface", () => user);

// Refused: what JSON would turn into {} or null.
// @ts-expect-error a generator is not a response (wrap it in a StreamingResponse)
app.get("/generator", () => rows());
// @ts-expect-error an async generator neither
app.get("/async-generator", () => tokens());
// @ts-expect-error a Map
app.get("/map", () => new Map([["a", 1]]));
// @ts-expect-error a Set
app.get("/set", () => new Set([1]));
// @ts-expect-error a function
app.get("/function", () => () => "text");
// @ts-expect-error a promise of a generator
app.get("/async-of-generator", async () => rows());
