/**
 * A field reader for one untrusted document: every accessor checks the type, records an issue
 * with the exact field path on mismatch, and returns undefined so parsing can continue and report
 * every problem at once.
 */
import type { PolicyErrorCode, PolicyIssue } from './errors.js';

export type Json = Record<string, unknown>;

export function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export class DocReader {
  readonly issues: PolicyIssue[] = [];
  constructor(
    readonly file: string | undefined,
    readonly document: number | undefined,
  ) {}

  issue(code: PolicyErrorCode, path: string, message: string): undefined {
    this.issues.push({
      code,
      message,
      ...(this.file === undefined ? {} : { file: this.file }),
      ...(this.document === undefined ? {} : { document: this.document }),
      ...(path === '' ? {} : { path }),
    });
    return undefined;
  }

  get failed(): boolean {
    return this.issues.length > 0;
  }

  record(value: unknown, path: string): Json | undefined {
    if (!isRecord(value)) return this.issue('ERR_POLICY_SCHEMA', path, `expected a mapping, got ${describe(value)}`);
    return value;
  }

  /** Records an issue for every key not in `allowed`. */
  fields(obj: Json, path: string, allowed: readonly string[]): void {
    for (const key of Object.keys(obj)) {
      if (!allowed.includes(key)) this.issue('ERR_POLICY_SCHEMA', join(path, key), `unknown field (allowed: ${allowed.join(', ')})`);
    }
  }

  string(value: unknown, path: string, opts: { max?: number; nonEmpty?: boolean } = {}): string | undefined {
    if (typeof value !== 'string') return this.issue('ERR_POLICY_SCHEMA', path, `expected a string, got ${describe(value)}`);
    if ((opts.nonEmpty ?? true) && value === '') return this.issue('ERR_POLICY_SCHEMA', path, 'must not be empty');
    if (value.length > (opts.max ?? 1024)) return this.issue('ERR_POLICY_VALUE', path, `longer than ${opts.max ?? 1024} characters`);
    return value;
  }

  list(value: unknown, path: string, max = 10_000): unknown[] | undefined {
    if (!Array.isArray(value)) return this.issue('ERR_POLICY_SCHEMA', path, `expected a list, got ${describe(value)}`);
    if (value.length > max) return this.issue('ERR_POLICY_VALUE', path, `more than ${max} entries`);
    return value;
  }

  /** A list of strings, each validated by `check` (which returns an error message or undefined). */
  strings(value: unknown, path: string, check?: (s: string) => string | undefined): string[] | undefined {
    const items = this.list(value, path);
    if (!items) return undefined;
    const out: string[] = [];
    let ok = true;
    items.forEach((item, i) => {
      const s = this.string(item, `${path}[${i}]`);
      if (s === undefined) {
        ok = false;
        return;
      }
      const problem = check?.(s);
      if (problem) {
        this.issue('ERR_POLICY_VALUE', `${path}[${i}]`, problem);
        ok = false;
        return;
      }
      out.push(s);
    });
    return ok ? out : undefined;
  }

  integer(value: unknown, path: string, min: number, max: number): number | undefined {
    if (typeof value !== 'number' || !Number.isInteger(value)) return this.issue('ERR_POLICY_SCHEMA', path, `expected an integer, got ${describe(value)}`);
    if (value < min || value > max) return this.issue('ERR_POLICY_VALUE', path, `must be between ${min} and ${max}`);
    return value;
  }

  oneOf<T extends string>(value: unknown, path: string, allowed: readonly T[]): T | undefined {
    if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
      return this.issue('ERR_POLICY_SCHEMA', path, `must be one of ${allowed.join(', ')}, got ${describe(value)}`);
    }
    return value as T;
  }

  boolean(value: unknown, path: string): boolean | undefined {
    if (typeof value !== 'boolean') return this.issue('ERR_POLICY_SCHEMA', path, `expected true or false, got ${describe(value)}`);
    return value;
  }
}

export function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path === '' ? key : `${path}.${key}`;
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return `string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  return `${typeof value} ${String(value)}`;
}
