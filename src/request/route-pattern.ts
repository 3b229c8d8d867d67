/**
 * Route path patterns: `/users/{id}`, typed `{id:int}`, `{x:float}`, `{u:uuid}` and a trailing
 * `{rest:path}` that matches the remainder including slashes.
 */

export type ConverterName = "str" | "int" | "float" | "uuid" | "path";

interface Converter {
  pattern: string;
  convert(raw: string): string | number;
}

const identity = (raw: string): string => raw;

const CONVERTERS: Record<ConverterName, Converter> = {
  str: { pattern: "[^/]+", convert: identity },
  int: { pattern: "[0-9]+", convert: Number },
  float: { pattern: "[0-9]+(?:\\.[0-9]+)?", convert: Number },
  uuid: { pattern: "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", convert: identity },
  path: { pattern: ".*", convert: identity },
};

type ParamValue<C extends string> = C extends "int" | "float" ? number : string;

/**
 * The params object a path pattern yields, inferred from the literal:
 * `PathParams<"/u/{id:int}/{name}">` is `{ id: number; name: string }`.
 */
export type PathParams<P extends string> = string extends P
  ? Record<string, string | number>
  : P extends `${string}{${infer Param}}${infer Rest}`
    ? (Param extends `${infer Name}:${infer Conv}` ? { [K in Name]: ParamValue<Conv> } : { [K in Param]: string })
      & PathParams<Rest>
    : {};

/** A compiled path pattern. */
export class RoutePattern {
  readonly path: string;
  /** Whether the pattern has no parameters and matches one path only. */
  readonly isStatic: boolean;
  /**
   * The path with its parameters' names left out (`/users/{:int}`): two patterns of one shape
   * match the same paths.
   */
  readonly shape: string;
  private readonly regex: RegExp;
  private readonly names: string[] = [];
  private readonly converters: Converter[] = [];
  private readonly kinds: ConverterName[] = [];

  constructor(path: string) {
    if (!path.startsWith("/")) throw new TypeError(`Route path must start with "/": ${JSON.stringify(path)}`);
    this.path = path;
    let source = "^";
    let shape = "";
    let last = 0;
    const token = /\{([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+))?\}/g;
    for (let m = token.exec(path); m !== null; m = token.exec(path)) {
      const name = m[1]!;
      const kind = (m[2] ?? "str") as ConverterName;
      const converter = CONVERTERS[kind];
      if (converter === undefined) throw new TypeError(`Unknown path converter "${kind}" in ${path}`);
      if (kind === "path" && token.lastIndex !== path.length) {
        throw new TypeError(`A {${name}:path} parameter must end the route path: ${path}`);
      }
      if (this.names.includes(name)) throw new TypeError(`Duplicate path parameter "${name}" in ${path}`);
      assertNoColonSegment(path, path.slice(last, m.index));
      source += escapeRegex(path.slice(last, m.index)) + `(${converter.pattern})`;
      shape += `${path.slice(last, m.index)}{:${kind}}`;
      last = token.lastIndex;
      this.names.push(name);
      this.converters.push(converter);
      this.kinds.push(kind);
    }
    if (path.slice(last).includes("{") || path.slice(last).includes("}")) {
      throw new TypeError(`Malformed path parameter in ${path}`);
    }
    assertNoColonSegment(path, path.slice(last));
    source += escapeRegex(path.slice(last)) + "$";
    this.regex = new RegExp(source);
    this.isStatic = this.names.length === 0;
    this.shape = shape + path.slice(last);
  }

  /** The parameters in order, with their converters (`str` when none is written). */
  get parameters(): Array<{ name: string; converter: ConverterName }> {
    return this.names.map((name, i) => ({ name, converter: this.kinds[i]! }));
  }

  /** The path as OpenAPI and AsyncAPI write it: `/users/{id}` for `/users/{id:int}`. */
  get template(): string {
    return this.path.replace(/\{([A-Za-z_][A-Za-z0-9_]*)(?::[a-z]+)?\}/g, "{$1}");
  }

  /**
   * Match a raw (still percent-encoded) request path. Returns the decoded params, `null` when the
   * path does not match, or `undefined` when a parameter is not valid percent-encoding.
   */
  match(rawPath: string): Record<string, string | number> | null | undefined {
    const m = this.regex.exec(rawPath);
    if (m === null) return null;
    if (this.names.length === 0) return NO_PARAMS;
    const params: Record<string, string | number> = {};
    for (let i = 0; i < this.names.length; i++) {
      let value: string;
      try {
        value = decodeURIComponent(m[i + 1]!);
      } catch {
        return undefined;
      }
      params[this.names[i]!] = this.converters[i]!.convert(value);
    }
    return params;
  }
}

/** The params of every path without any: one frozen object, not one per request or connection. */
const NO_PARAMS: Record<string, string | number> = Object.freeze({});

/**
 * A segment that starts with ":" is a parameter in Express and Hono syntax, and a literal here:
 * refused, with the spelling that works.
 */
function assertNoColonSegment(path: string, literal: string): void {
  const m = /\/:([A-Za-z_][A-Za-z0-9_]*)/.exec(literal);
  if (m !== null) throw new TypeError(`Route path ${path} has a segment ":${m[1]}", which would match only itself; path parameters are written {${m[1]}}`);
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
