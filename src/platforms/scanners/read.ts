/**
 * Tolerant-but-typed reading of untrusted report JSON: unknown fields are ignored (real reports
 * carry many), but every field Ward uses must have the right type, or ERR_SCAN_INVALID names it.
 */
import { ScanError } from './errors.js';

export type Json = Record<string, unknown>;

export function invalid(path: string, message: string): ScanError {
  return new ScanError('ERR_SCAN_INVALID', `${path}: ${message}`, { details: { path } });
}

export function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function obj(v: unknown, path: string): Json {
  if (!isObject(v)) throw invalid(path, 'expected an object');
  return v;
}

export function optObj(v: unknown, path: string): Json | undefined {
  return v === undefined || v === null ? undefined : obj(v, path);
}

/** An array; `null` and absent read as empty (Trivy writes `"Vulnerabilities": null`). */
export function list(v: unknown, path: string, max = 100_000): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw invalid(path, 'expected an array');
  if (v.length > max) throw new ScanError('ERR_SCAN_TOO_LARGE', `${path}: more than ${max} items`, { details: { path } });
  return v;
}

export function str(v: unknown, path: string, max = 4096): string {
  if (typeof v !== 'string') throw invalid(path, 'expected a string');
  if (v.length > max) throw invalid(path, `longer than ${max}`);
  return v;
}

export function optStr(v: unknown, path: string, max = 4096): string | undefined {
  return v === undefined || v === null ? undefined : str(v, path, max);
}

export function optNum(v: unknown, path: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw invalid(path, 'expected a finite number');
  return v;
}

const VULN_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/;
export function vulnId(v: unknown, path: string): string {
  const s = str(v, path, 128);
  if (!VULN_ID_RE.test(s)) throw invalid(path, 'not a vulnerability id');
  return s;
}

/** A CVSS base score must be within 0..10. */
export function cvssScore(v: unknown, path: string): number | undefined {
  const n = optNum(v, path);
  if (n !== undefined && (n < 0 || n > 10)) throw invalid(path, 'CVSS score out of range 0..10');
  return n;
}

export const DIGEST_RE = /^sha(256|384|512):[a-f0-9]{64,128}$/;

/** The digest part of `repo@sha256:…`, or of a bare digest; null when there is none. */
export function digestOf(ref: string): string | null {
  const at = ref.lastIndexOf('@');
  const d = (at >= 0 ? ref.slice(at + 1) : ref).toLowerCase();
  return DIGEST_RE.test(d) ? d : null;
}
