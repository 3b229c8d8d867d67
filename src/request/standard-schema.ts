/**
 * The Standard Schema interface (https://standardschema.dev), version 1, as zod, valibot and
 * arktype implement it, and its JSON Schema companion. The spec asks libraries that accept
 * schemas to copy these types rather than depend on a package: no schema library, and no types
 * package, is a dependency of the framework.
 */

/** A schema of any library that implements Standard Schema v1. */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  readonly "~standard": StandardSchemaV1.Props<Input, Output>;
}

export declare namespace StandardSchemaV1 {
  interface Props<Input = unknown, Output = Input> {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (value: unknown, options?: Options) => Result<Output> | Promise<Result<Output>>;
    readonly types?: Types<Input, Output> | undefined;
    /** Standard JSON Schema v1: present on zod 4, arktype, and valibot's `toStandardJsonSchema()`. */
    readonly jsonSchema?: JSONSchemaConverter | undefined;
  }
  interface Options {
    readonly libraryOptions?: Record<string, unknown> | undefined;
  }
  type Result<Output> = SuccessResult<Output> | FailureResult;
  interface SuccessResult<Output> {
    readonly value: Output;
    readonly issues?: undefined;
  }
  interface FailureResult {
    readonly issues: ReadonlyArray<Issue>;
  }
  interface Issue {
    readonly message: string;
    readonly path?: ReadonlyArray<PropertyKey | PathSegment> | undefined;
  }
  interface PathSegment {
    readonly key: PropertyKey;
  }
  interface Types<Input = unknown, Output = Input> {
    readonly input: Input;
    readonly output: Output;
  }
  interface JSONSchemaConverter {
    readonly input: (options: { readonly target: string }) => Record<string, unknown>;
    readonly output: (options: { readonly target: string }) => Record<string, unknown>;
  }
}

/** The type a schema produces. */
export type InferOutput<S> = S extends StandardSchemaV1<any, infer O> ? O : unknown;

/** The type a schema accepts. */
export type InferInput<S> = S extends StandardSchemaV1<infer I, any> ? I : unknown;

/** A JSON Schema (2020-12) as a plain object. */
export type JSONSchema = Record<string, unknown>;

const jsonSchemas = new WeakMap<StandardSchemaV1, JSONSchema | null>();

/**
 * The JSON Schema (draft 2020-12) of what a schema accepts, where its library can give one
 * (Standard JSON Schema), else null. Computed once per schema.
 */
export function jsonSchemaOf(schema: StandardSchemaV1): JSONSchema | null {
  let known = jsonSchemas.get(schema);
  if (known === undefined) {
    known = null;
    const converter = schema["~standard"].jsonSchema;
    if (converter !== undefined) {
      try {
        known = converter.input({ target: "draft-2020-12" });
      } catch {
        // A schema the library cannot describe (a custom refinement, a transform): none.
      }
    }
    jsonSchemas.set(schema, known);
  }
  return known;
}

/** Whether a value is a Standard Schema. */
export function isStandardSchema(value: unknown): value is StandardSchemaV1 {
  if ((typeof value !== "object" && typeof value !== "function") || value === null) return false;
  const props = (value as Partial<StandardSchemaV1>)["~standard"];
  return typeof props === "object" && props !== null && props.version === 1 && typeof props.validate === "function";
}
