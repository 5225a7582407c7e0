/**
 * Small validators for untrusted evidence JSON. Each throws ERR_ATTEST_MALFORMED naming the field
 * path, so no attestor ever reads a field it has not checked.
 */
import { malformed } from './attestor.js';

/** Upper bound on any one string field of evidence (documents and tokens are far smaller). */
export const MAX_EVIDENCE_STRING = 16_384;

export type JsonObject = Readonly<Record<string, unknown>>;

export function isPlainObject(value: unknown): value is JsonObject {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

export function expectObject(value: unknown, path: string): JsonObject {
  if (!isPlainObject(value)) throw malformed(path, 'expected an object');
  return value;
}

export interface StringRule {
  max?: number;
  pattern?: RegExp;
  /** Allow the empty string (default false). */
  empty?: boolean;
}

export function expectString(value: unknown, path: string, rule: StringRule = {}): string {
  if (typeof value !== 'string') throw malformed(path, 'expected a string');
  if (!rule.empty && value.length === 0) throw malformed(path, 'must not be empty');
  if (value.length > (rule.max ?? MAX_EVIDENCE_STRING)) throw malformed(path, `longer than ${rule.max ?? MAX_EVIDENCE_STRING} characters`);
  if (rule.pattern !== undefined && !rule.pattern.test(value)) throw malformed(path, 'has an invalid format');
  return value;
}

export function optionalString(value: unknown, path: string, rule: StringRule = {}): string | undefined {
  return value === undefined || value === null ? undefined : expectString(value, path, rule);
}

export function expectArray(value: unknown, path: string, max: number): readonly unknown[] {
  if (!Array.isArray(value)) throw malformed(path, 'expected an array');
  if (value.length > max) throw malformed(path, `more than ${max} items`);
  return value;
}

export function expectInteger(value: unknown, path: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw malformed(path, `expected an integer in [${min}, ${max}]`);
  }
  return value;
}

/** A string -> string map (labels), bounded in size. */
export function expectStringMap(value: unknown, path: string, maxEntries: number): Readonly<Record<string, string>> {
  const obj = expectObject(value, path);
  const entries = Object.entries(obj);
  if (entries.length > maxEntries) throw malformed(path, `more than ${maxEntries} entries`);
  const out: Record<string, string> = {};
  for (const [k, v] of entries) {
    expectString(k, `${path} key`, { max: 317 });
    out[k] = expectString(v, `${path}.${k}`, { max: 4096, empty: true });
  }
  return Object.freeze(out);
}

/** `{ attestor, data }` wire envelope: what an agent sends for one attestation. */
export interface EvidenceEnvelope {
  readonly attestor: string;
  readonly data: unknown;
}

export function parseEnvelope(value: unknown): EvidenceEnvelope {
  const obj = expectObject(value, 'evidence');
  const attestor = expectString(obj.attestor, 'evidence.attestor', { max: 64, pattern: /^[a-z][a-z0-9_]*$/ });
  if (!('data' in obj)) throw malformed('evidence.data', 'is required');
  return Object.freeze({ attestor, data: obj.data });
}
