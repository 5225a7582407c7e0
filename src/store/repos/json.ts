/** JSON columns and input checks shared by the repositories. */
import { StoreError } from '../errors.js';

export function toJson(value: unknown): string {
  return JSON.stringify(value ?? null);
}

export function fromJson<T>(text: string | null): T | null {
  return text === null ? null : (JSON.parse(text) as T);
}

export function invalid(field: string, message: string): StoreError {
  return new StoreError('ERR_STORE_INVALID', `${field}: ${message}`, { details: { field } });
}

export function requireString(field: string, value: unknown, max = 2048): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max) throw invalid(field, `expected a non-empty string of at most ${max} characters`);
  return value;
}

export function notFound(kind: string, id: string): StoreError {
  return new StoreError('ERR_STORE_NOT_FOUND', `${kind} not found`, { details: { kind, id } });
}

export function conflict(message: string, details?: Record<string, unknown>): StoreError {
  return new StoreError('ERR_STORE_CONFLICT', message, details ? { details } : {});
}
