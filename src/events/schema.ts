/**
 * A tiny strict validator for untrusted JSON: every parser either returns a typed, fresh value
 * or throws ERR_EVENT_INVALID with the field path. Objects reject unknown keys (fail closed).
 * Internal to src/events; the codec builds the event schemas from these pieces.
 */
import { EventError } from './errors.js';

export type Parser<T> = (value: unknown, path: string) => T;

const OPTIONAL: unique symbol = Symbol('optional');
export interface Optional<T> {
  readonly [OPTIONAL]: true;
  readonly parse: Parser<T>;
}

export function invalid(path: string, message: string): EventError {
  return new EventError('ERR_EVENT_INVALID', `${path}: ${message}`, { details: { path } });
}

export function optional<T>(parse: Parser<T>): Optional<T> {
  return { [OPTIONAL]: true, parse };
}

function isOptional(value: unknown): value is Optional<unknown> {
  return typeof value === 'object' && value !== null && OPTIONAL in value;
}

export function str(opts: { max?: number; min?: number; pattern?: RegExp } = {}): Parser<string> {
  const max = opts.max ?? 1024;
  const min = opts.min ?? 0;
  return (v, path) => {
    if (typeof v !== 'string') throw invalid(path, 'expected a string');
    if (v.length < min) throw invalid(path, `shorter than ${min}`);
    if (v.length > max) throw invalid(path, `longer than ${max}`);
    if (opts.pattern && !opts.pattern.test(v)) throw invalid(path, 'has an invalid format');
    return v;
  };
}

export function int(opts: { min?: number; max?: number } = {}): Parser<number> {
  const min = opts.min ?? 0;
  const max = opts.max ?? Number.MAX_SAFE_INTEGER;
  return (v, path) => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw invalid(path, 'expected an integer');
    if (v < min || v > max) throw invalid(path, `out of range [${min}, ${max}]`);
    return v;
  };
}

export function num(opts: { min?: number; max?: number } = {}): Parser<number> {
  const min = opts.min ?? -Number.MAX_VALUE;
  const max = opts.max ?? Number.MAX_VALUE;
  return (v, path) => {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw invalid(path, 'expected a finite number');
    if (v < min || v > max) throw invalid(path, `out of range [${min}, ${max}]`);
    return v;
  };
}

export const bool: Parser<boolean> = (v, path) => {
  if (typeof v !== 'boolean') throw invalid(path, 'expected a boolean');
  return v;
};

export function literal<const T extends string | number>(...allowed: readonly T[]): Parser<T> {
  return (v, path) => {
    if (!(allowed as readonly unknown[]).includes(v)) throw invalid(path, `expected one of ${allowed.join(', ')}`);
    return v as T;
  };
}

export function arr<T>(item: Parser<T>, opts: { max?: number; min?: number } = {}): Parser<T[]> {
  const max = opts.max ?? 256;
  const min = opts.min ?? 0;
  return (v, path) => {
    if (!Array.isArray(v)) throw invalid(path, 'expected an array');
    if (v.length > max) throw invalid(path, `more than ${max} items`);
    if (v.length < min) throw invalid(path, `fewer than ${min} items`);
    return v.map((x, i) => item(x, `${path}[${i}]`));
  };
}

type Shape = Record<string, Parser<unknown> | Optional<unknown>>;
type RequiredKeys<S extends Shape> = { [K in keyof S]: S[K] extends Optional<unknown> ? never : K }[keyof S];
type OptionalKeys<S extends Shape> = { [K in keyof S]: S[K] extends Optional<unknown> ? K : never }[keyof S];
type Out<P> = P extends Optional<infer T> ? T : P extends Parser<infer T> ? T : never;
type Simplify<T> = { [K in keyof T]: T[K] } & {};
export type ObjectOf<S extends Shape> = Simplify<
  { readonly [K in RequiredKeys<S>]: Out<S[K]> } & { readonly [K in OptionalKeys<S>]?: Out<S[K]> }
>;

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/** A strict object: required keys must be present, unknown keys are an error. */
export function obj<S extends Shape>(shape: S): Parser<ObjectOf<S>> {
  const keys = Object.keys(shape);
  return (v, path) => {
    if (!isPlainObject(v)) throw invalid(path, 'expected an object');
    for (const key of Object.keys(v)) {
      if (!Object.hasOwn(shape, key)) throw invalid(`${path}.${key}`, 'unknown field');
    }
    const out: Record<string, unknown> = {};
    for (const key of keys) {
      const field = shape[key] as Parser<unknown> | Optional<unknown>;
      const present = Object.hasOwn(v, key) && v[key] !== undefined;
      if (isOptional(field)) {
        if (present) out[key] = field.parse(v[key], `${path}.${key}`);
      } else {
        if (!present) throw invalid(`${path}.${key}`, 'is required');
        out[key] = field(v[key], `${path}.${key}`);
      }
    }
    return out as ObjectOf<S>;
  };
}

/** The value type a parser produces. */
export type Infer<P> = P extends Parser<infer T> ? T : never;
