/** Config parsing helpers shared by the attestors (validated once, at the edge). */
import { configError } from '../core/config.js';
import { isPlainObject, type JsonObject } from './evidence.js';

export function configObject(raw: unknown, path: string, optional = false): JsonObject {
  if ((raw === undefined || raw === null) && optional) return {};
  if (!isPlainObject(raw)) throw configError(path, 'expected an object');
  return raw;
}

export function configString(obj: JsonObject, key: string, path: string, fallback?: string): string {
  const v = obj[key];
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== 'string' || v.length === 0) throw configError(`${path}.${key}`, 'expected a non-empty string');
  return v;
}

export function configOptionalString(obj: JsonObject, key: string, path: string): string | undefined {
  return obj[key] === undefined ? undefined : configString(obj, key, path);
}

export function configStringList(obj: JsonObject, key: string, path: string, fallback: readonly string[]): readonly string[] {
  const v = obj[key];
  if (v === undefined) return fallback;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string' && x.length > 0)) throw configError(`${path}.${key}`, 'expected a list of strings');
  return v as string[];
}

export function configUrl(obj: JsonObject, key: string, path: string): string {
  const v = configString(obj, key, path);
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    throw configError(`${path}.${key}`, 'is not a URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw configError(`${path}.${key}`, 'must be an http(s) URL');
  return v.replace(/\/+$/, '');
}

/** `bindTo`: which node attestors a workload/hint attestor accepts as its binding. */
export function configBindTo(obj: JsonObject, path: string, fallback: readonly string[]): readonly string[] {
  const list = configStringList(obj, 'bindTo', path, fallback);
  if (list.length === 0) throw configError(`${path}.bindTo`, 'must name at least one node attestor');
  return list;
}
