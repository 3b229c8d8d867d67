/** Header values a response accepts when it is built. */
export type HeadersInit = Record<string, string | number | readonly string[]> | Iterable<readonly [string, string]>;

/**
 * Response headers, case-insensitive by name, kept in insertion order with the casing first given.
 */
export class ResponseHeaders {
  private readonly map = new Map<string, { name: string; values: string[] }>();

  constructor(init?: HeadersInit) {
    if (init === undefined) return;
    const entries = isIterable(init) ? init : Object.entries(init);
    for (const [name, value] of entries) {
      if (Array.isArray(value)) for (const v of value) this.append(name, String(v));
      else this.append(name, String(value));
    }
  }

  /** Replace every value of a header. */
  set(name: string, value: string | number): this {
    assertHeader(name, String(value));
    this.map.set(name.toLowerCase(), { name, values: [String(value)] });
    return this;
  }

  /** Add a value; headers such as Set-Cookie are sent once per value. */
  append(name: string, value: string | number): this {
    assertHeader(name, String(value));
    const entry = this.map.get(name.toLowerCase());
    if (entry === undefined) this.map.set(name.toLowerCase(), { name, values: [String(value)] });
    else entry.values.push(String(value));
    return this;
  }

  /** The value of a header, several values joined by ", ". */
  get(name: string): string | undefined {
    return this.map.get(name.toLowerCase())?.values.join(", ");
  }

  has(name: string): boolean {
    return this.map.has(name.toLowerCase());
  }

  delete(name: string): boolean {
    return this.map.delete(name.toLowerCase());
  }

  /** Set a header only when it is not set yet. */
  setDefault(name: string, value: string | number): this {
    if (!this.has(name)) this.set(name, value);
    return this;
  }

  *[Symbol.iterator](): IterableIterator<[string, string]> {
    for (const { name, values } of this.map.values()) for (const v of values) yield [name, v];
  }

  /** Flat `[name, value, name, value, ...]` as `ServerResponse.writeHead` takes it. @internal */
  toFlatArray(): string[] {
    const out: string[] = [];
    for (const { name, values } of this.map.values()) for (const v of values) out.push(name, v);
    return out;
  }
}

function isIterable(value: unknown): value is Iterable<readonly [string, string]> {
  return typeof value === "object" && value !== null && Symbol.iterator in value;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function assertHeader(name: string, value: string): void {
  // RFC 9110 §5.1, §5.5: a name is a token; CR, LF and NUL in a value would split the response.
  if (!TOKEN.test(name)) throw new TypeError(`Invalid header name: ${JSON.stringify(name)}`);
  if (/[\r\n\0]/.test(value)) throw new TypeError(`Invalid value for header ${name}`);
}
