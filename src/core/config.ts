/**
 * Helpers for parsing configuration at the edge into typed, frozen objects.
 * Defaults live with the config type that uses them, with their units in the name.
 */
import { CoreError } from './errors.js';

const DURATION_UNITS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/**
 * Parses `1h`, `90s`, `1h30m`, `250ms`, `2d` into milliseconds. A bare number is milliseconds.
 *
 * @example parseDuration('1h30m') // 5400000
 */
export function parseDuration(input: string | number, path = 'duration'): number {
  if (typeof input === 'number') {
    if (Number.isFinite(input) && input >= 0) return input;
    throw new CoreError('ERR_DURATION_INVALID', `${path}: ${input} is not a non-negative number of milliseconds`, { details: { path } });
  }
  const text = input.trim();
  if (/^\d+$/.test(text)) return Number(text);
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    total += Number(m[1]) * (DURATION_UNITS[m[2] as string] as number);
    consumed = re.lastIndex;
  }
  if (text.length === 0 || consumed !== text.length || !Number.isFinite(total)) {
    throw new CoreError('ERR_DURATION_INVALID', `${path}: "${input}" is not a duration like 1h30m, 10s or 250ms`, { details: { path } });
  }
  return Math.round(total);
}

const SIZE_UNITS: Readonly<Record<string, number>> = {
  '': 1, b: 1,
  kb: 1e3, mb: 1e6, gb: 1e9,
  kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3,
};

/** Parses `512`, `64KiB`, `10MB` into bytes. */
export function parseByteSize(input: string | number, path = 'size'): number {
  if (typeof input === 'number' && Number.isSafeInteger(input) && input >= 0) return input;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(String(input));
  const unit = m ? SIZE_UNITS[(m[2] as string).toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new CoreError('ERR_BYTE_SIZE_INVALID', `${path}: "${String(input)}" is not a size like 512, 64KiB or 10MB`, { details: { path } });
  }
  return Math.round(Number(m[1]) * unit);
}

/** Freezes an object graph so parsed configuration cannot be mutated after validation. */
export function deepFreeze<T>(value: T): Readonly<T> {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
  }
  return value;
}

/** Throws ERR_CONFIG_INVALID naming the field path. */
export function configError(path: string, message: string): CoreError {
  return new CoreError('ERR_CONFIG_INVALID', `${path}: ${message}`, { details: { path } });
}
