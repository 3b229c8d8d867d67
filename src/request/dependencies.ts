import type { Request } from "./request.js";

/** Resolves another dependency from inside a dependency; results are cached per request. */
export type Resolve = <T>(dependency: Dependency<T>) => Promise<T>;

/**
 * A dependency: a function of the request. It may return the value, a promise of it, or be a
 * (async) generator that yields the value once and cleans up after the response is complete:
 *
 * @example
 * async function* database() {
 *   const db = await pool.connect();
 *   try { yield db; } finally { db.release(); }   // runs after the response (or stream) is done
 * }
 */
export type Dependency<T> = (
  req: Request<any>,
  resolve: Resolve,
) => T | Promise<T> | Generator<T, unknown, undefined> | AsyncGenerator<T, unknown, undefined>;

/** Dependencies of a route, by the name the handler receives them under. */
export type DependencyMap = Record<string, Dependency<any>>;

/** Replacements for dependencies (tests): the key is resolved as its value instead, wherever it is used. */
export type DependencyOverrides = ReadonlyMap<Dependency<any>, Dependency<any>>;

type Unwrap<R> = R extends AsyncGenerator<infer T, any, any>
  ? T
  : R extends Generator<infer T, any, any>
    ? T
    : Awaited<R>;

/** The values a handler receives for a {@link DependencyMap}. */
export type Resolved<D> = { [K in keyof D]: D[K] extends (...args: any[]) => infer R ? Unwrap<R> : never };

type AnyGenerator = Generator<unknown, unknown, undefined> | AsyncGenerator<unknown, unknown, undefined>;

function isGenerator(value: unknown): value is AnyGenerator {
  return typeof value === "object" && value !== null
    && typeof (value as AnyGenerator).next === "function"
    && typeof (value as AnyGenerator).throw === "function"
    && (Symbol.iterator in value || Symbol.asyncIterator in value);
}

/**
 * The dependencies of one request: each resolved at most once, generator dependencies closed in
 * reverse order when the response (including a streamed body) is done.
 */
export class DependencyScope {
  private readonly cache = new Map<Dependency<unknown>, Promise<unknown>>();
  private readonly open: AnyGenerator[] = [];

  constructor(private readonly req: Request<any, any>, private readonly overrides: DependencyOverrides | null = null) {}

  readonly resolve: Resolve = <T>(dependency: Dependency<T>): Promise<T> => {
    let pending = this.cache.get(dependency as Dependency<unknown>) as Promise<T> | undefined;
    if (pending === undefined) {
      const replacement = this.overrides === null ? undefined : this.overrides.get(dependency);
      pending = this.run((replacement ?? dependency) as Dependency<T>);
      this.cache.set(dependency as Dependency<unknown>, pending);
    }
    return pending;
  };

  /** Resolve dependencies whose values nobody receives (a router's guards), in order. */
  async resolveEach(list: ReadonlyArray<Dependency<unknown>>): Promise<void> {
    for (const dependency of list) await this.resolve(dependency);
  }

  /** Resolve every dependency of a route into an object keyed like the map. */
  async resolveAll<D extends DependencyMap>(map: D): Promise<Resolved<D>> {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(map)) out[key] = await this.resolve(map[key]!);
    return out as Resolved<D>;
  }

  private async run<T>(dependency: Dependency<T>): Promise<T> {
    const result = dependency(this.req, this.resolve);
    if (!isGenerator(result)) return await result;
    this.open.push(result);
    const step = await result.next();
    if (step.done) throw new TypeError(`Dependency ${dependency.name || "(anonymous)"} did not yield a value`);
    return step.value as T;
  }

  /** Run the cleanup of generator dependencies, last opened first. Errors are reported, not thrown. */
  async close(onError: (error: unknown) => void): Promise<void> {
    while (this.open.length > 0) {
      const generator = this.open.pop()!;
      try {
        // Resume after the `yield`, like a `finally` would, so code after it runs too.
        const step = await generator.next();
        if (!step.done) {
          await generator.return(undefined);
          onError(new TypeError("A dependency yielded more than once"));
        }
      } catch (error) {
        onError(error);
      }
    }
  }
}
