import { jsonSchemaOf, type JSONSchema, type StandardSchemaV1 } from "../request/standard-schema.js";

/**
 * The JSON Schemas of one document (OpenAPI, AsyncAPI): each schema's own definitions (`$defs`)
 * move to the document's components, where `$ref`s of the whole document can reach them.
 */
export class SchemaCollector {
  /** Schemas by name, for `components.schemas`. */
  readonly components: Record<string, JSONSchema> = {};
  private readonly texts = new Map<string, string>();

  constructor(private readonly refBase: string) {}

  /**
   * The JSON Schema of a Standard Schema, ready to embed, or a schema that accepts anything
   * (with a note) where the library gives none.
   */
  embed(schema: StandardSchemaV1): JSONSchema {
    const source = jsonSchemaOf(schema);
    if (source === null) {
      return { description: `A ${schema["~standard"].vendor} schema without a JSON Schema form (see the API's own documentation).` };
    }
    const renamed = new Map<string, string>();
    for (const key of ["$defs", "definitions"]) {
      const defs = source[key];
      if (typeof defs !== "object" || defs === null) continue;
      for (const [name, definition] of Object.entries(defs as Record<string, JSONSchema>)) {
        renamed.set(`#/${key}/${name}`, this.add(name, definition, renamed));
      }
    }
    const { $schema: _schema, $defs: _defs, definitions: _definitions, ...rest } = source;
    if (refersToRoot(rest)) {
      // A recursive schema (`$ref: "#"`): the root becomes a component of its own, so that the
      // reference still means the schema once it sits inside the document.
      const name = typeof rest.title === "string" ? rest.title : "Schema";
      renamed.set("#", this.add(name, rest, renamed));
      return { $ref: renamed.get("#")! };
    }
    return rewrite(rest, renamed) as JSONSchema;
  }

  /** Add a definition under its name (or the name with a number where another took it). */
  private add(name: string, definition: JSONSchema, renamed: Map<string, string>): string {
    const safe = name.replace(/[^A-Za-z0-9._-]/g, "_") || "Schema";
    // References between the definitions of one schema are rewritten in finish(), once all of
    // them have their names; the text compared is the definition as given.
    const text = JSON.stringify(definition);
    let candidate = safe;
    for (let n = 2; this.texts.has(candidate) && this.texts.get(candidate) !== text; n++) candidate = `${safe}_${n}`;
    const ref = `${this.refBase}${candidate}`;
    if (!this.texts.has(candidate)) {
      this.texts.set(candidate, text);
      this.components[candidate] = definition;
      this.pending.push([candidate, renamed]);
    }
    return ref;
  }

  private readonly pending: Array<[string, Map<string, string>]> = [];

  /** Rewrite references inside the definitions added; call before the document is used. */
  finish(): void {
    for (const [name, renamed] of this.pending) this.components[name] = rewrite(this.components[name], renamed) as JSONSchema;
    this.pending.length = 0;
  }
}

function refersToRoot(value: unknown): boolean {
  if (Array.isArray(value)) return value.some(refersToRoot);
  if (typeof value !== "object" || value === null) return false;
  for (const [key, v] of Object.entries(value)) {
    if (key === "$ref" ? v === "#" : refersToRoot(v)) return true;
  }
  return false;
}

/** A copy of a JSON value with `$ref`s renamed. */
function rewrite(value: unknown, renamed: ReadonlyMap<string, string>): unknown {
  if (Array.isArray(value)) return value.map((v) => rewrite(v, renamed));
  if (typeof value !== "object" || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    if (key === "$ref" && typeof v === "string") {
      out[key] = renamed.get(v) ?? v;
    } else {
      out[key] = rewrite(v, renamed);
    }
  }
  return out;
}
