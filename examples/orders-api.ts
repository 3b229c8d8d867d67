/**
 * A small JSON API with validated inputs: a POST body, typed query parameters and path params,
 * answered with 422 and every issue when they do not match. The OpenAPI document and the docs
 * page describe it (the demo serves them at /openapi.json and /docs).
 *
 *   node --conditions=catzilla-source --import tsx examples/orders-api.ts
 *   curl -X POST localhost:8000/api/orders -H 'content-type: application/json' -d '{"item":"pen","quantity":2}'
 *   curl 'localhost:8000/api/orders?status=open&limit=5'
 */
import { z } from "zod";
import { HTTPError, Router } from "catzilla";
import { runIfMain } from "./main.js";

const NewOrder = z.object({
  item: z.string().min(1).max(100),
  quantity: z.number().int().min(1).max(1000),
  note: z.string().max(500).optional(),
});
const Order = NewOrder.extend({ id: z.number().int(), status: z.enum(["open", "shipped"]) });
type Order = z.infer<typeof Order>;

const orders = new Map<number, Order>();
let lastId = 0;

export const router = new Router({ prefix: "/api" });

router.post("/orders", (req) => {
  if (orders.size >= 10_000) throw new HTTPError(507, "The demo keeps at most 10,000 orders");
  const order: Order = { ...req.valid.body, id: ++lastId, status: "open" };
  orders.set(order.id, order);
  return order;
}, { summary: "Place an order", tags: ["orders"], schema: { body: NewOrder }, response: Order });

router.get("/orders", (req) => {
  const { status, limit } = req.valid.query;          // "open" | "shipped" | undefined, number
  return [...orders.values()].filter((o) => status === undefined || o.status === status).slice(-limit);
}, {
  summary: "The latest orders",
  tags: ["orders"],
  schema: { query: z.object({ status: z.enum(["open", "shipped"]).optional(), limit: z.number().int().min(1).max(100).default(20) }) },
  response: z.array(Order),
});

router.get("/orders/{id:int}", (req) => {
  const order = orders.get(req.params.id);
  if (order === undefined) throw new HTTPError(404, "No such order");
  return order;
}, { summary: "One order", tags: ["orders"], response: Order, responses: { 404: "No such order" } });

await runIfMain(import.meta.url, router, "Orders API");
