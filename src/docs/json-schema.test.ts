import { test } from "node:test";
import assert from "node:assert/strict";
import { z } from "zod";
import { SchemaCollector } from "./json-schema.js";

test("definitions move to the components, and references follow them; a recursive schema becomes a component", () => {
  const User = z.object({ name: z.string() }).meta({ id: "User" });
  const Team = z.object({ lead: User, members: z.array(User) });
  const Category = z.object({ name: z.string(), get children() { return z.array(Category); } });
  const collector = new SchemaCollector("#/components/schemas/");
  const team = collector.embed(Team);
  const category = collector.embed(Category);
  const boss = collector.embed(z.object({ boss: User }));
  collector.finish();
  assert.deepEqual(team.properties, { lead: { $ref: "#/components/schemas/User" }, members: { type: "array", items: { $ref: "#/components/schemas/User" } } });
  assert.equal(team.$defs, undefined);
  assert.equal(team.$schema, undefined);
  assert.deepEqual(boss.properties, { boss: { $ref: "#/components/schemas/User" } }, "one User component for both");
  assert.deepEqual(Object.keys(collector.components).sort(), ["Schema", "User"]);
  assert.deepEqual(category, { $ref: "#/components/schemas/Schema" });
  const recursive = collector.components.Schema as { properties: { children: { items: unknown } } };
  assert.deepEqual(recursive.properties.children.items, { $ref: "#/components/schemas/Schema" });
});

test("two different definitions of one name are both kept", () => {
  const collector = new SchemaCollector("#/components/schemas/");
  const a = collector.embed(z.object({ x: z.object({ a: z.string() }).meta({ id: "Thing" }) }));
  const b = collector.embed(z.object({ y: z.object({ b: z.number() }).meta({ id: "Thing" }) }));
  collector.finish();
  assert.deepEqual((a.properties as Record<string, unknown>).x, { $ref: "#/components/schemas/Thing" });
  assert.deepEqual((b.properties as Record<string, unknown>).y, { $ref: "#/components/schemas/Thing_2" });
});
