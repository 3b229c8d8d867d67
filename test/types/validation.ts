/**
 * Type tests (checked by `npm run typecheck`, never run): `req.valid`, `ws.valid` and validated
 * messages take their types from the route's schemas. Each `@ts-expect-error` fails the type check
 * if the line stops being an error.
 */
import { z } from "zod";
import * as v from "valibot";
import { Catzilla } from "../../src/index.js";

const app = new Catzilla();

app.get("/chat", (req) => {
  const message: string = req.valid.query.message;
  const limit: number = req.valid.query.limit;
  // @ts-expect-error the message is a string, not a number
  const wrong: number = req.valid.query.message;
  // @ts-expect-error no body schema, no body
  void req.valid.body;
  return { message, limit, wrong };
}, { schema: { query: z.object({ message: z.string(), limit: z.number().default(10) }) } });

app.post("/items/{id:int}", (req) => {
  const id: number = req.params.id;
  const name: string = req.valid.body.name;
  // @ts-expect-error price is a number
  const price: string = req.valid.body.price;
  return { id, name, price };
}, { schema: { body: v.object({ name: v.string(), price: v.number() }) } });

app.get("/plain", (req) => {
  // @ts-expect-error a route without schemas validates nothing
  void req.valid.query;
  return "plain";
});

app.websocket("/rooms/{id}", async (ws) => {
  await ws.accept();
  const name: string = ws.valid.query.name;
  const message = await ws.receiveJson({ schema: z.object({ text: z.string() }) });
  const text: string = message.text;
  // @ts-expect-error text is a string
  const n: number = message.text;
  ws.sendText(`${name} ${text} ${n}`);
}, { schema: { query: z.object({ name: z.string() }) } });

app.websocket("/events", {
  onMessage(ws, message) {
    const text: string = message.text;
    // @ts-expect-error the validated message, not a string or Buffer
    message.toUpperCase();
    ws.sendText(text);
  },
}, { schema: { message: z.object({ text: z.string() }) } });

app.room("/rooms/{id:int}", {
  onMessage(ws, message, room) {
    const text: string = message.text;
    const id: number = ws.params.id;
    // @ts-expect-error the validated message, not a string or Buffer
    message.subarray(0);
    room.broadcast({ text, id });
  },
}, { schema: { message: z.object({ text: z.string() }) } });
